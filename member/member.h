// A cluster member: the Raft core, the application state machine and the
// durable log, glued together. It runs the Ready loop (persist, then send,
// then apply, then advance), turns client writes into proposals and completes
// them when they are applied, serves linearizable reads through ReadIndex,
// takes snapshots, and changes the membership. It is driven entirely by its
// host through the methods below, from one thread, and never does I/O: the
// simulator and the server both host the very same code.
//
//   auto member = Member::Start(config, durable, &transport, &store, &machine);
//   (*member)->Write("put x 1", [](absl::StatusOr<std::string> result) { ... });
//   (*member)->Tick();                          // at a fixed interval
//   (*member)->Receive(message_from_peer);
//   (*member)->OnPersisted(token);              // when store.Persist finished
#ifndef ETC_MEMBER_MEMBER_H_
#define ETC_MEMBER_MEMBER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "member/interfaces.h"
#include "member/member.pb.h"
#include "raft/node.h"

namespace etc::member {

struct MemberConfig {
  raft::Config raft;
  // Distinguishes this run from earlier runs of the same member (see
  // memberpb.RequestId); any value that differs between restarts.
  uint64_t incarnation = 0;
  // Snapshot the state machine after this many applied entries (etcd's
  // --snapshot-count); 0 disables snapshots.
  uint64_t snapshot_every_entries = 10000;
  // Entries kept in the log behind a snapshot, so a slightly slow follower
  // catches up with appends instead of a whole snapshot.
  uint64_t catch_up_entries = 5000;
  // After learning it was removed, a member keeps taking part in Raft (but
  // serves no clients) for this many ticks before asking its host to shut it
  // down: until the others apply the removal they may still need its vote
  // (etcd stops a removed member after a one-second delay for the same reason).
  int64_t removal_grace_ticks = 20;
  // A proposal forwarded to the leader and refused there is proposed again
  // on every tick (a copy may already be in the log, so failing it would not
  // be honest), until it is applied or this many ticks pass; then it fails
  // with kDeadlineExceeded: its outcome is unknown.
  int64_t refused_retry_ticks = 50;
};

// The result of a write, read or membership change: the state machine's
// answer, or why the request failed. kUnavailable means it certainly did not
// take effect (the caller may retry); a request that gets no answer may or
// may not have.
using Callback = std::function<void(absl::StatusOr<std::string>)>;

class Member {
 public:
  // Restores the state machine from the durable snapshot and starts Raft.
  static absl::StatusOr<std::unique_ptr<Member>> Start(MemberConfig config,
                                                       raft::DurableState durable,
                                                       Transport* transport, LogStore* store,
                                                       StateMachine* machine);

  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // ---- inputs from the host ----
  void Tick();
  // A message from a peer; malformed ones are rejected with an error.
  absl::Status Receive(const raftpb::Message& message);
  // The store finished the Persist call that carried `token`.
  void OnPersisted(uint64_t token);

  // ---- client requests; `done` is called exactly once ----
  // Proposes `command`; done gets the state machine's result once applied.
  void Write(std::string command, Callback done);
  // A linearizable read: answered after the read index is applied.
  void Read(std::string query, Callback done);
  // Proposes a membership change; done gets the new configuration.
  void ChangeMembership(raftpb::ConfChange change, Callback done);
  // The same, and (when applied) sets the attributes of the member the
  // change's first step adds or promotes.
  void ChangeMembership(raftpb::ConfChange change, std::string attributes, Callback done);
  // Replaces the attributes of member `member_id` through the log, without
  // changing the configuration. Fails (when applied) with kNotFound if the
  // member is not in the configuration.
  void UpdateAttributes(raft::NodeId member_id, std::string attributes, Callback done);
  absl::Status TransferLeadership(raft::NodeId target);
  absl::Status Campaign();
  // Snapshots the state machine and compacts the log now, instead of
  // waiting for snapshot_every_entries (unless a snapshot is being taken).
  void SnapshotNow();
  // A snapshot is being taken in the background.
  bool snapshot_in_progress() const { return snapshot_in_progress_.has_value(); }

