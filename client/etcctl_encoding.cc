// The encodings etcdctl's printers use, as Go writes them: json.Marshal of
// gogoproto structs, %q, tablewriter boxes and go-humanize sizes.
#include <cmath>
#include <cstdio>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include "absl/strings/escaping.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Length of the valid UTF-8 sequence at text[i], 0 if invalid.
size_t Utf8Length(std::string_view text, size_t i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Go's CamelCase of a proto field name, as gogoproto names struct fields.
std::string CamelCase(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

std::string ScalarJson(const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  bool repeated = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(repeated ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(repeated ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(repeated ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(repeated ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (repeated ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return std::to_string(repeated ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = repeated ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      if (f->type() == FieldDescriptor::TYPE_BYTES) return "\"" + absl::Base64Escape(value) + "\"";
      return GoJsonString(value);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return GoJson(repeated ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
    default:
      return "null";
  }
}

// Go's omitempty: zero scalars, empty strings and lists, nil pointers.
bool OmittedEmpty(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  if (f->is_repeated()) return r->FieldSize(m, f) == 0;
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) return !r->HasField(m, f);
  std::string value = ScalarJson(m, f, 0);
  return value == "0" || value == "false" || value == "\"\"";
}

std::string FieldJson(const Message& m, const FieldDescriptor* f) {
  if (!f->is_repeated()) return ScalarJson(m, f, 0);
  std::string out = "[";
  for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) {
    if (i > 0) out += ",";
    out += ScalarJson(m, f, i);
  }
  return out + "]";
}

}  // namespace

std::string GoJsonString(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = Utf8Length(text, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (length > 1) {
      std::string_view rune = text.substr(i, length);
      // U+2028 and U+2029 break JavaScript; Go escapes them.
      out += rune == "\xE2\x80\xA8" ? "\\u2028" : rune == "\xE2\x80\xA9" ? "\\u2029" : std::string(rune);
      i += length;
      continue;
    }
    ++i;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string GoJson(const Message& message) {
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& name, const std::string& value) {
    out += (first ? "" : ",") + GoJsonString(name) + ":" + value;
    first = false;
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (const google::protobuf::OneofDescriptor* oneof = f->real_containing_oneof()) {
      // A oneof is one interface field, named after the oneof, holding a
      // wrapper struct named after the set field; written at its first member.
      if (oneof->field(0) != f) continue;
      const FieldDescriptor* set = r->GetOneofFieldDescriptor(message, oneof);
      add(CamelCase(oneof->name()),
          set == nullptr ? "null" : "{" + GoJsonString(CamelCase(set->name())) + ":" +
                                        FieldJson(message, set) + "}");
      continue;
    }
    if (OmittedEmpty(message, f)) continue;
    add(f->name(), FieldJson(message, f));
  }
  return out + "}";
}

std::string GoQuote(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length = Utf8Length(text, i);
    if (length > 1) {
      out += text.substr(i, length);
      i += length;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\v': out += "\\v"; continue;
      default: break;
    }
    if (length == 1 && c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out + "\"";
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string line = "+";
  for (size_t w : width) line += std::string(w + 2, '-') + "+";
  line += "\n";
  std::string out = line + "|";
  for (size_t c = 0; c < header.size(); ++c) {
    std::string title;
    for (char ch : header[c]) title += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    size_t gap = width[c] - title.size();
    out += " " + std::string(gap / 2, ' ') + title + std::string(gap - gap / 2, ' ') + " |";
  }
  out += "\n" + line;
  for (const auto& row : rows) {
    out += "|";
    for (size_t c = 0; c < width.size(); ++c) {
      std::string cell = c < row.size() ? row[c] : "";
      out += " " + std::string(width[c] - cell.size(), ' ') + cell + " |";
    }
    out += "\n";
  }
  return out + line;
}

std::string HumanizeBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 10) return std::to_string(bytes) + " B";
  int exponent = static_cast<int>(std::floor(std::log(static_cast<double>(bytes)) / std::log(1000.0)));
  double value = std::floor(static_cast<double>(bytes) / std::pow(1000.0, exponent) * 10 + 0.5) / 10;
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), value < 10 ? "%.1f %s" : "%.0f %s", value, kUnits[exponent]);
  return buffer;
}

std::string Hex16(uint64_t id) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(id));
  return buffer;
}

std::string Hex(uint64_t id) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%llx", static_cast<unsigned long long>(id));
  return buffer;
}

}  // namespace etc::etcctl
