#include "base/wire_fields.h"

#include "absl/strings/str_cat.h"

namespace etc::base {
namespace {

// Reads a varint at `*at`, advancing it; false if malformed or cut short.
bool ReadVarint(std::string_view bytes, size_t* at, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*at >= bytes.size()) return false;
    uint8_t byte = static_cast<uint8_t>(bytes[(*at)++]);
    // The tenth byte may carry only the top bit of a 64-bit value.
    if (shift == 63 && byte > 1) return false;
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

}  // namespace

absl::Status ForEachWireField(std::string_view message,
                              const std::function<bool(const WireField&)>& visit) {
  size_t at = 0;
  while (at < message.size()) {
    size_t start = at;
    uint64_t tag = 0;
    // A tag is a 32-bit varint: protobuf reads at most 5 bytes of it.
    if (!ReadVarint(message, &at, &tag) || at - start > 5) {
      return absl::DataLossError(absl::StrCat("malformed field tag at byte ", start));
    }
    uint64_t number = tag >> 3;
    if (number == 0 || number > 0x1FFFFFFF) {
      return absl::DataLossError(absl::StrCat("invalid field number at byte ", start));
    }
    WireField field;
    field.number = static_cast<uint32_t>(number);
    switch (tag & 7) {
      case 0: {
        uint64_t ignored = 0;
        if (!ReadVarint(message, &at, &ignored)) {
          return absl::DataLossError(absl::StrCat("malformed varint in field ", number));
        }
        field.type = WireType::kVarint;
        break;
      }
      case 1:
      case 5: {
        size_t width = (tag & 7) == 1 ? 8 : 4;
        if (message.size() - at < width) {
          return absl::DataLossError(absl::StrCat("field ", number, " is cut short"));
        }
        at += width;
        field.type = width == 8 ? WireType::kFixed64 : WireType::kFixed32;
        break;
      }
      case 2: {
        uint64_t length = 0;
        if (!ReadVarint(message, &at, &length) || length > message.size() - at) {
          return absl::DataLossError(absl::StrCat("field ", number, " is cut short"));
        }
        field.type = WireType::kLengthDelimited;
        field.payload = message.substr(at, length);
        at += length;
        break;
      }
      default:
        return absl::DataLossError(
            absl::StrCat("field ", number, " has unsupported wire type ", tag & 7));
    }
    field.whole = message.substr(start, at - start);
    if (!visit(field)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<WireSplit> SplitWireField(std::string_view message, uint32_t number) {
  WireSplit split;
  bool wrong_type = false;
  absl::Status walked = ForEachWireField(message, [&](const WireField& field) {
    if (field.number != number) {
      split.rest.append(field.whole);
      return true;
    }
    if (field.type != WireType::kLengthDelimited) {
      wrong_type = true;
      return false;
    }
    split.field = field.payload;
    return true;
  });
  if (!walked.ok()) return walked;
  if (wrong_type) {
    return absl::DataLossError(absl::StrCat("field ", number, " is not length-delimited"));
  }
  return split;
}

std::string LengthDelimitedFieldHead(uint32_t number, uint64_t length) {
  std::string head;
  AppendVarint((uint64_t{number} << 3) | 2, &head);
  AppendVarint(length, &head);
  return head;
}

}  // namespace etc::base
