#include "storage/vote_file.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "raft/raftpb.pb.h"

namespace etc::storage {
namespace {

// A slot's bytes: the record, then zeros to the end of its sector (so that
// what a longer earlier record left there is gone).
std::string EncodeSlot(const TermAndVote& value) {
  raftpb::HardState state;
  state.set_term(value.term);
  state.set_vote(value.vote);
  std::string slot = EncodeRecord(RecordType::kHardState, state.SerializeAsString());
  slot.resize(kVoteSlotBytes, '\0');
  return slot;
}

// The value in the slot at `offset` of the file's `bytes`, or why there is
// none. A record that runs past its slot is damage, not a longer record.
absl::StatusOr<TermAndVote> DecodeSlot(std::string_view bytes, uint64_t offset) {
  if (offset >= bytes.size()) return absl::DataLossError("the file ends before the slot");
  DecodedRecord record = DecodeRecord(bytes.substr(0, offset + kVoteSlotBytes), offset);
  if (record.status != DecodedRecord::kOk) {
    return absl::DataLossError(record.status == DecodedRecord::kZeros ? "the slot is empty"
                               : record.status == DecodedRecord::kTruncated
                                   ? "the slot's record is cut short"
                                   : "the slot's checksum does not match");
  }
  raftpb::HardState state;
  if (record.type != RecordType::kHardState ||
      !state.ParseFromArray(record.payload.data(), static_cast<int>(record.payload.size()))) {
    return absl::DataLossError("the slot holds no term and vote");
  }
  return TermAndVote{state.term(), state.vote()};
}

// The later of two values both slots hold whole: the higher term, and in
// one term the one with a vote (Raft votes at most once a term, and a new
// term starts with none).
absl::StatusOr<TermAndVote> Later(const TermAndVote& a, const TermAndVote& b,
                                  const std::string& path) {
  if (a.term != b.term) return a.term > b.term ? a : b;
  if (a.vote == b.vote || b.vote == 0) return a;
  if (a.vote == 0) return b;
  return absl::DataLossError(absl::StrCat("vote file ", path, " holds two votes in term ", a.term,
                                          " (for ", a.vote, " and for ", b.vote,
                                          "): the member cannot tell which it cast and must not "
                                          "start (it could vote twice)"));
}

// Whether `value` goes back from `held`: Raft's term never decreases and
// its vote never changes within a term.
bool GoesBack(const TermAndVote& held, const TermAndVote& value) {
  if (value.term != held.term) return value.term < held.term;
  return held.vote != 0 && value.vote != held.vote;
}

}  // namespace

VoteFile::VoteFile(FileSystem* fs, std::string dir)
    : fs_(fs), dir_(std::move(dir)), path_(JoinPath(dir_, kVoteFileName)) {}

absl::StatusOr<std::unique_ptr<VoteFile>> VoteFile::Open(FileSystem* fs, std::string dir) {
  std::unique_ptr<VoteFile> votes(new VoteFile(fs, std::move(dir)));
  if (!fs->Exists(votes->path_)) return votes;
  votes->exists_ = true;
  absl::StatusOr<std::unique_ptr<File>> file = fs->Open(votes->path_, {});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> bytes = ReadAll(**file);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<TermAndVote> slots[2] = {DecodeSlot(*bytes, 0),
                                          DecodeSlot(*bytes, kVoteSlotBytes)};
  if (!slots[0].ok() && !slots[1].ok()) {
    return absl::DataLossError(absl::StrCat(
        "vote file ", votes->path_, " is damaged: slot 0: ", slots[0].status().message(),
        "; slot 1: ", slots[1].status().message(),
        "; without its term and vote the member must not start (it could vote twice)"));
  }
  for (uint64_t slot : {0, 1}) {
    if (slots[slot].ok()) continue;
    votes->damaged_slot_ = Damage{votes->path_, slot * kVoteSlotBytes,
                                  absl::StrCat(slots[slot].status().message(),
                                               " (the other slot holds the term and vote)")};
  }
  if (!slots[0].ok() || !slots[1].ok()) {
    votes->held_ = slots[0].ok() ? *slots[0] : *slots[1];
    return votes;
  }
  absl::StatusOr<TermAndVote> later = Later(*slots[0], *slots[1], votes->path_);
  if (!later.ok()) return later.status();
  votes->held_ = *later;
  return votes;
}

absl::Status VoteFile::Write(const TermAndVote& value) {
  if (value == held_) return absl::OkStatus();
  if (GoesBack(held_, value)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the term and vote would go back from term ", held_.term, " vote ", held_.vote,
        " to term ", value.term, " vote ", value.vote, " (", path_, ")"));
  }
  if (!exists_) return Create(value);
  absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(path_, {});
  if (!file.ok()) return NotRetryable(file.status());
  std::string slot = EncodeSlot(value);
  // One slot at a time, each synced before the other is touched: the one
  // not being written holds the old or the new value whole. The file's
  // size never changes, so syncing the data is enough.
  for (uint64_t offset : {uint64_t{0}, kVoteSlotBytes}) {
    if (absl::Status s = (*file)->WriteAt(offset, slot); !s.ok()) return NotRetryable(s);
    if (absl::Status s = (*file)->DataSync(); !s.ok()) return NotRetryable(s);
  }
  held_ = value;
  return absl::OkStatus();
}

absl::Status VoteFile::Create(const TermAndVote& value) {
  // Whole before its name appears: a crash leaves no file (term 0, no
  // vote, as before: the log was not written either) or both slots.
  std::string slot = EncodeSlot(value);
  if (absl::Status s = ReplaceFile(fs_, dir_, kVoteFileName, slot + slot); !s.ok()) return s;
  exists_ = true;
  held_ = value;
  return absl::OkStatus();
}

}  // namespace etc::storage
