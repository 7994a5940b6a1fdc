#include "storage/value_log.h"

#include <cstdio>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "base/little_endian.h"

namespace etc::storage {
namespace {

constexpr int kOffsetBits = 40;
constexpr uint64_t kOffsetMask = (uint64_t{1} << kOffsetBits) - 1;
constexpr size_t kHeaderBytes = 8;
constexpr char kSuffix[] = ".vlog";

uint64_t RecordBytes(uint32_t size) { return kHeaderBytes + size; }

}  // namespace

absl::StatusOr<std::unique_ptr<ValueLog>> ValueLog::Create(FileSystem* fs, std::string dir,
                                                           ValueLogOptions options) {
  ETC_CHECK_GT(options.segment_bytes, 0u);
  ETC_CHECK_LT(options.segment_bytes, uint64_t{1} << kOffsetBits);
  if (!fs->Exists(dir)) {
    if (absl::Status s = fs->MakeDir(dir); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<std::string>> names = fs->List(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (!absl::EndsWith(name, kSuffix)) continue;
    if (absl::Status s = fs->Remove(absl::StrCat(dir, "/", name)); !s.ok()) return s;
  }
  std::unique_ptr<ValueLog> log(new ValueLog(fs, std::move(dir), options));
  log->flush_at_bytes_ = options.write_buffer_bytes;
  if (absl::Status s = log->OpenSegment(1); !s.ok()) return s;
  return log;
}

std::string ValueLog::PathOf(uint64_t segment) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(segment));
  return absl::StrCat(dir_, "/", name, kSuffix);
}

absl::Status ValueLog::OpenSegment(uint64_t number) {
  ETC_CHECK(buffer_.empty()) << "a new segment before the last one is in its file";
  ETC_CHECK_LT(number, uint64_t{1} << (64 - kOffsetBits)) << "value log segment numbers ran out";
  absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(PathOf(number), {.create = true});
  if (!file.ok()) return file.status();
  // A file of this name can only be left from an earlier run of this log.
  if (absl::Status s = (*file)->Truncate(0); !s.ok()) return s;
  Segment& segment = segments_[number];
  segment.file = std::move(*file);
  written_bytes_ = 0;
  return absl::OkStatus();
}

uint64_t ValueLog::Append(std::string_view value, uint32_t crc32c) {
  ETC_CHECK_LE(value.size(), UINT32_MAX);
  uint64_t record = RecordBytes(static_cast<uint32_t>(value.size()));
  auto newest = std::prev(segments_.end());
  // After a failed write, sealing (which writes the buffer) waits for the
  // buffer to grow by another write's worth, as Flush's retries do.
  if (newest->second.size_bytes > 0 &&
      newest->second.size_bytes + record > options_.segment_bytes &&
      (write_error_.ok() || buffer_.size() >= flush_at_bytes_)) {
    // Seal it: its records must all be in its file before the next
    // segment's buffer starts. If they cannot be (a full disk), it grows
    // on; sealing is tried again a buffer later.
    Flush();
    if (buffer_.empty()) {
      if (absl::Status s = OpenSegment(newest->first + 1); s.ok()) {
        newest = std::prev(segments_.end());
      } else {
        write_error_ = s;
        flush_at_bytes_ = options_.write_buffer_bytes;
        segments_.erase(newest->first + 1);
      }
    }
  }
  Segment& segment = newest->second;
  ETC_CHECK_LE(segment.size_bytes + record, kOffsetMask) << "a value log segment of 1 TiB";
  uint64_t location = (newest->first << kOffsetBits) | segment.size_bytes;
  char header[kHeaderBytes];
  base::PutLittleEndian32(static_cast<uint32_t>(value.size()), header);
  base::PutLittleEndian32(crc32c, header + 4);
  buffer_.append(header, kHeaderBytes);
  buffer_.append(value);
  segment.size_bytes += record;
  segment.live_bytes += record;
  if (buffer_.size() >= flush_at_bytes_) Flush();
  return location;
}

void ValueLog::Flush() {
  if (buffer_.empty()) return;
  Segment& newest = std::prev(segments_.end())->second;
  // At the offset, not at the file's end: a write that failed half done
  // left bytes there that this one replaces.
  absl::Status status = newest.file->WriteAt(written_bytes_, buffer_);
  if (!status.ok()) {
    write_error_ = status;
    flush_at_bytes_ = buffer_.size() + options_.write_buffer_bytes;
    return;
  }
  written_bytes_ += buffer_.size();
  buffer_.clear();
  write_error_ = absl::OkStatus();
  flush_at_bytes_ = options_.write_buffer_bytes;
}

absl::Status ValueLog::Read(uint64_t location, uint32_t size, uint32_t crc32c,
                            std::string* out) const {
  uint64_t number = location >> kOffsetBits;
  uint64_t offset = location & kOffsetMask;
  auto it = segments_.find(number);
  if (it == segments_.end()) {
    return absl::DataLossError(
        absl::StrCat("value log: no segment ", number, " for a value at offset ", offset));
  }
  uint64_t record_bytes = RecordBytes(size);
  if (offset + record_bytes > it->second.size_bytes) {
    return absl::DataLossError(absl::StrCat("value log: a value at ", PathOf(number), ":", offset,
                                            " past the segment's end"));
  }
  std::string read;
  std::string_view record;
  bool newest = std::next(it) == segments_.end();
  const FileView* view = newest ? nullptr : ViewOf(it->second);
  if (newest && offset >= written_bytes_) {
    record = std::string_view(buffer_).substr(offset - written_bytes_, record_bytes);
  } else if (view != nullptr) {
    record = view->bytes().substr(offset, record_bytes);
  } else {
    absl::StatusOr<std::string> bytes = it->second.file->Read(offset, record_bytes);
    if (!bytes.ok()) return bytes.status();
    read = std::move(*bytes);
    record = read;
  }
  if (record.size() != record_bytes) {
    return absl::DataLossError(
        absl::StrCat("value log: ", PathOf(number), " is short at offset ", offset));
  }
  std::string_view value = record.substr(kHeaderBytes);
  if (base::GetLittleEndian32(record.data()) != size ||
      base::GetLittleEndian32(record.data() + 4) != crc32c || base::Crc32c(value) != crc32c) {
    return absl::DataLossError(absl::StrCat("value log: checksum mismatch in ", PathOf(number),
                                            " at offset ", offset));
  }
  out->append(value);
  return absl::OkStatus();
}

const FileView* ValueLog::ViewOf(const Segment& segment) const {
  if (!segment.map_tried) {
    segment.map_tried = true;
    // Sealed: every record is in the file (Append flushes before sealing).
    absl::StatusOr<std::unique_ptr<FileView>> view = segment.file->MapReadOnly(segment.size_bytes);
    if (view.ok()) segment.view = std::move(*view);
  }
  return segment.view.get();
}

void ValueLog::Release(uint64_t location, uint32_t size) {
  auto it = segments_.find(location >> kOffsetBits);
  ETC_CHECK(it != segments_.end()) << "a value released from a segment already removed";
  uint64_t record = RecordBytes(size);
  ETC_CHECK_GE(it->second.live_bytes, record) << "more released than was live";
  it->second.live_bytes -= record;
}

bool ValueLog::WantsMoves() {
  bool any = false;
  for (auto it = segments_.begin(); std::next(it) != segments_.end(); ++it) {
    Segment& segment = it->second;
    segment.moving = segment.live_bytes > 0 &&
                     static_cast<double>(segment.live_bytes) <
                         options_.move_below_live_fraction * static_cast<double>(segment.size_bytes);
    any = any || segment.moving;
  }
  return any;
}

bool ValueLog::ShouldMove(uint64_t location) const {
  auto it = segments_.find(location >> kOffsetBits);
  return it != segments_.end() && it->second.moving;
}

void ValueLog::MovesDone() {
  for (auto it = segments_.begin(); std::next(it) != segments_.end();) {
    it->second.moving = false;
    if (it->second.live_bytes > 0) {
      ++it;
      continue;
    }
    it->second.file.reset();
    // A file left behind (the removal failed) is removed at the next start.
    fs_->Remove(PathOf(it->first)).IgnoreError();
    it = segments_.erase(it);
  }
}

uint64_t ValueLog::total_bytes() const {
  uint64_t total = 0;
  for (const auto& [number, segment] : segments_) total += segment.size_bytes;
  return total;
}

uint64_t ValueLog::live_bytes() const {
  uint64_t live = 0;
  for (const auto& [number, segment] : segments_) live += segment.live_bytes;
  return live;
}

}  // namespace etc::storage
