// What the client port answers over HTTP/1.1, as etcd 3.4 does: GET
// /health ({"health":"true"}, or 503 without a leader, with an alarm, or
// when a linearizable read fails within a second), GET /metrics
// (Prometheus text), GET /version, and the grpc-gateway JSON API (POST
// /v3/kv/range and the other unary calls, JSON with proto field names,
// bytes as base64, 64-bit integers as strings), which runs each request
// through the gRPC services in-process so that it gets exactly their
// validation, auth and errors. The streaming calls (/v3/watch,
// /v3/lease/keepalive, /v3/maintenance/snapshot) are not served over JSON.
#ifndef ETC_SERVER_GATEWAY_H_
#define ETC_SERVER_GATEWAY_H_

#include <memory>

#include <grpcpp/grpcpp.h>

#include "server/http.h"
#include "server/member_host.h"
#include "server/metrics.h"
#include "server/v2_keys.h"

namespace etc::server {

// `grpc_server` (nullptr: /health and /metrics only, for
// --listen-metrics-urls) serves the JSON API; with `enable_v2`, etcd v2's
// API too (v2_keys.h).
HttpHandler MakeHttpHandler(MemberHost* host, Metrics* metrics, grpc::Server* grpc_server,
                            bool enable_v2 = false);

}  // namespace etc::server

#endif  // ETC_SERVER_GATEWAY_H_
