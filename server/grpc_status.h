// A status crossing the gRPC boundary, either way: absl and gRPC number
// their codes alike (both are google.rpc.Code), so it keeps its code and
// message. The one conversion the server's handlers, its peer service and
// the client all use.
//
//   return ToGrpc(host->LeaderTimeToLive(request).status());   // a handler
//   absl::Status s = FromGrpc(stub->Range(&context, request, &response));
#ifndef ETC_SERVER_GRPC_STATUS_H_
#define ETC_SERVER_GRPC_STATUS_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace etc::server {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace etc::server

#endif  // ETC_SERVER_GRPC_STATUS_H_
