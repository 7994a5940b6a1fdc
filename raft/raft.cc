// Creation, roles, message dispatch, local inputs, ticks, snapshots and
// application. Campaigns and votes are raft_election.cc, leader-side
// replication raft_leader.cc, follower-side handling raft_follower.cc,
// configuration changes raft_membership.cc, the invariants
// raft_invariants.cc.
#include "raft/raft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "raft/confchange/confchange.h"
#include "raft/describe.h"

namespace etc::raft {
namespace {

// A copy of a snapshot's metadata without its data (see Raft::snapshot()).
std::shared_ptr<const raftpb::Snapshot> MetadataOnly(const raftpb::Snapshot& snapshot) {
  auto copy = std::make_shared<raftpb::Snapshot>();
  *copy->mutable_metadata() = snapshot.metadata();
  return copy;
}

// Where the persisted log ends: its last entry, or the snapshot if no entry
// follows it.
struct LogEnd {
  Index index = 0;
  Term term = 0;
};

absl::Status CheckSnapshotMetadata(const raftpb::SnapshotMetadata& meta) {
  if (meta.index() > 0 && meta.term() == 0) {
    return absl::DataLossError("snapshot has an index but no term");
  }
  if (meta.index() == 0 && meta.conf_state().voters_size() > 0) {
    // A snapshot at index 0 is never sent, so a member joining later would
    // never learn this configuration and would disagree with the others.
    return absl::InvalidArgumentError(
        "an initial configuration needs a snapshot at index >= 1 (see MemoryStorage::Bootstrap)");
  }
  return absl::OkStatus();
}

// Entries the snapshot already covers are skipped, never replayed onto it
// (raft-traps #12); the one at the snapshot's index must agree with it.
absl::Status DropEntriesTheSnapshotCovers(DurableState& durable) {
  const raftpb::SnapshotMetadata& meta = durable.snapshot.metadata();
  auto first_new = durable.entries.begin();
  while (first_new != durable.entries.end() && first_new->index() <= meta.index()) {
    if (first_new->index() == meta.index() && first_new->term() != meta.term()) {
      return absl::DataLossError(absl::StrCat("log entry ", meta.index(), " has term ",
                                              first_new->term(), " but the snapshot says ",
                                              meta.term()));
    }
    ++first_new;
  }
  durable.entries.erase(durable.entries.begin(), first_new);
  return absl::OkStatus();
}

// The entries after the snapshot follow it and each other without a gap,
// in terms that never go down, and are of known types.
absl::StatusOr<LogEnd> CheckEntriesFollowSnapshot(const raftpb::SnapshotMetadata& meta,
                                                  const std::vector<raftpb::Entry>& entries) {
  LogEnd end{meta.index(), meta.term()};
  for (const raftpb::Entry& entry : entries) {
    if (entry.index() != end.index + 1) {
      return absl::DataLossError(absl::StrCat("log entry ", entry.index(), " follows ", end.index,
                                              ": the persisted log has a gap"));
    }
    if (entry.term() < end.term) {
      return absl::DataLossError(absl::StrCat("log entry ", entry.index(), " has term ",
                                              entry.term(), " below its predecessor's"));
    }
    if (entry.type() != raftpb::ENTRY_NORMAL && entry.type() != raftpb::ENTRY_CONF_CHANGE) {
      return absl::DataLossError(absl::StrCat("log entry ", entry.index(), " has unknown type"));
    }
    end = LogEnd{entry.index(), entry.term()};
  }
  return end;
}

// A torn write can leave a Ready's entries durable without its hard state
// (they are written first), so the persisted term may trail the log's.
// Everything in that Ready was unsent, including any vote, so continuing
// in the log's term with no vote is safe.
raftpb::HardState RestoredHardState(const raftpb::HardState& persisted, Term last_term) {
  raftpb::HardState restored = persisted;
  if (restored.term() < last_term) {
    restored.set_term(last_term);
    restored.set_vote(kNoNode);
  }
  return restored;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "StateFollower";
    case Role::kPreCandidate:
      return "StatePreCandidate";
    case Role::kCandidate:
      return "StateCandidate";
    case Role::kLeader:
      return "StateLeader";
  }
  return "StateUnknown";
}

absl::Status Config::Validate() const {
  if (id == kNoNode) return absl::InvalidArgumentError("node id must not be 0");
  if (heartbeat_interval_ticks <= 0) {
    return absl::InvalidArgumentError("heartbeat interval must be at least one tick");
  }
  if (election_timeout_ticks <= heartbeat_interval_ticks) {
    return absl::InvalidArgumentError("election timeout must be longer than the heartbeat interval");
  }
  if (max_inflight_msgs <= 0) return absl::InvalidArgumentError("max_inflight_msgs must be positive");
  if (max_append_payload_bytes == 0) {
    return absl::InvalidArgumentError("max_append_payload_bytes must be positive");
  }
  if (max_inflight_payload_bytes != 0 && max_inflight_payload_bytes < max_append_payload_bytes) {
    return absl::InvalidArgumentError(
        "max_inflight_payload_bytes must be 0 or at least max_append_payload_bytes");
  }
  if (read_only == ReadOnlyOption::kLeaseBased) {
    if (!check_quorum) {
      return absl::InvalidArgumentError("lease-based reads need check_quorum");
    }
    if (lease_clock_drift_max_percent < 0) {
      return absl::InvalidArgumentError("the clock drift bound must not be negative");
    }
    if (LeaseTicks() <= 0) {
      return absl::InvalidArgumentError("election timeout too short for a lease under this drift");
    }
  }
  return absl::OkStatus();
}

int64_t Config::LeaseTicks() const {
  // A follower that acknowledged a heartbeat sent at leader tick T votes for
  // nobody else for election_timeout of its own ticks, i.e. at least
  // (election_timeout - 1) of its tick periods after T. The leader's tick
  // period may be up to (1 + drift) times a follower's, and its own tick
  // count lags real time by up to one period.
  return (election_timeout_ticks - 1) * 100 / (100 + lease_clock_drift_max_percent);
}

absl::StatusOr<Raft> Raft::Create(Config config, DurableState durable) {
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  const raftpb::SnapshotMetadata& meta = durable.snapshot.metadata();
  if (absl::Status status = CheckSnapshotMetadata(meta); !status.ok()) return status;
  if (absl::Status status = DropEntriesTheSnapshotCovers(durable); !status.ok()) return status;
  absl::StatusOr<LogEnd> end = CheckEntriesFollowSnapshot(meta, durable.entries);
  if (!end.ok()) return end.status();
  if (durable.hard_state.commit() > end->index) {
    return absl::DataLossError(absl::StrCat("hard state commits ", durable.hard_state.commit(),
                                            " but the log ends at ", end->index));
  }
  const raftpb::HardState hs = RestoredHardState(durable.hard_state, end->term);
  Index applied = durable.applied_index.value_or(meta.index());
  if (applied < meta.index() || applied > std::max(hs.commit(), meta.index())) {
    return absl::InvalidArgumentError(absl::StrCat("applied index ", applied, " outside [",
                                                   meta.index(), ", ", hs.commit(), "]"));
  }
  Raft raft(std::move(config), durable);
  const raftpb::ConfState& conf =
      durable.applied_conf_state.has_value() ? *durable.applied_conf_state : meta.conf_state();
  if (absl::Status status = raft.RestoreConfig(conf); !status.ok()) return status;
  raft.RestoreLog(std::move(durable.entries), end->index, end->term,
                  std::max(hs.commit(), meta.index()), applied);
  raft.BecomeFollower(hs.term(), kNoNode);
  raft.vote_ = hs.vote();
  raft.repairing_ = durable.damaged;
  raft.checked_term_ = raft.term_;
  raft.checked_commit_ = raft.log_.committed();
  raft.Log(absl::StrCat(raft.id(), " started at term ", raft.term_, " with ",
                        raft.tracker_.config.Describe(), ", commit ", raft.log_.committed(),
                        ", applied ", applied, ", last ", raft.log_.last_index()));
  return raft;
}

absl::Status Raft::RestoreConfig(const raftpb::ConfState& conf) {
  absl::StatusOr<confchange::Changed> restored =
      confchange::Restore(conf, tracker::ProgressTracker(tracker_.max_inflight_msgs(),
                                                         tracker_.max_inflight_bytes()),
                          log_.last_index());
  if (!restored.ok()) {
    return absl::DataLossError(absl::StrCat("persisted configuration: ", restored.status().message()));
  }
  tracker_.config = std::move(restored->config);
  tracker_.progress = std::move(restored->progress);
  return absl::OkStatus();
}

void Raft::RestoreLog(std::vector<raftpb::Entry> entries, Index last, Term last_term,
                      Index committed, Index applied) {
  log_.Append(std::move(entries));
  log_.StableTo(last, last_term);
  log_.CommitTo(committed);
  log_.AppliedTo(applied);
  conf_applied_index_ = applied;
}

Raft::Raft(Config config, const DurableState& durable)
    : config_(std::move(config)),
      rng_(config_.random_seed * 0x100000001b3ULL + config_.id),
      log_(durable.snapshot.metadata().index(), durable.snapshot.metadata().term()),
      tracker_(static_cast<size_t>(config_.max_inflight_msgs), config_.max_inflight_payload_bytes) {
  if (durable.snapshot.metadata().index() > 0) snapshot_ = MetadataOnly(durable.snapshot);
}

raftpb::HardState Raft::hard_state() const {
  raftpb::HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

bool Raft::Promotable() const {
  // A learner that was promoted by a conf change it has applied is a voter
  // now and must campaign (raft-traps #16): ask the configuration, not a flag.
  // A node waiting for a snapshot has no trustworthy configuration yet.
  return tracker_.IsVoter(id()) && unstable_snapshot_ == nullptr;
}

void Raft::Log(const std::string& line) const {
  if (config_.log_sink) config_.log_sink(line);
}

void Raft::Send(raftpb::Message m) {
  m.set_from(id());
  ETC_CHECK_NE(m.to(), id()) << "sending a message to self: " << DescribeMessage(m);
  // Forwarded proposals and reads carry no term: they are not part of the
  // election protocol and must not move anybody's term.
  if (m.type() != raftpb::MSG_PROP && m.type() != raftpb::MSG_READ_INDEX &&
      m.type() != raftpb::MSG_PROP_RESP && m.type() != raftpb::MSG_VOTE &&
      m.type() != raftpb::MSG_PRE_VOTE && m.type() != raftpb::MSG_VOTE_RESP &&
      m.type() != raftpb::MSG_PRE_VOTE_RESP) {
    m.set_term(term_);
  }
  messages_.push_back(std::move(m));
}

// ---------------------------------------------------------------- roles --

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
    // A repair target is the leader's of one term (see raft_repair.cc).
    repair_target_ = 0;
    repair_confirmed_ = 0;
  }
  lead_ = kNoNode;
  election_elapsed_ticks_ = 0;
  heartbeat_elapsed_ticks_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  for (auto& [node, pr] : tracker_.progress) {
    bool learner = pr.is_learner;
    pr = tracker::Progress(log_.last_index() + 1, tracker_.max_inflight_msgs(),
                           tracker_.max_inflight_bytes(), learner);
    if (node == id()) pr.match = log_.stable();
  }
  pending_conf_index_ = 0;
  uncommitted_payload_bytes_ = 0;
  appends_pending_ = false;
  commit_pending_ = false;
  timeout_now_sent_ = false;
  transfer_campaign_deferred_ = false;
  leaving_index_ = 0;
  leaving_round_ = 0;
  // Reads in flight are not answered: the application learns of the role
  // change from the soft state and retries them.
  heartbeat_round_ = 0;
  read_round_pending_ = false;
  pending_reads_.clear();
  reads_awaiting_commit_.clear();
  round_sent_ticks_.clear();
  lease_start_tick_.reset();
}

