// Random schedules against a small cluster of real Nodes, checking Raft's
// safety properties after every step:
//  - election safety: at most one leader per term, across all members;
//  - state machine safety: every member applies the same entry at an index,
//    and has the same configuration after applying a conf change entry;
//  - leader completeness: a leader of a later term holds every entry
//    committed before its term;
//  - durability: a message leaves only after its Ready was persisted (a crash
//    between GetReady and persisting drops that Ready's messages);
//  - linearizable reads: a read's index is at least the highest commit index
//    any member knew when the read was issued (so it sees every write that
//    could have been acknowledged before it started). With lease reads,
//    members tick in lockstep: no clock drift, within the configured bound.
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

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "raft/describe.h"
#include "raft/node.h"
#include "raft/rafttest/local_cluster.h"

namespace etc::raft {
namespace {

struct CommittedEntry {
  Term term = 0;
  std::string data;
  // Every leader of a term above this one must hold the entry.
  Term observed_at_term = 0;
};

// A LocalCluster plus the cluster-wide safety checks.
class CheckedCluster {
 public:
  CheckedCluster(int size, int voters, uint64_t seed, const Config& base)
      : cluster_({.size = size,
                  .voters = voters,
                  .seed = seed,
                  .configure =
                      [&](Config& config) {
                        config.pre_vote = base.pre_vote;
                        config.check_quorum = base.check_quorum;
                        config.read_only = base.read_only;
                        config.max_inflight_msgs = 4;
                        config.max_append_payload_bytes = 16;
                        config.log_sink = [](const std::string& line) {
                          if (std::getenv("RAFT_TRACE")) std::fprintf(stderr, "%s\n", line.c_str());
                        };
                      }}) {
    cluster_.on_apply = [this](NodeId id, const raftpb::Entry& entry) {
      RecordCommitted(entry);
      if (entry.type() != raftpb::ENTRY_CONF_CHANGE) return;
      // Configuration agreement: every member that applied this entry has
      // the same configuration afterwards (otherwise quorums need not
      // intersect).
      std::string config = cluster_.node(id).Status().config;
      auto [it, inserted] = config_after_.emplace(entry.index(), config);
      if (it->second != config) {
        RC_FAIL(absl::StrCat("member ", id, " has ", config, " after entry ", entry.index(),
                             ", another has ", it->second));
      }
    };
    cluster_.on_read_state = [this](NodeId id, const ReadState& read) {
      auto it = read_floors_.find(read.context);
      RC_ASSERT(it != read_floors_.end());
      if (read.index < it->second) {
        RC_FAIL(absl::StrCat("read ", read.context, " at member ", id, " got index ", read.index,
                             " below ", it->second, "\n", Describe()));
      }
    };
  }

  // Ticks everybody in lockstep until there is a leader (or gives up).
  void Elect() {
    for (int tick = 0; tick < 100 && cluster_.Leader() == kNoNode; ++tick) {
      cluster_.TickAll();
      SettleAndCheck();
    }
  }

  void SettleAndCheck() {
    absl::Status status = cluster_.Settle(100);
    if (!status.ok()) RC_FAIL(status.ToString());
    Check();
  }

  // Cuts the current leader off and runs the others (and, with lockstep
  // ticks, the old leader too) until someone else leads and has committed a
  // write: the old leader may still believe it leads.
  void Depose(bool lockstep_ticks) {
    NodeId old_leader = cluster_.Leader();
    if (old_leader == kNoNode) return;
    for (NodeId other = 1; other <= static_cast<NodeId>(cluster_.size()); ++other) {
      cluster_.Cut(old_leader, other);
    }
    for (int tick = 0; tick < 100; ++tick) {
      for (NodeId id = 1; id <= static_cast<NodeId>(cluster_.size()); ++id) {
        if (lockstep_ticks || id != old_leader) cluster_.Tick(id);
      }
      SettleAndCheck();
      NodeId leader = cluster_.Leader();
      if (leader != kNoNode && leader != old_leader) {
        (void)cluster_.node(leader).Propose("after-depose");
        SettleAndCheck();
        // The moment a stale leader could answer from an old state.
        Read(old_leader);
        SettleAndCheck();
        return;
      }
    }
  }

