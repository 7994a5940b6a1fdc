// Jepsen's finding on etcd 3.4.3 locks, reproduced on a simulated etc
// cluster with the user's own code (recipes.h): a lock used naively (hold
// it, then write) loses updates when its holder pauses past its lease,
// and the same code with a fenced write does not.
#include <map>

#include "absl/strings/str_cat.h"
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

constexpr char kLock[] = "/locks/counter";
constexpr char kCounter[] = "/counter";
constexpr int64_t kLeaseTtlSeconds = 2;

// Fenced writes the cluster refused because their holder had lost the
// lock: the fenced runs must see some, or they showed nothing.
int fenced_refusals = 0;

ClusterOptions Options() {
  ClusterOptions options;
  options.fault_phase = milliseconds(3000);
  options.heal_phase = milliseconds(2000);
  // Client processes pause now and then (a GC pause, a stopped VM), some
  // longer than their lease.
  options.client_pause_probability = 0.05;
  options.max_client_pause = milliseconds(4000);
  return options;
}

// Three workers increment the counter under the lock. With the checker on,
// the run fails if two acknowledged increments wrote the same value: one
// of them overwrote the other, so an increment was lost.
Result RunCounter(const ClusterOptions& options, Guard guard, bool check_lost_updates) {
  Cluster cluster(options);
  auto writer_of = std::make_shared<std::map<int64_t, std::string>>();
  auto lost = std::make_shared<std::string>();
  for (int w = 0; w < 3; ++w) {
    cluster.AddClient(absl::StrCat("worker", w), [=](ClientContext& ctx) {
      while (!ctx.done()) {
        auto lease = ctx.client().Grant(kLeaseTtlSeconds);
        if (!lease.ok()) continue;
        auto keep = ctx.client().KeepAliveForever(lease->id(), kLeaseTtlSeconds);
        for (int i = 0; i < 5 && !ctx.done() && keep->ttl() > 0; ++i) {
          auto done = IncrementUnderLock(ctx.client(), kLock, lease->id(), kCounter, guard);
          if (done.status().code() == absl::StatusCode::kAborted) ++fenced_refusals;
          if (!done.ok() || !done->acknowledged) continue;
          auto [it, fresh] = writer_of->emplace(done->wrote, ctx.name());
          if (!fresh && lost->empty()) {
            *lost = absl::StrCat(it->second, " and ", ctx.name(), " both wrote ", done->wrote,
                                 " (read ", done->read, "): an increment was lost");
          }
        }
        (void)ctx.client().Revoke(lease->id());
      }
    });
  }
  if (check_lost_updates) {
    cluster.AddInvariant("no lost increment", [lost]() -> absl::Status {
      return lost->empty() ? absl::OkStatus() : absl::FailedPreconditionError(*lost);
    });
  }
  return cluster.Run();
}

TEST(NaiveLock, LosesIncrementsWhenItsHolderPausesPastItsLease) {
  std::vector<Result> failures = sim::testing::RunSeeds(
      Options(), 1, 30, [](const ClusterOptions& o) { return RunCounter(o, Guard::kNaive, true); });
  ASSERT_FALSE(failures.empty()) << "the naive lock was never caught losing an update";
  for (const Result& failure : failures) {
    EXPECT_EQ(failure.checker, "invariant no lost increment") << failure.message;
  }
}

TEST(NaiveLock, WithoutTheCheckerTheSameRunsPass) {
  // The runs above fail because of the lost-update check and nothing else:
  // with it off, every one passes (so the check above cannot pass vacuously).
  std::vector<Result> failures = sim::testing::RunSeeds(
      Options(), 1, 30, [](const ClusterOptions& o) { return RunCounter(o, Guard::kNaive, false); });
  EXPECT_TRUE(failures.empty()) << sim::testing::Describe(failures);
}

TEST(FencedLock, NeverLosesAnIncrement) {
  uint64_t seeds = 1000;
  if (const char* count = std::getenv("ETC_EXAMPLE_SEEDS")) seeds = std::strtoull(count, nullptr, 10);
  int runs = 0;
  std::vector<Result> failures =
      sim::testing::RunSeeds(Options(), 1, seeds, [&](const ClusterOptions& o) {
        ++runs;
        return RunCounter(o, Guard::kFenced, true);
      });
  EXPECT_TRUE(failures.empty()) << sim::testing::Describe(failures);
  // Over many runs (not a replay of one seed), holders must have lost
  // their locks, or the runs tested nothing.
  if (runs >= 100) {
    EXPECT_GT(fenced_refusals, 0) << "no holder ever lost its lock";
  }
}

}  // namespace
}  // namespace etc::examples
