// etcd v2's JSON bodies, byte for byte as etcd 3.4 writes them (Go's
// encoding/json): field order, omitted fields, escapes ('<', '>', '&',
// U+2028 and U+2029 as \u escapes; bytes that are not UTF-8 as U+FFFD),
// RFC 3339 expirations with trimmed nanoseconds.
#ifndef ETC_SERVER_V2_JSON_H_
#define ETC_SERVER_V2_JSON_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kv/kvpb/kvpb.pb.h"
#include "server/v2_request.h"

namespace etc::server {

// A JSON string literal as Go writes it.
std::string GoJsonString(std::string_view s);

// A node's time left: milliseconds, and the wall-clock time it ends
// (Unix nanoseconds). Nodes without a lease have none.
struct NodeExpiry {
  int64_t remaining_ms = 0;
  int64_t expires_unix_ns = 0;
};
using ExpiryOf = std::function<std::optional<NodeExpiry>(int64_t lease)>;

// The clock the member's lessor runs on (MemberHost's), and the wall-clock
// time of one of its instants: a fixed offset taken once, so a lease's
// expiration reads the same every time it is shown.
int64_t SteadyNowMs();
int64_t UnixNsOfSteadyMs(int64_t steady_ms);

// "2026-12-06T05:44:33.49162172Z".
std::string Rfc3339Nano(int64_t unix_ns);

// {"key":..,"value":..|"dir":true,"expiration":..,"ttl":..,"nodes":[..],
// "modifiedIndex":..,"createdIndex":..}; the root has no key and no
// indexes, nor has a directory that no marker records (createdIndex 0).
void AppendNode(const kvpb::TreeNode& node, const ExpiryOf& expiry, std::string* out,
                bool with_value = true);

// {"action":..,"node":{..},"prevNode":{..}} and a newline; with
// no_value_on_success, {"action":..} only.
std::string V2EventBody(const kvpb::TreeResponse& tree, const ExpiryOf& expiry,
                        bool no_value_on_success = false);

// {"errorCode":..,"message":..,"cause":..,"index":..} and a newline.
std::string V2ErrorBody(const V2Error& error);

}  // namespace etc::server

#endif  // ETC_SERVER_V2_JSON_H_
