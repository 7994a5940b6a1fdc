#include "sim/cooperative.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace etc::sim {
namespace {

TEST(CooperativeThread, RunsOnlyWhenResumedAndHandsControlBack) {
  std::vector<std::string> log;
  CooperativeThread program([&] {
    log.push_back("program 1");
    CooperativeThread::Current()->Block();
    log.push_back("program 2");
    CooperativeThread::Current()->Block();
    log.push_back("program 3");
  });
  log.push_back("sim 1");
  program.Resume();
  log.push_back("sim 2");
  program.Resume();
  log.push_back("sim 3");
  EXPECT_FALSE(program.finished());
  program.Resume();
  EXPECT_TRUE(program.finished());
  program.Resume();  // nothing left to run
  EXPECT_EQ(log, (std::vector<std::string>{"sim 1", "program 1", "sim 2", "program 2", "sim 3",
                                           "program 3"}));
  EXPECT_EQ(CooperativeThread::Current(), nullptr);
}

TEST(CooperativeThread, DestroyingABlockedProgramUnwindsIt) {
  bool unwound = false;
  bool after_block = false;
  {
    CooperativeThread program([&] {
      struct Guard {
        bool* flag;
        ~Guard() { *flag = true; }
      } guard{&unwound};
      CooperativeThread::Current()->Block();
      after_block = true;
    });
    program.Resume();
    EXPECT_FALSE(unwound);
  }
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(after_block);
}

TEST(CooperativeThread, AProgramNeverResumedNeverRuns) {
  bool ran = false;
  { CooperativeThread program([&] { ran = true; }); }
  EXPECT_FALSE(ran);
}

TEST(CooperativeThread, AnExceptionEndsTheProgramAndIsReported) {
  CooperativeThread program([] { throw std::runtime_error("boom"); });
  program.Resume();
  EXPECT_TRUE(program.finished());
  EXPECT_EQ(program.uncaught(), "boom");
}

}  // namespace
}  // namespace etc::sim
