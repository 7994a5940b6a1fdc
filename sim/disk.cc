#include "sim/disk.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "storage/record.h"

namespace etc::sim {

namespace {

raft::Ready AsReady(const member::PersistRequest& request) {
  raft::Ready ready;
  ready.snapshot = request.snapshot;
  ready.entries = request.entries;
  ready.hard_state = request.hard_state;
  ready.repair_finished = request.repair_finished;
  return ready;
}

constexpr char kRoot[] = "data";
// How often a write that found the disk full is tried again (the server
// waits as long: ServerLogStore).
constexpr Micros kNoSpaceRetryUs = 200'000;

storage::DataDirOptions DirOptions(const DiskOptions& options) {
  storage::DataDirOptions out;
  out.wal.segment_bytes = options.segment_bytes;
  out.snapshots_retained = 2;
  // A member whose disk flipped a bit repairs from the leader (issue 20),
  // as the server's does.
  out.repair_damage = true;
  return out;
}

}  // namespace

Disk::Disk(uint64_t node_id, EventQueue* queue, Trace* trace, Random random, DiskOptions options)
    : node_id_(node_id), queue_(queue), trace_(trace), random_(random), options_(options) {}

void Disk::Bootstrap(const raft::MemoryStorage& initial) {
  absl::StatusOr<std::unique_ptr<storage::DataDir>> dir =
      storage::DataDir::Open(&fs_, kRoot, DirOptions(options_));
  ETC_CHECK(dir.ok()) << dir.status();
  if (initial.snapshot.metadata().index() > 0 || !initial.entries.empty()) {
    ETC_CHECK((*dir)->Write(&initial.snapshot, initial.entries, initial.hard_state).ok());
    ETC_CHECK((*dir)->Sync().ok());
  }
  durable_ = initial;
  // The member opens it again when it starts.
}

absl::StatusOr<raft::DurableState> Disk::Recover() {
  store_.reset();
  dir_.reset();
  absl::StatusOr<std::unique_ptr<storage::DataDir>> dir =
      storage::DataDir::Open(&fs_, kRoot, DirOptions(options_));
  if (!dir.ok()) return dir.status();
  const raft::DurableState& recovered = (*dir)->recovered();
  // Everything reported durable (and not replaced by a write that was still
  // pending at the crash) must have come back, and the term and vote must
  // not have gone back: a member that forgets them may vote twice.
  const raftpb::HardState& promised = durable_.hard_state;
  const raftpb::HardState& found = recovered.hard_state;
  if (found.term() < promised.term() ||
      (found.term() == promised.term() && promised.vote() != 0 && found.vote() != promised.vote())) {
    return absl::InternalError(absl::StrCat("recovery went back from term ", promised.term(),
                                            " vote ", promised.vote(), " to term ", found.term(),
                                            " vote ", found.vote()));
  }
  uint64_t snapshot_index = recovered.snapshot.metadata().index();
  std::string flipped_snapshot = std::exchange(flipped_snapshot_, std::string());
  if (!flipped_snapshot.empty() && fs_.Exists(flipped_snapshot) &&
      fs_.Contents(flipped_snapshot) == flipped_snapshot_bytes_) {
    return absl::InternalError(absl::StrCat("recovery left the snapshot file ", flipped_snapshot,
                                            ", whose bit flipped, among the snapshots"));
  }
  // A repaired recovery may lose what followed the damage (the member
  // fetches it again), and keep entries that a lost record had replaced
  // (an old leader's, never committed): never lose or change what it
  // says is committed.
  bool damaged = recovered.damaged;
  // With its newest snapshot file damaged, it may start from an older one
  // and replay the log through the damaged one's index (the entries checked
  // below), as etcd does.
  const raftpb::SnapshotMetadata& promised_snapshot = durable_.snapshot.metadata();
  bool log_covers_promised_snapshot =
      !flipped_snapshot.empty() && promised_snapshot.index() > snapshot_index &&
      promised_snapshot.index() - snapshot_index <= recovered.entries.size() &&
      recovered.entries[promised_snapshot.index() - snapshot_index - 1].term() ==
          promised_snapshot.term();
  if (snapshot_index < promised_snapshot.index() && !damaged && !log_covers_promised_snapshot) {
    return absl::InternalError(absl::StrCat("recovery found the snapshot at ", snapshot_index,
                                            " but one at ", durable_.snapshot.metadata().index(),
                                            " was durable"));
  }
  for (const raftpb::Entry& entry : durable_.entries) {
    if (entry.index() <= snapshot_index || entry.index() >= replaced_from_) continue;
    uint64_t offset = entry.index() - snapshot_index - 1;
    if (damaged && entry.index() > recovered.hard_state.commit()) continue;
    if (offset >= recovered.entries.size() ||
        recovered.entries[offset].SerializeAsString() != entry.SerializeAsString()) {
      return absl::InternalError(absl::StrCat(
          "recovery lost durable entry ", entry.term(), "/", entry.index(), " (recovered ",
          recovered.entries.size(), " entries after snapshot ", snapshot_index,
          offset < recovered.entries.size()
              ? absl::StrCat(", there: ", recovered.entries[offset].term(), "/",
                             recovered.entries[offset].index())
              : std::string(),
          ")"));
    }
  }
  durable_.snapshot = recovered.snapshot;
  durable_.entries = recovered.entries;
  durable_.hard_state = recovered.hard_state;
  durable_.damaged = recovered.damaged;
  replaced_from_ = std::numeric_limits<uint64_t>::max();
  for (const storage::Damage& damage : (*dir)->damage()) {
    trace_->Event("disk.repair", node_id_, damage.offset, [&] {
      return absl::StrCat(node_id_, " recovery repaired around damage in ", damage.file, " at ",
                          damage.offset, ": ", damage.what);
    });
  }
  if (!flipped_snapshot.empty()) {
    trace_->Event("disk.snapshot-passed-over", node_id_, snapshot_index, [&] {
      return absl::StrCat(node_id_, " recovery set aside its damaged ", flipped_snapshot,
                          " and starts from the snapshot at ", snapshot_index,
                          damaged ? " (repairing)" : " and the log");
    });
  }
  if ((*dir)->truncated_bytes() > 0) {
    trace_->Event("disk.torn", node_id_, (*dir)->truncated_bytes(), [&] {
      return absl::StrCat(node_id_, " recovery cut a torn tail of ", (*dir)->truncated_bytes(),
                          " bytes");
    });
  }
  if (on_durable_) on_durable_(durable_.entries, durable_);
  raft::DurableState out = recovered;
  dir_ = std::move(*dir);
  OpenStore();
  return out;
}

void Disk::OpenStore() {
  member::DataDirLogStore::Hooks hooks;
  hooks.persisted = [this](const member::PersistRequest& request, uint64_t token) {
    OnStored(request, token);
  };
  hooks.snapshot_saved = [this](const raftpb::Snapshot& snapshot) {
    // A snapshot the member took before a newer one from the leader
    // arrived may reach its file after it: recovery starts from the newest.
    if (snapshot.metadata().index() > durable_.snapshot.metadata().index()) {
      durable_.snapshot = snapshot;
    }
  };
  hooks.log_compacted = [this](uint64_t index) {
    auto& entries = durable_.entries;
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [index](const raftpb::Entry& e) { return e.index() <= index; }),
                  entries.end());
  };
  hooks.failed = [this, crashes = crashes_](const absl::Status& status) {
    // Called inside the store's work: the process exits from an event of
    // its own, after the call returned.
    queue_->After(0, [this, crashes, status] {
      if (crashes == crashes_ && on_failed_) on_failed_(status);
    });
  };
  // NOSPACE is raised once the next segment would not fit.
  store_ = std::make_unique<member::DataDirLogStore>(
      dir_.get(), std::move(hooks),
      member::DataDirLogStore::Options{.reserve_bytes = options_.segment_bytes});
}

