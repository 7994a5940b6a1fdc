// Cluster-wide safety checks, run continuously: after every event that
// touched a member, and on every applied entry.
//
//  - election safety: at most one leader per term;
//  - log matching: an (index, term) pair names one entry everywhere, and the
//    entries before it agree (checked through the previous entry's term).
//    Checked on durable logs, as each write reaches a member's disk: an
//    entry only in memory when its member crashed never existed for anyone
//    (members persist before they send), so a member that lost its
//    unsynced term may legitimately lead that term again with other entries;
//  - promises only from disk: a member acknowledges entries (MsgAppResp)
//    only once its disk holds them, as the leader of that term has them, and
//    grants a vote only once its disk holds that term and vote;
//  - leader completeness: a leader holds every entry committed before its term;
//  - state machine safety: every member applies the same entry at an index;
//  - each member's own invariants (raft::Node::CheckInvariants: commit never
//    decreases, applied <= committed <= last, ...), in optimized builds too.
// The first violation is kept; the simulation stops there.
#ifndef ETC_SIM_CHECKERS_H_
#define ETC_SIM_CHECKERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "member/member.h"
#include "raft/memory_storage.h"
#include "raft/raftpb.pb.h"

namespace etc::sim {

struct Violation {
  // Which checker fired: "election-safety", "linearizability", ...
  std::string checker;
  std::string message;
};

class SafetyChecker {
 public:
  // After an event that touched the (running) member.
  void CheckMember(member::Member& member);
  // A member applied a committed entry.
  void OnApply(uint64_t member_id, const raftpb::Entry& entry);
  // `message` leaves a member whose disk holds `durable`. `leader` is the
  // member that led the message's term, if it is running and still holds
  // that term's log (nullptr otherwise).
  void CheckPromise(const raftpb::Message& message, const raft::MemoryStorage& durable,
                    const member::Member* leader);
  // Who led `term`, if anyone did (0 otherwise).
  uint64_t LeaderOfTerm(uint64_t term) const {
    auto it = leader_of_term_.find(term);
    return it == leader_of_term_.end() ? 0 : it->second;
  }
  // The highest term any member has reached (for leader completeness).
  void ObserveTerm(uint64_t term) { max_term_ = std::max(max_term_, term); }
  // `entries` reached the member's disk, which now holds `durable`.
  void OnDurable(uint64_t member_id, const std::vector<raftpb::Entry>& entries,
                 const raft::MemoryStorage& durable);

  const std::optional<Violation>& violation() const { return violation_; }
  void Fail(std::string checker, std::string message);
  // Highest index known committed (applied somewhere).
  uint64_t max_committed_index() const {
    return committed_.empty() ? 0 : committed_.rbegin()->first;
  }

 private:
  struct EntryFacts {
    uint64_t content_hash = 0;
    uint64_t previous_term = 0;
  };
  struct Committed {
    uint64_t term = 0;
    uint64_t content_hash = 0;
    uint64_t observed_at_term = 0;
  };

  void CheckLeaderCompleteness(member::Member& member, uint64_t term);

  std::optional<Violation> violation_;
  std::map<uint64_t, uint64_t> leader_of_term_;
  // (index, term) -> what every log holding that entry must agree on.
  std::map<std::pair<uint64_t, uint64_t>, EntryFacts> entries_;
  std::map<uint64_t, Committed> committed_;
  // (leader, term) pairs already checked for completeness.
  std::map<std::pair<uint64_t, uint64_t>, bool> complete_leaders_;
  uint64_t max_term_ = 0;
};

uint64_t HashEntry(const raftpb::Entry& entry);

}  // namespace etc::sim

#endif  // ETC_SIM_CHECKERS_H_
