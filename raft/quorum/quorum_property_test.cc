// Properties of the quorum math against a brute-force oracle that knows
// nothing about sorting: a committed index is the largest value acknowledged
// by some majority, and a vote is decided once every way the missing voters
// could answer gives the same outcome.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "raft/quorum/quorum.h"

namespace etc::raft::quorum {
namespace {

// Up to 7 voters with ids drawn from 1..9, so halves of a joint configuration
// overlap often. Drawn as a bit mask: RapidCheck gives up on unique-element
// containers that nearly exhaust their range.
rc::Gen<std::set<NodeId>> GenVoters(int min_size) {
  return rc::gen::map(rc::gen::suchThat(rc::gen::inRange<uint32_t>(0, 1u << 9),
                                        [min_size](uint32_t mask) {
                                          int count = __builtin_popcount(mask);
                                          return count >= min_size && count <= 7;
                                        }),
                      [](uint32_t mask) {
                        std::set<NodeId> ids;
                        for (NodeId id = 1; id <= 9; ++id) {
                          if (mask & (1u << (id - 1))) ids.insert(id);
                        }
                        return ids;
                      });
}

bool IsMajority(size_t count, size_t voters) { return count * 2 > voters; }

Index OracleCommitted(const std::set<NodeId>& voters, const std::map<NodeId, Index>& acked) {
  if (voters.empty()) return std::numeric_limits<Index>::max();
  Index best = 0;
  std::set<Index> candidates{0};
  for (const auto& [id, index] : acked) candidates.insert(index);
  for (Index candidate : candidates) {
    size_t count = 0;
    for (NodeId id : voters) {
      auto it = acked.find(id);
      if (it != acked.end() && it->second >= candidate) ++count;
    }
    if (IsMajority(count, voters.size())) best = std::max(best, candidate);
  }
  return best;
}

bool WinsWithAll(const std::set<NodeId>& voters, const Votes& votes) {
  if (voters.empty()) return true;
  size_t granted = 0;
  for (NodeId id : voters) {
    auto it = votes.find(id);
    if (it != votes.end() && it->second) ++granted;
  }
  return IsMajority(granted, voters.size());
}

// Enumerates every completion of the missing votes.
VoteResult OracleVote(const std::vector<std::set<NodeId>>& halves, const Votes& votes) {
  std::set<NodeId> all;
  for (const auto& half : halves) all.insert(half.begin(), half.end());
  std::vector<NodeId> missing;
  for (NodeId id : all) {
    if (!votes.contains(id)) missing.push_back(id);
  }
  bool some_win = false;
  bool some_loss = false;
  for (uint32_t mask = 0; mask < (1u << missing.size()); ++mask) {
    Votes completed = votes;
    for (size_t i = 0; i < missing.size(); ++i) completed[missing[i]] = (mask >> i) & 1;
    bool won = std::all_of(halves.begin(), halves.end(),
                           [&](const std::set<NodeId>& half) { return WinsWithAll(half, completed); });
    (won ? some_win : some_loss) = true;
  }
  if (!some_loss) return VoteResult::kWon;
  if (!some_win) return VoteResult::kLost;
  return VoteResult::kPending;
}

std::map<NodeId, Index> GenAcked(const std::set<NodeId>& ids) {
  std::map<NodeId, Index> acked;
  for (NodeId id : ids) {
    // Some voters have not acknowledged anything yet.
    if (*rc::gen::inRange(0, 4)) acked[id] = *rc::gen::inRange<Index>(0, 20);
  }
  return acked;
}

Votes GenVotes(const std::set<NodeId>& ids) {
  Votes votes;
  for (NodeId id : ids) {
    int choice = *rc::gen::inRange(0, 3);
    if (choice == 1) votes[id] = true;
    if (choice == 2) votes[id] = false;
  }
  return votes;
}

RC_GTEST_PROP(QuorumProperty, MajorityCommittedIndexMatchesOracle, ()) {
  auto voters = *GenVoters(0);
  auto acked = GenAcked(voters);
  MajorityConfig config(std::vector<NodeId>(voters.begin(), voters.end()));
  Index got = config.CommittedIndex([&](NodeId id) -> std::optional<Index> {
    auto it = acked.find(id);
    if (it == acked.end()) return std::nullopt;
    return it->second;
  });
  RC_ASSERT(got == OracleCommitted(voters, acked));
}

RC_GTEST_PROP(QuorumProperty, JointCommittedIndexMatchesOracle, ()) {
  auto incoming = *GenVoters(1);
  auto outgoing = *GenVoters(0);
  std::set<NodeId> all = incoming;
  all.insert(outgoing.begin(), outgoing.end());
  auto acked = GenAcked(all);
  JointConfig config{MajorityConfig(std::vector<NodeId>(incoming.begin(), incoming.end())),
                     MajorityConfig(std::vector<NodeId>(outgoing.begin(), outgoing.end()))};
  Index got = config.CommittedIndex([&](NodeId id) -> std::optional<Index> {
    auto it = acked.find(id);
    if (it == acked.end()) return std::nullopt;
    return it->second;
  });
  RC_ASSERT(got == std::min(OracleCommitted(incoming, acked), OracleCommitted(outgoing, acked)));
}

RC_GTEST_PROP(QuorumProperty, MajorityVoteMatchesOracle, ()) {
  auto voters = *GenVoters(0);
  auto votes = GenVotes(voters);
  MajorityConfig config(std::vector<NodeId>(voters.begin(), voters.end()));
  RC_ASSERT(config.Vote(votes) == OracleVote({voters}, votes));
}

RC_GTEST_PROP(QuorumProperty, JointVoteMatchesOracle, ()) {
  auto incoming = *GenVoters(1);
  auto outgoing = *GenVoters(0);
  std::set<NodeId> all = incoming;
  all.insert(outgoing.begin(), outgoing.end());
  auto votes = GenVotes(all);
  JointConfig config{MajorityConfig(std::vector<NodeId>(incoming.begin(), incoming.end())),
                     MajorityConfig(std::vector<NodeId>(outgoing.begin(), outgoing.end()))};
  RC_ASSERT(config.Vote(votes) == OracleVote({incoming, outgoing}, votes));
}

// Safety at the heart of Raft: two quorums of the same configuration always
// share a voter, so two different values cannot both be committed.
RC_GTEST_PROP(QuorumProperty, AnyTwoWinningVoteSetsIntersect, ()) {
  auto voters = *GenVoters(1);
  auto first = GenVotes(voters);
  auto second = GenVotes(voters);
  MajorityConfig config(std::vector<NodeId>(voters.begin(), voters.end()));
  if (config.Vote(first) == VoteResult::kWon && config.Vote(second) == VoteResult::kWon) {
    bool shared = false;
    for (NodeId id : voters) {
      auto a = first.find(id);
      auto b = second.find(id);
      if (a != first.end() && b != second.end() && a->second && b->second) shared = true;
    }
    RC_ASSERT(shared);
  }
}

}  // namespace
}  // namespace etc::raft::quorum
