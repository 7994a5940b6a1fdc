#include "raft/rafttest/interaction_env.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/check.h"
#include "raft/conf_state.h"
#include "raft/describe.h"

namespace etc::raft::rafttest {

using datadriven::ScriptError;
using datadriven::TestCase;

namespace {

std::string DescribeReady(const Ready& ready) {
  std::string out = absl::StrCat("Ready MustSync=", ready.must_sync ? "true" : "false", ":\n");
  if (ready.soft_state.has_value()) {
    absl::StrAppend(&out, "Lead:", ready.soft_state->leader, " State:",
                    RoleName(ready.soft_state->role), "\n");
  }
  if (ready.hard_state.has_value()) absl::StrAppend(&out, DescribeHardState(*ready.hard_state), "\n");
  if (ready.snapshot != nullptr) {
    absl::StrAppend(&out, "Snapshot ", DescribeSnapshotMetadata(ready.snapshot->metadata()), "\n");
  }
  if (!ready.entries.empty()) {
    absl::StrAppend(&out, "Entries:\n");
    for (const auto& entry : ready.entries) absl::StrAppend(&out, DescribeEntry(entry), "\n");
  }
  if (!ready.committed_entries.empty()) {
    absl::StrAppend(&out, "CommittedEntries:\n");
    for (const auto& entry : ready.committed_entries) absl::StrAppend(&out, DescribeEntry(entry), "\n");
  }
  if (!ready.messages.empty()) {
    absl::StrAppend(&out, "Messages:\n");
    for (const auto& m : ready.messages) absl::StrAppend(&out, DescribeMessage(m), "\n");
  }
  if (!ready.read_states.empty()) {
    absl::StrAppend(&out, "ReadStates:\n");
    for (const auto& rs : ready.read_states) {
      absl::StrAppend(&out, "Index:", rs.index, " Context:\"", rs.context, "\"\n");
    }
  }
  if (!ready.dropped_proposals.empty()) {
    absl::StrAppend(&out, "DroppedProposals:\n");
    for (const auto& dropped : ready.dropped_proposals) {
      absl::StrAppend(&out, DescribeEntry(dropped.entry), " (", dropped.reason, ")\n");
    }
  }
  if (ready.repair_finished) absl::StrAppend(&out, "RepairFinished\n");
  return out;
}

std::string Indent(const std::string& text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

raftpb::ConfChange ParseConfChange(const TestCase& tc) {
  raftpb::ConfChange change;
  std::string transition = tc.StringOr("transition", "auto");
  if (transition == "implicit") {
    change.set_transition(raftpb::TRANSITION_JOINT_IMPLICIT);
  } else if (transition == "explicit") {
    change.set_transition(raftpb::TRANSITION_JOINT_EXPLICIT);
  } else if (transition != "auto") {
    throw ScriptError{absl::StrCat(tc.Position(), ": unknown transition ", transition)};
  }
  for (absl::string_view token : absl::StrSplit(tc.input, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    raftpb::ConfChangeSingle* single = change.add_changes();
    uint64_t id = 0;
    if (token.size() < 2 || !absl::SimpleAtoi(token.substr(1), &id)) {
      throw ScriptError{absl::StrCat(tc.Position(), ": bad conf change token ", token)};
    }
    single->set_node_id(id);
    switch (token[0]) {
      case 'v':
        single->set_type(raftpb::ADD_NODE);
        break;
      case 'l':
        single->set_type(raftpb::ADD_LEARNER_NODE);
        break;
      case 'r':
        single->set_type(raftpb::REMOVE_NODE);
        break;
      default:
        throw ScriptError{absl::StrCat(tc.Position(), ": bad conf change token ", token)};
    }
  }
  return change;
}

}  // namespace

void InteractionEnv::Status(const absl::Status& status) {
  if (!status.ok()) absl::StrAppend(&out_, "error: ", status.ToString(), "\n");
}

InteractionEnv::Member& InteractionEnv::Get(const TestCase& tc, uint64_t id) {
  if (id == 0 || id > members_.size()) {
    throw ScriptError{absl::StrCat(tc.Position(), ": no node ", id)};
  }
  return members_[id - 1];
}

Node& InteractionEnv::Alive(const TestCase& tc, uint64_t id) {
  Member& member = Get(tc, id);
  if (!member.node.has_value()) throw ScriptError{absl::StrCat(tc.Position(), ": node ", id, " is crashed")};
  return *member.node;
}

std::vector<NodeId> InteractionEnv::TargetIds(const TestCase& tc) const {
  std::vector<NodeId> ids = tc.BareUints();
  if (ids.empty()) {
    for (const Member& member : members_) ids.push_back(member.id);
  }
  return ids;
}

bool InteractionEnv::HasMessagesFor(NodeId id) const {
  return std::any_of(network_.begin(), network_.end(),
                     [id](const raftpb::Message& m) { return m.to() == id; });
}

void InteractionEnv::AddNodes(const TestCase& tc) {
  std::vector<uint64_t> count = tc.BareUints();
  if (count.size() != 1) throw ScriptError{absl::StrCat(tc.Position(), ": add-nodes N")};
  raftpb::ConfState conf;
  for (uint64_t id : tc.Uints("voters")) conf.add_voters(id);
  for (uint64_t id : tc.Uints("learners")) conf.add_learners(id);
  Index index = tc.UintOr("index", 1);
  for (uint64_t i = 0; i < count[0]; ++i) {
    Member member;
    member.id = members_.size() + 1;
    Config& config = member.config;
    config.id = member.id;
    config.election_timeout_ticks = static_cast<int64_t>(tc.UintOr("election", 10));
    config.heartbeat_interval_ticks = static_cast<int64_t>(tc.UintOr("heartbeat", 1));
    config.random_seed = tc.UintOr("seed", 1);
    config.pre_vote = tc.BoolOr("prevote", false);
    config.check_quorum = tc.BoolOr("checkquorum", false);
    std::string read_only = tc.StringOr("read-only", "safe");
    if (read_only == "lease") {
      config.read_only = ReadOnlyOption::kLeaseBased;
    } else if (read_only != "safe") {
      throw ScriptError{absl::StrCat(tc.Position(), ": read-only is safe or lease")};
    }
    config.lease_clock_drift_max_percent = static_cast<int64_t>(tc.UintOr("drift", 10));
    config.max_append_payload_bytes = tc.UintOr("max-msg-bytes", 1 << 20);
    config.max_inflight_msgs = static_cast<int64_t>(tc.UintOr("max-inflight", 256));
    config.max_inflight_payload_bytes = tc.UintOr("max-inflight-bytes", 0);
    config.max_uncommitted_payload_bytes = tc.UintOr("max-uncommitted-bytes", 0);
    config.disable_proposal_forwarding = !tc.BoolOr("forwarding", true);
    config.log_sink = [this](const std::string& line) {
      if (log_enabled_) absl::StrAppend(&out_, "INFO ", line, "\n");
    };
    if (conf.voters_size() > 0) {
      raftpb::SnapshotMetadata* meta = member.storage.snapshot.mutable_metadata();
      meta->set_index(index);
      meta->set_term(index > 0 ? 1 : 0);
      *meta->mutable_conf_state() = conf;
      member.storage.hard_state.set_term(index > 0 ? 1 : 0);
      member.storage.hard_state.set_commit(index);
    }
    absl::StatusOr<Node> node = Node::Start(config, member.storage.ToDurable());
    if (!node.ok()) {
      Status(node.status());
      return;
    }
    member.node.emplace(std::move(*node));
    members_.push_back(std::move(member));
  }
}

void InteractionEnv::ApplySnapshotData(Member& member, const std::string& data) {
  member.applied.clear();
  for (absl::string_view item : absl::StrSplit(data, ',', absl::SkipEmpty())) {
    member.applied.emplace_back(item);
  }
}

void InteractionEnv::ProcessReady(Member& member) {
  Node& node = *member.node;
  if (!quiet_) absl::StrAppend(&out_, "> ", member.id, " handling Ready\n");
  if (!node.HasReady()) {
    if (!quiet_) absl::StrAppend(&out_, "  <empty Ready>\n");
    return;
  }
  Ready ready = node.GetReady();
  if (ready.empty()) {
    // Deferred sends that turned out to have nothing to send.
    if (!quiet_) absl::StrAppend(&out_, "  <empty Ready>\n");
    node.Advance(ready);
    return;
  }
  if (!quiet_) absl::StrAppend(&out_, Indent(DescribeReady(ready)));
  // 1. Persist (snapshot, entries, hard state). 2. Send. 3. Apply. 4. Advance.
  member.storage.Persist(ready);
  for (raftpb::Message m : ready.messages) {
    ETC_CHECK(member.storage.AttachSnapshotData(m)) << "no data for " << DescribeMessage(m);
    network_.push_back(std::move(m));
  }
  if (ready.snapshot != nullptr) ApplySnapshotData(member, ready.snapshot->data());
  for (const raftpb::Entry& entry : ready.committed_entries) {
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange change;
      ETC_CHECK(change.ParseFromString(entry.data()));
      absl::StatusOr<raftpb::ConfState> state = node.ApplyConfChange(change);
      if (!state.ok()) absl::StrAppend(&out_, "  conf change refused: ", state.status().message(), "\n");
    } else if (!entry.data().empty()) {
      member.applied.push_back(entry.data());
    }
  }
  node.Advance(ready);
}

void InteractionEnv::DeliverMessages(NodeId to, bool drop, const std::string& type) {
  std::vector<raftpb::Message> batch;
  std::deque<raftpb::Message> rest;
  for (raftpb::Message& m : network_) {
    bool selected = m.to() == to && (type.empty() || type == MessageTypeName(m.type()));
    (selected ? batch.emplace_back(std::move(m)) : rest.emplace_back(std::move(m)));
  }
  network_ = std::move(rest);
  if (batch.empty()) return;
  if (!quiet_) absl::StrAppend(&out_, "> ", to, " receiving messages\n");
  Member* member = to >= 1 && to <= members_.size() ? &members_[to - 1] : nullptr;
  for (const raftpb::Message& m : batch) {
    bool cut = cut_links_.contains({m.from(), m.to()});
    if (drop || cut || member == nullptr || !member->node.has_value()) {
      if (!quiet_) absl::StrAppend(&out_, "  dropped: ", DescribeMessage(m), "\n");
      continue;
    }
    if (!quiet_) absl::StrAppend(&out_, Indent(DescribeMessage(m)));
    absl::Status status = member->node->Step(m);
    if (!status.ok()) absl::StrAppend(&out_, "  error: ", status.ToString(), "\n");
  }
}

void InteractionEnv::Stabilize(const std::vector<NodeId>& ids) {
  for (int round = 0; round < 1000; ++round) {
    bool idle = true;
    for (NodeId id : ids) {
      Member& member = members_[id - 1];
      if (member.node.has_value() && member.node->HasReady()) {
        idle = false;
        ProcessReady(member);
      }
    }
    for (NodeId id : ids) {
      if (HasMessagesFor(id)) {
        idle = false;
        DeliverMessages(id, /*drop=*/false, /*type=*/"");
      }
    }
    if (idle) return;
  }
  absl::StrAppend(&out_, "error: did not stabilize after 1000 rounds\n");
}

void InteractionEnv::PrintStatus(const Member& member) {
  NodeStatus status = member.node->Status();
  absl::StrAppend(&out_, RoleName(status.role), " Term:", status.term, " Vote:", status.vote,
                  " Lead:", status.leader, " Commit:", status.commit, " Applied:", status.applied,
                  " Last:", status.last_index, "\n");
  if (status.repairing) absl::StrAppend(&out_, "repairing, target ", status.repair_target, "\n");
  if (status.majority_damaged) absl::StrAppend(&out_, "majority damaged\n");
  absl::StrAppend(&out_, status.config, "\n");
  if (status.lead_transferee != kNoNode) absl::StrAppend(&out_, "transferring to ", status.lead_transferee, "\n");
  if (status.lease_valid) absl::StrAppend(&out_, "lease valid\n");
  for (const auto& [id, description] : status.progress) absl::StrAppend(&out_, id, ": ", description, "\n");
}

void InteractionEnv::PrintRaftLog(const Member& member) {
  const MemoryStorage& storage = member.storage;
  if (storage.snapshot.metadata().index() > 0) {
    absl::StrAppend(&out_, "snapshot ", DescribeSnapshotMetadata(storage.snapshot.metadata()), "\n");
  }
  if (storage.entries.empty()) {
    absl::StrAppend(&out_, "log is empty: first index=", storage.snapshot.metadata().index() + 1,
                    ", last index=", storage.snapshot.metadata().index(), "\n");
  }
  for (const raftpb::Entry& entry : storage.entries) absl::StrAppend(&out_, DescribeEntry(entry), "\n");
}

std::string InteractionEnv::Handle(const TestCase& tc) {
  out_.clear();
  const std::string& cmd = tc.command;
  auto bare = tc.BareWords();
  auto first_id = [&]() -> uint64_t {
    std::vector<uint64_t> ids = tc.BareUints();
    if (ids.empty()) throw ScriptError{absl::StrCat(tc.Position(), ": ", cmd, " needs a node id")};
    return ids[0];
  };
  auto word = [&](size_t i) -> std::string {
    if (bare.size() <= i) throw ScriptError{absl::StrCat(tc.Position(), ": ", cmd, " needs more arguments")};
    return bare[i];
  };
  auto id_at = [&](size_t i) -> uint64_t {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(word(i), &id)) throw ScriptError{absl::StrCat(tc.Position(), ": bad id")};
    return id;
  };

