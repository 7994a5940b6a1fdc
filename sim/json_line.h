// A small strict JSON parser for one line of a history file (RFC 8259
// values: objects, arrays, strings, numbers, true, false, null). Enough for
// etc-lincheck's flat events without a JSON library, which Debian's
// toolchain here does not offer; numbers are kept as written so that the
// caller decides what it accepts (integers only, for times).
//
//   absl::StatusOr<JsonValue> v = ParseJson(R"({"process":3,"f":"read"})");
//   const JsonValue* f = v->Find("f");   // nullptr when absent
//
// Errors are InvalidArgument with the byte offset; nesting deeper than
// `max_depth` is refused rather than recursed into.
#ifndef ETC_SIM_JSON_LINE_H_
#define ETC_SIM_JSON_LINE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace etc::sim::lincheck {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  // kString: the decoded text (UTF-8); kNumber: the number as written.
  std::string text;
  std::vector<JsonValue> items;
  // In the order written; a name appearing twice is refused when parsing.
  std::vector<std::pair<std::string, JsonValue>> members;

  const JsonValue* Find(std::string_view name) const;
  // kNumber holding an integer in int64_t's range.
  std::optional<int64_t> AsInt64() const;
};

// "null", "a string", "a number", ... for error messages.
const char* JsonKindName(JsonValue::Kind kind);

absl::StatusOr<JsonValue> ParseJson(std::string_view text, int max_depth = 16);

}  // namespace etc::sim::lincheck

#endif  // ETC_SIM_JSON_LINE_H_
