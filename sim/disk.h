// A member's simulated disk: the server's own LogStore logic
// (member::DataDirLogStore) and the real storage code (storage::DataDir,
// its WAL and snapshots) over an in-memory file system that loses unsynced
// writes on a crash and may tear the last one at a sector boundary. Only
// where the store's work runs differs from the server: writes reach the
// file system at once and become durable, in order, after a drawn fsync
// latency (one sync covers every write before it: group commit); snapshot
// files are written and the log released after drawn delays, so members
// serve snapshots from memory meanwhile, as the server's do. A restart
// recovers the member's state with the real recovery code, and the disk
// checks it against what it reported durable.
#ifndef ETC_SIM_DISK_H_
#define ETC_SIM_DISK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "member/data_dir_log_store.h"
#include "member/interfaces.h"
#include "raft/memory_storage.h"
#include "sim/event_queue.h"
#include "sim/random.h"
#include "sim/trace.h"
#include "storage/data_dir.h"
#include "storage/memory_fs.h"

namespace etc::sim {

// The longest a snapshot file's write or a log release waits.
inline constexpr Micros kMaxSnapshotJobDelayUs = 200'000;

struct DiskOptions {
  Micros fsync_min_us = 50;
  Micros fsync_tail_mean_us = 200;
  // On a crash, the chance that the oldest unsynced write is torn.
  double torn_write_probability = 0;
  // Small segments, so rotation and release happen within a run.
  uint64_t segment_bytes = 16 * 1024;
};

class Disk : public member::LogStore {
 public:
  using OnPersisted = std::function<void(uint64_t token)>;

  Disk(uint64_t node_id, EventQueue* queue, Trace* trace, Random random, DiskOptions options);

  // Where completed writes are reported (the running member).
  void set_on_persisted(OnPersisted on_persisted) { on_persisted_ = std::move(on_persisted); }
  // Told about every write that is durable (and, after a restart, about
  // everything recovery found), before the member hears of it: the
  // log-matching checker's input.
  using OnDurable = std::function<void(const std::vector<raftpb::Entry>& entries,
                                       const raft::MemoryStorage& durable)>;
  void set_on_durable(OnDurable on_durable) { on_durable_ = std::move(on_durable); }

  void Persist(member::PersistRequest request, uint64_t token) override;
  void SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) override;
  void CompactLog(uint64_t index) override;
  // From memory while its file is being written, then read from the file
  // with the real storage code (what a MSG_SNAP leaving this member
  // carries).
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) override;

  // The process died: unsynced writes are lost (the oldest maybe torn) and
  // pending completions never fire.
  void Crash();
  // A new member's initial state, written and synced before it starts.
  void Bootstrap(const raft::MemoryStorage& initial);
  // Opens the data directory with the real recovery code (after a crash or
  // at the first start). Errors: what recovery refused (kDataLoss for
  // damaged data), or kInternal if recovery came back without something
  // that was reported durable (a storage bug, never a right answer).
  absl::StatusOr<raft::DurableState> Recover();
  // The member's file system: its data directory, and the value log the
  // key tree keeps beside it.
  storage::MemoryFs* fs() { return &fs_; }
  // What was reported durable: the promise checker's view of the disk.
  const raft::MemoryStorage& durable() const { return durable_; }
  void set_options(DiskOptions options) { options_ = options; }
  // The disk hangs: no write completes before `until_us`. 0 ends a stall at
  // once (when every fault heals).
  void StallUntil(Micros until_us);
  // The disk is full until `until_us`: no file may grow (writes inside the
  // log's preallocated segment still land), so the log's next segment and
  // snapshot files fail with ENOSPC, as a real disk's would.
  void FillUntil(Micros until_us);
  // LogStore: the store found the disk full, or it has less free than a
  // segment.
  bool low_on_space() const override { return store_ != nullptr && store_->low_on_space(); }
  // The next fsync fails, dropping the writes it covered (later ones work:
  // see MemoryFs::fail_next_syncs).
  void FailNextSync() { fs_.fail_next_syncs(1); }
  // Called (from an event of its own) when the store stopped on a failed
  // write or sync: the process must exit, as the server's does.
  void set_on_failed(std::function<void(const absl::Status&)> on_failed) {
    on_failed_ = std::move(on_failed);
  }
  // Flips a random bit in the member's oldest log data (a failing disk),
  // or with `recent` in the newest quarter of its newest segment's data.
  // Returns the file it damaged (empty if there was nothing to damage).
  std::string FlipBitInLog(bool recent);
  // Flips a random bit in the member's newest snapshot file. Returns the
  // file (empty if it has none). Recovery must then not start from it:
  // it falls back to an older one the log covers, or repairs.
  std::string FlipBitInSnapshot();
  // Whether the last flip hit a record that other records follow (in its
  // segment or a later one): recovery must then refuse (kDataLoss). Only
  // a flip in the log's very last record could pass for a torn write.
  bool flip_must_be_reported() const { return flip_must_be_reported_; }

 private:
  void Complete(uint64_t generation);
  // Schedules the completion of the newest pending write.
  void ScheduleCompletion();
  // Schedules a run of the oldest snapshot job (a snapshot file or a log
  // release) after a drawn delay.
  void ScheduleSnapshotJob();
  // The server's store logic over the recovered directory, reporting into
  // the promise checker's view.
  void OpenStore();
  // What the store reports, into the promise checker's view.
  void OnStored(const member::PersistRequest& request, uint64_t token);

  bool flip_must_be_reported_ = false;
  // The snapshot file FlipBitInSnapshot damaged and its damaged bytes,
  // until the next recovery (which must set it aside).
  std::string flipped_snapshot_;
  std::string flipped_snapshot_bytes_;
  uint64_t node_id_;
  EventQueue* queue_;
  Trace* trace_;
  Random random_;
  DiskOptions options_;
  OnPersisted on_persisted_;
  OnDurable on_durable_;
  std::function<void(const absl::Status&)> on_failed_;
  storage::MemoryFs fs_;
  std::unique_ptr<storage::DataDir> dir_;
  // The store over dir_, from recovery to the next crash.
  std::unique_ptr<member::DataDirLogStore> store_;
  // What the disk reported durable, as Raft's durable state.
  raft::MemoryStorage durable_;
  // A write the store holds and has not reported: what a crash may lose
  // or tear.
  struct PendingWrite {
    uint64_t first_index = 0;  // of its entries (0: none)
    bool snapshot = false;
    uint64_t token = 0;
  };
  std::deque<PendingWrite> pending_;
  // Completions scheduled before a crash (or a hang's early end, which
  // reschedules them) belong to an older generation.
  uint64_t generation_ = 0;
  // Snapshot jobs scheduled before a crash find a new store: they stop.
  uint64_t crashes_ = 0;
  Micros last_completion_us_ = 0;
  Micros stalled_until_us_ = 0;
  // Fills end in order: only the latest one's end frees the disk.
  uint64_t fills_ = 0;
  // The lowest index a write pending at the last crash would have replaced
  // (entries from there on may legitimately differ after recovery).
  uint64_t replaced_from_ = UINT64_MAX;
};

}  // namespace etc::sim

#endif  // ETC_SIM_DISK_H_
