// The JSON gateway's wire, as etcd 3.4's grpc-gateway (1.6.4, JSONPb with
// proto field names) speaks it: requests read from JSON (unknown fields
// ignored, as it ignores them), answers written as JSON (proto field names,
// 64-bit integers as strings, bytes as base64, defaults left out), errors
// in its two shapes and with its HTTP status for each gRPC code, and the
// bytes of the in-process gRPC calls the gateway makes. Shared by the
// unary calls (gateway.cc) and the streaming ones (gateway_stream.cc).
//
//   etcdserverpb::RangeRequest request;
//   if (absl::Status s = GatewayFromJson(body, &request); !s.ok()) ...
//   std::string json = GatewayToJson(response);
//   exchange->Respond(GatewayError(status));       // a unary call's error
#ifndef ETC_SERVER_GATEWAY_CODEC_H_
#define ETC_SERVER_GATEWAY_CODEC_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "server/http.h"

namespace etc::server {

// The HTTP status grpc-gateway 1.6.4 answers for a gRPC code: 412 for
// FAILED_PRECONDITION, 408 for CANCELLED, 500 for codes it does not know.
int HttpStatusOf(grpc::StatusCode code);

// `text` as a JSON string, quotes included (control characters escaped).
std::string JsonQuote(absl::string_view text);

// Errors: kInvalidArgument with the parser's message.
absl::Status GatewayFromJson(absl::string_view json, google::protobuf::Message* message);
std::string GatewayToJson(const google::protobuf::Message& message);

// A unary call's error answer: {"error":m,"message":m,"code":c} with the
// code's HTTP status.
HttpResponse GatewayError(const grpc::Status& status);
// The error that ends a stream, as its last chunk:
// {"error":{"grpc_code":c,"http_code":h,"message":m,"http_status":"..."}}
std::string GatewayStreamError(const grpc::Status& status);

// The next top-level JSON value of `body` from *cursor, which moves past
// it: an empty view once only whitespace is left, kInvalidArgument for one
// that is not an object or array, or does not end. A streaming call's body
// is its requests one after another, as Go's json.Decoder reads it for
// grpc-gateway; each value is parsed on its own (GatewayFromJson).
absl::StatusOr<absl::string_view> NextJsonValue(absl::string_view body, size_t* cursor);

grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& message);
// False if the bytes are not a `message`.
bool FromByteBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message);

}  // namespace etc::server

#endif  // ETC_SERVER_GATEWAY_CODEC_H_
