// Random schedules against a small cluster of real Nodes, checking Raft's
// safety properties after every step:
//  - election safety: at most one leader per term, across all members;
//  - state machine safety: every member applies the same entry at an index;
//  - leader completeness: a leader of a later term holds every entry
//    committed before its term;
//  - durability: a message leaves only after its Ready was persisted (a crash
//    between GetReady and persisting drops that Ready's messages).
// Schedules reorder, duplicate and drop messages, cut links, crash and
// restart members, take snapshots, change the membership, transfer
// leadership and read. Afterwards the network heals and a leader must emerge
// and commit a new entry on every voter (liveness).
//
// This is a compact, core-only cousin of the simulator (sim/), which runs the
// same checks over much longer histories.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "raft/describe.h"
#include "raft/memory_storage.h"
#include "raft/node.h"

namespace etc::raft {
namespace {

struct CommittedEntry {
  Term term = 0;
  std::string data;
  // Every leader of a term above this one must hold the entry.
  Term observed_at_term = 0;
};

class Cluster {
 public:
  Cluster(int size, int voters, uint64_t seed, bool pre_vote, bool check_quorum) {
    std::vector<NodeId> voter_ids;
    for (int i = 1; i <= voters; ++i) voter_ids.push_back(i);
    for (int i = 1; i <= size; ++i) {
      Member member;
      member.config.id = i;
      member.config.random_seed = seed;
      member.config.pre_vote = pre_vote;
      member.config.check_quorum = check_quorum;
      member.config.max_inflight_msgs = 4;
      member.config.max_append_payload_bytes = 16;
      // Members beyond the initial voters join empty and learn the
      // configuration from the leader.
      member.storage = i <= voters ? MemoryStorage::Bootstrap(voter_ids) : MemoryStorage();
      member.node.emplace(*Node::Start(member.config, member.storage.ToDurable()));
      members_.push_back(std::move(member));
    }
  }

  int size() const { return static_cast<int>(members_.size()); }
  bool alive(NodeId id) const { return members_[id - 1].node.has_value(); }
  Node& node(NodeId id) { return *members_[id - 1].node; }

  void Tick(NodeId id) {
    if (alive(id)) node(id).Tick();
  }

  void ProcessReady(NodeId id, bool crash_before_persisting) {
    Member& member = members_[id - 1];
    if (!member.node.has_value() || !member.node->HasReady()) return;
    Ready ready = member.node->GetReady();
    if (crash_before_persisting) {
      // Nothing of this Ready survives, and none of its messages leave.
      Crash(id);
      return;
    }
    member.storage.Persist(ready);
    for (const raftpb::Message& m : ready.messages) network_.push_back(m);
    if (ready.snapshot != nullptr) member.applied_index = ready.snapshot->metadata().index();
    for (const raftpb::Entry& entry : ready.committed_entries) {
      RC_ASSERT(entry.index() == member.applied_index + 1);
      member.applied_index = entry.index();
      RecordCommitted(entry);
      if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
        raftpb::ConfChange change;
        RC_ASSERT(change.ParseFromString(entry.data()));
        (void)member.node->ApplyConfChange(change);
      }
    }
    member.node->Advance(ready);
  }

  void Deliver(size_t index, bool duplicate) {
    if (index >= network_.size()) return;
    raftpb::Message m = network_[index];
    if (!duplicate) network_.erase(network_.begin() + static_cast<long>(index));
    if (cut_.contains({m.from(), m.to()}) || !alive(m.to())) return;
    absl::Status status = node(m.to()).Step(m);
    // Correct members never send malformed messages.
    if (!status.ok()) RC_FAIL(absl::StrCat(status.ToString(), " for ", DescribeMessage(m)));
  }

  void Drop(size_t index) {
    if (index < network_.size()) network_.erase(network_.begin() + static_cast<long>(index));
  }

  void Crash(NodeId id) {
    members_[id - 1].node.reset();
    members_[id - 1].applied_index = 0;
  }

  void Restart(NodeId id) {
    Member& member = members_[id - 1];
    if (member.node.has_value()) return;
    absl::StatusOr<Node> node = Node::Start(member.config, member.storage.ToDurable());
    RC_ASSERT(node.ok());
    member.node.emplace(std::move(*node));
    member.applied_index = member.storage.snapshot.metadata().index();
  }

