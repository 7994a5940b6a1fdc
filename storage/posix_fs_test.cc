// The storage code on real files: what the server runs.
#include "storage/posix_fs.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "storage/data_dir.h"

namespace etc::storage {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return JoinPath(base != nullptr ? base : "/tmp", name);
}

raftpb::Entry E(uint64_t index, uint64_t term) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data(std::string(200, 'p'));
  return entry;
}

TEST(PosixFsTest, FilesDirectoriesAndRenames) {
  PosixFs fs;
  std::string dir = TempDir("basics");
  ASSERT_TRUE(fs.MakeDir(dir).ok());
  auto file = fs.Open(JoinPath(dir, "a"), {.create = true});
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello").ok());
  ASSERT_TRUE((*file)->WriteAt(1, "EL").ok());
  ASSERT_TRUE((*file)->Allocate(4096).ok());
  EXPECT_EQ(*(*file)->Size(), 4096u);
  EXPECT_EQ(*(*file)->Read(0, 5), "hELlo");
  EXPECT_EQ((*(*file)->Read(5, 10)), std::string(10, '\0'));
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->DataSync().ok());
  ASSERT_TRUE(fs.Rename(JoinPath(dir, "a"), JoinPath(dir, "b")).ok());
  ASSERT_TRUE(fs.SyncDir(dir).ok());
  EXPECT_EQ(*fs.List(dir), std::vector<std::string>{"b"});
  EXPECT_EQ(fs.Open(JoinPath(dir, "a"), {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs.Open(JoinPath(dir, "b"), {.create = true, .exclusive = true}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(fs.Remove(JoinPath(dir, "b")).ok());
  EXPECT_FALSE(fs.Exists(JoinPath(dir, "b")));
}

TEST(PosixFsTest, AMapReadsThePageCacheAndOutlivesTheFile) {
  PosixFs fs;
  std::string dir = TempDir("maps");
  ASSERT_TRUE(fs.MakeDir(dir).ok());
  std::string path = JoinPath(dir, "sealed");
  auto file = fs.Open(path, {.create = true});
  ASSERT_TRUE(file.ok()) << file.status();
  std::string bytes(10000, 'x');
  bytes.replace(8190, 5, "pages");
  ASSERT_TRUE((*file)->Append(bytes).ok());
  auto view = (*file)->MapReadOnly(bytes.size());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ((*view)->bytes(), bytes);
  // A write through another descriptor is in the same page cache.
  auto other = fs.Open(path, {});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->WriteAt(8190, "PAGES").ok());
  EXPECT_EQ((*view)->bytes().substr(8190, 5), "PAGES");
  // Past the file's end would fault: refused.
  EXPECT_EQ((*file)->MapReadOnly(bytes.size() + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  auto empty = (*file)->MapReadOnly(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->bytes().empty());
  // Closed and removed, the map still reads (a value log segment removed
  // while a snapshot child reads it).
  file->reset();
  other->reset();
  ASSERT_TRUE(fs.Remove(path).ok());
  EXPECT_EQ((*view)->bytes().substr(0, 3), "xxx");
  EXPECT_EQ((*view)->bytes().size(), bytes.size());
}

// A snapshot file's way of writing: appends of any size, synced now and
// then, read back whole; on a file system that takes O_DIRECT they went
// past the cache, on one that does not (tmpfs) through it, and the bytes
// are the same either way.
TEST(PosixFsTest, UncachedAppendsReadBackAsWritten) {
  PosixFs fs;
  std::string dir = TempDir("uncached");
  ASSERT_TRUE(fs.MakeDir(dir).ok());
  for (const std::string& place : {dir, std::string("/dev/shm")}) {
    if (!fs.Exists(place)) continue;
    std::string path = JoinPath(place, "etc-posix-fs-test-uncached");
    auto file = fs.Open(path, {.create = true, .uncached_appends = true});
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Truncate(0).ok());
    std::string expected;
    uint32_t seed = 7;
    auto append = [&](size_t n) {
      std::string piece(n, '\0');
      for (char& c : piece) c = static_cast<char>((seed = seed * 1103515245 + 12345) >> 16);
      expected += piece;
      ASSERT_TRUE((*file)->Append(piece).ok());
    };
    auto check = [&](File& f) {
      ASSERT_EQ(*f.Size(), expected.size()) << place;
      EXPECT_TRUE(*f.Read(0, expected.size() + 10) == expected) << place;
    };
    // A head, a body past several buffers, a sync mid-block, then more.
    append(100);
    append((3 << 20) + 17);
    ASSERT_TRUE((*file)->Sync().ok()) << place;
    check(**file);
    append(4096 - 5);
    append(1);
    EXPECT_EQ(*(*file)->Read(expected.size() - 10, 10), expected.substr(expected.size() - 10));
    append((1 << 20) + 4096);
    append(3);
    ASSERT_TRUE((*file)->Sync().ok()) << place;
    check(**file);
    // Closed without a sync: the held bytes still reach the file.
    append(77);
    file->reset();
    auto again = fs.Open(path, {});
    ASSERT_TRUE(again.ok());
    check(**again);
    // A truncation ends the holding; appends go on after it.
    auto reopened = fs.Open(path, {.uncached_appends = true});
    ASSERT_TRUE(reopened.ok());
    ASSERT_TRUE((*reopened)->Append("more").ok());
    ASSERT_TRUE((*reopened)->Truncate(4096 * 3).ok());
    expected.resize(4096 * 3);
    ASSERT_TRUE((*reopened)->Append("tail").ok());
    expected += "tail";
    check(**reopened);
    ASSERT_TRUE(fs.Remove(path).ok());
  }
}

TEST(PosixFsTest, DataDirRoundTripAndLock) {
  PosixFs fs;
  std::string root = TempDir("member-data");
  {
    auto dir = DataDir::Open(&fs, root, {});
    ASSERT_TRUE(dir.ok()) << dir.status();
    EXPECT_TRUE((*dir)->fresh());
    auto second = DataDir::Open(&fs, root, {});
    EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
    raftpb::Snapshot boot;
    boot.mutable_metadata()->set_index(1);
    boot.mutable_metadata()->set_term(1);
    boot.mutable_metadata()->mutable_conf_state()->add_voters(1);
    std::vector<raftpb::Entry> entries;
    for (uint64_t i = 2; i <= 500; ++i) entries.push_back(E(i, 1));
    raftpb::HardState state;
    state.set_term(1);
    state.set_commit(400);
    ASSERT_TRUE((*dir)->Write(&boot, entries, state).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  auto dir = DataDir::Open(&fs, root, {});
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE((*dir)->fresh());
  EXPECT_EQ((*dir)->recovered().entries.size(), 499u);
  EXPECT_EQ((*dir)->recovered().hard_state.commit(), 400u);
}

}  // namespace
}  // namespace etc::storage
