#include "raft/log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace etc::raft {

RaftLog::RaftLog(Index snapshot_index, Term snapshot_term)
    : snapshot_index_(snapshot_index),
      snapshot_term_(snapshot_term),
      committed_(snapshot_index),
      applied_(snapshot_index),
      stable_(snapshot_index) {}

Term RaftLog::last_term() const {
  return entries_.empty() ? snapshot_term_ : entries_.back().term();
}

std::optional<Term> RaftLog::TermAt(Index index) const {
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return entries_[Offset(index)].term();
}

bool RaftLog::MatchTerm(Index index, Term term) const {
  std::optional<Term> have = TermAt(index);
  return have.has_value() && *have == term;
}

bool RaftLog::IsUpToDate(Index last_index_other, Term last_term_other) const {
  Term mine = last_term();
  return last_term_other > mine || (last_term_other == mine && last_index_other >= last_index());
}

const raftpb::Entry& RaftLog::At(Index index) const {
  ETC_CHECK(index >= first_index() && index <= last_index())
      << "entry " << index << " outside [" << first_index() << ", " << last_index() << "]";
  return entries_[Offset(index)];
}

Index RaftLog::FindConflict(const EntryList& entries) const {
  for (const raftpb::Entry& entry : entries) {
    if (!MatchTerm(entry.index(), entry.term())) return entry.index();
  }
  return 0;
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, last_index());
  for (; index >= snapshot_index_; --index) {
    std::optional<Term> have = TermAt(index);
    if (!have.has_value()) break;
    if (*have <= term) return {index, *have};
    if (index == 0) break;
  }
  return {index, 0};
}

std::optional<Index> RaftLog::MaybeAppend(Index prev_index, Term prev_term, Index committed,
                                          const EntryList& entries, Index* truncated_from) {
  if (truncated_from != nullptr) *truncated_from = 0;
  if (!MatchTerm(prev_index, prev_term)) return std::nullopt;
  Index last_new = prev_index + entries.size();
  Index conflict = FindConflict(entries);
  if (conflict != 0) {
    // Raft's Log Matching property makes a conflict inside the committed
    // prefix impossible; if it happens, safety is already lost.
    ETC_CHECK_GT(conflict, committed_) << "conflict with a committed entry";
    auto first_new = entries.begin() + (conflict - prev_index - 1);
    std::vector<raftpb::Entry> suffix(first_new, entries.end());
    // Truncate from the conflict; everything from there is replaced.
    if (truncated_from != nullptr && conflict <= last_index()) *truncated_from = conflict;
    entries_.erase(entries_.begin() + Offset(conflict), entries_.end());
    stable_ = std::min(stable_, conflict - 1);
    Append(std::move(suffix));
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

void RaftLog::Append(std::vector<raftpb::Entry> entries) {
  entries_checked_ = std::min(entries_checked_, entries_.size());
  for (raftpb::Entry& entry : entries) {
    ETC_CHECK_EQ(entry.index(), last_index() + 1) << "appended entries must be contiguous";
    ETC_CHECK_GE(entry.term(), last_term()) << "appended entry terms must not decrease";
    entries_.push_back(std::move(entry));
  }
}

void RaftLog::CommitTo(Index index) {
  if (index <= committed_) return;
  ETC_CHECK_LE(index, last_index()) << "committing past the end of the log";
  committed_ = index;
}

void RaftLog::AppliedTo(Index index) {
  if (index == 0) return;
  ETC_CHECK_LE(index, committed_) << "applying an uncommitted entry";
  ETC_CHECK_GE(index, applied_) << "applied index must not decrease";
  applied_ = index;
}

void RaftLog::StableTo(Index index, Term term) {
  if (index <= stable_) return;
  if (!MatchTerm(index, term)) return;
  stable_ = index;
}

void RaftLog::SnapshotStable() { stable_ = std::max(stable_, snapshot_index_); }

void RaftLog::Restore(Index index, Term term) {
  ETC_CHECK_GT(index, committed_) << "restoring a snapshot that is not newer than the commit";
  entries_.clear();
  snapshot_index_ = index;
  snapshot_term_ = term;
  committed_ = index;
  // The state machine still reflects the old applied index; the application
  // applies the snapshot and then acknowledges it.
  stable_ = std::min(stable_, index - 1);
}

void RaftLog::CompactTo(Index index) {
  if (index <= snapshot_index_) return;
  ETC_CHECK_LE(index, applied_) << "compacting entries that are not applied";
  ETC_CHECK_LE(index, stable_) << "compacting entries that are not durable";
  Term term = *TermAt(index);
  entries_.erase(entries_.begin(), entries_.begin() + Offset(index) + 1);
  snapshot_index_ = index;
  snapshot_term_ = term;
}

std::vector<raftpb::Entry> RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes) const {
  ETC_CHECK(lo >= first_index() && lo <= hi && hi <= last_index() + 1)
      << "slice [" << lo << ", " << hi << ") outside [" << first_index() << ", "
      << last_index() + 1 << ")";
  std::vector<raftpb::Entry> out;
  uint64_t bytes = 0;
  for (Index index = lo; index < hi; ++index) {
    const raftpb::Entry& entry = entries_[Offset(index)];
    bytes += EntryPayloadBytes(entry);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(entry);
  }
  return out;
}

std::vector<raftpb::Entry> RaftLog::UnstableEntries() const {
  Index from = std::max(stable_, snapshot_index_) + 1;
  if (from > last_index()) return {};
  return Slice(from, last_index() + 1, UINT64_MAX);
}

bool RaftLog::HasNextCommittedEntries() const {
  Index upto = std::min(committed_, stable_);
  return upto > applied_ && applied_ >= snapshot_index_;
}

std::vector<raftpb::Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  Index upto = std::min(committed_, stable_);
  return Slice(applied_ + 1, upto + 1, max_bytes);
}