void Raft::ResetRandomizedElectionTimeout() {
  // Re-drawn on every reset, so two nodes that collided once are unlikely to
  // collide again (raft-traps #13).
  randomized_election_timeout_ticks_ =
      config_.election_timeout_ticks +
      static_cast<int64_t>(rng_.Uniform(static_cast<uint64_t>(config_.election_timeout_ticks)));
}

void Raft::BecomeFollower(Term term, NodeId leader) {
  Reset(term);
  lead_ = leader;
  role_ = Role::kFollower;
  Log(absl::StrCat(id(), " became follower at term ", term_));
}

void Raft::BecomePreCandidate() {
  ETC_CHECK(role_ != Role::kLeader) << "leader cannot become pre-candidate";
  // A pre-candidate changes neither its term nor its vote.
  tracker_.ResetVotes();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
  Log(absl::StrCat(id(), " became pre-candidate at term ", term_));
}

void Raft::BecomeCandidate() {
  ETC_CHECK(role_ != Role::kLeader) << "leader cannot become candidate";
  Reset(term_ + 1);
  vote_ = id();
  role_ = Role::kCandidate;
  Log(absl::StrCat(id(), " became candidate at term ", term_));
}

void Raft::BecomeLeader() {
  ETC_CHECK(role_ != Role::kFollower) << "follower cannot become leader directly";
  Reset(term_);
  lead_ = id();
  role_ = Role::kLeader;
  tracker_.progress.at(id()).BecomeReplicate();
  tracker_.progress.at(id()).match = log_.stable();
  tracker_.progress.at(id()).recent_active = true;
  commit_at_election_ = log_.committed();
  // An empty entry of the new term: committing it commits every earlier
  // entry (Figure 8), lets ReadIndex answer, and must be applied before a
  // configuration change may be proposed (raft-traps #6, #15).
  raftpb::Entry noop;
  noop.set_type(raftpb::ENTRY_NORMAL);
  AppendLeaderEntries({std::move(noop)});
  pending_conf_index_ = log_.last_index();
  Log(absl::StrCat(id(), " became leader at term ", term_));
}

