// What a leader knows about one follower's log, and the flow-control state
// that decides when to send it more (Raft thesis 10.2, etcd's design):
//
//  - kProbe: the leader does not know where the follower's log matches. It
//    sends one append at a time and waits for the answer (or a heartbeat
//    reply) before the next, backing `next` off with the follower's hint.
//  - kReplicate: the logs match up to `match`. The leader streams appends
//    optimistically, bounded by the in-flight window.
//  - kSnapshot: the entries the follower needs are compacted; a snapshot is
//    on its way and nothing else is sent until it is reported.
#ifndef ETC_RAFT_TRACKER_PROGRESS_H_
#define ETC_RAFT_TRACKER_PROGRESS_H_

#include <cstdint>
#include <string>

#include "raft/quorum/quorum.h"
#include "raft/tracker/inflights.h"

namespace etc::raft::tracker {

enum class ProgressState { kProbe, kReplicate, kSnapshot };

const char* ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(Index next, size_t max_inflight_msgs, uint64_t max_inflight_bytes, bool is_learner);

  // Highest index known to be in the follower's log (durably).
  Index match = 0;
  // Next index to send. Invariant: match < next.
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  // kSnapshot: the index of the snapshot in flight.
  Index pending_snapshot = 0;
  // Heard from since the last CheckQuorum round.
  bool recent_active = false;
  // Hold back appends: in kProbe, one is in flight and unanswered; in
  // kReplicate, the in-flight window is full. A heartbeat answer clears it,
  // so that if every append in flight was lost, an empty append still goes
  // out, and its answer (acknowledgement or rejection) frees the window.
  bool paused = false;
  Inflights inflights;
  bool is_learner = false;
  // The highest commit index sent in an append; the follower's commit can
  // reach min(sent_commit, next - 1) from what is in flight.
  Index sent_commit = 0;
  // The latest heartbeat round of this term the follower acknowledged.
  uint64_t acked_heartbeat_round = 0;
  // kSnapshot: ticks spent waiting for the snapshot. A snapshot lost without
  // a report would otherwise stall the follower forever.
  int64_t snapshot_wait_ticks = 0;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // Records an append of `entry_count` entries (`bytes` of payload) sent
  // from `next`.
  void SentEntries(size_t entry_count, uint64_t bytes);
  // The follower acknowledged `index`. Returns whether match advanced.
  bool MaybeUpdate(Index index);
  // The follower rejected an append at `rejected`; `match_hint` is the
  // highest index that may still match. Returns false for a stale rejection.
  bool MaybeDecrTo(Index rejected, Index match_hint);
  // Whether the leader should hold back appends (heartbeats still go out).
  bool IsPaused() const;
  // Whether an append carrying `commit` could advance the follower's commit
  // index beyond what appends already in flight will.
  bool CanBumpCommit(Index commit) const {
    return commit > sent_commit && sent_commit < next - 1;
  }
  // Whether an append may carry entries (not just the commit index).
  bool CanSendEntries() const {
    return state != ProgressState::kReplicate || !inflights.Full();
  }

  // "StateReplicate match=5 next=6 inflight=1"
  std::string Describe() const;

 private:
  void ResetState(ProgressState state);
};

}  // namespace etc::raft::tracker

#endif  // ETC_RAFT_TRACKER_PROGRESS_H_
