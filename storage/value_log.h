// The value log: a member's values in files, read back on demand, so the
// key tree's memory holds keys and revisions while values sit in the page
// cache (after WiscKey's and Badger's value logs). Records are appended to
// numbered segment files in `dir`:
//
//   [u32 size][u32 CRC-32C of the value][value]     (little-endian)
//
// and a value is named by its location, (segment << 40) | offset of its
// record. Every read checks the record's size and CRC against the ones the
// caller holds and the value's bytes against the CRC, so a flipped bit or a
// misplaced read is found, never served.
//
// The log is derived state, never synced: the snapshot and the WAL hold
// every value, and a member rebuilds its log from them at every start
// (Create removes what an earlier process left). So a crash loses nothing
// the member needs, and a damaged segment costs a restart, not data.
//
// Appends collect in a write buffer (reads of its values are answered from
// it) and go to the file a buffer at a time. A write that fails (a full
// disk) keeps the values in memory and is retried a buffer later; the
// member's NOSPACE alarm, raised from its log store's disk checks, stops
// the writes that would grow it.
//
// Space: values are released as the key tree drops versions. A sealed
// segment whose live bytes fall below `move_below_live_fraction` of its
// size is evacuated at the next compaction (the key tree offers every ref
// it holds, and those in such segments are appended anew); a segment with
// nothing live is removed.
//
// Reads: a sealed segment (never written again) is mapped at its first
// read (File::MapReadOnly), so that reading a value is a copy out of the
// page cache, not a system call: a snapshot reads every value, and one
// pread per value was most of its cost. The newest segment is read with
// pread (its unwritten tail from the buffer).
//
// Single-threaded: the member's thread uses it (and a forked snapshot
// child reads from its own copy, whose files and maps stay readable even
// once removed here).
#ifndef ETC_STORAGE_VALUE_LOG_H_
#define ETC_STORAGE_VALUE_LOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/fs.h"

namespace etc::storage {

struct ValueLogOptions {
  // A segment is sealed once the next record would take it past this.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // Appends reach the file this many bytes at a time.
  size_t write_buffer_bytes = 64 * 1024;
  // A sealed segment with less than this fraction of its bytes live is
  // evacuated at the next compaction.
  double move_below_live_fraction = 0.5;
};

class ValueLog {
 public:
  // An empty log in `dir` (created if missing; segment files found there
  // are removed). Errors: the directory cannot be listed, made or cleared.
  static absl::StatusOr<std::unique_ptr<ValueLog>> Create(FileSystem* fs, std::string dir,
                                                          ValueLogOptions options = {});
  ValueLog(const ValueLog&) = delete;
  ValueLog& operator=(const ValueLog&) = delete;

  // Appends `value` (whose CRC-32C is `crc32c`); returns its location.
  uint64_t Append(std::string_view value, uint32_t crc32c);
  // Appends the value at `location` to `*out`, checked against `size` and
  // `crc32c`. Errors: kDataLoss (no such segment, a short record, a size or
  // checksum mismatch), or the file system's read error.
  absl::Status Read(uint64_t location, uint32_t size, uint32_t crc32c, std::string* out) const;
  // The value at `location` (of `size` bytes) is no longer needed.
  void Release(uint64_t location, uint32_t size);

  // ---- reclaiming space (kv::ValueStore's protocol) ----
  // Marks the sealed segments that are mostly released; true if any is.
  bool WantsMoves();
  bool ShouldMove(uint64_t location) const;
  // Removes every sealed segment with nothing live; ends the marking.
  void MovesDone();

  // ---- for metrics and tests ----
  size_t segments() const { return segments_.size(); }
  // Bytes of every record in the segments held (written or buffered).
  uint64_t total_bytes() const;
  // Bytes of records not yet released.
  uint64_t live_bytes() const;
  // Bytes appended but not in a file yet (the buffer, and what a failed
  // write left in it).
  size_t unwritten_bytes() const { return buffer_.size(); }
  // The last write's error (OK once a write succeeds again).
  const absl::Status& write_error() const { return write_error_; }

 private:
  struct Segment {
    std::unique_ptr<File> file;
    // Bytes of records, in the file and (for the newest segment) in the
    // buffer after them.
    uint64_t size_bytes = 0;
    uint64_t live_bytes = 0;
    // Evacuated at this compaction.
    bool moving = false;
    // Once sealed and read: its bytes mapped (null if mapping failed;
    // reads then use the file).
    mutable std::unique_ptr<FileView> view;
    mutable bool map_tried = false;
  };

  ValueLog(FileSystem* fs, std::string dir, ValueLogOptions options)
      : fs_(fs), dir_(std::move(dir)), options_(options) {}
  std::string PathOf(uint64_t segment) const;
  // Starts segment `number` (the newest from then on).
  absl::Status OpenSegment(uint64_t number);
  // Writes the buffer to the newest segment's file.
  void Flush();
  // A sealed segment's bytes, mapped at the first call; null if they
  // cannot be.
  const FileView* ViewOf(const Segment& segment) const;

  FileSystem* fs_;
  std::string dir_;
  ValueLogOptions options_;
  std::map<uint64_t, Segment> segments_;
  // The newest segment's bytes after `written_bytes_` of its file.
  std::string buffer_;
  uint64_t written_bytes_ = 0;
  // Flush once the buffer reaches this (a buffer past the last failure).
  size_t flush_at_bytes_ = 0;
  absl::Status write_error_;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_VALUE_LOG_H_