// ------------------------------------------------------------ dispatch --

namespace {

absl::Status ValidateMessage(const raftpb::Message& m, NodeId self) {
  if (m.to() != self) {
    return absl::InvalidArgumentError(absl::StrCat("message for ", m.to(), " delivered to ", self));
  }
  if (m.from() == kNoNode || m.from() == self) {
    return absl::InvalidArgumentError(absl::StrCat("message from invalid sender ", m.from()));
  }
  switch (m.type()) {
    case raftpb::MSG_APP: {
      Index expected = m.index() + 1;
      Term previous = m.log_term();
      for (const raftpb::Entry& entry : m.entries()) {
        if (entry.index() != expected || entry.term() < previous || entry.term() > m.term()) {
          return absl::InvalidArgumentError("append carries entries out of order");
        }
        if (entry.type() != raftpb::ENTRY_NORMAL && entry.type() != raftpb::ENTRY_CONF_CHANGE) {
          return absl::InvalidArgumentError("append carries an entry of unknown type");
        }
        ++expected;
        previous = entry.term();
      }
      return absl::OkStatus();
    }
    case raftpb::MSG_PROP:
      if (m.entries_size() == 0) return absl::InvalidArgumentError("empty proposal");
      return absl::OkStatus();
    case raftpb::MSG_SNAP:
      if (m.snapshot().metadata().index() == 0 || m.snapshot().metadata().term() == 0) {
        return absl::InvalidArgumentError("snapshot message without a snapshot");
      }
      if (m.snapshot().metadata().term() > m.term()) {
        return absl::InvalidArgumentError("snapshot from a term after the sender's");
      }
      return absl::OkStatus();
    case raftpb::MSG_APP_RESP:
    case raftpb::MSG_VOTE:
    case raftpb::MSG_VOTE_RESP:
    case raftpb::MSG_PRE_VOTE:
    case raftpb::MSG_PRE_VOTE_RESP:
    case raftpb::MSG_HEARTBEAT:
    case raftpb::MSG_HEARTBEAT_RESP:
    case raftpb::MSG_PROP_RESP:
    case raftpb::MSG_READ_INDEX:
    case raftpb::MSG_READ_INDEX_RESP:
    case raftpb::MSG_TRANSFER_LEADER:
    case raftpb::MSG_TIMEOUT_NOW:
    case raftpb::MSG_REPAIR:
    case raftpb::MSG_REPAIR_RESP:
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown message type ", m.type()));
  }
}

bool IsTermless(raftpb::MessageType type) {
  return type == raftpb::MSG_PROP || type == raftpb::MSG_PROP_RESP ||
         type == raftpb::MSG_READ_INDEX;
}

}  // namespace