void Disk::Persist(member::PersistRequest request, uint64_t token) {
  trace_->Event("disk.write", node_id_, token, [&] {
    return absl::StrCat(node_id_, " starts write ", token, ": ", request.entries.size(),
                        " entries",
                        request.entries.empty()
                            ? std::string()
                            : absl::StrCat(" ", request.entries.front().term(), "/",
                                           request.entries.front().index(), "..",
                                           request.entries.back().index()),
                        request.hard_state.has_value()
                            ? absl::StrCat(", term ", request.hard_state->term(), " commit ",
                                           request.hard_state->commit())
                            : std::string(),
                        request.snapshot != nullptr ? ", a snapshot" : "");
  });
  ETC_CHECK(store_ != nullptr) << "member " << node_id_ << " writes without a data directory";
  PendingWrite pending;
  pending.first_index = request.entries.empty() ? 0 : request.entries.front().index();
  pending.snapshot = request.snapshot != nullptr;
  pending.token = token;
  pending_.push_back(pending);
  // The write reaches the file system at once (a crash may tear it); the
  // sync that makes it durable comes after the drawn latency.
  store_->Persist(std::move(request), token);
  store_->WriteQueued();
  ScheduleCompletion();
}

void Disk::ScheduleCompletion() {
  // Writes complete in order: never before the previous one.
  Micros done_us = std::max(
      std::max(last_completion_us_, stalled_until_us_),
      queue_->now_us() + options_.fsync_min_us +
          static_cast<Micros>(random_.Exponential(static_cast<double>(options_.fsync_tail_mean_us))));
  last_completion_us_ = done_us;
  queue_->At(done_us, [this, generation = generation_] { Complete(generation); });
}

