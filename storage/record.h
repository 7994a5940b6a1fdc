// How every record the storage layer writes is framed:
//
//   offset 0   u32 little-endian  payload length
//   offset 4   u8                 record type (never 0)
//   offset 5   u32 little-endian  CRC-32C of bytes 0..4 (the header)
//   offset 9   u32 little-endian  CRC-32C of the payload
//   offset 13  payload
//   then       u8                 0xE7, the end mark
//
// Type 0 never occurs in a record, so the zeros of preallocated, never
// written space read as "nothing here" rather than as a record. The header
// has its own checksum so a damaged length is recognised as damage (not
// taken for a record that runs past the end of the data), and the end mark
// is never zero, so a complete record never ends in the zeros a torn write
// leaves: recovery can tell a write torn by a crash from damaged data
// (see Wal::Open).
//
//   std::string bytes = EncodeRecord(RecordType::kEntry, entry.SerializeAsString());
//   DecodedRecord r = DecodeRecord(bytes, 0);   // r.status == kOk, r.payload
#ifndef ETC_STORAGE_RECORD_H_
#define ETC_STORAGE_RECORD_H_

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace etc::storage {

enum class RecordType : uint8_t {
  // A segment's first record: format version and where the segment starts.
  kSegmentHeader = 1,
  // A raftpb.Entry; it replaces any entry at its index and after.
  kEntry = 2,
  // A raftpb.HardState (in the log; each slot of the vote file holds one
  // with only the term and vote, vote_file.h).
  kHardState = 3,
  // A raftpb.SnapshotMetadata: a snapshot at this index was saved; entries
  // up to it are covered by it.
  kSnapshot = 4,
  // A raftpb.SnapshotMetadata: a snapshot from the leader replaced the
  // whole log; every entry logged before this record is void.
  kLogReset = 5,
  // The whole content of a small file outside the log (the server's
  // member identity), framed only to be checksummed.
  kFileContent = 6,
};

inline constexpr size_t kRecordHeaderBytes = 13;
inline constexpr char kRecordEndMark = static_cast<char>(0xE7);
// The unit a disk writes atomically: a crash tears writes only between
// sectors.
inline constexpr uint64_t kSectorBytes = 512;
// No record is larger: the reader takes a length above it for damage, not
// data, so the writer refuses a larger payload before writing anything
// (CheckRecordPayloadBytes).
inline constexpr uint32_t kMaxRecordPayloadBytes = 64u << 20;
// A payload is parsed as one protobuf message, whose sizes are ints.
static_assert(kMaxRecordPayloadBytes <= static_cast<uint32_t>(INT_MAX));

// kResourceExhausted, saying what and how large, if a record cannot hold a
// payload of `payload_bytes`.
absl::Status CheckRecordPayloadBytes(uint64_t payload_bytes, std::string_view what);

// Frames a record. The payload must fit (CheckRecordPayloadBytes first): a
// larger one is the caller's bug and crashes.
std::string EncodeRecord(RecordType type, std::string_view payload);
// The same, appended to `out` (one buffer for a batch).
void AppendRecord(RecordType type, std::string_view payload, std::string* out);

struct DecodedRecord {
  enum Status {
    // A whole record with a matching checksum.
    kOk,
    // A header of zeros: never written space (the end of the data).
    kZeros,
    // The header or payload runs past the end of the data: a partial write.
    kTruncated,
    // The checksum does not match, or the type or length is impossible.
    kCorrupt,
  };
  Status status = kCorrupt;
  // kCorrupt / kTruncated: whether the header's checksum held (so the
  // length can be trusted).
  bool header_ok = false;
  RecordType type = RecordType::kEntry;
  std::string_view payload;
  // Where the next record starts (kOk only).
  size_t next_offset = 0;
  // kCorrupt / kTruncated with header_ok: where the record would end.
  size_t end_offset = 0;
};

// Decodes the record at `offset` of `data`.
DecodedRecord DecodeRecord(std::string_view data, size_t offset);

// Whether every byte of `data` from `offset` on is zero.
bool AllZero(std::string_view data, size_t offset);

}  // namespace etc::storage

#endif  // ETC_STORAGE_RECORD_H_