absl::Status Raft::Step(const raftpb::Message& m) {
  if (absl::Status status = ValidateMessage(m, id()); !status.ok()) return status;
  bool consumed = false;
  if (absl::Status status = StepTerm(m, &consumed); !status.ok() || consumed) return status;

  switch (m.type()) {
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      HandleVoteRequest(m);
      return absl::OkStatus();
    case raftpb::MSG_REPAIR:
      HandleRepairProbe(m);
      return absl::OkStatus();
    case raftpb::MSG_REPAIR_RESP:
      HandleRepairResponse(m);
      return absl::OkStatus();
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader:
      return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate:
      return StepCandidate(m);
    case Role::kFollower:
      return StepFollower(m);
  }
  return absl::OkStatus();
}

absl::Status Raft::StepTerm(const raftpb::Message& m, bool* consumed) {
  if (IsTermless(m.type())) return absl::OkStatus();
  if (m.term() > term_) {
    if (m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE) {
      if (!m.transfer() && LeaseRemainingTicks() > 0) {
        // Leader stickiness: this node heard from a live leader within an
        // election timeout, so the candidate is the one out of touch.
        Log(absl::StrCat(id(), " [logterm: ", log_.last_term(), ", index: ", log_.last_index(),
                         ", vote: ", vote_, "] ignored ", MessageTypeName(m.type()), " from ",
                         m.from(), " [logterm: ", m.log_term(), ", index: ", m.index(),
                         "] at term ", term_, ": lease is not expired (remaining ticks: ",
                         LeaseRemainingTicks(), ")"));
        *consumed = true;
        return absl::OkStatus();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change the term in response to a pre-vote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the term we will campaign in.
    } else {
      Log(absl::StrCat(id(), " [term: ", term_, "] received a ", MessageTypeName(m.type()),
                       " message with higher term from ", m.from(), " [term: ", m.term(), "]"));
      bool from_leader = m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
                         m.type() == raftpb::MSG_SNAP ||
                         (m.type() == raftpb::MSG_REPAIR_RESP && !m.reject());
      BecomeFollower(m.term(), from_leader ? m.from() : kNoNode);
    }
    return absl::OkStatus();
  }
  if (m.term() < term_) {
    *consumed = true;
    if ((config_.check_quorum || config_.pre_vote || !Promotable()) &&
        (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader cut off while we moved on (with CheckQuorum or
      // PreVote, our term can rise without it ever hearing). Tell it the
      // term so it steps down instead of lingering. A member that cannot
      // campaign (it does not know it is a voter yet) must tell it too:
      // it will send no vote request that would (the simulator found a
      // leader stuck for good on such a member, seed 606).
      raftpb::Message resp;
      resp.set_type(raftpb::MSG_APP_RESP);
      resp.set_to(m.from());
      Send(std::move(resp));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Without this the pre-candidate would never learn the newer term.
      raftpb::Message resp;
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_reject(true);
      Send(std::move(resp));
    } else {
      Log(absl::StrCat(id(), " [term: ", term_, "] ignored a ", MessageTypeName(m.type()),
                       " message with lower term from ", m.from(), " [term: ", m.term(), "]"));
    }
  }
  return absl::OkStatus();
}

absl::Status Raft::StepCandidate(const raftpb::Message& m) {
  raftpb::MessageType my_response =
      role_ == Role::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      // Forwarded to us while we were a follower; tell the proposer.
      RefuseForwardedProposal(m, "proposal dropped: no leader (election in progress)");
      return absl::OkStatus();
    case raftpb::MSG_APP:
      BecomeFollower(m.term(), m.from());
      return HandleAppendEntries(m);
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      return HandleHeartbeat(m);
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      return HandleSnapshot(m);
    case raftpb::MSG_VOTE_RESP:
    case raftpb::MSG_PRE_VOTE_RESP:
      if (m.type() != my_response) return absl::OkStatus();
      Log(absl::StrCat(id(), " received ", MessageTypeName(m.type()),
                       m.reject() ? " rejection" : "", " from ", m.from(), " at term ", term_));
      Poll(m.from(), !m.reject());
      return absl::OkStatus();
    case raftpb::MSG_TIMEOUT_NOW:
      Log(absl::StrCat(id(), " ignored TimeoutNow from ", m.from(), ": not a follower"));
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

// -------------------------------------------------------- local inputs --

absl::Status Raft::Campaign() {
  if (repairing_) {
    return absl::FailedPreconditionError(
        "not campaigning: this member is repairing damaged storage from the leader");
  }
  if (config_.read_only == ReadOnlyOption::kLeaseBased && role_ != Role::kLeader &&
      LeaseRemainingTicks() > 0) {
    // A leader's lease counts on this member voting for nobody, itself
    // included, for an election timeout after acknowledging it (found by
    // the randomized property test: a member that campaigned on request
    // won with a peer that had lost touch, while the old leader still
    // served lease reads).
    return absl::FailedPreconditionError(absl::StrCat(
        "not campaigning: this member heard from a leader, or restarted, less than an election "
        "timeout ago (", LeaseRemainingTicks(), " ticks left), and lease reads rely on it"));
  }
  Hup(config_.pre_vote ? CampaignKind::kPreElection : CampaignKind::kElection);
  return absl::OkStatus();
}

absl::Status Raft::Propose(std::vector<std::string> payloads) {
  if (payloads.empty()) return absl::InvalidArgumentError("empty proposal");
  std::vector<raftpb::Entry> entries;
  entries.reserve(payloads.size());
  for (std::string& payload : payloads) {
    raftpb::Entry entry;
    entry.set_type(raftpb::ENTRY_NORMAL);
    entry.set_data(std::move(payload));
    entries.push_back(std::move(entry));
  }
  return HandleProposal(id(), std::move(entries));
}

absl::Status Raft::ProposeConfChange(const raftpb::ConfChange& change) {
  raftpb::Entry entry;
  entry.set_type(raftpb::ENTRY_CONF_CHANGE);
  entry.set_data(change.SerializeAsString());
  return HandleProposal(id(), {std::move(entry)});
}

absl::Status Raft::ReadIndex(std::string context) { return HandleReadIndex(id(), std::move(context)); }

absl::Status Raft::TransferLeadership(NodeId target) {
  if (role_ == Role::kLeader) return HandleTransferLeader(target);
  if (lead_ == kNoNode) return absl::UnavailableError("no leader to transfer leadership from");
  raftpb::Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_to(lead_);
  m.set_index(target);
  Send(std::move(m));
  return absl::OkStatus();
}

void Raft::ReportUnreachable(NodeId id_unreachable) {
  if (role_ != Role::kLeader) return;
  auto it = tracker_.progress.find(id_unreachable);
  if (it == tracker_.progress.end() || id_unreachable == id()) return;
  // Optimistic appends to it were probably lost; probe again.
  if (it->second.state == tracker::ProgressState::kReplicate) it->second.BecomeProbe();
  Log(absl::StrCat(id(), " failed to send message to ", id_unreachable,
                   " because it is unreachable [", it->second.Describe(), "]"));
}

void Raft::ReportSnapshot(NodeId to, bool applied) {
  if (role_ != Role::kLeader) return;
  auto it = tracker_.progress.find(to);
  if (it == tracker_.progress.end() || it->second.state != tracker::ProgressState::kSnapshot) return;
  tracker::Progress& pr = it->second;
  if (!applied) pr.pending_snapshot = 0;
  // Probe after the snapshot (or from match, if it failed). Wait for the
  // follower's answer before sending more, as after any probe.
  pr.BecomeProbe();
  pr.paused = true;
  Log(absl::StrCat(id(), " snapshot to ", to, applied ? " applied" : " failed", ", now ",
                   pr.Describe()));
}

// ------------------------------------------------------------- ticking --

void Raft::Tick() {
  ++now_ticks_;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_ticks_;
  if (repairing_) {
    TickRepair();
    return;
  }
  if (Promotable() && election_elapsed_ticks_ >= randomized_election_timeout_ticks_) {
    election_elapsed_ticks_ = 0;
    Hup(config_.pre_vote ? CampaignKind::kPreElection : CampaignKind::kElection);
  }
}

// --------------------------------------------------------- application --

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> Raft::CreateSnapshot(Index index,
                                                                             std::string data) {
  if (index > log_.applied()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot index ", index, " is above the applied index ", log_.applied()));
  }
  if (index < conf_applied_index_) {
    // The current configuration came from a later entry; this node does not
    // know the configuration as of `index`.
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot index ", index, " is below the last applied configuration change at ",
        conf_applied_index_));
  }
  if (snapshot_ != nullptr && index <= snapshot_->metadata().index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot index ", index, " is not newer than the current snapshot at ",
        snapshot_->metadata().index()));
  }
  std::optional<Term> term = log_.TermAt(index);
  if (!term.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat("entry ", index, " is compacted"));
  }
  auto snapshot = std::make_shared<raftpb::Snapshot>();
  snapshot->set_data(std::move(data));
  snapshot->mutable_metadata()->set_index(index);
  snapshot->mutable_metadata()->set_term(*term);
  *snapshot->mutable_metadata()->mutable_conf_state() = tracker_.config.ToConfState();
  snapshot_ = MetadataOnly(*snapshot);
  Log(absl::StrCat(id(), " created snapshot at index ", index, " term ", *term));
  return snapshot;
}

