// The simulator end to end: a few hundred seeds across cluster sizes and
// fault mixes must pass every checker, and a seed must replay identically.
#include "sim/simulation.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace etc::sim {
namespace {

std::string Explain(uint64_t seed, int voters, const SimResult& result) {
  if (result.passed()) return "";
  return absl::StrCat("seed ", seed, " failed: ", result.violation->checker, ": ",
                      result.violation->message, "\n  run: ", result.swarm.Describe(),
                      "\n  replay: bazel run -c opt //sim:etc-sim -- --seed=", seed,
                      voters != 0 ? absl::StrCat(" --voters=", voters) : "");
}

// Each size gets its own range of seeds; 0 lets the seed draw the size.
class Seeds : public ::testing::TestWithParam<int> {};

TEST_P(Seeds, PassEveryChecker) {
  int voters = GetParam();
  uint64_t first = 1000 * static_cast<uint64_t>(voters + 1);
  for (uint64_t seed = first; seed < first + 60; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.voters = voters;
    SimResult result = RunSimulation(options);
    ASSERT_TRUE(result.passed()) << Explain(seed, voters, result);
    // A run that did nothing would pass vacuously; one whose damaged
    // quorum stopped it early serves little, by design.
    if (!result.quorum_lost_to_damage) EXPECT_GT(result.operations_ok, 50u) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(ClusterSizes, Seeds, ::testing::Values(0, 1, 3, 5, 7),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == 0 ? std::string("drawn")
                                                  : absl::StrCat(info.param, "_voters");
                         });

TEST(Determinism, TheSameSeedReplaysTheSameRun) {
  for (uint64_t seed : {3, 17, 4242}) {
    SimOptions options;
    options.seed = seed;
    SimResult first = RunSimulation(options);
    SimResult second = RunSimulation(options);
    EXPECT_EQ(first.trace_hash, second.trace_hash) << "seed " << seed;
    EXPECT_EQ(first.events, second.events);
    EXPECT_EQ(first.operations, second.operations);
    EXPECT_EQ(first.final_state, second.final_state);
  }
}

TEST(Determinism, DifferentSeedsExploreDifferentRuns) {
  SimOptions a;
  a.seed = 1;
  SimOptions b;
  b.seed = 2;
  EXPECT_NE(RunSimulation(a).trace_hash, RunSimulation(b).trace_hash);
}

TEST(Shrinking, AKeptSubsetOfFaultsReplaysOnlyThose) {
  SimOptions options;
  options.seed = 5;
  SimResult all = RunSimulation(options);
  ASSERT_GT(all.swarm.faults.size(), 2u);
  options.keep_faults = std::vector<size_t>{0, 2};
  SimResult some = RunSimulation(options);
  ASSERT_EQ(some.swarm.faults.size(), 2u);
  EXPECT_EQ(some.swarm.faults[0].Describe(), all.swarm.faults[0].Describe());
  EXPECT_EQ(some.swarm.faults[1].Describe(), all.swarm.faults[2].Describe());
}

}  // namespace
}  // namespace etc::sim
