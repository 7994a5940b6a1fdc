// Runs every golden scenario in raft/testdata. Each file starts a fresh
// cluster; see raft/rafttest/interaction_env.h for the commands.
#include <gtest/gtest.h>

#include <filesystem>

#include "raft/rafttest/interaction_env.h"
#include "tests/datadriven/datadriven.h"

namespace etc::raft {
namespace {

class Scenario : public ::testing::TestWithParam<std::string> {};

TEST_P(Scenario, Matches) {
  rafttest::InteractionEnv env;
  datadriven::RunFile(GetParam(), [&env](const datadriven::TestCase& tc) { return env.Handle(tc); });
}

INSTANTIATE_TEST_SUITE_P(Raft, Scenario,
                         ::testing::ValuesIn(datadriven::ListScripts("raft/testdata")),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return std::filesystem::path(info.param).stem().string();
                         });

}  // namespace
}  // namespace etc::raft