void Disk::StallUntil(Micros until_us) {
  bool ends_early = until_us == 0 && stalled_until_us_ > queue_->now_us();
  stalled_until_us_ = until_us;
  if (!ends_early || pending_.empty()) return;
  // The hang is over: the writes that waited for it complete at the usual
  // pace from now on (the completions scheduled for its end are dropped).
  ++generation_;
  last_completion_us_ = queue_->now_us();
  for (size_t i = 0; i < pending_.size(); ++i) ScheduleCompletion();
}

void Disk::Complete(uint64_t generation) {
  if (generation != generation_ || pending_.empty()) return;
  // The store stopped on a failed sync: nothing more completes, and the
  // process exits (on_failed_).
  if (store_->failed()) return;
  if (store_->unreported() == 0) {
    // The oldest pending write found the disk full and waits in the store:
    // tried again now, and again later while there is no space (as the
    // server does).
    store_->WriteQueued();
    if (store_->unreported() == 0) {
      ETC_CHECK(store_->out_of_space())
          << "member " << node_id_ << ": a pending write the store neither wrote nor held";
      queue_->At(queue_->now_us() + kNoSpaceRetryUs,
                 [this, generation] { Complete(generation); });
      return;
    }
  }
  // Group commit: one sync makes this write (and any written after it)
  // durable; the store reports the oldest (OnStored).
  size_t reported = store_->SyncWritten(1).reported;
  if (store_->failed()) return;  // this very sync failed
  ETC_CHECK_EQ(reported, 1u) << "member " << node_id_ << ": a pending write the store lost";
}

void Disk::OnStored(const member::PersistRequest& request, uint64_t token) {
  ETC_CHECK(!pending_.empty() && pending_.front().token == token)
      << "member " << node_id_ << ": the store reported write " << token << " out of order";
  pending_.pop_front();
  durable_.Persist(AsReady(request));
  if (on_durable_) on_durable_(request.entries, durable_);
  trace_->Event("disk.sync", node_id_, token,
                [&] { return absl::StrCat(node_id_, " persisted write ", token); });
  if (on_persisted_) on_persisted_(token);
}

void Disk::SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) {
  store_->SaveSnapshot(std::move(snapshot));
  ScheduleSnapshotJob();
}

void Disk::CompactLog(uint64_t index) {
  store_->CompactLog(index);
  ScheduleSnapshotJob();
}

