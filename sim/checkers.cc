#include "sim/checkers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/describe.h"

namespace etc::sim {

uint64_t HashEntry(const raftpb::Entry& entry) {
  uint64_t hash = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(entry.type());
  for (unsigned char c : entry.data()) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

void SafetyChecker::Fail(std::string checker, std::string message) {
  if (!violation_.has_value()) violation_ = Violation{std::move(checker), std::move(message)};
}

void SafetyChecker::CheckMember(member::Member& member) {
  if (violation_.has_value()) return;
  // Crashes (aborts) with a description if the member's own invariants break.
  member.CheckInvariants();
  // Straight from the core: Member::Status() formats descriptions, too
  // slow for every event.
  const raft::Raft& raft = member.node().raft();
  ObserveTerm(raft.term());
  if (raft.role() == raft::Role::kLeader) {
    auto [it, inserted] = leader_of_term_.emplace(raft.term(), raft.id());
    if (it->second != raft.id()) {
      Fail("election-safety", absl::StrCat("members ", it->second, " and ", raft.id(),
                                           " both lead term ", raft.term()));
      return;
    }
    CheckLeaderCompleteness(member, raft.term());
  }
}

void SafetyChecker::OnDurable(uint64_t member_id, const std::vector<raftpb::Entry>& entries,
                              const raft::MemoryStorage& durable) {
  if (violation_.has_value() || entries.empty()) return;
  // The write's entries are contiguous, and the durable log now ends with
  // them (a persisted suffix replaces whatever followed).
  uint64_t previous_term = 0;
  uint64_t first = entries.front().index();
  const raftpb::SnapshotMetadata& snapshot = durable.snapshot.metadata();
  if (first - 1 == snapshot.index()) {
    previous_term = snapshot.term();
  } else if (!durable.entries.empty() && first - 1 >= durable.entries.front().index()) {
    // Durable entries are contiguous too.
    size_t offset = first - 1 - durable.entries.front().index();
    if (offset < durable.entries.size()) previous_term = durable.entries[offset].term();
  }
  for (const raftpb::Entry& entry : entries) {
    EntryFacts facts{HashEntry(entry), previous_term};
    previous_term = entry.term();
    auto [it, inserted] = entries_.emplace(std::make_pair(entry.index(), entry.term()), facts);
    if (inserted) continue;
    if (it->second.content_hash != facts.content_hash) {
      Fail("log-matching", absl::StrCat("member ", member_id, " persisted a different entry at ",
                                        entry.term(), "/", entry.index(), ": ",
                                        raft::DescribeEntry(entry)));
      return;
    }
    if (it->second.previous_term != facts.previous_term) {
      Fail("log-matching",
           absl::StrCat("member ", member_id, " agrees on entry ", entry.term(), "/",
                        entry.index(), " but its previous entry has term ", facts.previous_term,
                        " instead of ", it->second.previous_term));
      return;
    }
  }
}

namespace {

// The term of entry `index` on a disk; 0 when the disk lacks it, and
// nullopt when its snapshot covers it (the term is no longer known).
std::optional<uint64_t> DurableTermAt(const raft::MemoryStorage& durable, uint64_t index) {
  const raftpb::SnapshotMetadata& snapshot = durable.snapshot.metadata();
  if (index == snapshot.index()) return snapshot.term();
  if (index < snapshot.index()) return std::nullopt;
  if (durable.entries.empty() || index < durable.entries.front().index()) return 0;
  size_t offset = index - durable.entries.front().index();
  return offset < durable.entries.size() ? durable.entries[offset].term() : 0;
}

}  // namespace

void SafetyChecker::CheckPromise(const raftpb::Message& message,
                                 const raft::MemoryStorage& durable,
                                 const member::Member* leader) {
  if (violation_.has_value() || message.reject()) return;
  if (message.type() == raftpb::MSG_VOTE_RESP) {
    const raftpb::HardState& state = durable.hard_state;
    if (state.term() < message.term() ||
        (state.term() == message.term() && state.vote() != message.to())) {
      Fail("durability", absl::StrCat("member ", message.from(), " granted its vote to ",
                                      message.to(), " in term ", message.term(),
                                      " before its disk held that (it holds term ", state.term(),
                                      ", vote ", state.vote(), ")"));
    }
    return;
  }
  if (message.type() != raftpb::MSG_APP_RESP || message.index() == 0) return;
  std::optional<uint64_t> term = DurableTermAt(durable, message.index());
  if (term.has_value() && *term == 0) {
    Fail("durability", absl::StrCat("member ", message.from(), " acknowledged entries through ",
                                    message.index(), " that its disk does not hold"));
    return;
  }
  if (!term.has_value() || leader == nullptr) return;
  const raft::RaftLog& log = leader->node().raft().log();
  std::optional<uint64_t> leader_term = log.TermAt(message.index());
  if (leader_term.has_value() && *leader_term != *term) {
    Fail("durability", absl::StrCat("member ", message.from(), " acknowledged entry ",
                                    message.index(), " of term ", message.term(),
                                    "'s leader (term ", *leader_term, ") but its disk holds term ",
                                    *term, " there"));
  }
}

void SafetyChecker::CheckLeaderCompleteness(member::Member& member, uint64_t term) {
  // A leader's log only grows, so checking once per term suffices for the
  // entries committed before the term began.
  if (!complete_leaders_.emplace(std::make_pair(member.id(), term), true).second) return;
  const raft::RaftLog& log = member.node().raft().log();
  for (auto it = committed_.lower_bound(log.first_index()); it != committed_.end(); ++it) {
    const auto& [index, committed] = *it;
    if (committed.observed_at_term >= term) continue;
    if (index > log.last_index()) {
      Fail("leader-completeness", absl::StrCat("leader ", member.id(), " of term ", term,
                                               " lacks committed entry ", committed.term, "/",
                                               index));
      return;
    }
    const raftpb::Entry& entry = log.At(index);
    if (entry.term() != committed.term || HashEntry(entry) != committed.content_hash) {
      Fail("leader-completeness",
           absl::StrCat("leader ", member.id(), " of term ", term, " holds ",
                        raft::DescribeEntry(entry), " where ", committed.term, "/", index,
                        " was committed"));
      return;
    }
  }
}

void SafetyChecker::OnApply(uint64_t member_id, const raftpb::Entry& entry) {
  if (violation_.has_value()) return;
  uint64_t hash = HashEntry(entry);
  auto [it, inserted] =
      committed_.emplace(entry.index(), Committed{entry.term(), hash, max_term_});
  if (!inserted && (it->second.term != entry.term() || it->second.content_hash != hash)) {
    Fail("state-machine-safety",
         absl::StrCat("member ", member_id, " applied ", raft::DescribeEntry(entry), " but ",
                      it->second.term, "/", entry.index(), " was applied elsewhere"));
  }
}

}  // namespace etc::sim
