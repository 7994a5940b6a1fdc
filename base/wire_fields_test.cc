#include "base/wire_fields.h"

#include <string>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

namespace etc::base {
namespace {

using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

struct Field {
  uint32_t number;
  WireType type;
  uint64_t integer;
  std::string bytes;
};

// Encodes with protobuf's own writer: the referee for the reader.
std::string Encode(const std::vector<Field>& fields) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const Field& f : fields) {
      coded.WriteTag((f.number << 3) | static_cast<uint32_t>(f.type));
      switch (f.type) {
        case WireType::kVarint: coded.WriteVarint64(f.integer); break;
        case WireType::kFixed64: coded.WriteLittleEndian64(f.integer); break;
        case WireType::kFixed32: coded.WriteLittleEndian32(static_cast<uint32_t>(f.integer)); break;
        case WireType::kLengthDelimited:
          coded.WriteVarint64(f.bytes.size());
          coded.WriteRaw(f.bytes.data(), static_cast<int>(f.bytes.size()));
          break;
      }
    }
  }
  return out;
}

rc::Gen<Field> GenField() {
  return rc::gen::apply(
      [](uint32_t number, int type, uint64_t integer, std::string bytes) {
        static constexpr WireType kTypes[] = {WireType::kVarint, WireType::kFixed64,
                                              WireType::kLengthDelimited, WireType::kFixed32};
        return Field{number, kTypes[type], integer, std::move(bytes)};
      },
      rc::gen::inRange<uint32_t>(1, 1u << 29), rc::gen::inRange(0, 4), rc::gen::arbitrary<uint64_t>(),
      rc::gen::arbitrary<std::string>());
}

std::vector<WireField> Walk(std::string_view bytes) {
  std::vector<WireField> seen;
  absl::Status s = ForEachWireField(bytes, [&](const WireField& f) {
    seen.push_back(f);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return seen;
}

RC_GTEST_PROP(WireFieldsTest, WalksWhatProtobufWrites, ()) {
  auto fields = *rc::gen::container<std::vector<Field>>(GenField());
  std::string bytes = Encode(fields);
  std::vector<WireField> seen = Walk(bytes);
  RC_ASSERT(seen.size() == fields.size());
  std::string joined;
  for (size_t i = 0; i < fields.size(); ++i) {
    RC_ASSERT(seen[i].number == fields[i].number);
    RC_ASSERT(seen[i].type == fields[i].type);
    if (fields[i].type == WireType::kLengthDelimited) RC_ASSERT(seen[i].payload == fields[i].bytes);
    joined.append(seen[i].whole);
  }
  RC_ASSERT(joined == bytes);
  // Every cut inside a field leaves a message that does not read.
  if (!bytes.empty()) {
    size_t boundary = 0;
    std::vector<size_t> ends;
    for (const WireField& f : seen) ends.push_back(boundary += f.whole.size());
    size_t cut = *rc::gen::inRange<size_t>(0, bytes.size());
    bool at_boundary = cut == 0 || std::find(ends.begin(), ends.end(), cut) != ends.end();
    absl::Status s = ForEachWireField(std::string_view(bytes).substr(0, cut),
                                      [](const WireField&) { return true; });
    RC_ASSERT(s.ok() == at_boundary);
  }
}

RC_GTEST_PROP(WireFieldsTest, AgreesWithProtobufOnAnyBytes, (const std::string& bytes)) {
  size_t count = 0;
  absl::Status ours = ForEachWireField(bytes, [&](const WireField&) {
    ++count;
    return true;
  });
  UnknownFieldSet theirs;
  bool parsed = theirs.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  // What we read, protobuf reads the same way (we refuse groups, which it
  // takes, and so may refuse more).
  if (ours.ok()) {
    RC_ASSERT(parsed);
    RC_ASSERT(static_cast<size_t>(theirs.field_count()) == count);
  }
  RC_ASSERT(ours.ok() || ours.code() == absl::StatusCode::kDataLoss);
}

TEST(WireFieldsTest, SplitTakesTheLastOccurrenceAndKeepsTheRest) {
  std::string bytes = Encode({{1, WireType::kLengthDelimited, 0, "old"},
                              {2, WireType::kVarint, 7, ""},
                              {1, WireType::kLengthDelimited, 0, "new"},
                              {3, WireType::kFixed32, 9, ""}});
  absl::StatusOr<WireSplit> split = SplitWireField(bytes, 1);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->field, "new");
  EXPECT_EQ(split->rest, Encode({{2, WireType::kVarint, 7, ""}, {3, WireType::kFixed32, 9, ""}}));
  EXPECT_EQ(SplitWireField(bytes, 4)->field, "");
  EXPECT_EQ(SplitWireField(bytes, 2).status().code(), absl::StatusCode::kDataLoss);
}

TEST(WireFieldsTest, FieldHeadIsWhatProtobufWrites) {
  for (uint64_t length : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{3} << 31}) {
    std::string head = LengthDelimitedFieldHead(4, length);
    std::string expected;
    {
      google::protobuf::io::StringOutputStream stream(&expected);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.WriteTag((4 << 3) | 2);
      coded.WriteVarint64(length);
    }
    EXPECT_EQ(head, expected) << length;
  }
}

TEST(WireFieldsTest, RefusesMalformedMessages) {
  auto walk = [](std::string_view bytes) {
    return ForEachWireField(bytes, [](const WireField&) { return true; }).code();
  };
  EXPECT_EQ(walk(std::string_view("\x08", 1)), absl::StatusCode::kDataLoss);       // no value
  EXPECT_EQ(walk(std::string_view("\x0a\x05" "abc", 5)), absl::StatusCode::kDataLoss);  // short
  EXPECT_EQ(walk(std::string_view("\x00\x01", 2)), absl::StatusCode::kDataLoss);   // field 0
  EXPECT_EQ(walk(std::string_view("\x0b", 1)), absl::StatusCode::kDataLoss);       // a group
  EXPECT_EQ(walk(std::string_view("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11)),
            absl::StatusCode::kDataLoss);  // an 11-byte varint
  // A tag padded past 5 bytes (protobuf's parser refuses it too).
  EXPECT_EQ(walk(std::string_view("\x88\x80\x80\x80\x80\x00\x01", 7)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(walk(std::string_view("\x88\x80\x80\x80\x00\x01", 6)), absl::StatusCode::kOk);
  EXPECT_EQ(walk(""), absl::StatusCode::kOk);
  // A length past 2 GiB reads as a length (then as cut short here).
  std::string huge = LengthDelimitedFieldHead(1, uint64_t{5} << 30) + "x";
  EXPECT_EQ(walk(huge), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace etc::base
