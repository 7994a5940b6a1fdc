// A leader-elected worker (recipes.h: LeaderWorker) must never have two
// active leaders: once a newer leader's work is committed, no older
// leader's work may follow it. Checked on what the cluster holds at the
// end: the work items in commit (mod revision) order carry non-decreasing
// leader revisions.
#include <algorithm>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sim/examples/recipes.h"
#include "sim/testing.h"

namespace etc::examples {
namespace {

using sim::testing::ClientContext;
using sim::testing::Cluster;
using sim::testing::ClusterOptions;
using sim::testing::milliseconds;
using sim::testing::Result;

constexpr char kElection[] = "/election/worker";
constexpr char kWork[] = "/work/";
constexpr int64_t kLeaseTtlSeconds = 2;

ClusterOptions Options() {
  ClusterOptions options;
  options.fault_phase = milliseconds(3000);
  options.heal_phase = milliseconds(2000);
  options.client_pause_probability = 0.05;
  options.max_client_pause = milliseconds(4000);
  return options;
}

// The work items in commit order must never go back to an older leader.
absl::Status OneActiveLeader(Cluster& cluster, int* items) {
  std::vector<mvccpb::KeyValue> work = cluster.Read(kWork);
  *items += static_cast<int>(work.size());
  std::sort(work.begin(), work.end(), [](const auto& a, const auto& b) {
    return a.mod_revision() < b.mod_revision();
  });
  int64_t newest_leader = 0;
  std::string newest_name;
  for (const mvccpb::KeyValue& kv : work) {
    // "/work/<leader rev>/<n>"
    std::vector<std::string> parts = absl::StrSplit(kv.key().substr(sizeof(kWork) - 1), '/');
    int64_t leader = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &leader)) {
      return absl::DataLossError(absl::StrCat("unexpected work key ", kv.key()));
    }
    if (leader < newest_leader) {
      return absl::FailedPreconditionError(absl::StrCat(
          kv.value(), " (leader since revision ", leader, ") wrote ", kv.key(), " at revision ",
          kv.mod_revision(), ", after ", newest_name, " (leader since revision ", newest_leader,
          ") had: two active leaders"));
    }
    newest_leader = leader;
    newest_name = kv.value();
  }
  return absl::OkStatus();
}

Result RunWorkers(const ClusterOptions& options, Guard guard, int* items) {
  Cluster cluster(options);
  for (int w = 0; w < 3; ++w) {
    cluster.AddClient(absl::StrCat("worker", w), [guard](ClientContext& ctx) {
      while (!ctx.done()) {
        auto lease = ctx.client().Grant(kLeaseTtlSeconds);
        if (!lease.ok()) continue;
        auto keep = ctx.client().KeepAliveForever(lease->id(), kLeaseTtlSeconds);
        (void)LeaderWorker(ctx.client(), kElection, ctx.name(), lease->id(), kWork, guard,
                           [&] { return ctx.done() || keep->ttl() <= 0; });
        (void)ctx.client().Revoke(lease->id());
      }
    });
  }
  cluster.AddFinalCheck("one active leader", [&cluster, items] {
    return OneActiveLeader(cluster, items);
  });
  return cluster.Run();
}

TEST(LeaderWorker, FencedWorkNeverHasTwoActiveLeaders) {
  uint64_t seeds = 1000;
  if (const char* count = std::getenv("ETC_EXAMPLE_SEEDS")) seeds = std::strtoull(count, nullptr, 10);
  int items = 0;
  int runs = 0;
  std::vector<Result> failures =
      sim::testing::RunSeeds(Options(), 1, seeds, [&](const ClusterOptions& o) {
        ++runs;
        return RunWorkers(o, Guard::kFenced, &items);
      });
  EXPECT_TRUE(failures.empty()) << sim::testing::Describe(failures);
  EXPECT_GT(items, 5 * runs) << "the workers did next to no work";
}

TEST(LeaderWorker, UnfencedWorkIsCaughtWithTwoActiveLeaders) {
  int items = 0;
  std::vector<Result> failures = sim::testing::RunSeeds(
      Options(), 1, 30,
      [&](const ClusterOptions& o) { return RunWorkers(o, Guard::kNaive, &items); });
  ASSERT_FALSE(failures.empty()) << "an unfenced worker was never caught";
  for (const Result& failure : failures) {
    EXPECT_EQ(failure.checker, "final check one active leader") << failure.message;
  }
}

}  // namespace
}  // namespace etc::examples
