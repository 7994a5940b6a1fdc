#include "server/v2_json.h"

#include <chrono>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace etc::server {
namespace {

// The length of the UTF-8 sequence at s[i], or 0 if it is not valid.
size_t Utf8Length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (length == 0 || i + length > s.size()) return 0;
  uint32_t point = length == 1 ? c : c & (0x7f >> length);
  for (size_t k = 1; k < length; ++k) {
    auto next = static_cast<unsigned char>(s[i + k]);
    if ((next >> 6) != 0x2) return 0;
    point = (point << 6) | (next & 0x3f);
  }
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (point < kMinimum[length] || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return 0;
  return length;
}

}  // namespace

std::string GoJsonString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t length = Utf8Length(s, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (length == 3 && c == 0xe2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) & 0xfe) == 0xa8) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out.append(s.data() + i, length);
    }
    i += length;
  }
  out += '"';
  return out;
}

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t UnixNsOfSteadyMs(int64_t steady_ms) {
  static const int64_t offset_ns = [] {
    int64_t unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    int64_t steady_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    return unix_ns - steady_ns;
  }();
  return steady_ms * 1'000'000 + offset_ns;
}

std::string Rfc3339Nano(int64_t unix_ns) {
  time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  int64_t nanos = unix_ns % 1'000'000'000;
  struct tm utc;
  gmtime_r(&seconds, &utc);
  std::string out = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d", utc.tm_year + 1900,
                                    utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  if (nanos > 0) {
    std::string fraction = absl::StrFormat("%09d", nanos);
    while (fraction.back() == '0') fraction.pop_back();
    absl::StrAppend(&out, ".", fraction);
  }
  return out + "Z";
}

void AppendNode(const kvpb::TreeNode& node, const ExpiryOf& expiry, std::string* out,
                bool with_value) {
  bool root = node.key() == "/";
  std::string fields;
  auto add = [&fields](const char* name, const std::string& value) {
    absl::StrAppend(&fields, fields.empty() ? "" : ",", "\"", name, "\":", value);
  };
  if (!root) add("key", GoJsonString(node.key()));
  if (node.dir()) {
    add("dir", "true");
  } else if (with_value) {
    add("value", GoJsonString(node.value()));
  }
  if (node.lease() != 0) {
    if (std::optional<NodeExpiry> left = expiry(node.lease())) {
      add("expiration", GoJsonString(Rfc3339Nano(left->expires_unix_ns)));
      // Seconds left, rounded up; none once it is due.
      int64_t ttl = (left->remaining_ms + 999) / 1000;
      if (ttl > 0) add("ttl", absl::StrCat(ttl));
    }
  }
  if (node.nodes_size() > 0) {
    std::string nodes = "[";
    for (int i = 0; i < node.nodes_size(); ++i) {
      if (i > 0) nodes += ',';
      AppendNode(node.nodes(i), expiry, &nodes);
    }
    add("nodes", nodes + "]");
  }
  if (!root && node.created_index() != 0) {
    add("modifiedIndex", absl::StrCat(node.modified_index()));
    add("createdIndex", absl::StrCat(node.created_index()));
  }
  absl::StrAppend(out, "{", fields, "}");
}

std::string V2EventBody(const kvpb::TreeResponse& tree, const ExpiryOf& expiry,
                        bool no_value_on_success) {
  std::string out = absl::StrCat("{\"action\":", GoJsonString(tree.action()));
  if (!no_value_on_success) {
    out += ",\"node\":";
    // A deleted node has no value (its last one is the prevNode's).
    bool gone = tree.action() == "delete" || tree.action() == "compareAndDelete" ||
                tree.action() == "expire";
    AppendNode(tree.node(), expiry, &out, !gone);
    if (tree.has_prev_node()) {
      out += ",\"prevNode\":";
      AppendNode(tree.prev_node(), expiry, &out);
    }
  }
  return out + "}\n";
}

std::string V2ErrorBody(const V2Error& error) {
  std::string out = absl::StrCat("{\"errorCode\":", error.code,
                                 ",\"message\":", GoJsonString(V2ErrorMessage(error.code)));
  if (!error.cause.empty()) absl::StrAppend(&out, ",\"cause\":", GoJsonString(error.cause));
  return absl::StrCat(out, ",\"index\":", error.index, "}\n");
}

}  // namespace etc::server
