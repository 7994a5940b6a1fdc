#include "storage/value_log.h"

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "storage/memory_fs.h"
#include "storage/posix_fs.h"

namespace etc::storage {
namespace {

constexpr char kDir[] = "data/member/values";

struct Stored {
  uint64_t location;
  std::string value;
};

Stored Append(ValueLog& log, std::string value) {
  uint64_t location = log.Append(value, base::Crc32c(value));
  return Stored{location, std::move(value)};
}

absl::StatusOr<std::string> Read(const ValueLog& log, const Stored& stored) {
  std::string out;
  absl::Status s = log.Read(stored.location, static_cast<uint32_t>(stored.value.size()),
                            base::Crc32c(stored.value), &out);
  if (!s.ok()) return s;
  return out;
}

// Where a value's record starts in its segment's file.
uint64_t OffsetOf(const Stored& stored) { return stored.location & ((uint64_t{1} << 40) - 1); }

std::unique_ptr<ValueLog> Make(FileSystem& fs, ValueLogOptions options,
                               const std::string& dir = kDir) {
  absl::StatusOr<std::unique_ptr<ValueLog>> log = ValueLog::Create(&fs, dir, options);
  EXPECT_TRUE(log.ok()) << log.status();
  return std::move(*log);
}

TEST(ValueLog, ReadsFromTheBufferTheFileAndEverySegment) {
  MemoryFs fs;
  auto log = Make(fs, {.segment_bytes = 200, .write_buffer_bytes = 64});
  std::vector<Stored> stored;
  for (int i = 0; i < 40; ++i) {
    stored.push_back(Append(*log, std::string(10 + i % 7, static_cast<char>('a' + i % 26))));
  }
  stored.push_back(Append(*log, "in the buffer"));
  EXPECT_GT(log->segments(), 3u);
  EXPECT_GT(log->unwritten_bytes(), 0u);
  for (const Stored& s : stored) EXPECT_EQ(Read(*log, s).value(), s.value);
  // Every record is in a file but the buffer's.
  uint64_t in_files = 0;
  std::vector<std::string> names = fs.List(kDir).value();
  for (const std::string& name : names) {
    in_files += fs.Contents(std::string(kDir) + "/" + name).size();
  }
  EXPECT_EQ(in_files + log->unwritten_bytes(), log->total_bytes());
}

TEST(ValueLog, CreateClearsWhatAnEarlierRunLeft) {
  MemoryFs fs;
  {
    auto log = Make(fs, {.segment_bytes = 100, .write_buffer_bytes = 1});
    for (int i = 0; i < 20; ++i) Append(*log, "value");
  }
  EXPECT_GT(fs.List(kDir)->size(), 1u);
  auto log = Make(fs, {});
  EXPECT_EQ(fs.List(kDir)->size(), 1u);
  EXPECT_EQ(log->total_bytes(), 0u);
}

TEST(ValueLog, DamageIsFoundNotServed) {
  MemoryFs fs;
  auto log = Make(fs, {.write_buffer_bytes = 1});
  Stored a = Append(*log, "the first value");
  Stored b = Append(*log, "the second value");
  std::string file = std::string(kDir) + "/" + fs.List(kDir)->at(0);
  // A bit in b's value.
  fs.FlipBit(file, (b.location + 8 + 3) * 8);
  EXPECT_EQ(Read(*log, a).value(), a.value);
  EXPECT_EQ(Read(*log, b).status().code(), absl::StatusCode::kDataLoss);
  // A ref that does not match its record (a misplaced read).
  std::string out;
  EXPECT_EQ(log->Read(a.location, 3, base::Crc32c("the"), &out).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->Read(a.location + (uint64_t{7} << 40), 3, 0, &out).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(log->Read(b.location + 100, 3, 0, &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(out.empty());
}

TEST(ValueLog, DamageInASealedSegmentIsFoundThroughItsMap) {
  MemoryFs fs;
  auto log = Make(fs, {.segment_bytes = 64, .write_buffer_bytes = 1});
  Stored a = Append(*log, "in the first segment");
  Stored b = Append(*log, "also in the first one");
  Stored c = Append(*log, "the second segment");
  ASSERT_EQ(log->segments(), 2u);
  ASSERT_EQ(a.location >> 40, 1u);
  ASSERT_EQ(b.location >> 40, 1u);
  std::string file = std::string(kDir) + "/" + fs.List(kDir)->at(0);
  fs.FlipBit(file, (OffsetOf(b) + 8 + 5) * 8);
  // The first read maps the sealed segment (the simulated disk's map is a
  // copy made then): a is served, b's damage is found.
  EXPECT_EQ(Read(*log, a).value(), a.value);
  EXPECT_EQ(Read(*log, b).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Read(*log, c).value(), c.value);
}

// Counts the reads that reach the files: pread calls and maps.
class CountingFs : public FileSystem {
 public:
  explicit CountingFs(FileSystem* fs) : fs_(fs) {}
  int reads = 0;
  int maps = 0;

  class CountingFile : public File {
   public:
    CountingFile(CountingFs* fs, std::unique_ptr<File> file) : fs_(fs), file_(std::move(file)) {}
    absl::Status Append(std::string_view data) override { return file_->Append(data); }
    absl::Status WriteAt(uint64_t offset, std::string_view data) override {
      return file_->WriteAt(offset, data);
    }
    absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const override {
      ++fs_->reads;
      return file_->Read(offset, length);
    }
    absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const override {
      ++fs_->maps;
      return file_->MapReadOnly(length);
    }
    absl::StatusOr<uint64_t> Size() const override { return file_->Size(); }
    absl::Status Truncate(uint64_t size) override { return file_->Truncate(size); }
    absl::Status Allocate(uint64_t size) override { return file_->Allocate(size); }
    absl::Status Sync() override { return file_->Sync(); }
    absl::Status DataSync() override { return file_->DataSync(); }

   private:
    CountingFs* fs_;
    std::unique_ptr<File> file_;
  };

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             OpenOptions options) override {
    absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(path, options);
    if (!file.ok()) return file.status();
    return std::unique_ptr<File>(new CountingFile(this, std::move(*file)));
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return fs_->Rename(from, to);
  }
  absl::Status Remove(const std::string& path) override { return fs_->Remove(path); }
  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) const override {
    return fs_->List(dir);
  }
  absl::Status MakeDir(const std::string& dir) override { return fs_->MakeDir(dir); }
  bool Exists(const std::string& path) const override { return fs_->Exists(path); }
  absl::Status SyncDir(const std::string& dir) override { return fs_->SyncDir(dir); }
  absl::StatusOr<std::unique_ptr<Lock>> LockFile(const std::string& path) override {
    return fs_->LockFile(path);
  }
  absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) const override {
    return fs_->FreeBytes(dir);
  }

 private:
  FileSystem* fs_;
};

TEST(ValueLog, ASealedSegmentIsMappedOnceAndReadWithoutCalls) {
  MemoryFs memory;
  CountingFs fs(&memory);
  auto log = Make(fs, {.segment_bytes = 256, .write_buffer_bytes = 32});
  std::vector<Stored> stored;
  for (int i = 0; i < 60; ++i) {
    stored.push_back(Append(*log, std::string(30, static_cast<char>('a' + i % 26))));
  }
  ASSERT_GE(log->segments(), 5u);
  uint64_t newest = stored.back().location >> 40;
  for (int pass = 0; pass < 3; ++pass) {
    for (const Stored& s : stored) {
      if ((s.location >> 40) != newest) EXPECT_EQ(Read(*log, s).value(), s.value);
    }
  }
  // Three passes over every sealed segment: one map each, no read call.
  EXPECT_EQ(fs.maps, static_cast<int>(log->segments()) - 1);
  EXPECT_EQ(fs.reads, 0);
  // The newest segment's written part is read from its file.
  for (const Stored& s : stored) {
    if ((s.location >> 40) == newest && OffsetOf(s) == 0) {
      EXPECT_EQ(Read(*log, s).value(), s.value);
    }
  }
  EXPECT_EQ(fs.reads, 1);
  EXPECT_EQ(fs.maps, static_cast<int>(log->segments()) - 1);
}

// What the server runs: sealed segments mapped from real files, the
// newest read with pread and from the buffer.
TEST(ValueLog, OnRealFilesSealedSegmentsAreReadThroughMaps) {
  PosixFs fs;
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/mapped-values";
  auto log = Make(fs, {.segment_bytes = 4096, .write_buffer_bytes = 512}, dir);
  std::vector<Stored> stored;
  for (int i = 0; i < 300; ++i) {
    stored.push_back(Append(*log, std::string(20 + i % 90, static_cast<char>('a' + i % 26))));
  }
  ASSERT_GT(log->segments(), 5u);
  ASSERT_GT(log->unwritten_bytes(), 0u);
  for (const Stored& s : stored) EXPECT_EQ(Read(*log, s).value(), s.value);
  // A byte changed on disk under a mapped segment is in the map (the page
  // cache's own pages) and fails the value's checksum.
  const Stored& victim = stored[3];
  ASSERT_EQ(victim.location >> 40, 1u);
  std::string first;
  std::vector<std::string> names = fs.List(dir).value();
  for (const std::string& name : names) {
    if (first.empty() || name < first) first = name;
  }
  auto file = fs.Open(dir + "/" + first, {});
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->WriteAt(OffsetOf(victim) + 8, "#").ok());
  EXPECT_EQ(Read(*log, victim).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Read(*log, stored[4]).value(), stored[4].value);
}

TEST(ValueLog, AFullDiskKeepsValuesInMemoryUntilTheyFit) {
  MemoryFs fs;
  auto log = Make(fs, {.segment_bytes = 1000, .write_buffer_bytes = 32});
  Stored before = Append(*log, std::string(40, 'x'));
  fs.set_capacity_bytes(fs.used_bytes());
  std::vector<Stored> stored;
  for (int i = 0; i < 60; ++i) stored.push_back(Append(*log, std::string(40, static_cast<char>('a' + i % 26))));
  EXPECT_TRUE(IsNoSpace(log->write_error())) << log->write_error();
  EXPECT_GT(log->unwritten_bytes(), 1000u) << "the segment could not be sealed";
  for (const Stored& s : stored) EXPECT_EQ(Read(*log, s).value(), s.value);
  fs.set_capacity_bytes(UINT64_MAX);
  stored.push_back(Append(*log, std::string(40, 'z')));
  stored.push_back(Append(*log, std::string(40, 'z')));
  EXPECT_TRUE(log->write_error().ok());
  EXPECT_LT(log->unwritten_bytes(), 100u);
  EXPECT_EQ(Read(*log, before).value(), before.value);
  for (const Stored& s : stored) EXPECT_EQ(Read(*log, s).value(), s.value);
}

TEST(ValueLog, MostlyReleasedSegmentsAreEvacuatedAndRemoved) {
  MemoryFs fs;
  auto log = Make(fs, {.segment_bytes = 100, .write_buffer_bytes = 1});
  std::vector<Stored> stored;
  for (int i = 0; i < 30; ++i) stored.push_back(Append(*log, std::string(12, static_cast<char>('a' + i))));
  size_t segments = log->segments();
  ASSERT_GT(segments, 4u);
  // The first segment keeps one of its values; the second none.
  uint64_t first = stored[0].location >> 40;
  std::vector<Stored> kept;
  for (const Stored& s : stored) {
    uint64_t segment = s.location >> 40;
    if ((segment == first && &s != &stored[0]) || segment == first + 1) {
      log->Release(s.location, static_cast<uint32_t>(s.value.size()));
    } else {
      kept.push_back(s);
    }
  }
  ASSERT_TRUE(log->WantsMoves());
  for (Stored& s : kept) {
    EXPECT_EQ(log->ShouldMove(s.location), (s.location >> 40) == first);
    if (!log->ShouldMove(s.location)) continue;
    Stored moved = Append(*log, s.value);
    log->Release(s.location, static_cast<uint32_t>(s.value.size()));
    s = moved;
  }
  log->MovesDone();
  // Both are gone (the moved value may have started a new segment).
  EXPECT_LE(log->segments(), segments);
  std::string out;
  EXPECT_EQ(log->Read(stored[0].location, 12, base::Crc32c(stored[0].value), &out).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(fs.List(kDir)->size(), log->segments());
  EXPECT_FALSE(log->WantsMoves());
  for (const Stored& s : kept) EXPECT_EQ(Read(*log, s).value(), s.value);
}

// Any mix of appends, releases and evacuations: every value not released
// reads back, the live bytes are those of the values held, and no segment
// with nothing live outlives an evacuation.
RC_GTEST_PROP(ValueLogProperty, HeldValuesReadBack, ()) {
  MemoryFs fs;
  ValueLogOptions options;
  options.segment_bytes = *rc::gen::inRange<uint64_t>(16, 400);
  options.write_buffer_bytes = *rc::gen::inRange<size_t>(1, 200);
  auto log = ValueLog::Create(&fs, kDir, options).value();
  std::vector<Stored> held;
  const int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; ++step) {
    int what = *rc::gen::inRange(0, 10);
    if (what < 6 || held.empty()) {
      held.push_back(Append(*log, *rc::gen::nonEmpty(rc::gen::container<std::string>(
                                      *rc::gen::inRange(1, 40), rc::gen::character<char>()))));
    } else if (what < 9) {
      size_t i = *rc::gen::inRange<size_t>(0, held.size());
      log->Release(held[i].location, static_cast<uint32_t>(held[i].value.size()));
      held.erase(held.begin() + static_cast<ptrdiff_t>(i));
    } else {
      if (log->WantsMoves()) {
        for (Stored& s : held) {
          if (!log->ShouldMove(s.location)) continue;
          Stored moved = Append(*log, s.value);
          log->Release(s.location, static_cast<uint32_t>(s.value.size()));
          s = moved;
        }
      }
      log->MovesDone();
      std::map<uint64_t, bool> segment_used;
      for (const Stored& s : held) segment_used[s.location >> 40] = true;
      // Only the newest segment may be empty.
      RC_ASSERT(log->segments() <= segment_used.size() + 1);
    }
    uint64_t live = 0;
    for (const Stored& s : held) live += 8 + s.value.size();
    RC_ASSERT(log->live_bytes() == live);
  }
  for (const Stored& s : held) RC_ASSERT(Read(*log, s).value() == s.value);
}

}  // namespace
}  // namespace etc::storage