  // Issues a read at `id`, remembering the least index a correct answer has.
  void Read(NodeId id) {
    if (!cluster_.alive(id)) return;
    std::string context = absl::StrCat("r", read_floors_.size());
    Index floor = committed_.empty() ? 0 : committed_.rbegin()->first;
    for (NodeId other = 1; other <= static_cast<NodeId>(cluster_.size()); ++other) {
      if (cluster_.alive(other)) floor = std::max(floor, cluster_.node(other).Status().commit);
    }
    read_floors_[context] = floor;
    (void)cluster_.node(id).ReadIndex(context);
  }

  rafttest::LocalCluster& cluster() { return cluster_; }
  size_t committed_count() const { return committed_.size(); }

  void Deliver(size_t index, bool duplicate) {
    absl::Status status = cluster_.Deliver(index, duplicate);
    // Correct members never send malformed messages.
    if (!status.ok()) RC_FAIL(status.ToString());
  }

  void Check() {
    Term max_term = 0;
    for (NodeId id = 1; id <= static_cast<NodeId>(cluster_.size()); ++id) {
      if (cluster_.alive(id)) max_term = std::max(max_term, cluster_.node(id).Status().term);
    }
    max_term_ = std::max(max_term_, max_term);
    for (NodeId id = 1; id <= static_cast<NodeId>(cluster_.size()); ++id) {
      if (!cluster_.alive(id)) continue;
      Node& node = cluster_.node(id);
      node.CheckInvariants();
      NodeStatus status = node.Status();
      if (status.role != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(status.term, status.id);
      RC_ASSERT(it->second == status.id);  // election safety
      const RaftLog& log = node.raft().log();
      for (const auto& [index, committed] : committed_) {
        if (status.term <= committed.observed_at_term || index < log.first_index()) continue;
        // Leader completeness.
        RC_ASSERT(index <= log.last_index());
        RC_ASSERT(log.At(index).term() == committed.term);
        RC_ASSERT(log.At(index).data() == committed.data);
      }
    }
  }

  // Heals everything, restarts every member and runs until a leader has
  // committed a fresh entry on every voter, or gives up.
  bool Converge(int max_ticks) {
    cluster_.Heal();
    for (NodeId id = 1; id <= static_cast<NodeId>(cluster_.size()); ++id) {
      RC_ASSERT(cluster_.Restart(id).ok());
    }
    const std::string marker = "final";
    for (int tick = 0; tick < max_ticks; ++tick) {
      cluster_.TickAll();
      SettleAndCheck();
      NodeId leader = cluster_.Leader();
      if (leader == kNoNode) continue;
      // An uncommitted proposal is lost when its leader is replaced; that is
      // allowed, so propose again until the current leader holds it.
      if (!LogHolds(leader, marker)) (void)cluster_.node(leader).Propose(marker);
      SettleAndCheck();
      if (AllVotersApplied(leader, marker)) return true;
    }
    return false;
  }

  std::string Describe() {
    std::string out;
    for (NodeId id = 1; id <= static_cast<NodeId>(cluster_.size()); ++id) {
      if (!cluster_.alive(id)) {
        absl::StrAppend(&out, id, ": crashed\n");
        continue;
      }
      NodeStatus st = cluster_.node(id).Status();
      absl::StrAppend(&out, id, ": ", RoleName(st.role), " term ", st.term, " lead ", st.leader,
                      " commit ", st.commit, " applied ", st.applied, " last ", st.last_index,
                      " first ", st.first_index, " ", st.config, "\n");
      for (const auto& [peer, pr] : st.progress) absl::StrAppend(&out, "    ", peer, ": ", pr, "\n");
    }
    return out;
  }

 private:
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

  bool LogHolds(NodeId id, const std::string& data) {
    const RaftLog& log = cluster_.node(id).raft().log();
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
    NodeStatus status = cluster_.node(leader).Status();
    for (NodeId voter : status.conf_state.voters()) {
      if (cluster_.applied_index(voter) < marker_index) return false;
    }
    return true;
  }

  rafttest::LocalCluster cluster_;
  std::map<Term, NodeId> leaders_;
  std::map<Index, CommittedEntry> committed_;
  std::set<std::string> committed_data_;
  std::map<std::string, Index> read_floors_;
  std::map<Index, std::string> config_after_;
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

// With lockstep ticks every member ticks at once (no clock drift), which
// lease reads need; otherwise members tick independently.
void RunRandomSchedule(const Config& base, bool lockstep_ticks) {
  int size = *rc::gen::inRange(3, 6);
  int voters = *rc::gen::inRange(1, size + 1);
  uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  CheckedCluster checked(size, voters, seed, base);
  rafttest::LocalCluster& cluster = checked.cluster();
  // Half the runs start from an elected leader, so faults hit a working
  // cluster rather than one still forming.
  if (*rc::gen::inRange(0, 2) == 0) checked.Elect();
  int steps = *rc::gen::inRange(50, 400);
  int proposals = 0;
  for (int step = 0; step < steps; ++step) {
    NodeId id = *rc::gen::inRange<NodeId>(1, size + 1);
    int action = *rc::gen::inRange(0, 100);
    if (action < 15) {
      if (lockstep_ticks) {
        cluster.TickAll();
      } else {
        cluster.Tick(id);
      }
    } else if (action < 25) {
      // Everything in flight arrives and every member catches up.
      checked.SettleAndCheck();
    } else if (action < 42) {
      cluster.ProcessReady(id, /*crash_before_persisting=*/*rc::gen::inRange(0, 50) == 0);
    } else if (action < 65) {
      if (cluster.in_flight() > 0) {
        size_t index = *rc::gen::inRange<size_t>(0, cluster.in_flight());
        checked.Deliver(index, /*duplicate=*/*rc::gen::inRange(0, 10) == 0);
      }
    } else if (action < 68) {
      if (cluster.in_flight() > 0) cluster.Drop(*rc::gen::inRange<size_t>(0, cluster.in_flight()));
    } else if (action < 76) {
      if (cluster.alive(id)) (void)cluster.node(id).Propose(absl::StrCat("p", proposals++));
    } else if (action < 78) {
      if (cluster.alive(id)) (void)cluster.node(id).Campaign();
    } else if (action < 80) {
      cluster.Crash(id);
    } else if (action < 83) {
      RC_ASSERT(cluster.Restart(id).ok());
    } else if (action < 85) {
      cluster.Cut(id, *rc::gen::inRange<NodeId>(1, size + 1));
    } else if (action < 86) {
      checked.Depose(lockstep_ticks);
    } else if (action < 88) {
      cluster.Heal();
    } else if (action < 90) {
      (void)cluster.SnapshotAndCompact(id);
    } else if (action < 91) {
      if (cluster.alive(id)) (void)cluster.node(id).ProposeConfChange(RandomConfChange(size));
    } else if (action < 92) {
      if (cluster.alive(id)) {
        (void)cluster.node(id).TransferLeadership(*rc::gen::inRange<NodeId>(1, size + 1));
      }
    } else {
      // Half the reads go to the member that believes it leads with the
      // lowest term: after Depose, a stale leader.
      if (*rc::gen::inRange(0, 2) == 0) {
        Term lowest = std::numeric_limits<Term>::max();
        for (NodeId other = 1; other <= static_cast<NodeId>(size); ++other) {
          if (!cluster.alive(other)) continue;
          NodeStatus status = cluster.node(other).Status();
          if (status.role == Role::kLeader && status.term < lowest) {
            lowest = status.term;
            id = other;
          }
        }
      }
      checked.Read(id);
    }
    checked.Check();
  }
  // Coverage, printed by RapidCheck: how many entries committed under faults.
  size_t committed = checked.committed_count();
  RC_TAG(committed == 0 ? "committed 0" : committed < 5 ? "committed 1-4" : "committed 5+");
  if (!checked.Converge(/*max_ticks=*/400)) RC_FAIL("no progress after healing:\n" + checked.Describe());
}

Config Options(bool pre_vote, bool check_quorum, ReadOnlyOption read_only) {
  Config config;
  config.pre_vote = pre_vote;
  config.check_quorum = check_quorum;
  config.read_only = read_only;
  return config;
}

RC_GTEST_PROP(RaftProperty, SafeAndLiveWithPreVoteAndCheckQuorum, ()) {
  RunRandomSchedule(Options(true, true, ReadOnlyOption::kSafe), /*lockstep_ticks=*/false);
}

RC_GTEST_PROP(RaftProperty, SafeAndLiveWithoutPreVoteOrCheckQuorum, ()) {
  RunRandomSchedule(Options(false, false, ReadOnlyOption::kSafe), /*lockstep_ticks=*/false);
}

RC_GTEST_PROP(RaftProperty, LeaseReadsLinearizableWithoutClockDrift, ()) {
  RunRandomSchedule(Options(true, true, ReadOnlyOption::kLeaseBased), /*lockstep_ticks=*/true);
}

}  // namespace
}  // namespace etc::raft
