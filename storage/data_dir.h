// A member's data directory: the WAL, the snapshots, a version marker and a
// lock, and the recovery rules that turn them back into Raft's durable
// state after a restart or a crash.
//
//   <root>/member/VERSION      "etc-data 1": refused if it says anything else
//   <root>/member/LOCK         held while the member runs (two processes
//                              never open the same member's data)
//   <root>/member/vote         the term and vote, twice (vote_file.h)
//   <root>/member/REPAIRING    recovery repaired around damage and the
//                              member has not yet got back what it lost
//   <root>/member/wal/*.wal    the write-ahead log (wal.h)
//   <root>/member/snap/*.snap  snapshots (snapshotter.h)
//
// Write order follows Raft's Ready: a new term or vote is saved in the vote
// file (synced) before the log holds it; a snapshot from the leader is
// saved (file synced, renamed, directory synced) before the log records
// that it replaced the log; entries, then the hard state, are appended;
// Sync makes the batch durable before any message of that Ready is sent.
// Recovery takes the later term and vote of the log's and the vote file's:
// the vote survives when the log's record of it does not.
//
// Damaged data is refused (kDataLoss), unless the host asks for repair
// (DataDirOptions::repair_damage, issue 20): recovery then keeps what it
// can prove intact (the log before the damage, the newest intact snapshot
// and the log entries that follow on from it), sets the rest aside as
// "<name>.broken", and says so (recovered().damaged, damage()): the member
// fetches what it lost from its peers. Every recovery says so until the
// member reports that it has (FinishRepair).
//
//   auto dir = DataDir::Open(&fs, "default.etc", {}).value();
//   raft::DurableState durable = dir->recovered();
//   dir->Write(ready.snapshot.get(), ready.entries, ready.hard_state);
//   dir->Sync();
#ifndef ETC_STORAGE_DATA_DIR_H_
#define ETC_STORAGE_DATA_DIR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raft.h"
#include "storage/fs.h"
#include "storage/snapshot_fallback.h"
#include "storage/snapshotter.h"
#include "storage/vote_file.h"
#include "storage/wal.h"

namespace etc::storage {

struct DataDirOptions {
  WalOptions wal;
  // Snapshot files kept.
  int snapshots_retained = 5;
  // The largest snapshot a file may hold (see kMaxSnapshotPayloadBytes).
  uint64_t max_snapshot_bytes = kMaxSnapshotPayloadBytes;
  // Recovery repairs around damage instead of refusing it (see above; it
  // sets wal.repair_damage to the same). Still refused: a damaged vote
  // file (both slots), and damage that leaves no start at all (no intact
  // snapshot, and a log that does not start at the first entry).
  bool repair_damage = false;
};

class DataDir {
 public:
  // Takes the lock, checks or writes the version marker, loads the newest
  // snapshot and replays the log after it. Errors: kUnavailable if another
  // process holds the lock; kFailedPrecondition for another format version;
  // kDataLoss (naming the file and offset) for damaged data (with
  // repair_damage: only for what cannot be repaired); what the file system
  // failed with.
  static absl::StatusOr<std::unique_ptr<DataDir>> Open(FileSystem* fs, std::string root,
                                                       DataDirOptions options = {});

  // What recovery found (empty for a new directory).
  const raft::DurableState& recovered() const { return recovered_; }
  // The same, handed over: the directory keeps nothing of it (the
  // snapshot's data can be hundreds of megabytes).
  raft::DurableState TakeRecovered() { return std::move(recovered_); }
  // True if the directory held no member data before Open.
  bool fresh() const { return fresh_; }
  // A torn tail cut off the log during recovery (bytes; 0 if none).
  uint64_t truncated_bytes() const { return truncated_bytes_; }
  // Damaged snapshot files recovery passed over, the older snapshot and
  // the log covering them, and set aside as "<name>.broken" (newest
  // first; empty if none): for the host to log.
  const std::vector<DamagedSnapshot>& set_aside() const { return set_aside_; }
  // What recovery found damaged and repaired around (repair_damage; a
  // damaged slot of the vote file with or without it), for the host to
  // log: the file, where, and what (saying what was set aside). Whether
  // any of it cost data the member had: recovered().damaged.
  const std::vector<Damage>& damage() const { return damage_; }

