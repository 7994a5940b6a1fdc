#include "storage/snapshot_fallback.h"

#include "absl/strings/str_cat.h"

namespace etc::storage {
namespace {

// Why the log cannot rebuild the snapshot at `target` from one at
// `base_index` (OK if it can).
absl::Status LogReaches(uint64_t base_index, const std::vector<raftpb::Entry>& entries,
                        const raftpb::SnapshotMetadata& target) {
  if (entries.empty()) {
    return absl::DataLossError(absl::StrCat("the log holds no entries after index ", base_index));
  }
  uint64_t first = entries.front().index();
  uint64_t last = entries.back().index();
  if (first > base_index + 1) {
    return absl::DataLossError(absl::StrCat("the log starts at entry ", first, ", after entry ",
                                            base_index + 1, " that the older snapshot needs next"));
  }
  if (last < target.index()) {
    return absl::DataLossError(absl::StrCat("the log ends at entry ", last, ", before ",
                                            target.index()));
  }
  uint64_t term = entries[target.index() - first].term();
  if (term != target.term()) {
    // A snapshot from the leader replaced this log, whose entries are not
    // the ones it covers.
    return absl::DataLossError(absl::StrCat("the log's entry ", target.index(), " has term ", term,
                                            ", not the snapshot's ", target.term()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SnapshotChoice> LoadNewestIntact(const Snapshotter& snapshots) {
  absl::StatusOr<std::vector<std::string>> files = snapshots.Files();
  if (!files.ok()) return files.status();
  SnapshotChoice choice;
  for (auto name = files->rbegin(); name != files->rend(); ++name) {
    if (choice.snapshot.has_value()) {
      std::optional<raftpb::SnapshotMetadata> older = Snapshotter::ParseFileName(*name);
      if (older.has_value()) choice.older_index = older->index();
      break;
    }
    absl::StatusOr<raftpb::Snapshot> snapshot = snapshots.Read(*name);
    if (snapshot.ok()) {
      choice.snapshot = std::move(*snapshot);
      continue;
    }
    if (snapshot.status().code() != absl::StatusCode::kDataLoss) return snapshot.status();
    std::optional<raftpb::SnapshotMetadata> metadata = Snapshotter::ParseFileName(*name);
    if (!metadata.has_value()) return snapshot.status();  // Files() lists only parsable names
    choice.damaged.push_back(DamagedSnapshot{*name, *metadata, snapshot.status()});
  }
  return choice;
}

absl::Status CheckCovered(const std::optional<raftpb::SnapshotMetadata>& base,
                          const std::vector<DamagedSnapshot>& damaged,
                          const std::optional<raftpb::SnapshotMetadata>& marker,
                          const std::vector<raftpb::Entry>& entries, const Snapshotter& snapshots) {
  uint64_t base_index = base.has_value() ? base->index() : 0;
  for (const DamagedSnapshot& file : damaged) {
    if (!base.has_value()) {
      return absl::DataLossError(absl::StrCat(file.status.message(),
                                              "; no older snapshot file reads back whole"));
    }
    if (absl::Status reaches = LogReaches(base_index, entries, file.metadata); !reaches.ok()) {
      return absl::DataLossError(absl::StrCat(file.status.message(),
                                              "; the older snapshot at index ", base_index,
                                              " and the log do not cover it: ", reaches.message()));
    }
  }
  if (marker.has_value() && marker->index() > base_index) {
    bool accounted = snapshots.IsSetAside(*marker);
    for (const DamagedSnapshot& file : damaged) {
      accounted = accounted || (file.metadata.index() == marker->index() &&
                                file.metadata.term() == marker->term());
    }
    absl::Status reaches = accounted ? LogReaches(base_index, entries, *marker)
                                     : absl::DataLossError("its file is gone");
    if (!reaches.ok()) {
      // The log may already be released behind it.
      return absl::DataLossError(absl::StrCat(
          "the log records a snapshot at index ", marker->index(),
          " but the newest snapshot file is at ", base_index, " (in ", snapshots.dir(),
          "): ", reaches.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace etc::storage
