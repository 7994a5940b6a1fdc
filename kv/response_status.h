// How a kvpb.Response carries a refusal: the absl::Status code in
// error_code (0: none) and etcd's message in error_message. The key tree
// answers with it; the member turns it back into the Status its caller
// gets, which the server hands on code-for-code.
//
//   kvpb::Response refused = ErrorResponse(LeaseNotFoundError());
//   absl::Status status = StatusOf(refused);   // kNotFound, etcd's message
#ifndef ETC_KV_RESPONSE_STATUS_H_
#define ETC_KV_RESPONSE_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "kv/kvpb/kvpb.pb.h"

namespace etc::kv {

inline kvpb::Response ErrorResponse(const absl::Status& status) {
  kvpb::Response response;
  response.set_error_code(static_cast<int32_t>(status.code()));
  response.set_error_message(std::string(status.message()));
  return response;
}

inline absl::Status StatusOf(const kvpb::Response& response) {
  if (response.error_code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(response.error_code()),
                      response.error_message());
}

}  // namespace etc::kv

#endif  // ETC_KV_RESPONSE_STATUS_H_