  // ---- observation ----
  // Called for every committed entry this member applies, in order (for
  // metrics and checkers; it must not call back into the member).
  void set_apply_observer(std::function<void(const raftpb::Entry&)> observer) {
    apply_observer_ = std::move(observer);
  }
  raft::NodeStatus Status() const { return node_.Status(); }
  // Replicated: the attributes of the members of the applied configuration
  // (members without any are absent).
  const std::map<raft::NodeId, std::string>& attributes() const { return attributes_; }
  // Grows whenever the applied configuration or any attributes change.
  uint64_t membership_version() const { return membership_version_; }
  // The snapshot data a new cluster starts from (with MemoryStorage's
  // bootstrap snapshot): these attributes, and the application's state
  // (empty: the empty state; else a StateMachine::Snapshot, to start a new
  // cluster from a backup).
  static std::string BootstrapData(const std::map<raft::NodeId, std::string>& attributes,
                                   std::string_view application = {});
  const raft::Node& node() const { return node_; }
  raft::NodeId id() const { return config_.raft.id; }
  uint64_t applied_index() const { return applied_index_; }
  // Requests waiting for an answer.
  size_t pending_requests() const { return pending_.size() + reads_.size(); }
  // Refused proposals waiting to be proposed again.
  size_t refused_proposals() const { return refused_.size(); }
  // Member ids removed from the cluster by committed changes; their messages
  // are answered with MSG_REMOVED and otherwise dropped.
  const std::set<raft::NodeId>& removed_members() const { return removed_; }
  // This member learned it was removed (its own removal was applied, or a
  // peer said so). It refuses client requests from then on.
  bool removed_from_cluster() const { return removed_from_cluster_; }
  // A peer confirmed it applied the removal (so it is committed, and the
  // new configuration can go on without this member, even if it still
  // leads to spread the commit) and the grace period is over: the host
  // should shut it down for good.
  // Until a peer confirms, a removed member keeps running (and asks every
  // election timeout): the others may need its vote to commit its removal.
  bool ShouldShutDown() const {
    return removed_from_cluster_ && removal_confirmed_ &&
           ticks_since_removal_ >= config_.removal_grace_ticks;
  }
  void CheckInvariants() { node_.CheckInvariants(); }

 private:
  Member(MemberConfig config, raft::Node node, Transport* transport, LogStore* store,
         StateMachine* machine);

  // Runs the Ready loop as far as it goes without waiting for the store.
  void Pump();
  void FinishReady();
  void Apply(const raftpb::Entry& entry);
  void Propose(memberpb::Proposal proposal, Callback done);
  void ApplyConfChange(const raftpb::Entry& entry);
  void ApplyAttributes(const memberpb::Proposal& proposal);
  void AnswerReads();
  // Sends the unbatched reads' ReadIndex if none is outstanding; `retry`
  // first folds the outstanding batch back in (its answer may be lost).
  void SendReadBatch(bool retry = false);
  void MaybeSnapshot();
  // Starts a snapshot at the applied index (StateMachine::SnapshotAsync);
  // FinishSnapshot makes it the Raft snapshot once the data is there.
  void TakeSnapshot();
  void FinishSnapshot(uint64_t generation, absl::StatusOr<std::string> snapshot_data);
  // Compacts the log a step further toward compact_goal_.
  void CompactSome();
  // Restores the state machine and the removed members from snapshot data.
  absl::Status RestoreSnapshot(const std::string& data);
  // Whether RestoreSnapshot would accept `data` (changing nothing).
  absl::Status CheckSnapshotData(const std::string& data) const;
  memberpb::RequestId NextRequestId();
  void Complete(const memberpb::RequestId& id, absl::StatusOr<std::string> result);
  bool IsMine(const memberpb::RequestId& id) const;
  // The leader refused a proposal this member forwarded.
  void OnRefused(const raftpb::Entry& entry, const std::string& reason);
  void ProbeRemoval();
  void SendRemovedNotice(raft::NodeId to);
  // Whether a notice to `removed` may confirm its removal (kRemovalConfirmed).
  bool CanConfirmRemoval(raft::NodeId removed) const;
  // A voter of the configuration this member applied last.
  bool IsVoter() const;
  // After a snapshot was restored: fails the pending proposals it covers.
  void CompleteRestoredRequests();
  void ProposeRefusedAgain();
  // Records that the proposal `id` is being applied; false if a copy of it
  // was applied before, or it is too old to tell (see AppliedRequests).
  bool Admit(const memberpb::RequestId& id);