  // One Ready's persistence obligations, in order. Not durable until Sync
  // (except the vote file and the snapshot file, durable when this
  // returns; the vote file is written, with two syncs, only when the term
  // or vote changed).
  // Errors: kResourceExhausted (nothing written) for an entry larger than a
  // log record holds or a snapshot larger than a file holds; NoSpaceError
  // (storage::IsNoSpace) if the disk was full before anything reached the
  // log, so the same call may be made again once there is space; anything
  // else is not to be retried.
  absl::Status Write(const raftpb::Snapshot* snapshot, const std::vector<raftpb::Entry>& entries,
                     const std::optional<raftpb::HardState>& hard_state);
  // Group commit: makes everything written so far durable.
  absl::Status Sync();
  // The member repaired what recovery lost (raft::Ready::repair_finished,
  // after a Sync of what it got back): the next recovery no longer reports
  // the data damaged. Durable when it returns.
  absl::Status FinishRepair();
  // A snapshot the application made: saved durably, recorded in the log.
  // The same as WriteSnapshotFile, then RecordSnapshot.
  absl::Status SaveSnapshot(const raftpb::Snapshot& snapshot);
  // The halves of SaveSnapshot, so that a host can write a large snapshot
  // without holding up the log. WriteSnapshotFile touches only the
  // snapshot directory: it may run while another thread writes and syncs
  // the log, but never beside another snapshot operation (a Write that
  // carries a snapshot, or another WriteSnapshotFile). RecordSnapshot then
  // notes the snapshot in the log, synced; CompactLog releases nothing
  // past the newest recorded snapshot.
  absl::Status WriteSnapshotFile(const raftpb::Snapshot& snapshot);
  absl::Status RecordSnapshot(const raftpb::SnapshotMetadata& metadata);
  // The saved snapshot with this metadata's index and term, with its data
  // (for a MSG_SNAP leaving the member: Raft keeps only the metadata).
  // Only reads the snapshot directory, so it may run on any thread beside
  // anything else; kNotFound once newer snapshots replaced the file.
  // Shared, as the member's store and the simulated disk hand it out.
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) const {
    absl::StatusOr<raftpb::Snapshot> loaded = snapshots_->Load(metadata);
    if (!loaded.ok()) return loaded.status();
    return std::make_shared<const raftpb::Snapshot>(std::move(*loaded));
  }
  // Releases log segments whose entries are all at or below `index` (a
  // durable snapshot covers them), but never past the snapshot before the
  // newest: if the newest snapshot file is damaged, recovery falls back to
  // that one and replays the log from it (snapshot_fallback.h), so the log
  // keeps about one snapshot interval more than the newest needs. Not kept
  // after a snapshot from the leader (its log reset voids the entries
  // before it) or with one snapshot file retained.
  absl::Status CompactLog(uint64_t index);

  Wal& wal() { return *wal_; }
  // Free bytes on the file system that holds the directory.
  absl::StatusOr<uint64_t> FreeBytes() const { return fs_->FreeBytes(member_dir_); }

 private:
  DataDir() = default;
  // Recovery's steps after the files are read: where the log starts from
  // the chosen snapshot (what damage it repairs around, with
  // repair_damage), and the log made to record it.
  absl::Status Reconcile(SnapshotChoice& choice, WalContents& contents);
  // Where the log must be kept from once the newest snapshot is at
  // `newest_index` and the one before it at `previous_index` (0: none).
  static uint64_t KeepLogFrom(const DataDirOptions& options, uint64_t newest_index,
                              uint64_t previous_index);

  FileSystem* fs_ = nullptr;
  std::string member_dir_;
  std::unique_ptr<Lock> lock_;
  std::unique_ptr<Snapshotter> snapshots_;
  std::unique_ptr<Wal> wal_;
  std::unique_ptr<VoteFile> votes_;
  raft::DurableState recovered_;
  bool fresh_ = false;
  uint64_t truncated_bytes_ = 0;
  DataDirOptions options_;
  std::vector<DamagedSnapshot> set_aside_;
  std::vector<Damage> damage_;
  // The newest snapshot saved.
  uint64_t snapshot_index_ = 0;
  // Log releases never go past this (see CompactLog).
  uint64_t keep_log_from_index_ = 0;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_DATA_DIR_H_
