// The write-ahead log: Raft's entries and hard state, appended as framed,
// checksummed records (record.h) to segment files in one directory, made
// durable with one sync per batch (group commit).
//
// Segments are named "<sequence>-<first index>.wal" (16 hex digits each),
// preallocated to `segment_bytes` with zeros, and start with a header
// record, the hard state and the newest snapshot marker at the time, so a
// segment can be released once a snapshot covers every entry before the
// next segment.
//
// Recovery (Open) replays every segment in order: an entry record replaces
// any entry at its index and after (a new leader's entries overwrite an
// old leader's), the last hard state and snapshot marker win. A partial or
// torn record at the end of the last segment was never acknowledged (its
// batch was not synced) and is cut off. Any other damage, anywhere, is a
// kDataLoss error naming the file and offset: the member must not serve
// from a log it cannot trust. With `repair_damage` recovery keeps instead
// every record before the damage, and SetAsideDamage sets the rest aside:
// a member that then fetches what it lost from its peers.
//
//   auto [wal, contents] = Wal::Open(&fs, "member/wal", {}).value();
//   wal->Append(entries, hard_state);   // buffered in the segment file
//   wal->Sync();                        // durable: now the messages may go
#ifndef ETC_STORAGE_WAL_H_
#define ETC_STORAGE_WAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raftpb.pb.h"
#include "storage/fs.h"

namespace etc::storage {

struct WalOptions {
  // A segment is closed once its records pass this size (a batch is never
  // split, so a segment may exceed it by one batch).
  uint64_t segment_bytes = 64ull << 20;
  // Damage that is no torn tail is not an error: Open returns what comes
  // before it (WalContents::damage says where it is), and SetAsideDamage
  // renames the damaged segment's copy and every later segment to
  // "<name>.broken" before the log takes writes again.
  bool repair_damage = false;
};

// What recovery found in the log.
struct WalContents {
  raftpb::HardState hard_state;
  // The newest snapshot marker (nullopt: none).
  std::optional<raftpb::SnapshotMetadata> snapshot;
  // Every entry the log holds, contiguous, oldest first (entries a snapshot
  // covers included: the caller drops those below its snapshot).
  std::vector<raftpb::Entry> entries;
  // A torn tail that was cut off: the file and how many bytes (0: none).
  std::string truncated_file;
  uint64_t truncated_bytes = 0;
  // With repair_damage: the first damage replay met (nullopt: none). What
  // comes before it is above; nothing after it is.
  std::optional<Damage> damage;
};

class Wal {
 public:
  // Opens (or, in an empty or missing directory, creates) the log in `dir`.
  // Errors: kDataLoss with the file and offset of damaged data (unless
  // `options.repair_damage`: then the log takes no writes until
  // SetAsideDamage, and Open itself changes nothing but a torn tail).
  static absl::StatusOr<std::pair<std::unique_ptr<Wal>, WalContents>> Open(FileSystem* fs,
                                                                          std::string dir,
                                                                          WalOptions options);

  // kResourceExhausted if a log record cannot hold one of `entries`, or
  // `metadata` (the reader would take such a record for damage). Append,
  // AppendSnapshotMarker and AppendLogReset refuse those before writing
  // anything; this lets DataDir refuse a Ready before it saves its snapshot.
  static absl::Status CheckFits(const std::vector<raftpb::Entry>& entries,
                                const raftpb::SnapshotMetadata* metadata = nullptr);

  // Appends a batch: the entries (each replacing any logged entry at its
  // index and after), then the hard state. Not durable until Sync.
  // Errors: kResourceExhausted (nothing written) for a record larger than
  // the log holds (kMaxRecordPayloadBytes); NoSpaceError (IsNoSpace) if the
  // disk was too full for the next segment: nothing of the batch was
  // written and the log is as it was, so the caller may try it again once
  // there is space; what else the file system failed with (never marked
  // no-space: a failed write or sync is not to be retried).
  absl::Status Append(const std::vector<raftpb::Entry>& entries,
                      const std::optional<raftpb::HardState>& hard_state);
  // Records that a snapshot at `metadata` was saved (after its file is
  // durable). Not durable until Sync. Errors as Append's.
  absl::Status AppendSnapshotMarker(const raftpb::SnapshotMetadata& metadata);
  // Records that a snapshot from the leader replaced the whole log: replay
  // forgets every entry logged before. Not durable until Sync. Errors as
  // Append's.
  absl::Status AppendLogReset(const raftpb::SnapshotMetadata& metadata);
  // After an Open with repair_damage that found damage: the damaged
  // segment and every later one are set aside as "<name>.broken" (renamed;
  // the damaged one copied, and its damaged part then zeroed in place, if
  // records before the damage are kept in it), durably, and the log goes on
  // in a new segment after the last intact entry. Returns the names set
  // aside (none without damage). Until it returns, Append and the rest
  // fail with kFailedPrecondition.
  absl::StatusOr<std::vector<std::string>> SetAsideDamage();
  // Makes everything appended so far durable: one sync for the whole batch.
  absl::Status Sync();
  // Removes segments every entry of which is at or below `index` (a durable
  // snapshot covers them). Never removes the segment being written.
  absl::Status ReleaseTo(uint64_t index);

  // Segment files in order (names), for tests and status.
  std::vector<std::string> segments() const;
  uint64_t syncs() const { return syncs_; }
  uint64_t last_index() const { return last_index_; }
  // Bytes the segment being written can still take inside its
  // preallocated space (0 before the first segment).
  uint64_t room_bytes() const {
    return tail_ != nullptr && tail_offset_ < options_.segment_bytes
               ? options_.segment_bytes - tail_offset_
               : 0;
  }

 private:
  struct Segment {
    uint64_t sequence = 0;
    uint64_t first_index = 0;
    std::string name;
  };
  Wal(FileSystem* fs, std::string dir, WalOptions options);
  static std::string SegmentName(uint64_t sequence, uint64_t first_index);
  // Open's steps: the segment files in order (kDataLoss for a gap), then
  // every record in them into `contents`, cutting a torn tail off the last
  // segment, which becomes the tail to write to.
  absl::Status FindSegments();
  absl::Status Replay(WalContents* contents);
  // Starts a new segment after the current one (synced, with its directory).
  absl::Status Rotate();
  absl::Status WriteBuffer(const std::string& bytes);
  // Copies segment `name` whole to `broken` (a new file), synced; returns
  // the segment, open.
  absl::StatusOr<std::unique_ptr<File>> CopyAside(const std::string& name,
                                                  const std::string& broken);
  // A name for `name` set aside that no earlier repair took:
  // "<name>.broken", else "<name>.broken.2", and so on.
  std::string BrokenName(const std::string& name) const;
  // kFailedPrecondition while damage waits for SetAsideDamage.
  absl::Status CheckRepaired() const;

  FileSystem* fs_;
  std::string dir_;
  WalOptions options_;
  std::vector<Segment> segments_;
  std::unique_ptr<File> tail_;
  // Where the next record goes in the tail segment.
  uint64_t tail_offset_ = 0;
  uint64_t last_index_ = 0;
  raftpb::HardState hard_state_;
  std::optional<raftpb::SnapshotMetadata> snapshot_;
  bool dirty_ = false;
  uint64_t syncs_ = 0;
  // Damage replay met with repair_damage, until SetAsideDamage: the
  // segment (in segments_) and the offset of the first damaged record
  // (0: the header, so nothing in the segment is kept).
  std::optional<size_t> damaged_segment_;
  uint64_t damaged_offset_ = 0;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_WAL_H_
