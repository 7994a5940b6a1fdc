#include "storage/wal.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/record.h"

namespace etc::storage {
namespace {

constexpr char kSegmentSuffix[] = ".wal";
constexpr char kTempSuffix[] = ".tmp";
// A damaged segment kept for the operator (SetAsideDamage).
constexpr char kSetAsideSuffix[] = ".broken";
// The header record's payload: format, then the segment's sequence and
// first index (so a renamed or swapped file is noticed).
constexpr char kFormat[] = "etc-wal-1";

std::string HeaderPayload(uint64_t sequence, uint64_t first_index) {
  return absl::StrCat(kFormat, " ", sequence, " ", first_index);
}

bool ParseSegmentName(const std::string& name, uint64_t* sequence, uint64_t* first_index) {
  // 16 hex digits, '-', 16 hex digits, ".wal"
  if (name.size() != 16 + 1 + 16 + 4 || name.substr(33) != kSegmentSuffix || name[16] != '-') {
    return false;
  }
  auto hex = [](const std::string& digits, uint64_t* out) {
    if (!std::all_of(digits.begin(), digits.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
      return false;
    }
    *out = std::stoull(digits, nullptr, 16);
    return true;
  };
  return hex(name.substr(0, 16), sequence) && hex(name.substr(17, 16), first_index);
}

// Whether the record at `offset`, which does not decode, is a write torn
// by a crash rather than damaged data. Disks write whole sectors
// atomically, so a torn write leaves never-written zeros from a sector
// boundary inside the record to the end of the file, and nothing valid
// after it; a complete record never ends in zeros (its end mark is not
// zero). Anything else is damage: a flipped bit in the last, synced record
// must not pass for a torn write, or an acknowledged entry would silently
// disappear.
bool LooksTorn(std::string_view data, size_t offset, const DecodedRecord& record) {
  size_t nonzero_end = data.size();
  while (nonzero_end > offset && data[nonzero_end - 1] == '\0') --nonzero_end;
  // A whole valid record after it means bytes were written after it.
  for (size_t at = offset + 1; at + kRecordHeaderBytes <= nonzero_end; ++at) {
    if (DecodeRecord(data, at).status == DecodedRecord::kOk) return false;
  }
  // The zeros start at the sector boundary where the write was torn.
  uint64_t boundary = (std::max<uint64_t>(nonzero_end, offset + 1) + kSectorBytes - 1) /
                      kSectorBytes * kSectorBytes;
  // A header that fails its checksum: torn only inside the header itself.
  uint64_t end = record.header_ok ? record.end_offset : offset + kRecordHeaderBytes;
  return boundary < end;
}

absl::Status Damaged(const std::string& path, uint64_t offset, std::string_view what) {
  return absl::DataLossError(absl::StrCat("write-ahead log ", path, " is damaged at offset ",
                                          offset, ": ", std::string(what),
                                          "; the member must not serve from it"));
}

// Zeroes a file of `size_bytes` from `offset` on, durably.
absl::Status ZeroFrom(File& file, uint64_t offset, uint64_t size_bytes) {
  if (absl::Status s = file.WriteAt(offset, std::string(size_bytes - offset, '\0')); !s.ok()) {
    return s;
  }
  return file.Sync();
}

// Zeroes a torn tail from `offset` on, durably, and says so in `contents`.
absl::Status CutTornTail(File& file, std::string_view data, size_t offset,
                         const std::string& path, WalContents* contents) {
  uint64_t cut = data.size() - offset;
  if (absl::Status s = ZeroFrom(file, offset, data.size()); !s.ok()) return s;
  contents->truncated_file = path;
  contents->truncated_bytes = cut;
  return absl::OkStatus();
}

// An entry record: it replaces any entry at its index and after, and must
// not leave a gap. Why it cannot be replayed (nullopt: replayed).
std::optional<std::string> ReplayEntry(std::string_view payload,
                                       std::vector<raftpb::Entry>* entries) {
  raftpb::Entry entry;
  if (!entry.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return "an entry record does not parse";
  }
  if (!entries->empty()) {
    uint64_t first = entries->front().index();
    uint64_t next = entries->back().index() + 1;
    if (entry.index() > next) {
      return absl::StrCat("entry ", entry.index(), " follows entry ", next - 1);
    }
    if (entry.index() < first) {
      entries->clear();
    } else if (entry.index() < next) {
      entries->resize(entry.index() - first);
    }
  }
  entries->push_back(std::move(entry));
  return std::nullopt;
}

// A record after the segment header, into what recovery found so far. Why
// it cannot be replayed (nullopt: replayed); `contents` is then as it was,
// so that a repair keeps exactly what came before it.
std::optional<std::string> ReplayRecord(const DecodedRecord& record, WalContents* contents) {
  switch (record.type) {
    case RecordType::kEntry:
      return ReplayEntry(record.payload, &contents->entries);
    case RecordType::kHardState: {
      raftpb::HardState state;
      if (!state.ParseFromArray(record.payload.data(), static_cast<int>(record.payload.size()))) {
        return "a hard state record does not parse";
      }
      contents->hard_state = std::move(state);
      return std::nullopt;
    }
    case RecordType::kSnapshot:
    case RecordType::kLogReset: {
      raftpb::SnapshotMetadata metadata;
      if (!metadata.ParseFromArray(record.payload.data(),
                                   static_cast<int>(record.payload.size()))) {
        return "a snapshot record does not parse";
      }
      if (record.type == RecordType::kLogReset) contents->entries.clear();
      contents->snapshot = std::move(metadata);
      return std::nullopt;
    }
    case RecordType::kSegmentHeader:
      return "a segment header in the middle of a segment";
    case RecordType::kFileContent:
      return "a file content record in the log";
  }
  return "a record of unknown type";
}

// Serializes `message` as a record of `type` onto `batch`, unless a record
// cannot hold it: then kResourceExhausted, and `batch` is as it was.
absl::Status AppendMessage(RecordType type, const google::protobuf::MessageLite& message,
                           std::string_view what, std::string* batch) {
  if (absl::Status s = CheckRecordPayloadBytes(message.ByteSizeLong(), what); !s.ok()) return s;
  AppendRecord(type, message.SerializeAsString(), batch);
  return absl::OkStatus();
}

}  // namespace

absl::Status Wal::CheckFits(const std::vector<raftpb::Entry>& entries,
                            const raftpb::SnapshotMetadata* metadata) {
  for (const raftpb::Entry& entry : entries) {
    if (absl::Status s = CheckRecordPayloadBytes(entry.ByteSizeLong(), "an entry"); !s.ok()) {
      return s;
    }
  }
  if (metadata == nullptr) return absl::OkStatus();
  return CheckRecordPayloadBytes(metadata->ByteSizeLong(), "a snapshot's metadata");
}

std::string Wal::SegmentName(uint64_t sequence, uint64_t first_index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%016" PRIx64 "-%016" PRIx64 "%s", sequence, first_index,
                kSegmentSuffix);
  return name;
}

Wal::Wal(FileSystem* fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

std::vector<std::string> Wal::segments() const {
  std::vector<std::string> names;
  for (const Segment& segment : segments_) names.push_back(segment.name);
  return names;
}

absl::StatusOr<std::pair<std::unique_ptr<Wal>, WalContents>> Wal::Open(FileSystem* fs,
                                                                      std::string dir,
                                                                      WalOptions options) {
  std::unique_ptr<Wal> wal(new Wal(fs, dir, options));
  WalContents contents;
  if (absl::Status s = wal->FindSegments(); !s.ok()) return s;
  if (wal->segments_.empty()) {
    if (absl::Status s = wal->Rotate(); !s.ok()) return s;
    return std::make_pair(std::move(wal), std::move(contents));
  }
  if (absl::Status s = wal->Replay(&contents); !s.ok()) return s;
  wal->hard_state_ = contents.hard_state;
  wal->snapshot_ = contents.snapshot;
  wal->last_index_ = contents.entries.empty() ? 0 : contents.entries.back().index();
  // Damage found is left as it is until SetAsideDamage: a caller that
  // refuses to start all the same changes nothing.
  if (wal->tail_ == nullptr && !contents.damage.has_value()) {
    if (absl::Status s = wal->Rotate(); !s.ok()) return s;
  }
  return std::make_pair(std::move(wal), std::move(contents));
}

absl::Status Wal::FindSegments() {
  if (!fs_->Exists(dir_)) {
    if (absl::Status s = fs_->MakeDir(dir_); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<std::string>> names = fs_->List(dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t sequence = 0, first_index = 0;
    if (ParseSegmentName(name, &sequence, &first_index)) {
      segments_.push_back(Segment{sequence, first_index, name});
    } else if (name.size() > 4 && name.substr(name.size() - 4) == kTempSuffix) {
      // A segment being created when the process died: never used.
      if (absl::Status s = fs_->Remove(JoinPath(dir_, name)); !s.ok()) return s;
    }
  }
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.sequence < b.sequence; });
  for (size_t i = 1; i < segments_.size(); ++i) {
    if (segments_[i].sequence != segments_[i - 1].sequence + 1) {
      return absl::DataLossError(absl::StrCat("write-ahead log in ", dir_, ": segment ",
                                              segments_[i - 1].sequence + 1,
                                              " is missing before ", segments_[i].name));
    }
  }
  return absl::OkStatus();
}

absl::Status Wal::Replay(WalContents* contents) {
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    bool last_segment = i + 1 == segments_.size();
    std::string path = JoinPath(dir_, segment.name);
    absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(path, {});
    if (!file.ok()) return file.status();
    absl::StatusOr<std::string> data = ReadAll(**file);
    if (!data.ok()) return data.status();
    size_t offset = 0;
    bool header_seen = false;
    // What is wrong at `offset` (nullopt: nothing).
    std::optional<std::string> damage;
    while (true) {
      DecodedRecord record = DecodeRecord(*data, offset);
      if (record.status == DecodedRecord::kZeros) {
        if (!AllZero(*data, offset)) damage = "a zeroed record is followed by data";
        break;
      }
      if (record.status != DecodedRecord::kOk) {
        // Damage at the very end of the last segment is a write that was
        // torn by a crash before its sync: never acknowledged, cut off.
        // Anywhere else it is data that was acknowledged, now damaged.
        bool torn = false;
        if (last_segment && header_seen) {
          torn = LooksTorn(*data, offset, record);
        }
        if (!torn) {
          damage = record.status == DecodedRecord::kTruncated ? "a record is cut short"
                                                              : "a checksum does not match";
          break;
        }
        if (absl::Status s = CutTornTail(**file, *data, offset, path, contents); !s.ok()) return s;
        break;
      }
      if (header_seen) {
        damage = ReplayRecord(record, contents);
      } else if (record.type != RecordType::kSegmentHeader ||
                 record.payload != HeaderPayload(segment.sequence, segment.first_index)) {
        damage = "the segment header does not match its name";
      }
      if (damage.has_value()) break;
      header_seen = true;
      offset = record.next_offset;
    }
    if (!header_seen && !last_segment && !damage.has_value()) {
      damage = "the segment has no header";
    }
    if (damage.has_value()) {
      if (!options_.repair_damage) return Damaged(path, offset, *damage);
      // Everything before it is kept; it and everything after it wait for
      // SetAsideDamage.
      contents->damage = Damage{path, offset, *damage};
      damaged_segment_ = i;
      damaged_offset_ = offset;
      return absl::OkStatus();
    }
    if (!header_seen) {
      // Created but never written (the process died right after renaming
      // it into place, before the header was synced): recreate it.
      if (absl::Status s = fs_->Remove(path); !s.ok()) return s;
      segments_.pop_back();
      break;
    }
    if (last_segment) {
      tail_ = std::move(*file);
      tail_offset_ = offset;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Wal::SetAsideDamage() {
  std::vector<std::string> set_aside;
  if (!damaged_segment_.has_value()) return set_aside;
  size_t damaged = *damaged_segment_;
  // The later segments first, newest first: a crash part way leaves a
  // contiguous log that ends in the damaged segment, which the next
  // recovery finds damaged again.
  for (size_t i = segments_.size(); i-- > damaged + 1;) {
    std::string broken = BrokenName(segments_[i].name);
    if (absl::Status s = fs_->Rename(JoinPath(dir_, segments_[i].name), JoinPath(dir_, broken));
        !s.ok()) {
      return s;
    }
    set_aside.push_back(std::move(broken));
  }
  // The damaged segment's records before the damage stay in place: the
  // whole file is copied aside first and only then is its damaged part
  // zeroed, so no crash finds those records in no file (a rename aside and
  // a rewrite would leave a moment when the log just ends before them, and
  // the next recovery would see a clean log that silently lost them).
  const std::string& name = segments_[damaged].name;
  bool keep_prefix = damaged_offset_ > 0;
  std::string broken = BrokenName(name);
  std::unique_ptr<File> kept;
  if (keep_prefix) {
    absl::StatusOr<std::unique_ptr<File>> copied = CopyAside(name, broken);
    if (!copied.ok()) return copied.status();
    kept = std::move(*copied);
  } else if (absl::Status s = fs_->Rename(JoinPath(dir_, name), JoinPath(dir_, broken));
             !s.ok()) {
    return s;
  }
  set_aside.push_back(std::move(broken));
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return s;
  if (keep_prefix) {
    absl::StatusOr<uint64_t> size_bytes = kept->Size();
    if (!size_bytes.ok()) return size_bytes.status();
    if (absl::Status s = ZeroFrom(*kept, damaged_offset_, *size_bytes); !s.ok()) return s;
  }
  segments_.erase(segments_.begin() + static_cast<ptrdiff_t>(damaged + (keep_prefix ? 1 : 0)),
                  segments_.end());
  damaged_segment_.reset();
  // On after the last intact entry, in a segment of its own.
  if (absl::Status s = Rotate(); !s.ok()) return s;
  return set_aside;
}

absl::StatusOr<std::unique_ptr<File>> Wal::CopyAside(const std::string& name,
                                                     const std::string& broken) {
  absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(JoinPath(dir_, name), {});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> data = ReadAll(**file);
  if (!data.ok()) return data.status();
  absl::StatusOr<std::unique_ptr<File>> copy =
      fs_->Open(JoinPath(dir_, broken), {.create = true, .exclusive = true});
  if (!copy.ok()) return copy.status();
  if (absl::Status s = (*copy)->Append(*data); !s.ok()) return s;
  if (absl::Status s = (*copy)->Sync(); !s.ok()) return s;
  return file;
}

std::string Wal::BrokenName(const std::string& name) const {
  std::string broken = name + kSetAsideSuffix;
  for (int n = 2; fs_->Exists(JoinPath(dir_, broken)); ++n) {
    broken = absl::StrCat(name, kSetAsideSuffix, ".", n);
  }
  return broken;
}

absl::Status Wal::CheckRepaired() const {
  if (!damaged_segment_.has_value()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the write-ahead log in ", dir_, " is damaged and its damage not set aside yet"));
}

absl::Status Wal::WriteBuffer(const std::string& bytes) {
  if (absl::Status s = CheckRepaired(); !s.ok()) return s;
  // Inside the segment's preallocated space; if the disk refuses it anyway,
  // part of it may be in the file: never retried.
  if (absl::Status s = tail_->WriteAt(tail_offset_, bytes); !s.ok()) return NotRetryable(s);
  tail_offset_ += bytes.size();
  dirty_ = true;
  return absl::OkStatus();
}

absl::Status Wal::Rotate() {
  if (tail_ != nullptr && dirty_) {
    if (absl::Status s = Sync(); !s.ok()) return s;
  }
  uint64_t sequence = segments_.empty() ? 1 : segments_.back().sequence + 1;
  uint64_t first_index = last_index_ + 1;
  std::string name = SegmentName(sequence, first_index);
  std::string temp = JoinPath(dir_, name + kTempSuffix);
  // Until the rename, the new segment is not part of the log: a full disk
  // here leaves the log as it was, so the caller may try again later
  // (NoSpaceError), and the space the half-made file took is given back.
  auto prepare = [&]() -> absl::StatusOr<std::unique_ptr<File>> {
    absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(temp, {.create = true});
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Truncate(0); !s.ok()) return s;
    if (absl::Status s = (*file)->Allocate(options_.segment_bytes); !s.ok()) return s;
    return file;
  };
  absl::StatusOr<std::unique_ptr<File>> file = prepare();
  if (!file.ok()) {
    if (IsNoSpace(file.status())) fs_->Remove(temp).IgnoreError();
    return file.status();
  }
  // The new segment carries what replay needs from the older ones, so they
  // can be released once a snapshot covers their entries.
  std::string start;
  AppendRecord(RecordType::kSegmentHeader, HeaderPayload(sequence, first_index), &start);
  AppendRecord(RecordType::kHardState, hard_state_.SerializeAsString(), &start);
  if (snapshot_.has_value()) {
    AppendRecord(RecordType::kSnapshot, snapshot_->SerializeAsString(), &start);
  }
  if (absl::Status s = (*file)->WriteAt(0, start); !s.ok()) return NotRetryable(s);
  if (absl::Status s = (*file)->Sync(); !s.ok()) return NotRetryable(s);
  std::string path = JoinPath(dir_, name);
  if (absl::Status s = fs_->Rename(temp, path); !s.ok()) return NotRetryable(s);
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return NotRetryable(s);
  segments_.push_back(Segment{sequence, first_index, name});
  tail_ = std::move(*file);
  tail_offset_ = start.size();
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status Wal::Append(const std::vector<raftpb::Entry>& entries,
                         const std::optional<raftpb::HardState>& hard_state) {
  if (absl::Status s = CheckRepaired(); !s.ok()) return s;
  // The whole batch is encoded, and each record checked, before anything is
  // written: a batch with a record the reader would refuse is refused whole.
  std::string batch;
  for (const raftpb::Entry& entry : entries) {
    if (absl::Status s = AppendMessage(RecordType::kEntry, entry, "an entry", &batch); !s.ok()) {
      return s;
    }
  }
  if (hard_state.has_value()) {
    absl::Status s = AppendMessage(RecordType::kHardState, *hard_state, "a hard state", &batch);
    if (!s.ok()) return s;
  }
  if (batch.empty()) return absl::OkStatus();
  if (tail_offset_ + batch.size() > options_.segment_bytes) {
    if (absl::Status s = Rotate(); !s.ok()) return s;
  }
  if (absl::Status s = WriteBuffer(batch); !s.ok()) return s;
  if (!entries.empty()) last_index_ = entries.back().index();
  if (hard_state.has_value()) hard_state_ = *hard_state;
  return absl::OkStatus();
}

absl::Status Wal::AppendSnapshotMarker(const raftpb::SnapshotMetadata& metadata) {
  std::string record;
  absl::Status s = AppendMessage(RecordType::kSnapshot, metadata, "a snapshot marker", &record);
  if (!s.ok()) return s;
  snapshot_ = metadata;
  return WriteBuffer(record);
}

absl::Status Wal::AppendLogReset(const raftpb::SnapshotMetadata& metadata) {
  std::string record;
  absl::Status s = AppendMessage(RecordType::kLogReset, metadata, "a log reset", &record);
  if (!s.ok()) return s;
  snapshot_ = metadata;
  last_index_ = metadata.index();
  return WriteBuffer(record);
}

absl::Status Wal::Sync() {
  if (!dirty_) return absl::OkStatus();
  // The segment's size never changes inside its preallocated space, so the
  // data sync alone makes the records durable.
  if (absl::Status s = tail_->DataSync(); !s.ok()) return NotRetryable(s);
  dirty_ = false;
  ++syncs_;
  return absl::OkStatus();
}

absl::Status Wal::ReleaseTo(uint64_t index) {
  if (absl::Status s = CheckRepaired(); !s.ok()) return s;
  // Segment i holds only entries below segment i+1's first index.
  size_t releasable = 0;
  while (releasable + 1 < segments_.size() &&
         segments_[releasable + 1].first_index <= index + 1) {
    ++releasable;
  }
  if (releasable == 0) return absl::OkStatus();
  for (size_t i = 0; i < releasable; ++i) {
    if (absl::Status s = fs_->Remove(JoinPath(dir_, segments_[i].name)); !s.ok()) return s;
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(releasable));
  return fs_->SyncDir(dir_);
}

}  // namespace etc::storage
