#include "sim/disk.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace etc::sim {

namespace {

raft::Ready AsReady(const member::PersistRequest& request) {
  raft::Ready ready;
  ready.snapshot = request.snapshot;
  ready.entries = request.entries;
  ready.hard_state = request.hard_state;
  return ready;
}

}  // namespace

Disk::Disk(uint64_t node_id, EventQueue* queue, Trace* trace, Random random, DiskOptions options)
    : node_id_(node_id), queue_(queue), trace_(trace), random_(random), options_(options) {}

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
  pending_.push_back(PendingWrite{std::move(request), token});
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
  PendingWrite write = std::move(pending_.front());
  pending_.pop_front();
  durable_.Persist(AsReady(write.request));
  if (on_durable_) on_durable_(write.request.entries, durable_);
  trace_->Event("disk.sync", node_id_, write.token,
                [&] { return absl::StrCat(node_id_, " persisted write ", write.token); });
  if (on_persisted_) on_persisted_(write.token);
}

void Disk::SaveSnapshot(const raftpb::Snapshot& snapshot) {
  durable_.snapshot = snapshot;
}

void Disk::CompactLog(uint64_t index) {
  auto& entries = durable_.entries;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [index](const raftpb::Entry& e) { return e.index() <= index; }),
                entries.end());
}

void Disk::Crash() {
  if (!pending_.empty() && random_.Chance(options_.torn_write_probability)) {
    // The oldest write was partly on disk: its snapshot (written as a whole)
    // and a prefix of its entries, but not the hard state written after them.
    member::PersistRequest torn = std::move(pending_.front().request);
    size_t kept = torn.entries.empty() ? 0 : random_.Uniform(torn.entries.size() + 1);
    torn.entries.resize(kept);
    torn.hard_state.reset();
    durable_.Persist(AsReady(torn));
    if (on_durable_) on_durable_(torn.entries, durable_);
    trace_->Event("disk.torn", node_id_, kept,
                  [&] { return absl::StrCat(node_id_, " torn write kept ", kept, " entries"); });
  }
  pending_.clear();
  ++generation_;
  last_completion_us_ = queue_->now_us();
}

void Disk::Wipe() {
  Crash();
  durable_ = raft::MemoryStorage();
}

}  // namespace etc::sim