void Disk::ScheduleSnapshotJob() {
  // Often at once, else after a while (a large snapshot's file takes long
  // to write), never during a hang. Each run takes the oldest job, so the
  // jobs keep their order whatever the drawn times.
  Micros delay_us = random_.Chance(0.5) ? 0 : random_.Range(1, kMaxSnapshotJobDelayUs);
  Micros at_us = std::max(stalled_until_us_, queue_->now_us() + delay_us);
  queue_->At(at_us, [this, crashes = crashes_] {
    if (crashes != crashes_ || store_ == nullptr) return;
    store_->RunSnapshotJob();
  });
}

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> Disk::LoadSnapshot(
    const raftpb::SnapshotMetadata& metadata) {
  if (store_ == nullptr) return absl::UnavailableError("the disk is not open");
  return store_->LoadSnapshot(metadata);
}

void Disk::FillUntil(Micros until_us) {
  fs_.set_capacity_bytes(fs_.used_bytes());
  uint64_t fill = ++fills_;
  trace_->Event("disk.full", node_id_, until_us, [&] {
    return absl::StrCat(node_id_, "'s disk is full for ", (until_us - queue_->now_us()) / 1000,
                        "ms");
  });
  queue_->At(until_us, [this, fill] {
    if (fill != fills_) return;
    fs_.set_capacity_bytes(UINT64_MAX);
    trace_->Event("disk.space", node_id_, 0,
                  [&] { return absl::StrCat(node_id_, "'s disk has space again"); });
  });
}

void Disk::Crash() {
  // Writes still pending may have reached the disk anyway (a later sync, or
  // a torn prefix): what they replace need not survive.
  for (const PendingWrite& write : pending_) {
    if (write.snapshot) replaced_from_ = 0;
    if (write.first_index != 0) replaced_from_ = std::min(replaced_from_, write.first_index);
  }
  double tear = options_.torn_write_probability;
  fs_.Crash([this, tear] { return random_.Chance(tear); },
            [this](uint64_t n) { return random_.Uniform(n); });
  store_.reset();
  dir_.reset();
  pending_.clear();
  ++generation_;
  ++crashes_;
  last_completion_us_ = queue_->now_us();
}

std::string Disk::FlipBitInSnapshot() {
  absl::StatusOr<std::vector<std::string>> names = fs_.List("data/member/snap");
  if (!names.ok()) return std::string();
  std::erase_if(*names, [](const std::string& name) { return !absl::EndsWith(name, ".snap"); });
  if (names->empty()) return std::string();
  std::sort(names->begin(), names->end());  // named by index, then term, in hex
  std::string path = std::string("data/member/snap/") + names->back();
  uint64_t size = fs_.Contents(path).size();
  if (size == 0) return std::string();
  fs_.FlipBit(path, random_.Uniform(size * 8));
  flipped_snapshot_ = path;
  flipped_snapshot_bytes_ = fs_.Contents(path);
  flip_must_be_reported_ = false;
  return path;
}

std::string Disk::FlipBitInLog(bool recent) {
  absl::StatusOr<std::vector<std::string>> names = fs_.List("data/member/wal");
  if (!names.ok()) return std::string();
  // Only the log's segments, not what an earlier repair set aside.
  std::erase_if(*names, [](const std::string& name) { return !absl::EndsWith(name, ".wal"); });
  if (names->empty()) return std::string();
  std::string path = std::string("data/member/wal/") + (recent ? names->back() : names->front());
  std::string bytes = fs_.Contents(path);
  // Somewhere in the written part (the zeros after it are no data).
  size_t written = bytes.size();
  while (written > 0 && bytes[written - 1] == '\0') --written;
  if (written == 0) return std::string();
  uint64_t from = recent ? written - written / 4 : 0;
  uint64_t bit = from * 8 + random_.Uniform((written - from) * 8);
  // Which record the bit lands in, and whether any follows it.
  size_t offset = 0;
  storage::DecodedRecord record = storage::DecodeRecord(bytes, offset);
  while (record.status == storage::DecodedRecord::kOk && record.next_offset <= bit / 8) {
    offset = record.next_offset;
    record = storage::DecodeRecord(bytes, offset);
  }
  bool last_record = record.status != storage::DecodedRecord::kOk ||
                     storage::DecodeRecord(bytes, record.next_offset).status !=
                         storage::DecodedRecord::kOk;
  flip_must_be_reported_ = (names->size() > 1 && !recent) || !last_record;
  fs_.FlipBit(path, bit);
  return path;
}

}  // namespace etc::sim