std::string RaftLog::FindInconsistency() const {
  if (applied_ > committed_) return absl::StrCat("applied ", applied_, " > committed ", committed_);
  if (committed_ > last_index()) {
    return absl::StrCat("committed ", committed_, " > last index ", last_index());
  }
  if (committed_ < snapshot_index_) {
    return absl::StrCat("committed ", committed_, " < snapshot index ", snapshot_index_);
  }
  if (stable_ > last_index()) return absl::StrCat("stable ", stable_, " > last ", last_index());
  bool same_snapshot =
      snapshot_index_ == checked_snapshot_index_ && snapshot_term_ == checked_snapshot_term_;
  // A verified prefix stays verified unless its front moved; the first
  // entry, checked every time, shows that (it would no longer follow the
  // snapshot point).
  size_t from = same_snapshot ? std::min(entries_checked_, entries_.size()) : 0;
  std::string problem = FindInconsistencyIn(0, std::min<size_t>(1, entries_.size()));
  if (problem.empty()) problem = FindInconsistencyIn(std::max<size_t>(from, 1), entries_.size());
  if (!problem.empty()) return problem;
  entries_checked_ = entries_.size();
  checked_snapshot_index_ = snapshot_index_;
  checked_snapshot_term_ = snapshot_term_;
  return "";
}

std::string RaftLog::FindInconsistencyIn(size_t from, size_t to) const {
  // Nothing to check (and, with an empty log, no entry before `from`).
  if (from >= to) return "";
  Term previous = from == 0 ? snapshot_term_ : entries_[from - 1].term();
  for (size_t i = from; i < to; ++i) {
    const raftpb::Entry& entry = entries_[i];
    if (entry.index() != snapshot_index_ + 1 + i) {
      return absl::StrCat("entry at offset ", i, " has index ", entry.index());
    }
    if (entry.term() < previous) {
      return absl::StrCat("term decreases at index ", entry.index());
    }
    previous = entry.term();
  }
  return "";
}

}  // namespace etc::raft
