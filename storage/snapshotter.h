// Snapshot files: the state machine's snapshot plus Raft's metadata (index,
// term, membership), one file per snapshot named "<index>-<term>.snap" (16
// hex digits each, so names sort by index), written crash-safely: to a temporary file, synced,
// renamed into place, and the directory synced. The newest `retain` are
// kept.
//
// File format: "etcsnap1", the payload length (u64 little-endian), the
// payload's CRC-32C (u32 little-endian), then the payload (a serialized
// raftpb.Snapshot).
//
//   Snapshotter snapshots(&fs, "member/snap", /*retain=*/5);
//   snapshots.Save(snapshot);                       // durable when it returns
//   std::optional<raftpb::Snapshot> newest = snapshots.LoadNewest().value();
#ifndef ETC_STORAGE_SNAPSHOTTER_H_
#define ETC_STORAGE_SNAPSHOTTER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raftpb.pb.h"
#include "storage/fs.h"

namespace etc::storage {

// Decodes a snapshot file's bytes. Errors: kDataLoss saying what is wrong.
absl::StatusOr<raftpb::Snapshot> DecodeSnapshotFile(std::string_view bytes);
std::string EncodeSnapshotFile(const raftpb::Snapshot& snapshot);

// The largest snapshot payload a file may hold: what protobuf parses in
// one message (its sizes are ints). Save refuses a larger one rather than
// write a file that no recovery could read.
inline constexpr uint64_t kMaxSnapshotPayloadBytes = (uint64_t{1} << 31) - 1;

class Snapshotter {
 public:
  // `max_payload_bytes` at most kMaxSnapshotPayloadBytes (less, for tests).
  Snapshotter(FileSystem* fs, std::string dir, int retain = 5,
              uint64_t max_payload_bytes = kMaxSnapshotPayloadBytes);

  // Creates the directory if needed and removes leftover temporary files.
  absl::Status Init();
  // Writes `snapshot` durably, then removes the oldest beyond `retain`.
  // Errors: kResourceExhausted (nothing written) for a snapshot larger than
  // a file can hold; what the file system failed with.
  absl::Status Save(const raftpb::Snapshot& snapshot);
  // The newest snapshot file's contents (nullopt: there is none). A damaged
  // newest file is an error, not a reason to fall back to an older one: the
  // log may already be released behind it.
  absl::StatusOr<std::optional<raftpb::Snapshot>> LoadNewest() const;
  // The snapshot with this index and term. kNotFound if there is no such
  // file (never written, or removed as older than the newest `retain`);
  // kDataLoss if it is damaged. Reads only: it may run beside Save (a file
  // removed under it is kNotFound or an I/O error).
  absl::StatusOr<raftpb::Snapshot> Load(const raftpb::SnapshotMetadata& metadata) const;
  // Snapshot file names, oldest first.
  absl::StatusOr<std::vector<std::string>> Files() const;

 private:
  static std::string FileName(const raftpb::SnapshotMetadata& metadata);
  absl::StatusOr<raftpb::Snapshot> Read(const std::string& name) const;

  FileSystem* fs_;
  std::string dir_;
  int retain_;
  uint64_t max_payload_bytes_;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_SNAPSHOTTER_H_
