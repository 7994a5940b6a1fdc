#include "server/identity.h"

#include <gtest/gtest.h>

#include "storage/memory_fs.h"

namespace etc::server {
namespace {

TEST(Identity, AbsentUntilWrittenThenReadBack) {
  storage::MemoryFs fs;
  ASSERT_TRUE(fs.MakeDir("d").ok());
  ASSERT_TRUE(fs.MakeDir("d/member").ok());
  absl::StatusOr<std::optional<Identity>> none = ReadIdentity(&fs, "d");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(WriteIdentity(&fs, "d", {0x8e9e05c52164694d, 0xcdf818194e3a8c32}).ok());
  absl::StatusOr<std::optional<Identity>> read = ReadIdentity(&fs, "d");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->member_id, 0x8e9e05c52164694du);
  EXPECT_EQ((*read)->cluster_id, 0xcdf818194e3a8c32u);
}

TEST(Identity, EveryDamagedByteIsDataLoss) {
  storage::MemoryFs fs;
  ASSERT_TRUE(fs.MakeDir("d").ok());
  ASSERT_TRUE(fs.MakeDir("d/member").ok());
  ASSERT_TRUE(WriteIdentity(&fs, "d", {1, 2}).ok());
  auto file = fs.Open("d/member/identity", {});
  ASSERT_TRUE(file.ok());
  std::string bytes = *storage::ReadAll(**file);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x10;
    ASSERT_TRUE((*file)->WriteAt(0, damaged).ok());
    absl::StatusOr<std::optional<Identity>> read = ReadIdentity(&fs, "d");
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }
  // A truncated file too.
  ASSERT_TRUE((*file)->Truncate(bytes.size() / 2).ok());
  EXPECT_EQ(ReadIdentity(&fs, "d").status().code(), absl::StatusCode::kDataLoss);
}

TEST(Incarnation, EachStartGetsOneMoreThanTheLastWhateverTheClockDoes) {
  storage::MemoryFs fs;
  ASSERT_TRUE(fs.MakeDir("d").ok());
  ASSERT_TRUE(fs.MakeDir("d/member").ok());
  EXPECT_EQ(*NextIncarnation(&fs, "d"), 1u);
  EXPECT_EQ(*NextIncarnation(&fs, "d"), 2u);
  // It is durable before it is handed out: a crash right after loses
  // nothing that was synced.
  fs.Crash([] { return false; }, [](uint64_t) { return uint64_t{0}; });
  EXPECT_EQ(*NextIncarnation(&fs, "d"), 3u);
}

TEST(Incarnation, ADamagedRecordIsDataLossNotAReusedIncarnation) {
  storage::MemoryFs fs;
  ASSERT_TRUE(fs.MakeDir("d").ok());
  ASSERT_TRUE(fs.MakeDir("d/member").ok());
  ASSERT_TRUE(NextIncarnation(&fs, "d").ok());
  auto file = fs.Open("d/member/incarnation", {});
  ASSERT_TRUE(file.ok());
  std::string bytes = *storage::ReadAll(**file);
  bytes[bytes.size() - 1] ^= 0x01;
  ASSERT_TRUE((*file)->WriteAt(0, bytes).ok());
  EXPECT_EQ(NextIncarnation(&fs, "d").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace etc::server
