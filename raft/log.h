// The Raft log as the core sees it: entries after the last snapshot, held in
// memory, with three watermarks that only the core moves:
//
//   snapshot_index < first_index <= ... <= last_index
//   applied <= committed <= last_index       (what the application has / may apply)
//   stable <= last_index                     (what is known durable on this node)
//
// Entries above `stable` were handed out for persistence (or not yet) and may
// be lost in a crash; nothing above `stable` is applied or counted toward a
// commit by this node. A new leader's entries can truncate the unstable and
// even the stable suffix (never the committed prefix), which lowers `stable`.
#ifndef ETC_RAFT_LOG_H_
#define ETC_RAFT_LOG_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "raft/quorum/quorum.h"
#include "raft/raftpb.pb.h"

namespace etc::raft {

// Entries as they arrive in a message.
using EntryList = google::protobuf::RepeatedPtrField<raftpb::Entry>;

// The payload bytes of an entry: what byte limits on messages count.
inline uint64_t EntryPayloadBytes(const raftpb::Entry& entry) { return entry.data().size(); }

class RaftLog {
 public:
  // A log whose entries up to `snapshot_index` (at `snapshot_term`) are
  // compacted, and that is durable up to there.
  RaftLog(Index snapshot_index, Term snapshot_term);

  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }
  Index first_index() const { return snapshot_index_ + 1; }
  Index last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index stable() const { return stable_; }

  // The term of entry `index`; the snapshot's term at snapshot_index;
  // nullopt for compacted or missing entries.
  std::optional<Term> TermAt(Index index) const;
  bool MatchTerm(Index index, Term term) const;
  // Whether a log ending at (last_index, last_term) is at least as
  // up-to-date as this one (Raft paper 5.4.1).
  bool IsUpToDate(Index last_index, Term last_term) const;
  // Requires first_index <= index <= last_index.
  const raftpb::Entry& At(Index index) const;

  // Follower side of AppendEntries: if the entry at prev_index has prev_term,
  // appends `entries` (truncating only from the first real conflict, so a
  // stale or duplicated message never shortens the log) and commits up to
  // min(committed, last new index). Returns the last new index, or nullopt
  // if prev does not match. `truncated_from`, if given, is set to the first
  // index whose existing entry was replaced (0: none was).
  std::optional<Index> MaybeAppend(Index prev_index, Term prev_term, Index committed,
                                   const EntryList& entries, Index* truncated_from = nullptr);
  // Appends entries that directly follow last_index (the leader's own).
  void Append(std::vector<raftpb::Entry> entries);
  // The index of the first entry in `entries` that is missing or has a
  // different term here, or 0 if all are present.
  Index FindConflict(const EntryList& entries) const;
  // The largest index <= `index` whose term is <= `term`, with that term, for
  // backing off a follower in one step per term. Compacted indexes answer
  // with term 0.
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  void CommitTo(Index index);
  void AppliedTo(Index index);
  // Marks durable every entry up to `index`, if the entry there still has
  // `term` (a write that finishes after the suffix was replaced must not be
  // taken as durable for the new entries).
  void StableTo(Index index, Term term);
  // Marks the snapshot at snapshot_index durable.
  void SnapshotStable();

  // Replaces the whole log with a snapshot: everything up to its index is
  // committed; `stable` stays below until SnapshotStable.
  void Restore(Index index, Term term);
  // Drops entries up to `index`, which a snapshot covers. Requires
  // index <= applied.
  void CompactTo(Index index);

  // Entries [lo, hi), at least one (if lo < hi) and then no more than
  // max_bytes of payload. Requires first_index <= lo <= hi <= last_index + 1.
  std::vector<raftpb::Entry> Slice(Index lo, Index hi, uint64_t max_bytes) const;
  // Entries not known durable yet.
  std::vector<raftpb::Entry> UnstableEntries() const;
  bool HasUnstableEntries() const { return stable_ < last_index() && last_index() >= first_index(); }
  // Committed, durable entries not yet applied: at least one, then at most
  // max_bytes of payload.
  std::vector<raftpb::Entry> NextCommittedEntries(uint64_t max_bytes) const;
  bool HasNextCommittedEntries() const;

  // Returns a description of the first broken invariant, or "". Walks only
  // the entries appended since its last clean answer (and the first entry),
  // or all of them after the snapshot point moved: the simulator asks after
  // every input, and a full walk of a long log was a tenth of its time.
  std::string FindInconsistency() const;

 private:
  size_t Offset(Index index) const { return index - snapshot_index_ - 1; }
  // FindInconsistency's walk over entries_[from, to).
  std::string FindInconsistencyIn(size_t from, size_t to) const;

  Index snapshot_index_;
  Term snapshot_term_;
  std::deque<raftpb::Entry> entries_;
  Index committed_;
  Index applied_;
  Index stable_;

  // What FindInconsistency has verified: entries before offset
  // entries_checked_ (all entries change only by Append at the back, suffix
  // truncation, or the front moving with the snapshot point) against this
  // snapshot point. Append lowers it to where it writes.
  mutable size_t entries_checked_ = 0;
  mutable Index checked_snapshot_index_ = 0;
  mutable Term checked_snapshot_term_ = 0;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_LOG_H_
