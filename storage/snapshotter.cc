#include "storage/snapshotter.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "base/wire_fields.h"

namespace etc::storage {
namespace {

constexpr char kMagic[] = "etcsnap1";
constexpr size_t kMagicBytes = 8;
constexpr size_t kHeaderBytes = kMagicBytes + 8 + 4;
constexpr char kSuffix[] = ".snap";
constexpr char kTempSuffix[] = ".snap.tmp";
constexpr char kSetAsideSuffix[] = ".broken";

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsSnapshotName(const std::string& name) {
  return name.size() == 16 + 1 + 16 + 5 && EndsWith(name, kSuffix) && name[16] == '-';
}

// A snapshot file in three pieces, so that the data (which can be hundreds
// of megabytes) is written from where it is, never copied: the header and
// the serialized message's bytes before the data, the data itself, and the
// message's bytes after it (raftpb.Snapshot: data is field 1, the metadata
// field 2, and serializers write fields in number order).
struct FilePieces {
  std::string head;
  std::string_view data;
  std::string tail;
};

FilePieces PiecesOf(const raftpb::Snapshot& snapshot) {
  FilePieces pieces;
  pieces.data = snapshot.data();
  std::string data_prefix =
      snapshot.data().empty()
          ? std::string()
          : base::LengthDelimitedFieldHead(raftpb::Snapshot::kDataFieldNumber, snapshot.data().size());
  raftpb::Snapshot without_data;
  *without_data.mutable_metadata() = snapshot.metadata();
  pieces.tail = without_data.SerializeAsString();
  uint64_t length = data_prefix.size() + pieces.data.size() + pieces.tail.size();
  uint32_t crc = base::Crc32c(data_prefix);
  crc = base::Crc32cExtend(crc, pieces.data);
  crc = base::Crc32cExtend(crc, pieces.tail);
  pieces.head = std::string(kMagic, kMagicBytes);
  for (int i = 0; i < 8; ++i) pieces.head.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  for (int i = 0; i < 4; ++i) pieces.head.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  pieces.head += data_prefix;
  return pieces;
}

}  // namespace

std::string EncodeSnapshotFile(const raftpb::Snapshot& snapshot) {
  FilePieces pieces = PiecesOf(snapshot);
  std::string out;
  out.reserve(pieces.head.size() + pieces.data.size() + pieces.tail.size());
  out.append(pieces.head).append(pieces.data).append(pieces.tail);
  return out;
}

absl::StatusOr<raftpb::Snapshot> DecodeSnapshotFile(std::string bytes) {
  std::string_view view = bytes;
  if (view.size() < kHeaderBytes || view.substr(0, kMagicBytes) != kMagic) {
    return absl::DataLossError("not a snapshot file (bad magic or too short)");
  }
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i) {
    length |= static_cast<uint64_t>(static_cast<unsigned char>(view[kMagicBytes + i])) << (8 * i);
  }
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) {
    crc |= static_cast<uint32_t>(static_cast<unsigned char>(view[kMagicBytes + 8 + i])) << (8 * i);
  }
  if (length != view.size() - kHeaderBytes) {
    return absl::DataLossError(absl::StrCat("snapshot file holds ", view.size() - kHeaderBytes,
                                            " bytes of payload, its header says ", length));
  }
  std::string_view payload = view.substr(kHeaderBytes);
  if (base::Crc32c(payload) != crc) return absl::DataLossError("snapshot checksum does not match");
  if (payload.size() > kMaxSnapshotPayloadBytes) {
    return absl::DataLossError(absl::StrCat("snapshot payload of ", payload.size(),
                                            " bytes is larger than a snapshot file holds"));
  }
  // The metadata parses as a message; the data (which may pass protobuf's
  // 2 GiB) is taken from where it is (base/wire_fields.h).
  absl::StatusOr<base::WireSplit> split =
      base::SplitWireField(payload, raftpb::Snapshot::kDataFieldNumber);
  raftpb::Snapshot snapshot;
  if (!split.ok() || !snapshot.ParseFromString(split->rest)) {
    return absl::DataLossError("snapshot payload does not parse");
  }
  // Moved within the file's bytes to their start, rather than copied: a
  // second copy of a large snapshot would double what a restart holds.
  size_t data_bytes = split->field.size();
  if (data_bytes == 0) {
    bytes.clear();
  } else {
    bytes.erase(0, static_cast<size_t>(split->field.data() - bytes.data()));
    bytes.resize(data_bytes);
  }
  snapshot.set_data(std::move(bytes));
  return snapshot;
}

Snapshotter::Snapshotter(FileSystem* fs, std::string dir, int retain, uint64_t max_payload_bytes)
    : fs_(fs),
      dir_(std::move(dir)),
      retain_(std::max(1, retain)),
      max_payload_bytes_(std::min(max_payload_bytes, kMaxSnapshotPayloadBytes)) {}

