// Which snapshot a data directory restarts from when its newest snapshot
// file is damaged, as etcd does: the newest file that reads back whole,
// provided the log still holds every entry from it through each newer
// snapshot, so that replaying them rebuilds what the damaged files held
// (two logs with an entry of the same index and term hold the same entries
// up to it: Raft's Log Matching property). The damaged files are then set
// aside (renamed to <name>.broken, never deleted) for the operator.
// Nothing intact covering them is kDataLoss naming the damaged file.
//
// DataDir keeps the log back to the snapshot before the newest (see
// DataDir::CompactLog), so one damaged snapshot file is always covered,
// unless the newest snapshot came from the leader (its log reset voided
// the entries before it) or only one snapshot file is kept.
//
//   SnapshotChoice choice = LoadNewestIntact(snapshots).value();
//   ... replay the log ...
//   absl::Status covered = CheckCovered(choice.snapshot->metadata(), choice.damaged,
//                                       contents.snapshot, entries, snapshots);
//   if (covered.ok()) for (const DamagedSnapshot& d : choice.damaged) snapshots.SetAside(d.name);
#ifndef ETC_STORAGE_SNAPSHOT_FALLBACK_H_
#define ETC_STORAGE_SNAPSHOT_FALLBACK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raftpb.pb.h"
#include "storage/snapshotter.h"

namespace etc::storage {

// A snapshot file that does not read back whole.
struct DamagedSnapshot {
  std::string name;  // in the snapshot directory
  // Its index and term, from its name (its contents cannot be trusted).
  raftpb::SnapshotMetadata metadata;
  // kDataLoss naming the file and what is wrong with it.
  absl::Status status;
};

struct SnapshotChoice {
  // The newest snapshot file that reads back whole (nullopt: none does, or
  // there is none).
  std::optional<raftpb::Snapshot> snapshot;
  // The files newer than it, newest first: all damaged.
  std::vector<DamagedSnapshot> damaged;
  // The index of the next older file than `snapshot` (0: none): the one
  // recovery would fall back to if `snapshot` were damaged.
  uint64_t older_index = 0;
};

// Reads the snapshot files newest first until one reads back whole.
// Errors: what the file system failed with (damage is not an error here).
absl::StatusOr<SnapshotChoice> LoadNewestIntact(const Snapshotter& snapshots);

// Whether recovery may start from the intact snapshot `base` (nullopt:
// none) with the log's `entries` (contiguous, oldest first, before those
// the snapshot covers are dropped): the log must carry the state from it
// through every `damaged` file, and through the snapshot the log last
// recorded (`marker`) if that is newer, whose file must then be damaged
// now or set aside by an earlier recovery (a file that vanished without a
// trace is a storage bug, never passed over). kDataLoss naming the file
// and what is missing otherwise.
absl::Status CheckCovered(const std::optional<raftpb::SnapshotMetadata>& base,
                          const std::vector<DamagedSnapshot>& damaged,
                          const std::optional<raftpb::SnapshotMetadata>& marker,
                          const std::vector<raftpb::Entry>& entries, const Snapshotter& snapshots);

}  // namespace etc::storage

#endif  // ETC_STORAGE_SNAPSHOT_FALLBACK_H_
