#include "server/gateway_codec.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace etc::server {

int HttpStatusOf(grpc::StatusCode code) {
  // grpc-gateway 1.6.4's runtime.HTTPStatusFromCode, which Debian's etcd
  // 3.4 is built with (newer ones answer 499 and 400 for the first two).
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::CANCELLED: return 408;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS: return 409;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::FAILED_PRECONDITION: return 412;
    case grpc::StatusCode::ABORTED: return 409;
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNIMPLEMENTED: return 501;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;  // UNKNOWN, INTERNAL, DATA_LOSS, and any other
  }
}

std::string JsonQuote(absl::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    switch (c) {
      case '"': quoted += "\\\""; break;
      case '\\': quoted += "\\\\"; break;
      case '\n': quoted += "\\n"; break;
      case '\r': quoted += "\\r"; break;
      case '\t': quoted += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&quoted, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          quoted += c;
        }
    }
  }
  quoted += '"';
  return quoted;
}

absl::Status GatewayFromJson(absl::string_view json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!status.ok()) return absl::InvalidArgumentError(std::string(status.message()));
  return absl::OkStatus();
}

std::string GatewayToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

HttpResponse GatewayError(const grpc::Status& status) {
  std::string message = JsonQuote(status.error_message());
  HttpResponse response;
  response.status = HttpStatusOf(status.error_code());
  response.body = absl::StrCat("{\"error\":", message, ",\"message\":", message,
                               ",\"code\":", static_cast<int>(status.error_code()), "}");
  return response;
}

std::string GatewayStreamError(const grpc::Status& status) {
  int http = HttpStatusOf(status.error_code());
  return absl::StrCat("{\"error\":{\"grpc_code\":", static_cast<int>(status.error_code()),
                      ",\"http_code\":", http, ",\"message\":", JsonQuote(status.error_message()),
                      ",\"http_status\":", JsonQuote(HttpStatusText(http)), "}}");
}

absl::StatusOr<absl::string_view> NextJsonValue(absl::string_view body, size_t* cursor) {
  size_t i = *cursor;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) {
    ++i;
  }
  *cursor = i;
  if (i == body.size()) return absl::string_view();
  if (body[i] != '{' && body[i] != '[') {
    return absl::InvalidArgumentError("a request must be a JSON object");
  }
  // Brackets outside strings; whether they pair up is the parser's to say.
  size_t start = i;
  int64_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      *cursor = i + 1;
      return body.substr(start, i + 1 - start);
    }
  }
  return absl::InvalidArgumentError("unexpected EOF");
}

grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

bool FromByteBuffer(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string data;
  for (const grpc::Slice& slice : slices) {
    data.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return message->ParseFromString(data);
}

}  // namespace etc::server