absl::Status Snapshotter::Init() {
  if (!fs_->Exists(dir_)) {
    if (absl::Status s = fs_->MakeDir(dir_); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<std::string>> names = fs_->List(dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (EndsWith(name, kTempSuffix)) {
      if (absl::Status s = fs_->Remove(JoinPath(dir_, name)); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Snapshotter::Files() const {
  absl::StatusOr<std::vector<std::string>> names = fs_->List(dir_);
  if (!names.ok()) return names.status();
  std::vector<std::string> files;
  for (const std::string& name : *names) {
    if (IsSnapshotName(name)) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status Snapshotter::Save(const raftpb::Snapshot& snapshot) {
  std::string path = JoinPath(dir_, FileName(snapshot.metadata()));
  std::string temp = path + ".tmp";
  FilePieces pieces = PiecesOf(snapshot);
  // Refused before anything is written: the reader would refuse it after.
  uint64_t payload_bytes = pieces.head.size() + pieces.data.size() + pieces.tail.size();
  if (payload_bytes > max_payload_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a snapshot of ", payload_bytes, " bytes is larger than a snapshot file holds (",
                     max_payload_bytes_, ")"));
  }
  // A full disk leaves nothing behind: the half-written file is removed (a
  // caller may try again once there is space; the log keeps every entry
  // since the last snapshot meanwhile).
  auto write_temp = [&]() -> absl::Status {
    // Past the page cache where the disk allows: copying hundreds of
    // megabytes into the cache cost more CPU than the rest of a snapshot,
    // and nothing reads the file back soon (a restart, a repair).
    absl::StatusOr<std::unique_ptr<File>> file =
        fs_->Open(temp, {.create = true, .uncached_appends = true});
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Truncate(0); !s.ok()) return s;
    // Synced as it goes, a few megabytes at a time: a large file written
    // whole and synced at the end leaves so much dirty data that the log's
    // own fsyncs (on the same disk) wait behind its writeback.
    constexpr size_t kSyncEveryBytes = 8 << 20;
    for (std::string_view piece : {std::string_view(pieces.head), pieces.data,
                                   std::string_view(pieces.tail)}) {
      while (!piece.empty()) {
        std::string_view chunk = piece.substr(0, kSyncEveryBytes);
        piece.remove_prefix(chunk.size());
        if (absl::Status s = (*file)->Append(chunk); !s.ok()) return s;
        if (chunk.size() == kSyncEveryBytes) {
          if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
        }
      }
    }
    return (*file)->Sync();
  };
  if (absl::Status s = write_temp(); !s.ok()) {
    if (IsNoSpace(s)) fs_->Remove(temp).IgnoreError();
    return s;
  }
  if (absl::Status s = fs_->Rename(temp, path); !s.ok()) return NotRetryable(s);
  // Without this the rename may not survive a crash, and the log may be
  // released behind a snapshot that is gone (raft-traps #12).
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return NotRetryable(s);
  absl::StatusOr<std::vector<std::string>> files = Files();
  if (!files.ok()) return files.status();
  if (static_cast<int>(files->size()) > retain_) {
    for (size_t i = 0; i + static_cast<size_t>(retain_) < files->size(); ++i) {
      if (absl::Status s = fs_->Remove(JoinPath(dir_, (*files)[i])); !s.ok()) return s;
    }
    return fs_->SyncDir(dir_);
  }
  return absl::OkStatus();
}

std::string Snapshotter::FileName(const raftpb::SnapshotMetadata& metadata) {
  char name[64];
  std::snprintf(name, sizeof(name), "%016" PRIx64 "-%016" PRIx64 "%s",
                static_cast<uint64_t>(metadata.index()), static_cast<uint64_t>(metadata.term()),
                kSuffix);
  return name;
}

absl::StatusOr<raftpb::Snapshot> Snapshotter::Read(const std::string& name) const {
  std::string path = JoinPath(dir_, name);
  absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(path, {});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> bytes = ReadAll(**file);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<raftpb::Snapshot> snapshot = DecodeSnapshotFile(std::move(*bytes));
  if (!snapshot.ok()) {
    return absl::DataLossError(absl::StrCat("snapshot file ", path, ": ", snapshot.status().message()));
  }
  return snapshot;
}

absl::Status Snapshotter::SetAside(const std::string& name) {
  if (absl::Status s = fs_->Rename(JoinPath(dir_, name), JoinPath(dir_, name + kSetAsideSuffix));
      !s.ok()) {
    return s;
  }
  // Durably, or a crash could bring the damaged file back as the newest.
  return fs_->SyncDir(dir_);
}

bool Snapshotter::IsSetAside(const raftpb::SnapshotMetadata& metadata) const {
  return fs_->Exists(JoinPath(dir_, FileName(metadata) + kSetAsideSuffix));
}

std::optional<raftpb::SnapshotMetadata> Snapshotter::ParseFileName(const std::string& name) {
  // 16 lower-case hex digits from `at` (as FileName writes them).
  auto hex = [&name](size_t at, uint64_t* value) {
    *value = 0;
    for (size_t i = at; i < at + 16; ++i) {
      char c = name[i];
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return false;
      *value = *value << 4 | static_cast<uint64_t>(digit);
    }
    return true;
  };
  uint64_t index = 0;
  uint64_t term = 0;
  if (!IsSnapshotName(name) || !hex(0, &index) || !hex(17, &term)) return std::nullopt;
  raftpb::SnapshotMetadata metadata;
  metadata.set_index(index);
  metadata.set_term(term);
  return metadata;
}

absl::StatusOr<raftpb::Snapshot> Snapshotter::Load(const raftpb::SnapshotMetadata& metadata) const {
  std::string name = FileName(metadata);
  if (!fs_->Exists(JoinPath(dir_, name))) {
    return absl::NotFoundError(absl::StrCat("no snapshot file ", name));
  }
  absl::StatusOr<raftpb::Snapshot> snapshot = Read(name);
  if (!snapshot.ok()) return snapshot.status();
  if (snapshot->metadata().index() != metadata.index() ||
      snapshot->metadata().term() != metadata.term()) {
    return absl::DataLossError(absl::StrCat("snapshot file ", name, " holds the snapshot at index ",
                                            snapshot->metadata().index(), " term ",
                                            snapshot->metadata().term()));
  }
  return snapshot;
}

}  // namespace etc::storage
