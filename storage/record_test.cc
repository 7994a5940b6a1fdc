#include "storage/record.h"

#include <string>

#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace etc::storage {
namespace {

TEST(RecordTest, RoundTrip) {
  std::string bytes;
  AppendRecord(RecordType::kEntry, "hello", &bytes);
  AppendRecord(RecordType::kHardState, "", &bytes);
  DecodedRecord first = DecodeRecord(bytes, 0);
  ASSERT_EQ(first.status, DecodedRecord::kOk);
  EXPECT_EQ(first.type, RecordType::kEntry);
  EXPECT_EQ(first.payload, "hello");
  DecodedRecord second = DecodeRecord(bytes, first.next_offset);
  ASSERT_EQ(second.status, DecodedRecord::kOk);
  EXPECT_EQ(second.type, RecordType::kHardState);
  EXPECT_EQ(second.payload, "");
  EXPECT_EQ(second.next_offset, bytes.size());
  EXPECT_EQ(DecodeRecord(bytes, bytes.size()).status, DecodedRecord::kZeros);
}

TEST(RecordTest, ZerosAreTheEndNotARecord) {
  std::string space(4096, '\0');
  EXPECT_EQ(DecodeRecord(space, 0).status, DecodedRecord::kZeros);
  EXPECT_EQ(DecodeRecord(space, 4090).status, DecodedRecord::kZeros);
}

TEST(RecordTest, EveryCutIsTruncatedOrZeros) {
  std::string bytes = EncodeRecord(RecordType::kEntry, std::string(100, 'x'));
  for (size_t cut = 1; cut < bytes.size(); ++cut) {
    DecodedRecord r = DecodeRecord(std::string_view(bytes).substr(0, cut), 0);
    EXPECT_EQ(r.status, DecodedRecord::kTruncated) << "cut at " << cut;
  }
  // A cut followed by never-written zeros (a torn write into preallocated
  // space) is corrupt or truncated, never a record.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string torn = bytes.substr(0, cut) + std::string(bytes.size() - cut, '\0');
    EXPECT_NE(DecodeRecord(torn, 0).status, DecodedRecord::kOk) << "cut at " << cut;
  }
}

TEST(RecordTest, ImpossibleLengthOrTypeIsCorrupt) {
  std::string bytes = EncodeRecord(RecordType::kEntry, "x");
  std::string bad_type = bytes;
  bad_type[4] = 9;
  EXPECT_EQ(DecodeRecord(bad_type, 0).status, DecodedRecord::kCorrupt);
  std::string huge = bytes;
  huge[3] = 0x7F;
  EXPECT_EQ(DecodeRecord(huge, 0).status, DecodedRecord::kCorrupt);
}

RC_GTEST_PROP(RecordProperty, EveryBitFlipIsDetected, (const std::string& payload)) {
  RC_PRE(payload.size() < 300);
  std::string bytes = EncodeRecord(RecordType::kEntry, payload);
  size_t bit = *rc::gen::inRange<size_t>(0, bytes.size() * 8);
  bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
  DecodedRecord r = DecodeRecord(bytes, 0);
  RC_ASSERT(r.status != DecodedRecord::kOk);
}

RC_GTEST_PROP(RecordProperty, ArbitraryBytesNeverCrash, (const std::string& garbage)) {
  for (size_t offset = 0; offset <= garbage.size(); ++offset) {
    DecodedRecord r = DecodeRecord(garbage, offset);
    if (r.status == DecodedRecord::kOk) RC_ASSERT(r.next_offset <= garbage.size());
  }
}

}  // namespace
}  // namespace etc::storage
