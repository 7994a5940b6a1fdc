// The Raft protocol state machine (Ongaro's thesis, with etcd-io/raft's
// PreVote, CheckQuorum, flow control and joint consensus). Internal to
// //raft: applications use Node (node.h), which adds the Ready/Advance
// durability protocol on top.
//
// Everything here is deterministic: inputs are messages, ticks and calls;
// outputs are queued messages and state changes; randomness comes from a
// seeded Rng. There is no I/O.
#ifndef ETC_RAFT_RAFT_H_
#define ETC_RAFT_RAFT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/config.h"
#include "raft/log.h"
#include "raft/raftpb.pb.h"
#include "raft/rng.h"
#include "raft/tracker/tracker.h"

namespace etc::raft {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };

const char* RoleName(Role role);

// The answer to a ReadIndex request: reads that see every entry up to
// `index` are linearizable once the application has applied `index`.
struct ReadState {
  Index index = 0;
  std::string context;
  friend bool operator==(const ReadState&, const ReadState&) = default;
};

// A proposal the leader refused after a follower forwarded it, returned so
// the proposer learns its outcome instead of waiting for a timeout.
struct DroppedProposal {
  raftpb::Entry entry;
  std::string reason;
};

// What survives a crash, as the application last persisted it.
struct DurableState {
  raftpb::HardState hard_state;
  // The latest snapshot. A new cluster's members start from one at index 1
  // (term 1) whose conf_state lists the initial voters (see
  // MemoryStorage::Bootstrap); a member joining an existing cluster starts
  // from an empty one and learns its configuration from the leader.
  raftpb::Snapshot snapshot;
  // Every persisted entry after the snapshot.
  std::vector<raftpb::Entry> entries;
  // If the application's state machine is durable on its own (not rebuilt
  // from the snapshot), the index it reflects and the configuration at that
  // index. Otherwise applied_index is the snapshot's index.
  std::optional<Index> applied_index;
  std::optional<raftpb::ConfState> applied_conf_state;
  // Recovery found damage and kept only what it could prove intact: the
  // log may have lost entries this member acknowledged. The member starts
  // repairing (see Raft::repairing) instead of serving from it.
  bool damaged = false;

  // The index of the last entry it holds (the snapshot's if none follow).
  Index last_index() const {
    return entries.empty() ? snapshot.metadata().index() : entries.back().index();
  }
};

class Raft {
 public:
  // Validates `durable` and `config`; a malformed durable state is an error.
  static absl::StatusOr<Raft> Create(Config config, DurableState durable);

  // ---- inputs ----
  void Tick();
  // A message from a peer. Local-only events have their own methods.
  absl::Status Step(const raftpb::Message& message);
  absl::Status Campaign();
  absl::Status Propose(std::vector<std::string> payloads);
  absl::Status ProposeConfChange(const raftpb::ConfChange& change);
  absl::Status ReadIndex(std::string context);
  absl::Status TransferLeadership(NodeId target);
  void ReportUnreachable(NodeId id);
  void ReportSnapshot(NodeId id, bool applied);
  // Called by the application when it applies a committed conf change entry.
  absl::StatusOr<raftpb::ConfState> ApplyConfChange(const raftpb::ConfChange& change);
  // Returns the snapshot with its data, for the application to persist;
  // the node itself keeps only the metadata (see snapshot()).
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> CreateSnapshot(Index index,
                                                                         std::string data);
  absl::Status Compact(Index index);

  // ---- output plumbing for Node ----
  // Sends what was deferred for batching (appends of new proposals, the
  // heartbeat round confirming new reads).
  void FlushBroadcasts();
  bool HasPendingBroadcasts() const {
    return appends_pending_ || commit_pending_ || read_round_pending_;
  }
  std::vector<raftpb::Message> TakeMessages();
  std::vector<ReadState> TakeReadStates();
  std::vector<DroppedProposal> TakeDroppedProposals();
  bool HasOutput() const {
    return !messages_.empty() || !read_states_.empty() || !dropped_proposals_.empty();
  }
  std::shared_ptr<const raftpb::Snapshot> unstable_snapshot() const { return unstable_snapshot_; }
  // The metadata of the latest snapshot this node holds (null if it never
  // had one past index 0), without its data: the application persisted the
  // data and attaches it to the MSG_SNAP messages that leave (a key tree's
  // snapshot is hundreds of megabytes; keeping a second copy in memory for
  // the rare follower that needs it would double the member's footprint).
  std::shared_ptr<const raftpb::Snapshot> snapshot() const { return snapshot_; }
  // The application persisted and applied the unstable snapshot.
  void SnapshotPersisted(Index index);
  // Entries up to (index, term) are durable; see RaftLog::StableTo.
  void EntriesPersisted(Index index, Term term);
  // The application applied every committed entry up to `index`.
  void EntriesApplied(Index index);

