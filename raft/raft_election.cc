// Elections: campaigns (PreVote, then the vote), counting votes, answering
// vote requests (with leader stickiness and the up-to-date log check), and
// the leader lease's remaining ticks.
#include "absl/strings/str_cat.h"
#include "raft/describe.h"
#include "raft/raft.h"

namespace etc::raft {

bool Raft::HasUnappliedConfChanges() const {
  if (log_.applied() >= log_.committed()) return false;
  for (Index index = std::max(log_.applied() + 1, log_.first_index()); index <= log_.committed();
       ++index) {
    if (log_.At(index).type() == raftpb::ENTRY_CONF_CHANGE) return true;
  }
  return false;
}

void Raft::Hup(CampaignKind kind) {
  if (role_ == Role::kLeader) {
    Log(absl::StrCat(id(), " ignoring campaign: already leader"));
    return;
  }
  if (!Promotable()) {
    Log(absl::StrCat(id(), " is not a voter and cannot campaign"));
    return;
  }
  if (repairing_) {
    Log(absl::StrCat(id(), " is repairing damaged storage and cannot campaign"));
    return;
  }
  if (HasUnappliedConfChanges()) {
    // Its configuration may be about to change; campaigning now could use
    // the wrong quorum.
    Log(absl::StrCat(id(), " cannot campaign at term ", term_,
                     ": committed configuration changes are not applied yet"));
    return;
  }
  Log(absl::StrCat(id(), " is starting a new election at term ", term_));
  StartCampaign(kind);
}

void Raft::StartCampaign(CampaignKind kind) {
  raftpb::MessageType type;
  Term term;
  if (kind == CampaignKind::kPreElection) {
    BecomePreCandidate();
    type = raftpb::MSG_PRE_VOTE;
    // The pre-vote asks about the term this node would campaign in.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    type = raftpb::MSG_VOTE;
    term = term_;
  }
  for (NodeId voter : tracker_.VoterIds()) {
    if (voter == id()) {
      Poll(id(), true);
      // A single voter wins on its own vote.
      if (role_ == Role::kLeader || role_ == Role::kFollower) return;
      continue;
    }
    raftpb::Message m;
    m.set_type(type);
    m.set_to(voter);
    m.set_term(term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    m.set_transfer(kind == CampaignKind::kTransfer);
    Log(absl::StrCat(id(), " [logterm: ", log_.last_term(), ", index: ", log_.last_index(),
                     "] sent ", MessageTypeName(type), " request to ", voter, " at term ", term_));
    Send(std::move(m));
  }
}

void Raft::Poll(NodeId from, bool granted) {
  tracker_.RecordVote(from, granted);
  tracker::ProgressTracker::Tally tally = tracker_.TallyVotes();
  switch (tally.result) {
    case quorum::VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        StartCampaign(CampaignKind::kElection);
      } else if (role_ == Role::kCandidate) {
        BecomeLeader();
        BroadcastAppend();
      }
      break;
    case quorum::VoteResult::kLost:
      // Go back to follower in the same term; a higher term would have
      // been adopted already when the rejection arrived.
      BecomeFollower(term_, kNoNode);
      break;
    case quorum::VoteResult::kPending:
      break;
  }
}

int64_t Raft::LeaseRemainingTicks() const {
  if (!config_.check_quorum) return 0;
  int64_t remaining = 0;
  if (lead_ != kNoNode) remaining = config_.election_timeout_ticks - election_elapsed_ticks_;
  if (config_.read_only == ReadOnlyOption::kLeaseBased) {
    // A restarted member forgot which leader it heard from and when; with
    // lease reads it must still not vote for an election timeout, or a
    // leader holding a lease could be deposed early.
    remaining = std::max(remaining, config_.election_timeout_ticks - now_ticks_);
  }
  return std::max<int64_t>(remaining, 0);
}

void Raft::HandleVoteRequest(const raftpb::Message& m) {
  bool pre = m.type() == raftpb::MSG_PRE_VOTE;
  raftpb::MessageType response = pre ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  // A node may vote again for the same candidate (a retried request), or for
  // anyone if it has neither voted nor follows a leader in this term; a
  // pre-vote for a future term promises nothing and is always allowed.
  bool can_vote = vote_ == m.from() || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (pre && m.term() > term_);
  // A repairing member's log may lack entries it acknowledged, and with
  // them the up-to-date check that protects committed entries.
  if (repairing_) can_vote = false;
  raftpb::Message resp;
  resp.set_type(response);
  resp.set_to(m.from());
  if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
    Log(absl::StrCat(id(), " [logterm: ", log_.last_term(), ", index: ", log_.last_index(),
                     ", vote: ", vote_, "] cast ", MessageTypeName(m.type()), " for ", m.from(),
                     " [logterm: ", m.log_term(), ", index: ", m.index(), "] at term ", term_));
    // The grant answers in the candidate's term (for a pre-vote, the future
    // term), so the candidate can tell it from stale answers.
    resp.set_term(m.term());
    if (!pre) {
      election_elapsed_ticks_ = 0;
      vote_ = m.from();
    }
  } else {
    Log(absl::StrCat(id(), " [logterm: ", log_.last_term(), ", index: ", log_.last_index(),
                     ", vote: ", vote_, "] rejected ", MessageTypeName(m.type()), " from ",
                     m.from(), " [logterm: ", m.log_term(), ", index: ", m.index(), "] at term ",
                     term_));
    resp.set_term(term_);
    resp.set_reject(true);
  }
  Send(std::move(resp));
}

}  // namespace etc::raft
