// An etcd v2 keys request as etcd 3.4's v2 HTTP handler reads it: the form
// (the query string, and for PUT and POST an urlencoded body, whose values
// win), each parameter checked in etcd's order with etcd's error code and
// cause, and the key request it makes: the key tree's TreeGet / TreeSet /
// TreeDelete, or a watch.
//
//   V2Parsed parsed = ParseV2KeyRequest(http_request);
//   if (parsed.error) { ... answer V2ErrorBody(*parsed.error) ... }
#ifndef ETC_SERVER_V2_REQUEST_H_
#define ETC_SERVER_V2_REQUEST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kv/kvpb/kvpb.pb.h"
#include "server/http.h"

namespace etc::server {

// etcd v2's error: code, cause, and the store index it was decided at (0
// for a malformed request).
struct V2Error {
  int code = 0;
  std::string cause;
  int64_t index = 0;
};

// etcd v2's message and HTTP status for each error code.
const char* V2ErrorMessage(int code);
int V2ErrorHttpStatus(int code);

// A form as Go's url.ParseQuery reads one: '&'-separated, '+' is a space,
// %XX escapes; the first value of a repeated name wins (values from an
// urlencoded body come before the query's). Errors: kInvalidArgument with
// Go's words ("invalid URL escape \"%ZZ\"", "invalid semicolon separator
// in query").
using Form = std::map<std::string, std::vector<std::string>>;
absl::Status ParseForm(std::string_view encoded, Form* form);

// Go's %XX decoding of a URL path (no '+' rule). Errors as ParseForm.
absl::StatusOr<std::string> UnescapePath(std::string_view escaped);

struct V2KeyRequest {
  std::string method;  // GET, HEAD, PUT, POST or DELETE
  std::string path;    // clean (kv::NormalizeTreePath)
  bool recursive = false;
  bool sorted = false;
  bool quorum = false;
  bool wait = false;
  bool stream = false;
  bool no_value_on_success = false;
  uint64_t wait_index = 0;
  // A TTL in seconds; none: the node is (made) permanent. At most a
  // lease's longest TTL (etcd's largest would overflow its clock; etc
  // answers 202).
  std::optional<int64_t> ttl;
  // The key tree request (unset for a watch).
  kvpb::Request request;
};

struct V2Parsed {
  std::optional<V2Error> error;
  V2KeyRequest key;
};

// `path` is the request path below /v2/keys, unescaped and clean.
V2Parsed ParseV2KeyRequest(const HttpRequest& http, const std::string& path);

}  // namespace etc::server

#endif  // ETC_SERVER_V2_REQUEST_H_
