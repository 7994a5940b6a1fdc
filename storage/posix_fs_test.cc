// The storage code on real files: what the server runs.
#include "storage/posix_fs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

// Whether `dir`'s file system takes O_DIRECT writes and keeps files on a
// disk: then uncached appends must leave the page cache alone. (tmpfs is
// the page cache, and took no O_DIRECT before Linux 6.6.)
bool TakesDirectWrites(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0 || fs.f_type == TMPFS_MAGIC) return false;
  std::string probe = JoinPath(dir, "direct-probe-" + std::to_string(::getpid()));
  int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  if (fd < 0) return false;
  void* block = nullptr;
  bool ok = ::posix_memalign(&block, 4096, 4096) == 0;
  if (ok) {
    std::memset(block, 0, 4096);
    ok = ::pwrite(fd, block, 4096, 0) == 4096;
  }
  std::free(block);
  ::close(fd);
  ::unlink(probe.c_str());
  return ok;
}

// Pages of the file's first `bytes` that are in the page cache.
size_t CachedPages(const std::string& path, size_t bytes) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return SIZE_MAX;
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  std::vector<unsigned char> resident((bytes + 4095) / 4096);
  size_t cached = SIZE_MAX;
  if (::mincore(map, bytes, resident.data()) == 0) {
    cached = 0;
    for (unsigned char page : resident) cached += page & 1;
  }
  ::munmap(map, bytes);
  return cached;
}

// A snapshot file's way of writing: appends of any size, synced now and
// then, read back whole. Where the file system takes O_DIRECT they went
// past the page cache (checked with mincore), elsewhere through it; the
// bytes are the same either way.
TEST(PosixFsTest, UncachedAppendsReadBackAsWritten) {
  PosixFs fs;
  std::string dir = TempDir("uncached");
  ASSERT_TRUE(fs.MakeDir(dir).ok());
  for (const std::string& place : {dir, std::string("/dev/shm")}) {
    if (!fs.Exists(place)) continue;
    std::string path = JoinPath(place, "etc-posix-fs-test-uncached-" + std::to_string(::getpid()));
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
      absl::StatusOr<uint64_t> size = f.Size();
      ASSERT_TRUE(size.ok()) << size.status();
      ASSERT_EQ(*size, expected.size()) << place;
      absl::StatusOr<std::string> bytes = f.Read(0, expected.size() + 10);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      EXPECT_TRUE(*bytes == expected) << place;
    };
    // A head, a body past several buffers, a sync mid-block, then more.
    append(100);
    append((3 << 20) + 17);
    ASSERT_TRUE((*file)->Sync().ok()) << place;
    if (TakesDirectWrites(place)) {
      // The whole megabytes went past the cache (a page or two may be
      // read back by the file system; not hundreds).
      EXPECT_LT(CachedPages(path, 3 << 20), 16u) << place;
    }
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
    auto plain = fs.Open(path, {});
    ASSERT_TRUE(plain.ok());
    check(**plain);
    ASSERT_TRUE((*plain)->Truncate(4096 * 3).ok());
    expected.resize(4096 * 3);
    plain->reset();
    // At an aligned size, a reopened file holds its appends again; a write
    // inside the held block and a truncation each end the holding, and
    // appends go on after them.
    file = fs.Open(path, {.uncached_appends = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("held").ok());
    expected += "held";
    ASSERT_TRUE((*file)->WriteAt(4096 * 3 + 1, "E").ok());
    expected[4096 * 3 + 1] = 'E';
    append(5000);
    check(**file);
    ASSERT_TRUE((*file)->Truncate(4096 * 2).ok());
    expected.resize(4096 * 2);
    append(4);
    ASSERT_TRUE((*file)->Truncate(4096 * 2 + 1).ok());
    expected.resize(4096 * 2 + 1, '\0');
    append(9);
    check(**file);
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
