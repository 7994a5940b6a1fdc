#include "raft/log.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "raft/rafttest/builders.h"

namespace etc::raft {
namespace {

raftpb::Entry E(Index index, Term term, std::string data = "") {
  return rafttest::MakeEntry(index, term, std::move(data));
}

EntryList L(std::initializer_list<raftpb::Entry> entries) {
  EntryList list;
  for (const auto& entry : entries) *list.Add() = entry;
  return list;
}

EntryList L(const std::vector<raftpb::Entry>& entries) {
  EntryList list;
  for (const auto& entry : entries) *list.Add() = entry;
  return list;
}

std::string Terms(const RaftLog& log) {
  std::string out;
  for (Index i = log.first_index(); i <= log.last_index(); ++i) {
    out += std::to_string(log.At(i).term());
  }
  return out;
}

RaftLog LogWithTerms(const std::vector<Term>& terms) {
  RaftLog log(0, 0);
  std::vector<raftpb::Entry> entries;
  for (size_t i = 0; i < terms.size(); ++i) entries.push_back(E(i + 1, terms[i]));
  log.Append(std::move(entries));
  return log;
}

TEST(RaftLog, MaybeAppendRejectsMismatchedPrev) {
  RaftLog log = LogWithTerms({1, 1, 2});
  EXPECT_FALSE(log.MaybeAppend(3, 1, 3, EntryList()).has_value());
  EXPECT_FALSE(log.MaybeAppend(4, 2, 3, EntryList()).has_value());
  EXPECT_EQ(log.MaybeAppend(3, 2, 2, EntryList()), 3u);
  EXPECT_EQ(log.committed(), 2u);
}

TEST(RaftLog, StaleAppendNeverTruncates) {
  // Raft-traps #4: an old append whose entries are all present must not cut
  // the newer suffix off.
  RaftLog log = LogWithTerms({1, 1, 2, 2, 2});
  EXPECT_EQ(log.MaybeAppend(1, 1, 0, L({E(2, 1), E(3, 2)})), 3u);
  EXPECT_EQ(Terms(log), "11222");
}

TEST(RaftLog, ConflictTruncatesFromTheFirstConflictOnly) {
  RaftLog log = LogWithTerms({1, 1, 2, 2, 2});
  log.StableTo(5, 2);
  EXPECT_EQ(log.MaybeAppend(2, 1, 0, L({E(3, 2), E(4, 3)})), 4u);
  EXPECT_EQ(Terms(log), "1123");
  EXPECT_EQ(log.stable(), 3u) << "the replaced suffix is no longer durable";
}

TEST(RaftLog, CommitIsBoundedByTheLastNewEntry) {
  RaftLog log = LogWithTerms({1, 1, 1, 1});
  // The leader's commit of 4 does not vouch for our entries past index 2.
  EXPECT_EQ(log.MaybeAppend(1, 1, 4, L({E(2, 1)})), 2u);
  EXPECT_EQ(log.committed(), 2u);
}

TEST(RaftLog, StableToIgnoresReplacedEntries) {
  // Raft-traps #19: a write of term-1 entries that completes after a new
  // leader replaced them must not mark the new entries durable.
  RaftLog log = LogWithTerms({1, 1, 1});
  ASSERT_TRUE(log.MaybeAppend(1, 1, 0, L({E(2, 2), E(3, 2)})).has_value());
  log.StableTo(3, 1);
  EXPECT_EQ(log.stable(), 0u);
  log.StableTo(3, 2);
  EXPECT_EQ(log.stable(), 3u);
}

TEST(RaftLog, CommittedEntriesWaitForDurability) {
  RaftLog log = LogWithTerms({1, 1, 1});
  log.CommitTo(3);
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.StableTo(2, 1);
  ASSERT_EQ(log.NextCommittedEntries(UINT64_MAX).size(), 2u);
  log.AppliedTo(2);
  log.StableTo(3, 1);
  EXPECT_EQ(log.NextCommittedEntries(UINT64_MAX).size(), 1u);
}

TEST(RaftLog, SliceRespectsByteLimitButReturnsOneEntry) {
  RaftLog log(0, 0);
  log.Append({E(1, 1, "aaaa"), E(2, 1, "bbbb"), E(3, 1, "cccc")});
  EXPECT_EQ(log.Slice(1, 4, 1).size(), 1u);
  EXPECT_EQ(log.Slice(1, 4, 8).size(), 2u);
  EXPECT_EQ(log.Slice(1, 4, 100).size(), 3u);
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  RaftLog log = LogWithTerms({1, 1, 2, 2, 5, 5});
  EXPECT_EQ(log.FindConflictByTerm(6, 4), std::make_pair(Index{4}, Term{2}));
  EXPECT_EQ(log.FindConflictByTerm(6, 5), std::make_pair(Index{6}, Term{5}));
  EXPECT_EQ(log.FindConflictByTerm(10, 1), std::make_pair(Index{2}, Term{1}));
  EXPECT_EQ(log.FindConflictByTerm(6, 0), std::make_pair(Index{0}, Term{0}));
}

TEST(RaftLog, CompactionAndRestore) {
  RaftLog log = LogWithTerms({1, 1, 2, 2});
  log.StableTo(4, 2);
  log.CommitTo(4);
  log.AppliedTo(3);
  // Checked before and after each move of the snapshot point: the check
  // remembers what it walked and must walk again from the new front.
  EXPECT_EQ(log.FindInconsistency(), "");
  log.CompactTo(3);
  EXPECT_EQ(log.FindInconsistency(), "");
  EXPECT_EQ(log.first_index(), 4u);
  EXPECT_EQ(log.TermAt(3), 2u);
  EXPECT_FALSE(log.TermAt(2).has_value());
  log.Restore(10, 3);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(log.last_index(), 10u);
  EXPECT_LT(log.stable(), 10u);
  log.SnapshotStable();
  EXPECT_EQ(log.stable(), 10u);
  EXPECT_EQ(log.FindInconsistency(), "");
}

// Model: the follower's log equals the leader's prefix whenever it accepts
// an append cut out of that leader's log, and it never loses entries that
// match the leader's.
RC_GTEST_PROP(RaftLogProperty, AppendsFromOneLeaderConvergeToItsLog, ()) {
  // A leader log whose terms do not decrease.
  std::vector<Term> leader_terms;
  Term term = 1;
  int length = *rc::gen::inRange(1, 30);
  for (int i = 0; i < length; ++i) {
    term += *rc::gen::inRange<Term>(0, 2);
    leader_terms.push_back(term);
  }
  // A follower log that agrees on some prefix, then diverges with lower terms.
  size_t shared = *rc::gen::inRange<size_t>(0, leader_terms.size() + 1);
  std::vector<Term> follower_terms(leader_terms.begin(), leader_terms.begin() + shared);
  int extra = *rc::gen::inRange(0, 8);
  Term diverged = shared == 0 ? 1 : follower_terms.back();
  for (int i = 0; i < extra; ++i) follower_terms.push_back(diverged);
  RaftLog follower = LogWithTerms(follower_terms);
  std::vector<raftpb::Entry> leader;
  for (size_t i = 0; i < leader_terms.size(); ++i) leader.push_back(E(i + 1, leader_terms[i]));

  for (int round = 0; round < 20; ++round) {
    Index prev = *rc::gen::inRange<Index>(0, leader.size() + 1);
    size_t count = *rc::gen::inRange<size_t>(0, leader.size() - prev + 1);
    Term prev_term = prev == 0 ? 0 : leader[prev - 1].term();
    std::string before = Terms(follower);
    std::vector<raftpb::Entry> part(leader.begin() + prev, leader.begin() + prev + count);
    auto result = follower.MaybeAppend(prev, prev_term, 0, L(part));
    if (!result.has_value()) {
      RC_ASSERT(Terms(follower) == before);
      continue;
    }
    // Everything up to the last new index now matches the leader.
    for (Index i = 1; i <= prev + count; ++i) RC_ASSERT(follower.At(i).term() == leader[i - 1].term());
    RC_ASSERT(follower.FindInconsistency() == "");
  }
  // Appending the whole leader log from the start always converges.
  RC_ASSERT(follower.MaybeAppend(0, 0, 0, L(leader)).has_value());
  std::string expected;
  for (Term t : leader_terms) expected += std::to_string(t);
  // The follower may keep a longer suffix only if it matches the leader.
  RC_ASSERT(Terms(follower).substr(0, expected.size()) == expected);
}

}  // namespace
}  // namespace etc::raft
