#include "storage/data_dir.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/snapshot_fallback.h"

namespace etc::storage {
namespace {

constexpr char kVersion[] = "etc-data 1\n";

absl::Status CheckOrWriteVersion(FileSystem* fs, const std::string& member_dir, bool* fresh) {
  std::string path = JoinPath(member_dir, "VERSION");
  if (fs->Exists(path)) {
    absl::StatusOr<std::unique_ptr<File>> file = fs->Open(path, {});
    if (!file.ok()) return file.status();
    absl::StatusOr<std::string> bytes = (*file)->Read(0, 256);
    if (!bytes.ok()) return bytes.status();
    if (*bytes != kVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " says \"", absl::StrCat(*bytes).substr(0, 40),
          "\": this data directory has another format than this etc writes (etc-data 1)"));
    }
    *fresh = false;
    return absl::OkStatus();
  }
  // A member directory with data but no marker is not ours to guess about.
  for (const char* sub : {"wal", "snap"}) {
    if (fs->Exists(JoinPath(member_dir, sub))) {
      absl::StatusOr<std::vector<std::string>> names = fs->List(JoinPath(member_dir, sub));
      if (names.ok() && !names->empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            member_dir, " holds data but no VERSION marker: refusing to guess its format"));
      }
    }
  }
  *fresh = true;
  return ReplaceFile(fs, member_dir, "VERSION", kVersion);
}

// The term and vote recovery starts with: the later of the log's last hard
// state's and the vote file's (the log's may be gone with damage, or lost
// in a crash after the vote file was written); the commit index is the
// log's.
absl::Status TakeVote(const TermAndVote& held, const std::string& path,
                      raftpb::HardState* state) {
  if (held.term > state->term()) {
    state->set_term(held.term);
    state->set_vote(held.vote);
  } else if (held.term == state->term() && held.vote != 0 && held.vote != state->vote()) {
    if (state->vote() != 0) {
      return absl::DataLossError(absl::StrCat(
          "the log votes for ", state->vote(), " in term ", state->term(), " but ", path,
          " for ", held.vote, ": the member cannot tell which it cast and must not start (it "
          "could vote twice)"));
    }
    state->set_vote(held.vote);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDir>> DataDir::Open(FileSystem* fs, std::string root,
                                                       DataDirOptions options) {
  std::unique_ptr<DataDir> dir(new DataDir());
  for (const std::string& d : {root, JoinPath(root, "member")}) {
    if (!fs->Exists(d)) {
      if (absl::Status s = fs->MakeDir(d); !s.ok()) return s;
    }
  }
  std::string member_dir = JoinPath(root, "member");
  absl::StatusOr<std::unique_ptr<Lock>> lock = fs->LockFile(JoinPath(member_dir, "LOCK"));
  if (!lock.ok()) {
    return absl::UnavailableError(absl::StrCat("data directory ", root,
                                               " is in use by another process: ",
                                               lock.status().message()));
  }
  dir->lock_ = std::move(*lock);
  dir->fs_ = fs;
  dir->member_dir_ = member_dir;
  if (absl::Status s = CheckOrWriteVersion(fs, member_dir, &dir->fresh_); !s.ok()) return s;
  dir->options_ = options;

  // First: a member that cannot know its vote refuses before recovery
  // changes anything.
  absl::StatusOr<std::unique_ptr<VoteFile>> votes = VoteFile::Open(fs, member_dir);
  if (!votes.ok()) return votes.status();
  dir->votes_ = std::move(*votes);
  if (dir->votes_->damaged_slot().has_value()) {
    dir->damage_.push_back(*dir->votes_->damaged_slot());
  }

  dir->snapshots_ = std::make_unique<Snapshotter>(fs, JoinPath(member_dir, "snap"),
                                                  options.snapshots_retained,
                                                  options.max_snapshot_bytes);
  if (absl::Status s = dir->snapshots_->Init(); !s.ok()) return s;
  // The newest snapshot that reads back whole; newer damaged ones are
  // passed over only if the log covers them (snapshot_fallback.h).
  absl::StatusOr<SnapshotChoice> choice = LoadNewestIntact(*dir->snapshots_);
  if (!choice.ok()) return choice.status();

  auto opened = Wal::Open(fs, JoinPath(member_dir, "wal"), options.wal);
  if (!opened.ok()) return opened.status();
  dir->wal_ = std::move(opened->first);
  WalContents& contents = opened->second;
  dir->truncated_bytes_ = contents.truncated_bytes;

  raft::DurableState& durable = dir->recovered_;
  durable.hard_state = contents.hard_state;
  if (absl::Status s = TakeVote(dir->votes_->held(), dir->votes_->path(), &durable.hard_state);
      !s.ok()) {
    return s;
  }
  uint64_t snapshot_index = 0;
  std::optional<raftpb::SnapshotMetadata> base;
  if (choice->snapshot.has_value()) {
    base = choice->snapshot->metadata();
    snapshot_index = base->index();
    durable.snapshot = std::move(*choice->snapshot);
  }
  std::vector<raftpb::Entry>& entries = contents.entries;
  // Whether the log must record that it starts at the snapshot with
  // nothing before it (a log reset): its entries end before the snapshot
  // (the next one would follow a gap), or they are void (below).
  bool reset_log = !entries.empty() && entries.back().index() < snapshot_index;
  if (snapshot_index > 0 && !entries.empty() && entries.front().index() <= snapshot_index &&
      entries.back().index() >= snapshot_index) {
    const raftpb::Entry& at = entries[snapshot_index - entries.front().index()];
    if (at.term() != durable.snapshot.metadata().term()) {
      // A snapshot from the leader replaced a conflicting log, and the
      // crash came before the log recorded the reset: the old entries are
      // void.
      entries.clear();
      reset_log = true;
    }
  }
  if (absl::Status covered =
          CheckCovered(base, choice->damaged, contents.snapshot, entries, *dir->snapshots_);
      !covered.ok()) {
    return covered;
  }
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const raftpb::Entry& e) { return e.index() <= snapshot_index; }),
                entries.end());
  if (!entries.empty() && entries.front().index() != snapshot_index + 1) {
    return absl::DataLossError(absl::StrCat("the log starts at entry ", entries.front().index(),
                                            " but the newest snapshot ends at ", snapshot_index,
                                            ": entries in between are missing"));
  }
  for (DamagedSnapshot& damaged : choice->damaged) {
    // Kept for the operator, never deleted; out of the way of the next
    // recovery, which would otherwise pass over it again.
    if (absl::Status s = dir->snapshots_->SetAside(damaged.name); !s.ok()) return s;
    dir->set_aside_.push_back(std::move(damaged));
  }
  if (reset_log) {
    // What the crash kept the log from recording. Without it, the entries
    // written after this recovery follow the void ones in the log, and the
    // next recovery voids them too (or stops at the gap).
    absl::Status s = dir->wal_->AppendLogReset(*base);
    if (s.ok()) s = dir->wal_->Sync();
    if (!s.ok()) return s;
  }
  durable.entries = std::move(entries);
  dir->snapshot_index_ = snapshot_index;
  // A log reset voids the log before it, as a leader's snapshot does: no
  // older snapshot can be combined with it.
  dir->keep_log_from_index_ = reset_log ? snapshot_index
                                        : KeepLogFrom(options, snapshot_index, choice->older_index);
  return dir;
}

