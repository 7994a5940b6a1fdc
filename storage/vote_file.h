// The member's term and vote, kept apart from the write-ahead log, twice.
//
// The log's last hard state (term, vote, commit) goes with the log if the
// log is damaged, and a member that forgets the vote it cast may vote again
// in the same term: two leaders in one term. So the term and vote are also
// kept in <member dir>/vote, written before the log holds them, in two
// slots of one sector each (record.h's kSectorBytes, the unit a disk
// writes atomically):
//
//   offset 0              slot 0: one record (record.h) holding a
//                         raftpb.HardState with only term and vote set,
//                         then zeros to the end of the sector
//   offset kVoteSlotBytes slot 1: the same
//
// A change writes slot 0, syncs, writes slot 1, syncs: whenever a crash
// comes, at least one slot holds the old or the new value whole, and a
// damaged sector costs at most one slot. Reading takes the valid slot with
// the higher term (in one term, the one that holds a vote). A missing file
// (a new directory, or one written before this file existed) holds term 0
// and no vote; it is created, atomically, at the first change.
//
//   std::unique_ptr<VoteFile> votes = VoteFile::Open(&fs, "data/member").value();
//   TermAndVote held = votes->held();
//   votes->Write({.term = 5, .vote = 2});   // durable when it returns
#ifndef ETC_STORAGE_VOTE_FILE_H_
#define ETC_STORAGE_VOTE_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/fs.h"
#include "storage/record.h"

namespace etc::storage {

inline constexpr char kVoteFileName[] = "vote";
// A slot is a sector: a torn write of one slot never reaches the other.
inline constexpr uint64_t kVoteSlotBytes = kSectorBytes;

struct TermAndVote {
  uint64_t term = 0;
  // The member voted for in `term` (0: none yet).
  uint64_t vote = 0;
  bool operator==(const TermAndVote&) const = default;
};

class VoteFile {
 public:
  // Reads <dir>/vote (missing: term 0, no vote). Errors: kDataLoss naming
  // the file if neither slot reads back whole, or if the slots hold two
  // different votes in one term (a member that cannot tell which vote it
  // cast must not start: it could vote twice); what the file system failed
  // with.
  static absl::StatusOr<std::unique_ptr<VoteFile>> Open(FileSystem* fs, std::string dir);

  // What the file holds (what Open read, then what Write wrote).
  const TermAndVote& held() const { return held_; }
  // A slot Open found damaged (the other one was used), for the host to
  // log: the disk damages data. nullopt: both were whole, or no file.
  const std::optional<Damage>& damaged_slot() const { return damaged_slot_; }
  const std::string& path() const { return path_; }

  // Makes `value` durable (both slots written and synced) when it differs
  // from held(); nothing is written otherwise. Errors: kFailedPrecondition
  // (nothing written) if `value` goes back (a lower term, or another vote
  // or none in the same term): Raft never does, and the slots' reading
  // rule could not tell it from the earlier value; NoSpaceError
  // (IsNoSpace) if the disk was too full to create the file (nothing
  // changed, the same call may be made again); what else the file system
  // failed with (never marked no-space: not to be retried).
  absl::Status Write(const TermAndVote& value);

 private:
  VoteFile(FileSystem* fs, std::string dir);
  // Both slots holding `value`, in a new file renamed into place.
  absl::Status Create(const TermAndVote& value);

  FileSystem* fs_;
  std::string dir_;
  std::string path_;
  bool exists_ = false;
  TermAndVote held_;
  std::optional<Damage> damaged_slot_;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_VOTE_FILE_H_
