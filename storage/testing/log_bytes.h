// Reading a log segment's bytes in tests: where an entry's record starts,
// and which entries a segment holds (to damage a chosen record).
//
//   std::string bytes = fs.Contents("wal/" + segment);
//   fs.FlipBit("wal/" + segment, 8 * (OffsetOfEntry(bytes, 5) + kRecordHeaderBytes + 1));
#ifndef ETC_STORAGE_TESTING_LOG_BYTES_H_
#define ETC_STORAGE_TESTING_LOG_BYTES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/raftpb.pb.h"
#include "storage/record.h"

namespace etc::storage {

// The entry in the record at `offset` of `bytes` (nullopt: no whole entry
// record there).
inline std::optional<raftpb::Entry> EntryAt(const std::string& bytes, size_t offset) {
  DecodedRecord record = DecodeRecord(bytes, offset);
  raftpb::Entry entry;
  if (record.status != DecodedRecord::kOk || record.type != RecordType::kEntry ||
      !entry.ParseFromArray(record.payload.data(), static_cast<int>(record.payload.size()))) {
    return std::nullopt;
  }
  return entry;
}

// Where each whole record of a segment's bytes starts, in order.
inline std::vector<size_t> RecordOffsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  for (size_t at = 0; DecodeRecord(bytes, at).status == DecodedRecord::kOk;
       at = DecodeRecord(bytes, at).next_offset) {
    offsets.push_back(at);
  }
  return offsets;
}

// Where the entry record with this index starts (0: none in these bytes;
// a segment starts with its header, never an entry).
inline size_t OffsetOfEntry(const std::string& bytes, uint64_t index) {
  for (size_t at : RecordOffsets(bytes)) {
    std::optional<raftpb::Entry> entry = EntryAt(bytes, at);
    if (entry.has_value() && entry->index() == index) return at;
  }
  return 0;
}

// The indexes of the entry records, in order.
inline std::vector<uint64_t> EntriesIn(const std::string& bytes) {
  std::vector<uint64_t> indexes;
  for (size_t at : RecordOffsets(bytes)) {
    std::optional<raftpb::Entry> entry = EntryAt(bytes, at);
    if (entry.has_value()) indexes.push_back(entry->index());
  }
  return indexes;
}

}  // namespace etc::storage

#endif  // ETC_STORAGE_TESTING_LOG_BYTES_H_
