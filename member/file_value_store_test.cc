// The key tree over the value log, as both hosts run it: what it serves,
// snapshots and restores is what an in-memory tree does, compaction gives
// the space back, and a damaged value stops the process rather than being
// served.
#include "member/file_value_store.h"

#include <string>

#include "gtest/gtest.h"
#include "kv/store.h"
#include "storage/memory_fs.h"

namespace etc::member {
namespace {

constexpr char kDir[] = "data/member/values";

kvpb::Request Put(const std::string& key, const std::string& value) {
  kvpb::Request request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  return request;
}

kvpb::Request Compact(int64_t revision) {
  kvpb::Request request;
  request.mutable_compaction()->set_revision(revision);
  return request;
}

std::string Get(const kv::Store& store, const std::string& key) {
  kvpb::Request request;
  request.mutable_range()->set_key(key);
  kvpb::Response response = store.Query(request);
  if (response.range().kvs_size() == 0) return "<none>";
  return response.range().kvs(0).value();
}

class FileValueStoreTest : public ::testing::Test {
 protected:
  FileValueStoreTest()
      : values_(storage::ValueLog::Create(&fs_, kDir,
                                          {.segment_bytes = 1024, .write_buffer_bytes = 100})
                    .value(),
                nullptr),
        store_(Options(&values_)) {}

  static kv::StoreOptions Options(kv::ValueStore* values) {
    kv::StoreOptions options;
    options.values = values;
    return options;
  }

  storage::MemoryFs fs_;
  FileValueStore values_;
  kv::Store store_;
};

TEST_F(FileValueStoreTest, ServesSnapshotsAndCompactsLikeMemory) {
  kv::Store memory;
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < 10; ++k) {
      std::string value(static_cast<size_t>(20 + k), static_cast<char>('a' + round));
      kvpb::Request put = Put("/k/" + std::to_string(k), value);
      ASSERT_EQ(store_.Apply(put).error_code(), 0);
      memory.Apply(put);
    }
  }
  EXPECT_GT(values_.log().segments(), 5u);
  EXPECT_EQ(Get(store_, "/k/3"), std::string(23, 'a' + 19));
  EXPECT_EQ(store_.HashKV(0), memory.HashKV(0));
  EXPECT_EQ(store_.Snapshot(), memory.Snapshot());
  EXPECT_EQ(store_.StateDigest(), memory.StateDigest());

  // Compaction releases the old versions; their segments go, and what is
  // kept (moved out of mostly empty segments) still reads back.
  uint64_t before = values_.log().total_bytes();
  ASSERT_EQ(store_.Apply(Compact(store_.keyspace().revision())).error_code(), 0);
  memory.Apply(Compact(memory.keyspace().revision()));
  EXPECT_LT(values_.log().total_bytes(), before / 4);
  EXPECT_EQ(values_.log().live_bytes(), 10 * 8 + (20 + 29) * 10 / 2);
  EXPECT_EQ(store_.Snapshot(), memory.Snapshot());
  store_.CheckInvariants();

  // A snapshot restored over the file-backed tree replaces its values.
  kv::Store other;
  other.Apply(Put("/other", "value"));
  ASSERT_TRUE(store_.Restore(other.Snapshot()).ok());
  EXPECT_EQ(Get(store_, "/other"), "value");
  EXPECT_EQ(Get(store_, "/k/3"), "<none>");
  EXPECT_EQ(values_.log().live_bytes(), 8u + 5u);
  // A refused one changes nothing and keeps nothing.
  std::string bad = memory.Snapshot();
  bad.resize(bad.size() / 2);
  EXPECT_FALSE(store_.Restore(bad).ok());
  EXPECT_EQ(values_.log().live_bytes(), 8u + 5u);
  EXPECT_EQ(Get(store_, "/other"), "value");
}

TEST_F(FileValueStoreTest, ADamagedValueIsNeverServed) {
  store_.Apply(Put("/a", std::string(300, 'x')));
  store_.Apply(Put("/b", "pushes /a out of the buffer, into the file"));
  std::string file = std::string(kDir) + "/" + fs_.List(kDir)->at(0);
  fs_.FlipBit(file, (8 + 100) * 8);
  EXPECT_EQ(Get(store_, "/b"), "pushes /a out of the buffer, into the file");
  EXPECT_DEATH(Get(store_, "/a"), "checksum mismatch");
}

}  // namespace
}  // namespace etc::member
