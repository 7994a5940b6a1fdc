// What the client port answers over HTTP/1.1, as etcd 3.4 does: GET
// /health ({"health":"true"}, or 503 without a leader, with an alarm, or
// when a linearizable read fails within a second), GET /metrics
// (Prometheus text), GET /version, and the grpc-gateway JSON API under
// /v3/ and /v3beta/: the unary calls (POST /v3/kv/range ...; JSON with
// proto field names, bytes as base64, 64-bit integers as strings,
// gateway_codec.h) and the streaming ones, POST /v3/watch and
// /v3/lease/keepalive (chunked answers, gateway_stream.h). Each request
// becomes the same gRPC call, in-process, so it gets exactly the services'
// validation, auth and errors; a call in flight holds no thread (its
// completion answers the HttpExchange), and a client that leaves cancels
// it. /v3/maintenance/snapshot and /v3/election/observe (server streams)
// are not served over JSON.
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
AsyncHttpHandler MakeHttpHandler(MemberHost* host, Metrics* metrics, grpc::Server* grpc_server,
                                 bool enable_v2 = false);

}  // namespace etc::server

#endif  // ETC_SERVER_GATEWAY_H_
