#include "sim/json_line.h"

#include <charconv>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace etc::sim::lincheck {

const JsonValue* JsonValue::Find(std::string_view name) const {
  for (const auto& [member, value] : members) {
    if (member == name) return &value;
  }
  return nullptr;
}

std::optional<int64_t> JsonValue::AsInt64() const {
  if (kind != Kind::kNumber) return std::nullopt;
  int64_t out = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, out);
  // "1.5", "1e3" and out-of-range numbers stop early or report an error.
  if (error != std::errc() || ptr != end) return std::nullopt;
  return out;
}

const char* JsonKindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return "a boolean";
    case JsonValue::Kind::kNumber:
      return "a number";
    case JsonValue::Kind::kString:
      return "a string";
    case JsonValue::Kind::kArray:
      return "an array";
    case JsonValue::Kind::kObject:
      return "an object";
  }
  return "?";
}

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// Recursive descent over `text_`; every read checks the bounds first, and
// depth_ bounds the recursion, so no input can overrun or exhaust the stack.
class Parser {
 public:
  Parser(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    JsonValue value;
    absl::Status status = ParseValue(&value);
    if (!status.ok()) return status;
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the value");
    return value;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON at byte ", pos_ + 1, ": ", std::string(what)));
  }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  absl::Status ParseValue(JsonValue* out) {
    SkipSpace();
    if (pos_ >= text_.size()) return Error("expected a value, found the end of the line");
    char c = text_[pos_];
    if (c == '{') return ParseObject(out);
    if (c == '[') return ParseArray(out);
    if (c == '"') {
      out->kind = JsonValue::Kind::kString;
      return ParseString(&out->text);
    }
    if (c == '-' || IsDigit(c)) return ParseNumber(out);
    if (Consume("true") || Consume("false")) {
      out->kind = JsonValue::Kind::kBool;
      out->boolean = c == 't';
      return absl::OkStatus();
    }
    if (Consume("null")) {
      out->kind = JsonValue::Kind::kNull;
      return absl::OkStatus();
    }
    return Error(absl::StrCat("unexpected character '", std::string(1, c), "'"));
  }

  absl::Status ParseObject(JsonValue* out) {
    if (++depth_ > max_depth_) return Error("nested too deeply");
    out->kind = JsonValue::Kind::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (Consume("}")) return Leave();
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a member name in quotes");
      std::string name;
      absl::Status status = ParseString(&name);
      if (!status.ok()) return status;
      if (out->Find(name) != nullptr) return Error(absl::StrCat("\"", name, "\" appears twice"));
      SkipSpace();
      if (!Consume(":")) return Error("expected ':' after a member name");
      JsonValue value;
      status = ParseValue(&value);
      if (!status.ok()) return status;
      out->members.emplace_back(std::move(name), std::move(value));
      SkipSpace();
      if (Consume("}")) return Leave();
      if (!Consume(",")) return Error("expected ',' or '}' in an object");
    }
  }

  absl::Status ParseArray(JsonValue* out) {
    if (++depth_ > max_depth_) return Error("nested too deeply");
    out->kind = JsonValue::Kind::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (Consume("]")) return Leave();
    while (true) {
      JsonValue value;
      absl::Status status = ParseValue(&value);
      if (!status.ok()) return status;
      out->items.push_back(std::move(value));
      SkipSpace();
      if (Consume("]")) return Leave();
      if (!Consume(",")) return Error("expected ',' or ']' in an array");
    }
  }

  absl::Status Leave() {
    --depth_;
    return absl::OkStatus();
  }

  // RFC 8259's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status ParseNumber(JsonValue* out) {
    size_t start = pos_;
    Consume("-");
    if (Consume("0")) {
    } else if (pos_ < text_.size() && IsDigit(text_[pos_])) {
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    } else {
      return Error("expected a digit");
    }
    if (Consume(".")) {
      if (!SkipDigits()) return Error("expected a digit after '.'");
    }
    if (Consume("e") || Consume("E")) {
      if (!Consume("+")) Consume("-");
      if (!SkipDigits()) return Error("expected a digit in the exponent");
    }
    out->kind = JsonValue::Kind::kNumber;
    out->text = std::string(text_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  bool SkipDigits() {
    size_t start = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    return pos_ > start;
  }

  absl::Status ParseString(std::string* out) {
    ++pos_;  // '"'
    while (true) {
      if (pos_ >= text_.size()) return Error("a string is not closed");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (static_cast<unsigned char>(c) < 0x20) return Error("a control character inside a string");
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      absl::Status status = ParseEscape(out);
      if (!status.ok()) return status;
    }
  }

  absl::Status ParseEscape(std::string* out) {
    ++pos_;  // '\\'
    if (pos_ >= text_.size()) return Error("a string ends in a backslash");
    char c = text_[pos_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out->push_back(c);
        return absl::OkStatus();
      case 'b':
        out->push_back('\b');
        return absl::OkStatus();
      case 'f':
        out->push_back('\f');
        return absl::OkStatus();
      case 'n':
        out->push_back('\n');
        return absl::OkStatus();
      case 'r':
        out->push_back('\r');
        return absl::OkStatus();
      case 't':
        out->push_back('\t');
        return absl::OkStatus();
      case 'u':
        return ParseUnicodeEscape(out);
      default:
        return Error("an unknown escape in a string");
    }
  }

  // \uXXXX, with a surrogate pair as two escapes in a row.
  absl::Status ParseUnicodeEscape(std::string* out) {
    std::optional<uint32_t> high = ParseHex4();
    if (!high.has_value()) return Error("expected four hex digits after \\u");
    uint32_t code_point = *high;
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) return Error("a lone low surrogate");
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      if (!Consume("\\u")) return Error("a high surrogate without its low half");
      std::optional<uint32_t> low = ParseHex4();
      if (!low.has_value() || *low < 0xDC00 || *low > 0xDFFF) return Error("a bad low surrogate");
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (*low - 0xDC00);
    }
    AppendUtf8(code_point, out);
    return absl::OkStatus();
  }

  std::optional<uint32_t> ParseHex4() {
    if (text_.size() - pos_ < 4) return std::nullopt;
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      uint32_t digit = 0;
      if (IsDigit(c)) {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return std::nullopt;
      }
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  std::string_view text_;
  int max_depth_;
  int depth_ = 0;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<JsonValue> ParseJson(std::string_view text, int max_depth) {
  return Parser(text, max_depth).ParseDocument();
}

}  // namespace etc::sim::lincheck