absl::Status Raft::Compact(Index index) {
  if (snapshot_ == nullptr || index > snapshot_->metadata().index()) {
    return absl::FailedPreconditionError(
        absl::StrCat("compacting to ", index, " needs a snapshot at or above it"));
  }
  if (index <= log_.snapshot_index()) return absl::OkStatus();
  log_.CompactTo(index);
  Log(absl::StrCat(id(), " compacted log to index ", index));
  return absl::OkStatus();
}

void Raft::SnapshotPersisted(Index index) {
  // A newer snapshot may have replaced the persisted one meanwhile; then the
  // newer one is still to be persisted and applied.
  if (unstable_snapshot_ == nullptr || unstable_snapshot_->metadata().index() != index) return;
  log_.SnapshotStable();
  log_.AppliedTo(index);
  conf_applied_index_ = index;
  snapshot_ = MetadataOnly(*unstable_snapshot_);
  unstable_snapshot_.reset();
}

void Raft::EntriesPersisted(Index index, Term term) {
  log_.StableTo(index, term);
  if (role_ != Role::kLeader) return;
  // The leader counts itself toward a commit only once its own entries are
  // durable: a single voter must not commit what a crash could lose
  // (raft-traps #17).
  tracker::Progress* self = SelfProgress();
  if (self != nullptr && self->MaybeUpdate(log_.stable())) MaybeCommit();
}

void Raft::EntriesApplied(Index index) {
  Index old_applied = log_.applied();
  log_.AppliedTo(index);
  Index last_conf_change = 0;
  for (Index i = std::max(old_applied + 1, log_.first_index()); i <= index; ++i) {
    if (log_.At(i).type() == raftpb::ENTRY_CONF_CHANGE) last_conf_change = i;
  }
  if (last_conf_change != 0) conf_applied_index_ = last_conf_change;
  MaybeAutoLeaveJoint();
  if (transfer_campaign_deferred_ && role_ == Role::kFollower && !HasUnappliedConfChanges()) {
    transfer_campaign_deferred_ = false;
    if (Promotable()) {
      Log(absl::StrCat(id(), " [term ", term_, "] starts the election MsgTimeoutNow asked for"));
      Hup(CampaignKind::kTransfer);
    }
  }
}

tracker::Progress* Raft::SelfProgress() {
  auto it = tracker_.progress.find(id());
  return it == tracker_.progress.end() ? nullptr : &it->second;
}


}  // namespace etc::raft