  MemberConfig config_;
  raft::Node node_;
  Transport* transport_;
  LogStore* store_;
  StateMachine* machine_;

  // The Ready being persisted, if any, and the token the store will report.
  std::optional<raft::Ready> in_flight_;
  uint64_t next_persist_token_ = 1;

  int64_t ticks_ = 0;
  // Proposal sequences; dense, so that the applied ones are summarised by
  // a prefix (see memberpb.AppliedRequests).
  uint64_t next_sequence_ = 1;
  uint64_t next_read_sequence_ = 1;
  struct PendingProposal {
    Callback done;
    // The serialized memberpb.Proposal, to propose again if refused (empty
    // for membership changes).
    std::string proposal;
    // When the leader first refused it.
    std::optional<int64_t> refused_at_tick;
  };
  // Writes and membership changes waiting to be applied, by sequence.
  std::map<uint64_t, PendingProposal> pending_;
  // Sequences of refused proposals to propose again on the next tick.
  std::set<uint64_t> refused_;
  struct PendingRead {
    std::string query;
    Callback done;
    // Set once the read index arrived.
    std::optional<uint64_t> read_index;
  };
  std::map<uint64_t, PendingRead> reads_;
  // Reads share ReadIndex requests, as etcd's do: the reads that arrive
  // while one is outstanding wait (unbatched) and go together in the next,
  // so a burst of reads costs one round, not one each. At most one batch is
  // outstanding: its context and its reads' sequences.
  std::vector<uint64_t> unbatched_reads_;
  std::optional<uint64_t> read_batch_;
  std::vector<uint64_t> read_batch_reads_;
  uint64_t next_read_batch_ = 1;
  int64_t read_batch_sent_tick_ = 0;
  raft::NodeId known_leader_ = raft::kNoNode;

  uint64_t applied_index_ = 0;
  uint64_t snapshot_index_ = 0;
  // The snapshot being taken: the index it is of, and the member's own
  // part of it as of that index (the state machine's part comes later).
  struct SnapshotInProgress {
    uint64_t index = 0;
  };
  std::optional<SnapshotInProgress> snapshot_in_progress_;
  // Tells a finishing snapshot whether it is still the one in progress
  // (a snapshot from the leader replaces the state it was of).
  uint64_t snapshot_generation_ = 0;
  // After a snapshot that could not be taken, the next try waits for this
  // applied index.
  uint64_t snapshot_retry_index_ = 0;
  // The log is compacted up to here, a step at a time (0: nothing to do).
  uint64_t compact_goal_ = 0;
  std::set<raft::NodeId> removed_;
  // The index of the entry that removed each of them (0: before a snapshot
  // this member restored, hence durable).
  std::map<raft::NodeId, uint64_t> removed_at_;
  // The commit index of the newest hard state handed to the store, with
  // the in-flight request's, and the newest known durable (fsynced).
  uint64_t written_commit_ = 0;
  uint64_t in_flight_commit_ = 0;
  uint64_t synced_commit_ = 0;
  // A hard-state-only synced write (no Ready) is in flight, or wanted.
  bool sync_in_flight_ = false;
  bool sync_wanted_ = false;
  // Removed members to confirm to once that write is done.
  std::set<raft::NodeId> confirm_after_sync_;
  // Replicated: per proposing member, which proposals of its latest
  // incarnation were applied (every sequence through `through`, and
  // `above`). At most kMaxOutOfOrder sequences are kept above `through`.
  struct AppliedRequests {
    uint64_t incarnation = 0;
    uint64_t through = 0;
    std::set<uint64_t> above;
  };
  std::map<raft::NodeId, AppliedRequests> applied_requests_;
  std::map<raft::NodeId, std::string> attributes_;
  uint64_t membership_version_ = 0;
  bool removed_from_cluster_ = false;
  int64_t ticks_since_removal_ = 0;
  bool removal_confirmed_ = false;
  std::function<void(const raftpb::Entry&)> apply_observer_;
};

}  // namespace etc::member

#endif  // ETC_MEMBER_MEMBER_H_
