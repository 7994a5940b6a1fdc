// Counts every RPC the gRPC server handles, by service, method, type and
// status code, and times it, into Metrics (as go-grpc-prometheus does for
// etcd): one server interceptor, so no handler has to remember.
#ifndef ETC_SERVER_GRPC_METRICS_H_
#define ETC_SERVER_GRPC_METRICS_H_

#include <memory>

#include <grpcpp/support/server_interceptor.h>

#include "server/metrics.h"

namespace etc::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MetricsInterceptorFactory(
    Metrics* metrics);

}  // namespace etc::server

#endif  // ETC_SERVER_GRPC_METRICS_H_
