// The member's LogStore over a data directory (storage::DataDir): the one
// piece of logic both hosts run to decide what is written, synced and
// reported durable when, and how a snapshot reaches its file. Only where
// the I/O runs differs: the server writes and syncs from the member's own
// thread and runs snapshot jobs on a thread of their own; the simulator calls them from
// events on virtual time, with the latencies and crashes it draws.
//
//   DataDirLogStore store(dir.get(), {.persisted = [](const PersistRequest&, uint64_t token) {
//     post_to_member([token](Member& m) { m.OnPersisted(token); });
//   }});
//   // the member calls store.Persist(...), SaveSnapshot(...), CompactLog(...)
//   // the host, on a thread of its choice:
//   store.WriteQueued();      // the queued requests reach the directory, in order
//   store.SyncWritten();      // one fsync, then `persisted` for each, oldest first
//   store.RunSnapshotJob();   // the next snapshot file or log release
//
// The rules it keeps:
// - Requests are written in the order the member gave them, and each is
//   reported only once it is durable: after a sync that followed its
//   write, or (a request that may be lost, must_sync false) after its write.
//   One sync covers everything written before it (group commit).
// - A snapshot the application made is written on the snapshot path (it
//   may be hundreds of megabytes and must not hold up the log), and a log
//   release queued after it runs only after it: the log never drops
//   entries no durable snapshot covers.
// - Until its file is in place, a snapshot is served from memory
//   (LoadSnapshot), so a follower that needs it can get it at once.
// - A failed write, sync or release is never retried or taken as done: the
//   store stops and tells the host (Hooks::failed), which stops the member:
//   a member that cannot write its log must not go on promising what it
//   does not hold.
// - Except a full disk found before anything reached the log (the next
//   segment or a leader's snapshot file could not be made): that request
//   and those behind it wait in order, and the host tries again
//   (out_of_space()); meanwhile, and whenever free space falls below the
//   reserve, low_on_space() tells the member to raise the NOSPACE alarm,
//   which keeps the log from growing while reads and watches go on.
//
// Thread-safe: the member's calls, the work methods and LoadSnapshot may
// come from different threads. The directory itself is used under this
// class's locks only.
#ifndef ETC_MEMBER_DATA_DIR_LOG_STORE_H_
#define ETC_MEMBER_DATA_DIR_LOG_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "member/interfaces.h"
#include "storage/data_dir.h"

namespace etc::member {

class DataDirLogStore : public LogStore {
 public:
  struct Hooks {
    // A request is durable: called from the thread that ran SyncWritten,
    // outside every lock, oldest first. The host hands `token` to
    // Member::OnPersisted on the member's thread.
    std::function<void(const PersistRequest& request, uint64_t token)> persisted;
    // A snapshot's file is in place and recorded in the log (from the
    // thread that ran RunSnapshotJob; optional).
    std::function<void(const raftpb::Snapshot& snapshot)> snapshot_saved;
    // Log entries up to `index` were released (optional).
    std::function<void(uint64_t index)> log_compacted;
    // The directory failed a write, sync or release. After a failed fsync
    // the kernel may have dropped the dirty pages, so nothing written since
    // the last good sync may be on the disk: nothing more is reported
    // durable, nothing is tried again, every later call does nothing, and
    // the host must stop the member (the server exits; a restart recovers
    // from what is durable). Called once, possibly with the store's locks
    // held: it must not call the store. Not set: the process stops at once
    // (ETC_CHECK).
    std::function<void(const absl::Status& status)> failed;
  };

  struct Options {
    // The member is told it is low on space once the free bytes on the
    // directory's file system plus the room left in the log's current
    // segment fall below this: the next segment will not fit when this
    // one fills, so NOSPACE is raised while the segment still has room for
    // the alarm's entry and the deletes and compactions that free space.
    // Hosts pass one WAL segment; 0: only a write that found the disk full
    // counts.
    uint64_t reserve_bytes = 0;
    // Runs the writing of the member's own snapshot files (the copying of
    // its bytes into the file; not the log's record of it, which takes
    // the log's lock). The server runs it at idle priority
    // (server/idle_priority.h); unset: on the snapshot thread itself.
    std::function<void(const std::function<void()>& write)> run_snapshot_file_write = nullptr;
  };

  // `dir` must outlive the store. Nothing runs until the host calls the
  // work methods.
  DataDirLogStore(storage::DataDir* dir, Hooks hooks, Options options);
  DataDirLogStore(storage::DataDir* dir, Hooks hooks);
  DataDirLogStore(const DataDirLogStore&) = delete;
  DataDirLogStore& operator=(const DataDirLogStore&) = delete;

