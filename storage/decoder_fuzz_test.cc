// The decoders on arbitrary bytes (a randomized stand-in for a fuzzer): a
// segment file or a snapshot file of any content is either read or refused
// with a clear error; nothing crashes, hangs or reads out of bounds (the
// suite also runs under AddressSanitizer in CI).
#include <string>

#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "storage/memory_fs.h"
#include "storage/record.h"
#include "storage/snapshotter.h"
#include "storage/wal.h"

namespace etc::storage {
namespace {

// Arbitrary bytes, or a valid log with random damage (closer to what a
// failing disk produces, so the decoder's deeper paths are reached).
std::string SegmentBytes() {
  if (*rc::gen::arbitrary<bool>()) return *rc::gen::arbitrary<std::string>();
  std::string bytes;
  AppendRecord(RecordType::kSegmentHeader, "etc-wal-1 1 1", &bytes);
  int records = *rc::gen::inRange(0, 20);
  for (int i = 0; i < records; ++i) {
    auto type = static_cast<RecordType>(*rc::gen::inRange(1, 6));
    AppendRecord(type, *rc::gen::arbitrary<std::string>(), &bytes);
  }
  int damage = *rc::gen::inRange(0, 4);
  for (int i = 0; i < damage && !bytes.empty(); ++i) {
    size_t at = *rc::gen::inRange<size_t>(0, bytes.size());
    bytes[at] = static_cast<char>(*rc::gen::arbitrary<uint8_t>());
  }
  if (*rc::gen::arbitrary<bool>()) bytes.resize(*rc::gen::inRange<size_t>(0, bytes.size() + 1));
  bytes.append(*rc::gen::inRange<size_t>(0, 2048), '\0');
  return bytes;
}

RC_GTEST_PROP(DecoderFuzz, AnySegmentFileIsReadOrRefused, ()) {
  MemoryFs fs;
  RC_ASSERT(fs.MakeDir("wal").ok());
  auto file = fs.Open("wal/0000000000000001-0000000000000001.wal", {.create = true});
  RC_ASSERT((*file)->Append(SegmentBytes()).ok());
  RC_ASSERT((*file)->Sync().ok());
  auto opened = Wal::Open(&fs, "wal", WalOptions{.segment_bytes = 4096});
  if (!opened.ok()) {
    RC_ASSERT(opened.status().code() == absl::StatusCode::kDataLoss);
    RC_ASSERT(!opened.status().message().empty());
    return;
  }
  // What it read is a contiguous log it can go on writing.
  const auto& entries = opened->second.entries;
  for (size_t i = 1; i < entries.size(); ++i) {
    RC_ASSERT(entries[i].index() == entries[i - 1].index() + 1);
  }
}

RC_GTEST_PROP(DecoderFuzz, AnySnapshotFileIsReadOrRefused, ()) {
  std::string bytes;
  if (*rc::gen::arbitrary<bool>()) {
    bytes = *rc::gen::arbitrary<std::string>();
  } else {
    raftpb::Snapshot snapshot;
    snapshot.mutable_metadata()->set_index(*rc::gen::arbitrary<uint32_t>());
    snapshot.set_data(*rc::gen::arbitrary<std::string>());
    bytes = EncodeSnapshotFile(snapshot);
    if (!bytes.empty() && *rc::gen::arbitrary<bool>()) {
      bytes[*rc::gen::inRange<size_t>(0, bytes.size())] ^= 1;
    }
  }
  auto decoded = DecodeSnapshotFile(bytes);
  if (!decoded.ok()) RC_ASSERT(decoded.status().code() == absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace etc::storage
