// Snapshot files: the state machine's snapshot plus Raft's metadata (index,
// term, membership), one file per snapshot named "<index>-<term>.snap" (16
// hex digits each, so names sort by index), written crash-safely: to a temporary file, synced,
// renamed into place, and the directory synced. The newest `retain` are
// kept. A damaged file that recovery passed over is set aside as
// "<name>.broken" (snapshot_fallback.h) and kept for the operator.
//
// File format: "etcsnap1", the payload length (u64 little-endian), the
// payload's CRC-32C (u32 little-endian), then the payload (a serialized
// raftpb.Snapshot).
//
//   Snapshotter snapshots(&fs, "member/snap", /*retain=*/5);
//   snapshots.Save(snapshot);                       // durable when it returns
//   raftpb::Snapshot newest = snapshots.Read(snapshots.Files()->back()).value();
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

// Decodes a snapshot file's bytes (taken, so that the data moves into the
// snapshot without a copy). Errors: kDataLoss saying what is wrong.
absl::StatusOr<raftpb::Snapshot> DecodeSnapshotFile(std::string bytes);
std::string EncodeSnapshotFile(const raftpb::Snapshot& snapshot);

// The largest snapshot payload a file may hold: 32 GiB, well past what a
// key tree at the largest quota (kv::kMaxQuotaBytes, 8 GiB) writes. The
// payload is a serialized raftpb.Snapshot, read with its data field apart
// (base/wire_fields.h), so protobuf's 2 GiB message limit does not apply.
// Save refuses a larger one rather than write a file no recovery would read.
inline constexpr uint64_t kMaxSnapshotPayloadBytes = uint64_t{1} << 35;

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
  // The snapshot in the file `name` (one of Files()). kDataLoss naming the
  // file if it does not read back whole; what the file system failed with.
  absl::StatusOr<raftpb::Snapshot> Read(const std::string& name) const;
  // The snapshot with this index and term. kNotFound if there is no such
  // file (never written, or removed as older than the newest `retain`);
  // kDataLoss if it is damaged. Reads only: it may run beside Save (a file
  // removed under it is kNotFound or an I/O error).
  absl::StatusOr<raftpb::Snapshot> Load(const raftpb::SnapshotMetadata& metadata) const;
  // Snapshot file names, oldest first.
  absl::StatusOr<std::vector<std::string>> Files() const;
  // Renames the file `name` to "<name>.broken", durably: a damaged file
  // kept for the operator, out of Files(), Load and the retention count.
  absl::Status SetAside(const std::string& name);
  // Whether the snapshot with this index and term was set aside.
  bool IsSetAside(const raftpb::SnapshotMetadata& metadata) const;
  const std::string& dir() const { return dir_; }

  // The index and term a snapshot file's name gives (nullopt: not one).
  static std::optional<raftpb::SnapshotMetadata> ParseFileName(const std::string& name);

 private:
  static std::string FileName(const raftpb::SnapshotMetadata& metadata);

  FileSystem* fs_;
  std::string dir_;
  int retain_;
  uint64_t max_payload_bytes_;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_SNAPSHOTTER_H_
