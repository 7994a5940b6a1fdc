#include "member/data_dir_log_store.h"

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace etc::member {

DataDirLogStore::DataDirLogStore(storage::DataDir* dir, Hooks hooks)
    : DataDirLogStore(dir, std::move(hooks), Options()) {}

DataDirLogStore::DataDirLogStore(storage::DataDir* dir, Hooks hooks, Options options)
    : dir_(dir), hooks_(std::move(hooks)), options_(options) {
  ETC_CHECK(dir_ != nullptr);
  log_room_bytes_.store(dir_->wal().room_bytes());
}

void DataDirLogStore::Persist(PersistRequest request, uint64_t token) {
  absl::MutexLock lock(&queue_mu_);
  ETC_CHECK(!closed_) << "a write after the store closed";
  queued_.push_back(Pending{std::move(request), token});
}

void DataDirLogStore::SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) {
  absl::MutexLock lock(&queue_mu_);
  snapshot_jobs_.push_back(SnapshotJob{std::move(snapshot), 0});
}

void DataDirLogStore::CompactLog(uint64_t index) {
  // Behind the snapshot saves queued before it: the release must not pass
  // what a durable snapshot covers.
  absl::MutexLock lock(&queue_mu_);
  snapshot_jobs_.push_back(SnapshotJob{nullptr, index});
}

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> DataDirLogStore::LoadSnapshot(
    const raftpb::SnapshotMetadata& metadata) {
  auto same = [&metadata](const std::shared_ptr<const raftpb::Snapshot>& snapshot) {
    return snapshot != nullptr && snapshot->metadata().index() == metadata.index() &&
           snapshot->metadata().term() == metadata.term();
  };
  {
    absl::MutexLock lock(&queue_mu_);
    if (same(writing_)) return writing_;
    for (const SnapshotJob& job : snapshot_jobs_) {
      if (same(job.snapshot)) return job.snapshot;
    }
  }
  // `writing_` is cleared only once the file is renamed into place, so
  // there is no moment when the snapshot is in neither.
  return dir_->LoadSnapshot(metadata);
}

size_t DataDirLogStore::WriteQueued() {
  std::deque<Pending> batch;
  {
    absl::MutexLock lock(&queue_mu_);
    batch.swap(queued_);
  }
  size_t written_count = 0;
  absl::Status no_space;
  for (Pending& pending : batch) {
    // A snapshot from the leader is a snapshot file too.
    std::optional<absl::MutexLock> snapshot_lock;
    if (pending.request.snapshot != nullptr) snapshot_lock.emplace(&snapshot_mu_);
    absl::MutexLock lock(&dir_mu_);
    if (failed_.load()) return 0;
    absl::Status written = dir_->Write(pending.request.snapshot.get(), pending.request.entries,
                                       pending.request.hard_state);
    if (storage::IsNoSpace(written)) {
      no_space = written;
      break;
    }
    if (!written.ok()) {
      Fail(written, "the write-ahead log failed");
      return 0;
    }
    written_.push_back(std::move(pending));
    ++written_count;
    log_room_bytes_.store(dir_->wal().room_bytes());
  }
  if (!no_space.ok()) {
    // Nothing of it reached the log: it waits, with every request after it
    // (in order, ahead of any queued since), until the host tries again.
    absl::MutexLock lock(&queue_mu_);
    for (auto it = batch.rbegin(); it != batch.rend() - static_cast<ptrdiff_t>(written_count);
         ++it) {
      queued_.push_front(std::move(*it));
    }
    if (!out_of_space_.exchange(true)) {
      std::fprintf(stderr,
                   "{\"level\":\"error\",\"msg\":\"the disk is full; writes wait for space: "
                   "%s\"}\n",
                   std::string(no_space.message()).c_str());
    }
    return written_count;
  }
  if (written_count > 0 && out_of_space_.exchange(false)) {
    std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"the disk has space again\"}\n");
  }
  return written_count;
}

bool DataDirLogStore::low_on_space() const {
  if (out_of_space_.load()) return true;
  if (options_.reserve_bytes == 0) return false;
  // Without the directory's locks: asking the file system for its free
  // space touches nothing the writer and snapshot threads use, and the
  // member's thread must not wait behind an fsync.
  absl::StatusOr<uint64_t> free_bytes = dir_->FreeBytes();
  // A file system that cannot say is taken as having space: the writes
  // themselves still find out.
  if (!free_bytes.ok() || *free_bytes >= options_.reserve_bytes) return false;
  return *free_bytes + log_room_bytes_.load() < options_.reserve_bytes;
}