absl::Status DataDir::Write(const raftpb::Snapshot* snapshot,
                            const std::vector<raftpb::Entry>& entries,
                            const std::optional<raftpb::HardState>& hard_state) {
  std::optional<TermAndVote> vote;
  if (hard_state.has_value() &&
      votes_->held() != TermAndVote{hard_state->term(), hard_state->vote()}) {
    vote = TermAndVote{hard_state->term(), hard_state->vote()};
  }
  if (snapshot != nullptr || vote.has_value()) {
    // What the log would refuse is refused before the vote or the snapshot
    // is saved, so a refused Ready writes nothing at all.
    absl::Status fits = Wal::CheckFits(entries, snapshot ? &snapshot->metadata() : nullptr);
    if (!fits.ok()) return fits;
  }
  if (vote.has_value()) {
    // Durable before the log holds it: if the log is later damaged, the
    // vote is still known, and the member never votes twice in a term.
    if (absl::Status s = votes_->Write(*vote); !s.ok()) return s;
  }
  if (snapshot != nullptr) {
    // The file first: if the crash comes before the log's reset record,
    // recovery still finds the snapshot and voids the conflicting entries.
    if (absl::Status s = snapshots_->Save(*snapshot); !s.ok()) return s;
    if (absl::Status s = wal_->AppendLogReset(snapshot->metadata()); !s.ok()) return s;
    if (snapshot->metadata().index() > snapshot_index_) {
      snapshot_index_ = snapshot->metadata().index();
      // The reset voids the log before it: no older snapshot can be
      // combined with it, so none is worth keeping the log for.
      keep_log_from_index_ = snapshot_index_;
    }
    // The reset is in the log now: a retry would not start from where
    // this call did.
    return NotRetryable(wal_->Append(entries, hard_state));
  }
  return wal_->Append(entries, hard_state);
}

absl::Status DataDir::Sync() { return wal_->Sync(); }

absl::Status DataDir::SaveSnapshot(const raftpb::Snapshot& snapshot) {
  if (absl::Status s = WriteSnapshotFile(snapshot); !s.ok()) return s;
  return RecordSnapshot(snapshot.metadata());
}

absl::Status DataDir::WriteSnapshotFile(const raftpb::Snapshot& snapshot) {
  return snapshots_->Save(snapshot);
}

absl::Status DataDir::RecordSnapshot(const raftpb::SnapshotMetadata& metadata) {
  if (absl::Status s = wal_->AppendSnapshotMarker(metadata); !s.ok()) return s;
  if (metadata.index() > snapshot_index_) {
    keep_log_from_index_ = KeepLogFrom(options_, metadata.index(), snapshot_index_);
    snapshot_index_ = metadata.index();
  }
  return wal_->Sync();
}

uint64_t DataDir::KeepLogFrom(const DataDirOptions& options, uint64_t newest_index,
                              uint64_t previous_index) {
  // With one file kept the previous one is deleted as the newest is saved.
  if (options.snapshots_retained < 2 || previous_index == 0) return newest_index;
  return previous_index;
}

absl::Status DataDir::CompactLog(uint64_t index) {
  return wal_->ReleaseTo(std::min(index, keep_log_from_index_));
}

}  // namespace etc::storage
