#include "storage/data_dir.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "storage/snapshot_fallback.h"

namespace etc::storage {
namespace {

constexpr char kVersion[] = "etc-data 1\n";
// Present from the recovery that repaired around damage until the member
// has its data back from the leader (DataDir::FinishRepair).
constexpr char kRepairMarker[] = "REPAIRING";

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

// Where recovery starts from the snapshot chosen (`base`; nullopt: none)
// and the log replayed: what it repaired around, and what the log must
// record so that the next recovery starts from the same place.
struct Start {
  // Damage repaired around at a loss (repair_damage).
  std::vector<Damage> lost;
  // The log must record that it starts at `base` with nothing before it
  // (a log reset): its entries were voided, or they end before `base` and
  // the next one would follow a gap.
  bool reset_log = false;
  // The log must record `base` as the newest snapshot: a newer one it
  // records is damaged and its entries do not reach it.
  bool mark_snapshot = false;
};

// Drops from `entries` (the log's, oldest first) what `base` covers or
// what cannot follow it. Errors: kDataLoss for what cannot be repaired
// (anything, without `repair`).
absl::StatusOr<Start> ChooseStart(const std::optional<raftpb::SnapshotMetadata>& base,
                                  const std::vector<DamagedSnapshot>& damaged,
                                  const WalContents& contents, bool repair,
                                  const Snapshotter& snapshots, const std::string& wal_dir,
                                  std::vector<raftpb::Entry>* entries) {
  Start start;
  uint64_t snapshot_index = base.has_value() ? base->index() : 0;
  start.reset_log = !entries->empty() && entries->back().index() < snapshot_index;
  if (snapshot_index > 0 && !entries->empty() && entries->front().index() <= snapshot_index &&
      entries->back().index() >= snapshot_index) {
    const raftpb::Entry& at = (*entries)[snapshot_index - entries->front().index()];
    if (at.term() != base->term()) {
      // A snapshot from the leader replaced a conflicting log, and the
      // crash came before the log recorded the reset: the old entries are
      // void.
      entries->clear();
      start.reset_log = true;
    }
  }
  if (absl::Status covered = CheckCovered(base, damaged, contents.snapshot, *entries, snapshots);
      !covered.ok()) {
    // Repair starts from the newest intact snapshot (or from nothing, if
    // the log starts at the first entry): less than the member had, but a
    // state its peers can bring up to date.
    bool startable = base.has_value() || (!entries->empty() && entries->front().index() == 1);
    if (!repair || !startable) return covered;
    std::string file =
        damaged.empty() ? snapshots.dir() : JoinPath(snapshots.dir(), damaged.front().name);
    start.lost.push_back(Damage{file, 0, std::string(covered.message())});
    start.mark_snapshot = true;
  }
  std::erase_if(*entries, [&](const raftpb::Entry& e) { return e.index() <= snapshot_index; });
  if (!entries->empty() && entries->front().index() != snapshot_index + 1) {
    absl::Status gap = absl::DataLossError(
        absl::StrCat("the log starts at entry ", entries->front().index(),
                     " but the newest snapshot ends at ", snapshot_index,
                     ": entries in between are missing"));
    if (!repair) return gap;
    start.lost.push_back(Damage{wal_dir, 0, absl::StrCat(gap.message(), "; the log is dropped")});
    entries->clear();
    start.reset_log = true;
  }
  return start;
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
  // passed over only if the log covers them (snapshot_fallback.h), or with
  // repair_damage.
  absl::StatusOr<SnapshotChoice> choice = LoadNewestIntact(*dir->snapshots_);
  if (!choice.ok()) return choice.status();

  WalOptions wal_options = options.wal;
  wal_options.repair_damage = options.repair_damage;
  auto opened = Wal::Open(fs, JoinPath(member_dir, "wal"), wal_options);
  if (!opened.ok()) return opened.status();
  dir->wal_ = std::move(opened->first);
  dir->truncated_bytes_ = opened->second.truncated_bytes;
  if (absl::Status s = dir->Reconcile(*choice, opened->second); !s.ok()) return s;
  return dir;
}

absl::Status DataDir::Reconcile(SnapshotChoice& choice, WalContents& contents) {
  raft::DurableState& durable = recovered_;
  durable.hard_state = contents.hard_state;
  if (absl::Status s = TakeVote(votes_->held(), votes_->path(), &durable.hard_state); !s.ok()) {
    return s;
  }
  uint64_t snapshot_index = 0;
  std::optional<raftpb::SnapshotMetadata> base;
  if (choice.snapshot.has_value()) {
    base = choice.snapshot->metadata();
    snapshot_index = base->index();
    durable.snapshot = std::move(*choice.snapshot);
  }
  std::vector<raftpb::Entry>& entries = contents.entries;
  absl::StatusOr<Start> start =
      ChooseStart(base, choice.damaged, contents, options_.repair_damage, *snapshots_,
                  JoinPath(member_dir_, "wal"), &entries);
  if (!start.ok()) return start.status();

  // Accepted. Before anything damaged is set aside (after which the next
  // recovery finds a clean directory), the member's repair is recorded:
  // until FinishRepair, every recovery reports the data damaged, so a
  // crash before the leader gave back what was lost repairs again instead
  // of serving from the shortened log.
  bool losing = contents.damage.has_value() || !start->lost.empty();
  std::string marker = JoinPath(member_dir_, kRepairMarker);
  bool repair_pending = fs_->Exists(marker);
  if (losing && !repair_pending) {
    if (absl::Status s = ReplaceFile(fs_, member_dir_, kRepairMarker,
                                     "repairing: recovery found damage and kept what was intact; "
                                     "the leader gives back the rest\n");
        !s.ok()) {
      return s;
    }
  }
  // Accepted: from here on what is damaged is set aside.
  for (DamagedSnapshot& damaged : choice.damaged) {
    // Kept for the operator, never deleted; out of the way of the next
    // recovery, which would otherwise pass over it again.
    if (absl::Status s = snapshots_->SetAside(damaged.name); !s.ok()) return s;
    set_aside_.push_back(std::move(damaged));
  }
  if (contents.damage.has_value()) {
    absl::StatusOr<std::vector<std::string>> names = wal_->SetAsideDamage();
    if (!names.ok()) return names.status();
    Damage damage = std::move(*contents.damage);
    absl::StrAppend(&damage.what, "; set aside as ", absl::StrJoin(*names, ", "),
                    " (kept, not deleted)");
    start->lost.insert(start->lost.begin(), std::move(damage));
  }
  if (start->reset_log || start->mark_snapshot) {
    // What the log must say for the next recovery to start here too.
    // Without the reset, entries written after this recovery follow void
    // ones in the log, and the next recovery voids them too (or stops at
    // the gap); without the marker, the log records a snapshot that is set
    // aside and that its entries do not reach, and the next recovery
    // refuses.
    raftpb::SnapshotMetadata at = base.value_or(raftpb::SnapshotMetadata());
    absl::Status s = start->reset_log ? wal_->AppendLogReset(at) : wal_->AppendSnapshotMarker(at);
    if (s.ok()) s = wal_->Sync();
    if (!s.ok()) return s;
  }
  if (repair_pending && start->lost.empty()) {
    start->lost.push_back(Damage{marker, 0,
                                 "a repair that an earlier start began has not finished: the "
                                 "member repairs again"});
  }
  durable.damaged = !start->lost.empty();
  if (durable.damaged) {
    // What was committed may be gone with the rest: the leader says again.
    uint64_t last_index = entries.empty() ? snapshot_index : entries.back().index();
    durable.hard_state.set_commit(std::min<uint64_t>(durable.hard_state.commit(), last_index));
  }
  for (Damage& damage : start->lost) damage_.push_back(std::move(damage));
  durable.entries = std::move(entries);
  snapshot_index_ = snapshot_index;
  // A log reset voids the log before it, as a leader's snapshot does: no
  // older snapshot can be combined with it.
  keep_log_from_index_ = start->reset_log
                             ? snapshot_index
                             : KeepLogFrom(options_, snapshot_index, choice.older_index);
  return absl::OkStatus();
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

absl::Status DataDir::FinishRepair() {
  std::string marker = JoinPath(member_dir_, kRepairMarker);
  if (!fs_->Exists(marker)) return absl::OkStatus();
  if (absl::Status s = fs_->Remove(marker); !s.ok()) return s;
  return fs_->SyncDir(member_dir_);
}

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
