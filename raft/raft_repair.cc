// Repair of a member whose storage was damaged (issue 20; Alagappan et al.,
// "Protocol-Aware Recovery for Consensus-Based Storage", FAST 2018).
//
// A damaged member kept only the part of its log it could prove intact; it
// may have acknowledged entries it lost. Two promises could break:
//   - its vote: a candidate missing a committed entry passes the
//     up-to-date check against a log that lost that entry. So a repairing
//     member never votes and never campaigns. (Its term and vote survive
//     apart from the log, so it cannot vote twice in a term either.)
//   - its acknowledgements: a leader's match index for it still counts
//     entries it no longer holds. So the member asks the leader to forget
//     them (MSG_REPAIR): the leader resets its progress and answers with
//     its last index, the repair target. Every entry committed on the strength
//     of the lost acknowledgements is at or below that index.
// The member finishes once the same leader confirmed that its log matches
// through the target (an append or snapshot it accepted). From then on its
// log holds every entry the lost acknowledgements stood for, and it votes
// again. A new term voids the target: the next leader answers a new probe.
//
// Only a leader sets a target, and a leader needs a quorum's votes: if a
// quorum of voters is repairing and no leader is heard, none ever will be.
// After kMajorityDamagedRounds probe rounds like that the member reports
// majority_damaged() and its host stops (the operator must restore it).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/describe.h"
#include "raft/raft.h"

namespace etc::raft {

void Raft::TickRepair() {
  ++repair_probe_elapsed_ticks_;
  if (repair_probe_sent_ && repair_probe_elapsed_ticks_ < config_.election_timeout_ticks) return;
  repair_probe_elapsed_ticks_ = 0;
  if (repair_probe_sent_) {
    // The round that just ended: who said they were repairing, and whether
    // a leader spoke. Voters only: a member that knows no voters (a spare
    // never added) cannot tell.
    std::set<NodeId> ids;
    for (NodeId peer : repairing_peers_) {
      if (tracker_.IsVoter(peer)) ids.insert(peer);
    }
    if (tracker_.IsVoter(id())) ids.insert(id());
    quorum::Votes repairing;
    for (NodeId peer : ids) repairing[peer] = true;
    bool no_leader = !std::exchange(repair_leader_heard_, false);
    if (no_leader && !ids.empty() &&
        tracker_.config.voters.Vote(repairing) == quorum::VoteResult::kWon) {
      ++repair_rounds_without_leader_;
    } else {
      repair_rounds_without_leader_ = 0;
    }
    // A peer heard repairing counts until a leader is heard: it can only
    // finish its repair from a leader, and once it gave up and stopped it
    // answers no more probes (the last of a damaged majority to give up
    // would otherwise wait for ever, as a real-process test found).
    if (!no_leader) repairing_peers_.clear();
    if (repair_rounds_without_leader_ >= kMajorityDamagedRounds && !majority_damaged_) {
      majority_damaged_ = true;
      Log(absl::StrCat(id(), " cannot repair: a quorum of voters is repairing (",
                       absl::StrJoin(ids, ","), ") and no leader was heard for ",
                       kMajorityDamagedRounds, " election timeouts"));
    }
  }
  if (repair_target_ != 0) return;  // the leader answered; its appends follow
  repair_probe_sent_ = true;
  std::vector<NodeId> to = tracker_.VoterIds();
  if (lead_ != kNoNode && std::find(to.begin(), to.end(), lead_) == to.end()) to.push_back(lead_);
  for (NodeId peer : to) {
    if (peer == id()) continue;
    raftpb::Message m;
    m.set_type(raftpb::MSG_REPAIR);
    m.set_to(peer);
    m.set_term(term_);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    Send(std::move(m));
  }
}

void Raft::HandleRepairProbe(const raftpb::Message& m) {
  if (repairing_) {
    repairing_peers_.insert(m.from());
    raftpb::Message resp;
    resp.set_type(raftpb::MSG_REPAIR_RESP);
    resp.set_to(m.from());
    resp.set_term(term_);
    resp.set_reject(true);
    Send(std::move(resp));
    return;
  }
  if (role_ != Role::kLeader) return;
  auto it = tracker_.progress.find(m.from());
  if (it == tracker_.progress.end()) return;
  tracker::Progress& pr = it->second;
  // Forget every acknowledgement the member made: it may have lost those
  // entries. From here on its match grows only from what it now holds.
  pr.match = 0;
  pr.BecomeProbe();
  pr.next = log_.last_index() + 1;
  Log(absl::StrCat(id(), " forgot the acknowledgements of repairing member ", m.from(),
                   "; repair target ", log_.last_index(), " [", pr.Describe(), "]"));
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_REPAIR_RESP);
  resp.set_to(m.from());
  resp.set_term(term_);
  resp.set_index(log_.last_index());
  Send(std::move(resp));
  MaybeSendAppend(m.from(), /*send_if_empty=*/true);
}

void Raft::HandleRepairResponse(const raftpb::Message& m) {
  if (!repairing_) return;
  if (m.reject()) {
    repairing_peers_.insert(m.from());
    return;
  }
  // Higher terms were adopted in StepTerm; a lower one is stale.
  if (m.term() != term_ || role_ != Role::kFollower) return;
  lead_ = m.from();
  repair_leader_heard_ = true;
  repair_target_ = m.index();
  Log(absl::StrCat(id(), " repairing from leader ", m.from(), " at term ", term_,
                   ": target index ", repair_target_));
  MaybeFinishRepair(0);
}

void Raft::MaybeFinishRepair(Index index) {
  repair_confirmed_ = std::max(repair_confirmed_, index);
  if (repair_target_ == 0 || repair_confirmed_ < repair_target_) return;
  repairing_ = false;
  repairing_peers_.clear();
  Log(absl::StrCat(id(), " finished repair at term ", term_, ": the log matches the leader's through ",
                   repair_confirmed_, " (target ", repair_target_, ")"));
}

}  // namespace etc::raft
