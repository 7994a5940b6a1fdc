// Top-level fields of a serialized protobuf message, read without
// protobuf's parser.
//
// Why: protobuf parses and serializes a message of at most 2 GiB (its
// sizes are ints), but a snapshot of a key tree at an 8 GiB quota is
// several gigabytes. Such messages keep protobuf's wire format (a reader
// may take them field by field, and the small ones still parse the usual
// way), and the code that handles them walks the top level here: the one
// large field (a snapshot's data, a member snapshot's application state)
// is taken as a view into the bytes, never copied, and a repeated field of
// many small messages (a key tree snapshot's keys) is parsed one element at
// a time.
//
//   absl::StatusOr<WireSplit> split = SplitWireField(bytes, /*number=*/1);
//   raftpb::Snapshot rest;
//   rest.ParseFromString(split->rest);   // the small fields
//   std::string_view data = split->field; // the large one, in place
#ifndef ETC_BASE_WIRE_FIELDS_H_
#define ETC_BASE_WIRE_FIELDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace etc::base {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct WireField {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  // The field as it appears: tag, length (if any) and contents.
  std::string_view whole;
  // A length-delimited field's contents (empty for the other types).
  std::string_view payload;
};

// Calls `visit` with each top-level field of `message`, in order, until it
// returns false. Errors: kDataLoss when the bytes are not a well-formed
// message (a truncated field, a malformed varint, field number 0, a group
// or an unknown wire type).
absl::Status ForEachWireField(std::string_view message,
                              const std::function<bool(const WireField&)>& visit);

struct WireSplit {
  // Every field but the one split off, in their order (a message's bytes).
  std::string rest;
  // The split field's contents: its last occurrence, as protobuf's parser
  // keeps for a singular field; empty if absent.
  std::string_view field;
};

// Separates the length-delimited field `number` from the others. Errors:
// kDataLoss for a malformed message, or that field with another wire type.
absl::StatusOr<WireSplit> SplitWireField(std::string_view message, uint32_t number);

// A length-delimited field's tag and length: followed by `length` bytes of
// contents, the field as protobuf's serializer writes it.
std::string LengthDelimitedFieldHead(uint32_t number, uint64_t length);

}  // namespace etc::base

#endif  // ETC_BASE_WIRE_FIELDS_H_