  void Snapshot(NodeId id) {
    if (!alive(id)) return;
    Member& member = members_[id - 1];
    auto snapshot = member.node->CreateSnapshot(member.applied_index, "");
    if (!snapshot.ok()) return;
    member.storage.SaveSnapshot(**snapshot);
    RC_ASSERT(member.node->Compact((*snapshot)->metadata().index()).ok());
  }

  void Cut(NodeId a, NodeId b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void Heal() { cut_.clear(); }
  size_t in_flight() const { return network_.size(); }

  // Safety checks over the whole cluster.
  void Check() {
    Term max_term = 0;
    for (const Member& member : members_) {
      if (member.node.has_value()) max_term = std::max(max_term, member.node->Status().term);
    }
    max_term_ = std::max(max_term_, max_term);
    for (Member& member : members_) {
      if (!member.node.has_value()) continue;
      member.node->CheckInvariants();
      NodeStatus status = member.node->Status();
      if (status.role != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(status.term, status.id);
      RC_ASSERT(it->second == status.id);  // election safety
      const RaftLog& log = member.node->raft().log();
      for (const auto& [index, committed] : committed_) {
        if (status.term <= committed.observed_at_term || index < log.first_index()) continue;
        // Leader completeness.
        RC_ASSERT(index <= log.last_index());
        RC_ASSERT(log.At(index).term() == committed.term);
        RC_ASSERT(log.At(index).data() == committed.data);
      }
    }
  }

  // Heals everything and runs until a leader committed a fresh entry on
  // every voter, or gives up.
  bool Converge(int max_ticks) {
    Heal();
    for (NodeId id = 1; id <= static_cast<NodeId>(size()); ++id) Restart(id);
    std::string marker = "final";
    for (int tick = 0; tick < max_ticks; ++tick) {
      for (NodeId id = 1; id <= static_cast<NodeId>(size()); ++id) Tick(id);
      Settle();
      NodeId leader = Leader();
      if (leader == kNoNode) continue;
      // An uncommitted proposal is lost when its leader is replaced; that is
      // allowed, so propose again until the current leader holds it.
      if (!LogHolds(leader, marker)) (void)node(leader).Propose(marker);
      Settle();
      if (AllVotersApplied(leader, marker)) return true;
    }
    return false;
  }

  std::string Describe() {
    std::string out;
    for (Member& member : members_) {
      if (!member.node.has_value()) {
        absl::StrAppend(&out, "crashed\n");
        continue;
      }
      NodeStatus st = member.node->Status();
      absl::StrAppend(&out, st.id, ": ", RoleName(st.role), " term ", st.term, " lead ", st.leader,
                      " commit ", st.commit, " applied ", st.applied, " last ", st.last_index,
                      " first ", st.first_index, " ", st.config, "\n");
      for (const auto& [id, pr] : st.progress) absl::StrAppend(&out, "    ", id, ": ", pr, "\n");
    }
    return out;
  }

 private:
  struct Member {
    Config config;
    std::optional<Node> node;
    MemoryStorage storage;
    Index applied_index = 0;
  };

  void RecordCommitted(const raftpb::Entry& entry) {
    auto it = committed_.find(entry.index());
    if (it == committed_.end()) {
      committed_[entry.index()] = CommittedEntry{entry.term(), entry.data(), max_term_};
      committed_data_.insert(entry.data());
      return;
    }
    // State machine safety.
    RC_ASSERT(it->second.term == entry.term());
    RC_ASSERT(it->second.data == entry.data());
  }

  void Settle() {
    for (int round = 0; round < 100 && (in_flight() > 0 || AnyReady()); ++round) {
      for (NodeId id = 1; id <= static_cast<NodeId>(size()); ++id) ProcessReady(id, false);
      while (!network_.empty()) Deliver(0, false);
      Check();
    }
  }

  bool AnyReady() {
    for (Member& member : members_) {
      if (member.node.has_value() && member.node->HasReady()) return true;
    }
    return false;
  }

  NodeId Leader() {
    NodeId leader = kNoNode;
    Term term = 0;
    for (Member& member : members_) {
      if (!member.node.has_value()) continue;
      NodeStatus status = member.node->Status();
      if (status.role == Role::kLeader && status.term >= term) {
        leader = status.id;
        term = status.term;
      }
    }
    return leader;
  }

  bool LogHolds(NodeId id, const std::string& data) {
    const RaftLog& log = node(id).raft().log();
    for (Index i = log.first_index(); i <= log.last_index(); ++i) {
      if (log.At(i).data() == data) return true;
    }
    return committed_data_.contains(data);
  }

  bool AllVotersApplied(NodeId leader, const std::string& marker) {
    Index marker_index = 0;
    for (const auto& [index, entry] : committed_) {
      if (entry.data == marker) marker_index = index;
    }
    if (marker_index == 0) return false;
    raftpb::ConfState conf = node(leader).Status().conf_state;
    for (NodeId voter : conf.voters()) {
      if (members_[voter - 1].applied_index < marker_index) return false;
    }
    return true;
  }

  std::vector<Member> members_;
  std::vector<raftpb::Message> network_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::map<Term, NodeId> leaders_;
  std::map<Index, CommittedEntry> committed_;
  std::set<std::string> committed_data_;
  Term max_term_ = 0;
};

raftpb::ConfChange RandomConfChange(int size) {
  raftpb::ConfChange change;
  int count = *rc::gen::inRange(1, 3);
  for (int i = 0; i < count; ++i) {
    raftpb::ConfChangeSingle* single = change.add_changes();
    single->set_node_id(*rc::gen::inRange<NodeId>(1, size + 1));
    single->set_type(*rc::gen::element(raftpb::ADD_NODE, raftpb::REMOVE_NODE,
                                       raftpb::ADD_LEARNER_NODE));
  }
  return change;
}

void RunRandomSchedule(bool pre_vote, bool check_quorum) {
  int size = *rc::gen::inRange(3, 6);
  int voters = *rc::gen::inRange(1, size + 1);
  uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  Cluster cluster(size, voters, seed, pre_vote, check_quorum);
  int steps = *rc::gen::inRange(50, 400);
  int proposals = 0;
  for (int step = 0; step < steps; ++step) {
    NodeId id = *rc::gen::inRange<NodeId>(1, size + 1);
    int action = *rc::gen::inRange(0, 100);
    if (action < 20) {
      cluster.Tick(id);
    } else if (action < 45) {
      cluster.ProcessReady(id, /*crash_before_persisting=*/*rc::gen::inRange(0, 50) == 0);
    } else if (action < 70) {
      if (cluster.in_flight() > 0) {
        size_t index = *rc::gen::inRange<size_t>(0, cluster.in_flight());
        cluster.Deliver(index, /*duplicate=*/*rc::gen::inRange(0, 10) == 0);
      }
    } else if (action < 74) {
      if (cluster.in_flight() > 0) cluster.Drop(*rc::gen::inRange<size_t>(0, cluster.in_flight()));
    } else if (action < 82) {
      if (cluster.alive(id)) (void)cluster.node(id).Propose(absl::StrCat("p", proposals++));
    } else if (action < 84) {
      if (cluster.alive(id)) (void)cluster.node(id).Campaign();
    } else if (action < 86) {
      cluster.Crash(id);
    } else if (action < 89) {
      cluster.Restart(id);
    } else if (action < 91) {
      cluster.Cut(id, *rc::gen::inRange<NodeId>(1, size + 1));
    } else if (action < 93) {
      cluster.Heal();
    } else if (action < 95) {
      cluster.Snapshot(id);
    } else if (action < 97) {
      if (cluster.alive(id)) (void)cluster.node(id).ProposeConfChange(RandomConfChange(size));
    } else if (action < 98) {
      if (cluster.alive(id)) {
        (void)cluster.node(id).TransferLeadership(*rc::gen::inRange<NodeId>(1, size + 1));
      }
    } else {
      if (cluster.alive(id)) (void)cluster.node(id).ReadIndex("r");
    }
    cluster.Check();
  }
  if (!cluster.Converge(/*max_ticks=*/400)) RC_FAIL("no progress after healing:\n" + cluster.Describe());
}

RC_GTEST_PROP(RaftProperty, SafeAndLiveWithPreVoteAndCheckQuorum, ()) { RunRandomSchedule(true, true); }

RC_GTEST_PROP(RaftProperty, SafeAndLiveWithoutPreVoteOrCheckQuorum, ()) {
  RunRandomSchedule(false, false);
}

}  // namespace
}  // namespace etc::raft
