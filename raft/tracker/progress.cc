#include "raft/tracker/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace etc::raft::tracker {

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "StateProbe";
    case ProgressState::kReplicate:
      return "StateReplicate";
    case ProgressState::kSnapshot:
      return "StateSnapshot";
  }
  return "StateUnknown";
}

Progress::Progress(Index next_index, size_t max_inflight_msgs, uint64_t max_inflight_bytes,
                   bool learner)
    : next(next_index), inflights(max_inflight_msgs, max_inflight_bytes), is_learner(learner) {
  ETC_CHECK_GE(next_index, 1u);
}

void Progress::ResetState(ProgressState new_state) {
  paused = false;
  pending_snapshot = 0;
  snapshot_wait_ticks = 0;
  state = new_state;
  inflights.Reset();
}

void Progress::BecomeProbe() {
  if (state == ProgressState::kSnapshot) {
    // The snapshot may have arrived even if nobody said so; start probing
    // after it, and fall back from there on rejection.
    Index pending = pending_snapshot;
    ResetState(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next = match + 1;
  }
  // Whatever was sent beyond the new `next` may be lost.
  sent_commit = std::min(sent_commit, next - 1);
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
  next = snapshot_index + 1;
}

void Progress::SentEntries(size_t entry_count, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entry_count > 0) {
        Index last = next + entry_count - 1;
        inflights.Add(last, bytes);
        next = last + 1;
      }
      paused = inflights.Full();
      break;
    case ProgressState::kProbe:
      paused = true;
      break;
    case ProgressState::kSnapshot:
      ETC_CHECK(false) << "sending entries to a follower waiting for a snapshot";
  }
}

bool Progress::MaybeUpdate(Index index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    paused = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint) {
  if (state == ProgressState::kReplicate) {
    // Rejections of indexes already acknowledged are stale (reordered).
    if (rejected <= match) return false;
    // In replicate state the logs matched at `match`: restart from there.
    next = match + 1;
    sent_commit = std::min(sent_commit, next - 1);
    return true;
  }
  // In probe state only the answer to the one append in flight counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  sent_commit = std::min(sent_commit, next - 1);
  paused = false;
  return true;
}

bool Progress::IsPaused() const {
  return state == ProgressState::kSnapshot || paused;
}

std::string Progress::Describe() const {
  std::string out = absl::StrCat(ProgressStateName(state), " match=", match, " next=", next);
  if (is_learner) absl::StrAppend(&out, " learner");
  if (paused) absl::StrAppend(&out, " paused");
  if (state == ProgressState::kSnapshot) absl::StrAppend(&out, " pending_snap=", pending_snapshot);
  if (!recent_active) absl::StrAppend(&out, " inactive");
  if (inflights.count() > 0) {
    absl::StrAppend(&out, " inflight=", inflights.count());
    if (inflights.Full()) absl::StrAppend(&out, "[full]");
  }
  return out;
}

}  // namespace etc::raft::tracker