  if (cmd == "add-nodes") {
    AddNodes(tc);
  } else if (cmd == "campaign") {
    Status(Alive(tc, first_id()).Campaign());
  } else if (cmd == "propose") {
    Status(Alive(tc, id_at(0)).Propose(word(1)));
  } else if (cmd == "propose-batch") {
    std::vector<std::string> data(bare.begin() + 1, bare.end());
    Status(Alive(tc, id_at(0)).ProposeBatch(std::move(data)));
  } else if (cmd == "propose-conf-change") {
    Status(Alive(tc, first_id()).ProposeConfChange(ParseConfChange(tc)));
  } else if (cmd == "process-ready") {
    for (NodeId id : TargetIds(tc)) {
      Alive(tc, id);
      ProcessReady(members_[id - 1]);
    }
  } else if (cmd == "deliver-msgs") {
    bool drop = std::find(bare.begin(), bare.end(), "drop") != bare.end();
    std::vector<NodeId> ids;
    for (const std::string& w : bare) {
      uint64_t id = 0;
      if (absl::SimpleAtoi(w, &id)) ids.push_back(id);
    }
    if (ids.empty()) {
      for (const Member& member : members_) ids.push_back(member.id);
    }
    std::string type = tc.StringOr("type", "");
    for (NodeId id : ids) DeliverMessages(id, drop, type);
  } else if (cmd == "stabilize") {
    Stabilize(TargetIds(tc));
  } else if (cmd == "tick" || cmd == "tick-heartbeat" || cmd == "tick-election") {
    Member& member = Get(tc, first_id());
    Node& node = Alive(tc, member.id);
    int64_t ticks = cmd == "tick"            ? static_cast<int64_t>(tc.UintOr("n", 1))
                    : cmd == "tick-heartbeat" ? member.config.heartbeat_interval_ticks
                                              : member.config.election_timeout_ticks;
    for (int64_t i = 0; i < ticks; ++i) node.Tick();
  } else if (cmd == "tick-all") {
    // Every live node ticks once per round, in lockstep. With `settle`,
    // the cluster also stabilizes after each round, printing only log lines.
    bool settle = std::find(bare.begin(), bare.end(), "settle") != bare.end();
    std::vector<NodeId> all = TargetIds(datadriven::TestCase());
    for (uint64_t i = 0; i < tc.UintOr("n", 1); ++i) {
      for (Member& member : members_) {
        if (member.node.has_value()) member.node->Tick();
      }
      if (settle) {
        quiet_ = true;
        Stabilize(all);
        quiet_ = false;
      }
    }
  } else if (cmd == "read-index") {
    Status(Alive(tc, id_at(0)).ReadIndex(word(1)));
  } else if (cmd == "transfer-leadership") {
    Status(Alive(tc, tc.Uint("from")).TransferLeadership(tc.Uint("to")));
  } else if (cmd == "report-unreachable") {
    Alive(tc, id_at(0)).ReportUnreachable(id_at(1));
  } else if (cmd == "report-snapshot") {
    bool failed = std::find(bare.begin(), bare.end(), "fail") != bare.end();
    Alive(tc, id_at(0)).ReportSnapshot(id_at(1), !failed);
  } else if (cmd == "snapshot") {
    Member& member = Get(tc, first_id());
    Node& node = Alive(tc, member.id);
    auto snapshot = node.CreateSnapshot(node.Status().applied, absl::StrJoin(member.applied, ","));
    if (!snapshot.ok()) {
      Status(snapshot.status());
    } else {
      member.storage.snapshot = **snapshot;  // entries stay until `compact`
      absl::StrAppend(&out_, "snapshot ", DescribeSnapshotMetadata((*snapshot)->metadata()), "\n");
    }
  } else if (cmd == "compact") {
    Member& member = Get(tc, id_at(0));
    Index index = id_at(1);
    absl::Status status = Alive(tc, member.id).Compact(index);
    Status(status);
    if (status.ok()) {
      auto& entries = member.storage.entries;
      entries.erase(std::remove_if(entries.begin(), entries.end(),
                                   [index](const raftpb::Entry& e) { return e.index() <= index; }),
                    entries.end());
      PrintRaftLog(member);
    }
  } else if (cmd == "crash") {
    Member& member = Get(tc, first_id());
    member.node.reset();
    member.applied.clear();
  } else if (cmd == "restart") {
    Member& member = Get(tc, first_id());
    if (member.node.has_value()) throw ScriptError{absl::StrCat(tc.Position(), ": node is running")};
    if (tc.Has("damage")) {
      // Storage damage found at restart: only the entries up to `damage`
      // (and the hard state's term and vote, kept apart) survive.
      Index keep = tc.Uint("damage");
      auto& entries = member.storage.entries;
      while (!entries.empty() && entries.back().index() > keep) entries.pop_back();
      member.storage.hard_state.set_commit(
          std::min(member.storage.hard_state.commit(), member.storage.last_index()));
      member.storage.damaged = true;
    }
    absl::StatusOr<Node> node = Node::Start(member.config, member.storage.ToDurable());
    if (!node.ok()) {
      Status(node.status());
    } else {
      member.node.emplace(std::move(*node));
      ApplySnapshotData(member, member.storage.snapshot.data());
    }
  } else if (cmd == "cut") {
    cut_links_.insert({id_at(0), id_at(1)});
    cut_links_.insert({id_at(1), id_at(0)});
  } else if (cmd == "cut-oneway") {
    cut_links_.insert({id_at(0), id_at(1)});
  } else if (cmd == "isolate") {
    NodeId id = first_id();
    for (const Member& member : members_) {
      if (member.id == id) continue;
      cut_links_.insert({id, member.id});
      cut_links_.insert({member.id, id});
    }
  } else if (cmd == "heal") {
    cut_links_.clear();
  } else if (cmd == "status") {
    Member& member = Get(tc, first_id());
    Alive(tc, member.id);
    PrintStatus(member);
  } else if (cmd == "raft-state") {
    for (const Member& member : members_) {
      if (!member.node.has_value()) {
        absl::StrAppend(&out_, member.id, ": crashed\n");
        continue;
      }
      NodeStatus status = member.node->Status();
      const raftpb::ConfState& conf = status.conf_state;
      // A learner of the next configuration is an outgoing voter still.
      const char* membership = IsIncomingOrOutgoingVoter(conf, member.id) ? "Voter"
                               : IsLearner(conf, member.id)               ? "Learner"
                                                                          : "NonMember";
      absl::StrAppend(&out_, member.id, ": ", RoleName(status.role), " (", membership,
                      ") Term:", status.term, " Lead:", status.leader, "\n");
    }
  } else if (cmd == "raft-log") {
    PrintRaftLog(Get(tc, first_id()));
  } else if (cmd == "app-state") {
    Member& member = Get(tc, first_id());
    absl::StrAppend(&out_, "applied: [", absl::StrJoin(member.applied, " "), "]\n");
  } else if (cmd == "log-level") {
    std::string level = word(0);
    if (level != "none" && level != "info") throw ScriptError{absl::StrCat(tc.Position(), ": log-level none|info")};
    log_enabled_ = level == "info";
  } else {
    throw ScriptError{absl::StrCat(tc.Position(), ": unknown command ", cmd)};
  }
  return out_;
}

}  // namespace etc::raft::rafttest