DataDirLogStore::Synced DataDirLogStore::SyncWritten(size_t max_reports) {
  std::vector<Pending> durable;
  Synced out;
  {
    absl::MutexLock lock(&dir_mu_);
    if (written_.empty() || failed_.load()) return out;
    for (const Pending& pending : written_) out.synced = out.synced || pending.request.must_sync;
    if (out.synced) {
      absl::Status synced = dir_->Sync();
      if (!synced.ok()) {
        // Never synced again as if nothing happened: what it covered may
        // be gone from the disk.
        Fail(synced, "syncing the write-ahead log failed");
        return Synced{};
      }
    }
    while (!written_.empty() && durable.size() < max_reports) {
      durable.push_back(std::move(written_.front()));
      written_.pop_front();
      if (!durable.back().request.repair_finished) continue;
      // What the member got back is durable now (the sync above covered
      // it): only then may recovery stop calling the data damaged.
      if (absl::Status finished = dir_->FinishRepair(); !finished.ok()) {
        Fail(finished, "recording that the member's repair finished failed");
        return Synced{};
      }
    }
  }
  if (hooks_.persisted) {
    for (const Pending& pending : durable) hooks_.persisted(pending.request, pending.token);
  }
  out.reported = durable.size();
  return out;
}

bool DataDirLogStore::RunSnapshotJob() {
  SnapshotJob job;
  {
    absl::MutexLock lock(&queue_mu_);
    if (snapshot_jobs_.empty()) return false;
    job = std::move(snapshot_jobs_.front());
    snapshot_jobs_.pop_front();
    writing_ = job.snapshot;
  }
  if (job.snapshot != nullptr) {
    WriteSnapshot(*job.snapshot);
    // Its file is in place: the memory can go.
    absl::MutexLock lock(&queue_mu_);
    writing_.reset();
    return true;
  }
  {
    absl::MutexLock lock(&dir_mu_);
    if (failed_.load()) return true;
    absl::Status released = dir_->CompactLog(job.compact_to);
    if (!released.ok()) {
      Fail(released, "releasing log segments failed");
      return true;
    }
  }
  if (hooks_.log_compacted) hooks_.log_compacted(job.compact_to);
  return true;
}

void DataDirLogStore::WriteSnapshot(const raftpb::Snapshot& snapshot) {
  if (failed_.load()) return;
  absl::Status status;
  {
    absl::MutexLock snapshot_lock(&snapshot_mu_);
    // The file first, without the log's lock: writing hundreds of
    // megabytes must not hold up the log.
    auto write = [&] { status = dir_->WriteSnapshotFile(snapshot); };
    if (options_.run_snapshot_file_write) {
      options_.run_snapshot_file_write(write);
    } else {
      write();
    }
    if (status.ok()) {
      absl::MutexLock lock(&dir_mu_);
      status = dir_->RecordSnapshot(snapshot.metadata());
    }
  }
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    // Too large for a snapshot file (the quota keeps the key tree below
    // that): the log keeps everything since the last snapshot, and the
    // releases queued behind this one release nothing past that.
    std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"%s\"}\n",
                 std::string(status.message()).c_str());
    return;
  }
  if (!status.ok()) {
    Fail(status, "saving a snapshot failed");
    return;
  }
  if (hooks_.snapshot_saved) hooks_.snapshot_saved(snapshot);
}

void DataDirLogStore::Fail(const absl::Status& status, const char* what) {
  ETC_CHECK(hooks_.failed != nullptr) << what << ": " << status;
  if (failed_.exchange(true)) return;  // told once
  hooks_.failed(absl::Status(status.code(), absl::StrCat(what, ": ", status.message())));
}

bool DataDirLogStore::AwaitWrites() {
  absl::MutexLock lock(&queue_mu_);
  queue_mu_.Await(absl::Condition(this, &DataDirLogStore::HasWrites));
  // Closed while the disk is full: what waits for space was never
  // reported durable, and nothing more will come to make room.
  if (closed_ && out_of_space_.load()) return false;
  return !queued_.empty();
}

bool DataDirLogStore::AwaitSnapshotJob() {
  absl::MutexLock lock(&queue_mu_);
  queue_mu_.Await(absl::Condition(this, &DataDirLogStore::HasSnapshotJob));
  return !snapshot_jobs_.empty();
}

void DataDirLogStore::Close() {
  absl::MutexLock lock(&queue_mu_);
  closed_ = true;
}

size_t DataDirLogStore::unreported() const {
  absl::MutexLock lock(&dir_mu_);
  return written_.size();
}

size_t DataDirLogStore::queued_snapshot_jobs() const {
  absl::MutexLock lock(&queue_mu_);
  return snapshot_jobs_.size();
}

}  // namespace etc::member
