// The examples' code (recipes.h) is production code: the same functions,
// unchanged, against a real three-member cluster through the gRPC client
// (etc here; etcd 3.4 in the referee variant).
#include <atomic>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/test_cluster.h"
#include "gtest/gtest.h"
#include "sim/examples/recipes.h"

namespace etc::examples {
namespace {

std::string g_server;

TEST(RecipesOnARealCluster, FencedIncrementsAreNeverLost) {
  client::testing::Cluster cluster(g_server);
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&] {
      std::unique_ptr<client::Client> etc = cluster.Connect();
      ASSERT_NE(etc, nullptr);
      auto lease = etc->Grant(10);
      ASSERT_TRUE(lease.ok()) << lease.status();
      for (int i = 0; i < 10; ++i) {
        auto done = IncrementUnderLock(*etc, "/locks/counter", lease->id(), "/counter",
                                       Guard::kFenced);
        ASSERT_TRUE(done.ok()) << done.status();
        if (done->acknowledged) ++acknowledged;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  auto etc = cluster.Connect();
  EXPECT_EQ(etc->Get("/counter")->kvs(0).value(), absl::StrCat(acknowledged.load()));
  EXPECT_EQ(acknowledged.load(), 30);
}

TEST(RecipesOnARealCluster, OneLeaderWorksAndACacheFollowsTheStore) {
  client::testing::Cluster cluster(g_server);
  std::unique_ptr<client::Client> etc = cluster.Connect();
  WatchedCache cache(etc.get(), "/work/");
  ASSERT_TRUE(cache.Refresh().ok());
  auto lease = etc->Grant(10);
  ASSERT_TRUE(lease.ok());
  int rounds = 0;
  auto written = LeaderWorker(*etc, "/election/worker", "w1", lease->id(), "/work/",
                              Guard::kFenced, [&] { return ++rounds > 5; });
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, 5);
  auto store = etc->Get("/work/", {.prefix = true});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->kvs_size(), 5);
  for (int i = 0; i < 100 && cache.revision() < store->header().revision(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::map<std::string, std::string> expected;
  for (const auto& kv : store->kvs()) expected[kv.key()] = kv.value();
  EXPECT_EQ(cache.values(), expected);
  EXPECT_TRUE(cache.anomaly().empty()) << cache.anomaly();
}

}  // namespace
}  // namespace etc::examples

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: recipes_real_test <server binary>\n");
    return 2;
  }
  etc::examples::g_server = argv[1];
  return RUN_ALL_TESTS();
}