  // ---- read-only state ----
  NodeId id() const { return config_.id; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  const RaftLog& log() const { return log_; }
  const tracker::ProgressTracker& tracker() const { return tracker_; }
  const Config& config() const { return config_; }
  raftpb::HardState hard_state() const;
  // Whether this member is a voter (it may campaign).
  bool Promotable() const;
  // A leader removed from the configuration, finishing its hand-over.
  bool leaving() const { return leaving_index_ != 0; }
  // Whether a lease read would be answered now (for observability).
  bool LeaseValid() const;
  // Repair of damaged storage (raft_repair.cc): this member started from a
  // log that may have lost entries it acknowledged, so it neither votes nor
  // campaigns until its log again holds the leader's log up to the leader's
  // last index when that leader forgot its acknowledgements.
  bool repairing() const { return repairing_; }
  // The leader's last index this member must hold to finish (0: no leader
  // answered yet in this term).
  Index repair_target() const { return repair_target_; }
  // Repair can never finish: a quorum of voters is repairing and no leader
  // was heard for kMajorityDamagedRounds probe rounds in a row.
  bool majority_damaged() const { return majority_damaged_; }
  // Probe rounds (one per election timeout) before majority_damaged.
  static constexpr int kMajorityDamagedRounds = 3;

  // Crashes with a description if any invariant is broken. Called after
  // every input in debug and test builds.
  void CheckInvariants();

 private:
  explicit Raft(Config config, const DurableState& durable);
  // Create's last steps, on a durable state it checked: the configuration
  // (kDataLoss if malformed), then the log.
  absl::Status RestoreConfig(const raftpb::ConfState& conf);
  void RestoreLog(std::vector<raftpb::Entry> entries, Index last, Term last_term, Index committed,
                  Index applied);

  // Roles.
  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(Term term);
  void ResetRandomizedElectionTimeout();
  enum class CampaignKind { kPreElection, kElection, kTransfer };
  void Hup(CampaignKind kind);
  void StartCampaign(CampaignKind kind);
  void Poll(NodeId from, bool granted);

  // Dispatch: term checks, then the role's handler.
  absl::Status StepTerm(const raftpb::Message& m, bool* consumed);
  void HandleVoteRequest(const raftpb::Message& m);
  absl::Status StepLeader(const raftpb::Message& m);
  absl::Status StepCandidate(const raftpb::Message& m);
  absl::Status StepFollower(const raftpb::Message& m);

  // Follower handlers.
  void RefuseForwardedProposal(const raftpb::Message& m, const std::string& reason);
  absl::Status HandleAppendEntries(const raftpb::Message& m);
  absl::Status HandleHeartbeat(const raftpb::Message& m);
  absl::Status HandleSnapshot(const raftpb::Message& m);
  // Drops pending acknowledgements of entries from `from` on, which a newer
  // append or snapshot just replaced in memory.
  void WithdrawAppendAcks(Index from);
  void HandleTimeoutNow(const raftpb::Message& m);

  // Repair (raft_repair.cc).
  void TickRepair();
  void HandleRepairProbe(const raftpb::Message& m);
  void HandleRepairResponse(const raftpb::Message& m);
  // The leader of this term confirmed that our log matches its own through
  // `index` (an append or snapshot it sent was accepted).
  void MaybeFinishRepair(Index index);

  // Leader handlers and replication.
  absl::Status HandleProposal(NodeId from, std::vector<raftpb::Entry> entries);
  absl::Status CheckConfChangeProposal(const raftpb::Entry& entry) const;
  absl::Status HandleAppendResponse(const raftpb::Message& m, tracker::Progress& pr);
  void HandleHeartbeatResponse(const raftpb::Message& m, tracker::Progress& pr);
  absl::Status HandleReadIndex(NodeId from, std::string context);
  absl::Status HandleTransferLeader(NodeId target);
  bool MaybeSendAppend(NodeId to, bool send_if_empty);
  bool SendSnapshot(NodeId to, tracker::Progress& pr);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  void SendTimeoutNow(NodeId to);
  bool MaybeCommit();
  void AppendLeaderEntries(std::vector<raftpb::Entry> entries);
  void AbortLeaderTransfer();
  void TickElection();
  void TickHeartbeat();
  void ReleaseReads();
  void RespondToRead(NodeId to, Index index, std::string context);
  bool CommittedEntryInCurrentTerm() const;
  bool HasUnappliedConfChanges() const;
  void SwitchToConfig(tracker::Config config, tracker::ProgressMap progress);
  // The leader's own progress, or null while it is leaving the cluster.
  tracker::Progress* SelfProgress();
  void MaybeFinishLeaving();
  void MaybeAutoLeaveJoint();
  // Ticks until this member would vote for another candidate (0: it would).
  int64_t LeaseRemainingTicks() const;

  void Send(raftpb::Message m);
  void Log(const std::string& line) const;

  Config config_;
  Rng rng_;

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  RaftLog log_;
  tracker::ProgressTracker tracker_;

  // The latest snapshot's metadata (its data cleared), sent to followers
  // whose entries are compacted.
  std::shared_ptr<const raftpb::Snapshot> snapshot_;
  // A snapshot received from the leader, not yet persisted and applied.
  std::shared_ptr<const raftpb::Snapshot> unstable_snapshot_;
  // Index of the last conf change entry the application applied.
  Index conf_applied_index_ = 0;
  // A leader whose own removal it has applied keeps leading (not counting
  // itself) until a quorum of the new configuration acknowledged a heartbeat
  // round telling them the removal committed: until they apply it, they still
  // count this member in their quorums. The index of that change, 0 if not
  // leaving, and the first heartbeat round sent after it.
  Index leaving_index_ = 0;
  uint64_t leaving_round_ = 0;
  // A TimeoutNow that arrived while committed conf changes were still to be
  // applied: the campaign it asked for starts once they are, if this node
  // still follows the same leader in the same term.
  bool transfer_campaign_deferred_ = false;

  std::vector<raftpb::Message> messages_;
  std::vector<ReadState> read_states_;
  std::vector<DroppedProposal> dropped_proposals_;

  // Ticks since this node started; only differences matter.
  int64_t now_ticks_ = 0;
  int64_t election_elapsed_ticks_ = 0;
  int64_t heartbeat_elapsed_ticks_ = 0;
  int64_t randomized_election_timeout_ticks_ = 0;

  // Leader state.
  NodeId lead_transferee_ = kNoNode;
  // No conf change may be proposed until the entry at this index is applied.
  Index pending_conf_index_ = 0;
  uint64_t uncommitted_payload_bytes_ = 0;
  bool appends_pending_ = false;
  // The commit index advanced; followers hear of it at the next flush.
  bool commit_pending_ = false;
  // After a TimeoutNow, a late election could depose this leader at any
  // moment, so it never serves lease reads again in this term.
  bool timeout_now_sent_ = false;

  // ReadIndex: each heartbeat broadcast is a numbered round; a read taken at
  // round r is confirmed once a quorum acknowledged a round >= r.
  struct PendingRead {
    uint64_t round = 0;
    Index index = 0;
    NodeId requester = kNoNode;
    std::string context;
  };
  uint64_t heartbeat_round_ = 0;
  bool read_round_pending_ = false;
  std::deque<PendingRead> pending_reads_;
  // Reads that arrived before this leader committed an entry of its term.
  std::deque<PendingRead> reads_awaiting_commit_;
  // Send tick of each heartbeat round not yet acknowledged by a quorum, and
  // of the newest one that is; the lease runs from the latter.
  std::deque<std::pair<uint64_t, int64_t>> round_sent_ticks_;
  std::optional<int64_t> lease_start_tick_;

  // For CheckInvariants: what this node saw before.
  Term checked_term_ = 0;
  Index checked_commit_ = 0;
  NodeId checked_leader_ = kNoNode;
  Term checked_leader_term_ = 0;
  // The commit index when this node last became leader: past it, a leader
  // only ever commits by counting entries of its own term (Figure 8).
  Index commit_at_election_ = 0;

  // Repair state (see repairing()). The target and how far the log is
  // confirmed to match hold for the current term only.
  bool repairing_ = false;
  Index repair_target_ = 0;
  Index repair_confirmed_ = 0;
  int64_t repair_probe_elapsed_ticks_ = 0;
  bool repair_probe_sent_ = false;
  // Voters that said they are repairing, since a leader was last heard.
  std::set<NodeId> repairing_peers_;
  int repair_rounds_without_leader_ = 0;
  // A leader's append, heartbeat or snapshot arrived in this probe round.
  // Not the election timer: a candidate's higher term resets that too, and
  // a healthy minority without PreVote campaigns every timeout.
  bool repair_leader_heard_ = false;
  bool majority_damaged_ = false;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_RAFT_H_
