// The Raft state machine's own invariants, checked after every input in
// debug and test builds (and by the simulator in optimized ones).
#include "base/check.h"
#include "raft/raft.h"

namespace etc::raft {

void Raft::CheckInvariants() {
  std::string problem = log_.FindInconsistency();
  ETC_CHECK(problem.empty()) << "node " << id() << ": " << problem;
  problem = tracker_.FindInconsistency();
  ETC_CHECK(problem.empty()) << "node " << id() << ": " << problem;
  ETC_CHECK_GE(term_, checked_term_) << "node " << id() << ": term went backwards";
  ETC_CHECK_GE(log_.committed(), checked_commit_) << "node " << id() << ": commit went backwards";
  ETC_CHECK_LE(log_.last_term(), term_) << "node " << id() << ": log has entries from the future";
  checked_term_ = term_;
  checked_commit_ = log_.committed();
  if (lead_ != kNoNode) {
    // At most one leader per term, as far as this node can tell.
    if (checked_leader_term_ == term_ && checked_leader_ != kNoNode) {
      ETC_CHECK_EQ(lead_, checked_leader_) << "node " << id() << " saw two leaders in term " << term_;
    }
    checked_leader_ = lead_;
    checked_leader_term_ = term_;
  }
  switch (role_) {
    case Role::kLeader: {
      ETC_CHECK_EQ(lead_, id());
      ETC_CHECK_EQ(vote_, id()) << "a leader voted for itself in its term";
      if (const tracker::Progress* self = SelfProgress(); self != nullptr) {
        ETC_CHECK_LE(self->match, log_.stable()) << "leader counts non-durable entries of its own";
      } else {
        ETC_CHECK(leaving()) << "a leader outside its configuration that is not leaving";
      }
      for (const auto& [node, pr] : tracker_.progress) {
        ETC_CHECK_LE(pr.match, log_.last_index()) << "follower " << node << " matched past our log";
        ETC_CHECK_LE(pr.next, log_.last_index() + 1) << "follower " << node << " next past our log";
      }
      if (log_.committed() > commit_at_election_) {
        std::optional<Term> committed_term = log_.TermAt(log_.committed());
        ETC_CHECK(!committed_term.has_value() || *committed_term == term_)
            << "leader " << id() << " of term " << term_ << " committed " << log_.committed()
            << ", an entry of term " << *committed_term << ", by counting (Figure 8)";
      }
      ETC_CHECK(pending_reads_.empty() || CommittedEntryInCurrentTerm())
          << "reads pending before the leader committed in its term";
      break;
    }
    case Role::kCandidate:
      ETC_CHECK_EQ(vote_, id()) << "a candidate voted for itself";
      ETC_CHECK_EQ(lead_, kNoNode);
      break;
    case Role::kPreCandidate:
      ETC_CHECK_EQ(lead_, kNoNode);
      break;
    case Role::kFollower:
      ETC_CHECK(pending_reads_.empty()) << "follower with pending leader reads";
      break;
  }
  if (unstable_snapshot_ != nullptr) {
    ETC_CHECK_EQ(unstable_snapshot_->metadata().index(), log_.snapshot_index());
  }
}

}  // namespace etc::raft
