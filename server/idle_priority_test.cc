#include "server/idle_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "server/testing/out_of_tasks.h"

namespace etc::server {
namespace {

// Whether the calling thread runs at idle priority (either form).
bool AtIdlePriority() {
  if (sched_getscheduler(0) == SCHED_IDLE) return true;
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  return errno == 0 && nice == 19;
}

TEST(IdlePriorityTest, WorkRunsElsewhereAtIdlePriorityAndTheCallerKeepsItsOwn) {
  std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  bool idle = false;
  RunAtIdlePriority([&] {
    ran_on = std::this_thread::get_id();
    idle = AtIdlePriority();
  });
  EXPECT_NE(ran_on, caller);
  EXPECT_TRUE(idle);
  EXPECT_FALSE(AtIdlePriority());
}

TEST(IdlePriorityTest, WorkIsDoneWhenItReturns) {
  int sum = 0;
  for (int i = 1; i <= 10; ++i) RunAtIdlePriority([&sum, i] { sum += i; });
  EXPECT_EQ(sum, 55);
}

TEST(IdlePriorityTest, WithoutThreadsTheWorkRunsOnTheCaller) {
  ExpectChildSucceeds("no thread", [] {
    NoNewThreads no_threads;
    if (!no_threads.ok()) return 10;
    std::thread::id caller = std::this_thread::get_id();
    std::thread::id ran_on;
    RunAtIdlePriority([&] { ran_on = std::this_thread::get_id(); });
    if (ran_on != caller) return 11;
    if (AtIdlePriority()) return 12;
    return 0;
  });
}

}  // namespace
}  // namespace etc::server