  // ---- the member's side (LogStore): each only queues ----
  void Persist(PersistRequest request, uint64_t token) override;
  void SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) override;
  void CompactLog(uint64_t index) override;
  // From memory while the snapshot is queued or being written, then from
  // its file.
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) override;

  // ---- the host's side: the work, on threads (or events) of its own ----
  // Writes every queued request to the directory, in order, without
  // syncing. Returns how many it wrote.
  // A request the disk had no space for stays queued, with those after it:
  // see out_of_space().
  size_t WriteQueued();
  // Makes what was written durable (one sync, skipped if none of it needs
  // one) and reports up to `max_reports` written requests, oldest first.
  // Call it from one thread at a time.
  struct Synced {
    size_t reported = 0;
    // Whether it synced (for a host timing its fsyncs).
    bool synced = false;
  };
  Synced SyncWritten(size_t max_reports = SIZE_MAX);
  // Runs the oldest snapshot job: writes a snapshot's file and records it
  // in the log, or releases log entries. Returns false if none was queued.
  // A snapshot too large for a file (kResourceExhausted) is skipped, with
  // the log keeping everything since the last one.
  bool RunSnapshotJob();

  // ---- for hosts with threads ----
  // Block until there is work of the kind, or Close() was called. False
  // once closed with none left: the thread may end.
  bool AwaitWrites();
  bool AwaitSnapshotJob();
  // Nothing more will be queued (the member stopped): the Await calls
  // return false once the queues are drained.
  void Close();

  // The last WriteQueued found the disk full and left requests queued: the
  // host calls it again after a while (not at once: space comes back when
  // an operator or a compaction frees it).
  bool out_of_space() const { return out_of_space_.load(); }
  // A write, sync or release failed: the store does nothing more.
  bool failed() const { return failed_.load(); }
  // LogStore: out of space, or free space plus the current segment's room
  // below the reserve (a statvfs: the member asks about once a second).
  bool low_on_space() const override;

  // Requests written and not yet reported; queued snapshot jobs.
  size_t unreported() const;
  size_t queued_snapshot_jobs() const;

 private:
  struct Pending {
    PersistRequest request;
    uint64_t token = 0;
  };
  // A snapshot to save, or (snapshot null) the index to release the log to.
  struct SnapshotJob {
    std::shared_ptr<const raftpb::Snapshot> snapshot;
    uint64_t compact_to = 0;
  };
  bool HasWrites() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return closed_ || !queued_.empty();
  }
  bool HasSnapshotJob() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return closed_ || !snapshot_jobs_.empty();
  }
  void WriteSnapshot(const raftpb::Snapshot& snapshot);
  // The directory failed `what`: stops the store and tells the host.
  void Fail(const absl::Status& status, const char* what);

  storage::DataDir* const dir_;
  const Hooks hooks_;
  const Options options_;
  // Lock order: snapshot_mu_, then dir_mu_; queue_mu_ is never held while
  // taking either. snapshot_mu_ keeps snapshot-file operations apart (a
  // leader's snapshot in a Persist, the application's on the snapshot
  // path: see DataDir::WriteSnapshotFile); dir_mu_ guards the log.
  absl::Mutex snapshot_mu_;
  mutable absl::Mutex dir_mu_;
  // Written and not yet reported, in order (the writer's and syncer's;
  // WriteQueued and SyncWritten may run on different threads).
  std::deque<Pending> written_ ABSL_GUARDED_BY(dir_mu_);
  mutable absl::Mutex queue_mu_;
  std::deque<Pending> queued_ ABSL_GUARDED_BY(queue_mu_);
  std::deque<SnapshotJob> snapshot_jobs_ ABSL_GUARDED_BY(queue_mu_);
  // The snapshot RunSnapshotJob is writing (served from memory until its
  // file is in place).
  std::shared_ptr<const raftpb::Snapshot> writing_ ABSL_GUARDED_BY(queue_mu_);
  bool closed_ ABSL_GUARDED_BY(queue_mu_) = false;
  // A write, sync or release failed: the store does nothing more.
  std::atomic<bool> failed_{false};
  std::atomic<bool> out_of_space_{false};
  // The log's current segment's room after the last write (read by the
  // member's thread without the directory's lock).
  std::atomic<uint64_t> log_room_bytes_{0};
};

}  // namespace etc::member

#endif  // ETC_MEMBER_DATA_DIR_LOG_STORE_H_
