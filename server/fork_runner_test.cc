#include "server/fork_runner.h"

#include <unistd.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/testing/out_of_tasks.h"

namespace etc::server {
namespace {

// Stands in for the member thread: posted tasks wait until the test runs
// them.
class FakeMemberThread {
 public:
  void Post(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
  }
  // Waits for one posted task and runs it here.
  void RunOne() {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(+[](std::deque<std::function<void()>>* t) { return !t->empty(); },
                                &tasks_));
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }

 private:
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
};

TEST(ForkRunner, ComputesOverTheStateAsItWasAtTheCall) {
  FakeMemberThread member;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); });
  std::string state = "before";
  std::optional<absl::StatusOr<std::string>> result;
  runner.Run([&state] { return state; }, 0,
             [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  // The member goes on changing its state at once; the child has its own
  // copy, as of the fork.
  state = "after";
  EXPECT_FALSE(result.has_value()) << "delivered only on the member thread";
  member.RunOne();
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ(**result, "before");
}

TEST(ForkRunner, ALargeResultArrivesWhole) {
  FakeMemberThread member;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); });
  std::string big(24 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
  std::optional<absl::StatusOr<std::string>> result;
  runner.Run([&big] { return big; }, big.size(),
             [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  member.RunOne();
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ(**result, big);
}

TEST(ForkRunner, AChildThatDiesIsAnErrorNotAShortResult) {
  FakeMemberThread member;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); });
  std::optional<absl::StatusOr<std::string>> result;
  runner.Run(
      []() -> std::string {
        // Dies having written nothing: an empty result must not pass for
        // a snapshot of an empty tree.
        _exit(5);
      },
      0, [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  member.RunOne();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kInternal);
}

// A child that found the member's data damaged (a value that fails its
// checksum) says so with its exit status: the member hears of it before
// the work fails, with kDataLoss, so it can stop rather than retry for ever.
TEST(ForkRunner, AChildThatFoundDamageTellsTheMember) {
  FakeMemberThread member;
  std::vector<std::string> heard;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); },
                    [&heard] { heard.push_back("damage"); });
  runner.Run([]() -> std::string { _exit(ForkRunner::kExitFoundDamage); }, 0,
             [&heard](absl::StatusOr<std::string> r) {
               heard.push_back(r.ok() ? "ok" : std::string(absl::StatusCodeToString(r.status().code())));
             });
  member.RunOne();
  member.RunOne();
  EXPECT_EQ(heard, (std::vector<std::string>{"damage", "DATA_LOSS"}));
}

TEST(ForkRunner, SeveralRunsEachGetTheirOwnResult) {
  FakeMemberThread member;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); });
  std::vector<std::string> results;
  for (int i = 0; i < 4; ++i) {
    runner.Run([i] { return std::to_string(i); }, 0, [&results](absl::StatusOr<std::string> r) {
      results.push_back(r.ok() ? *r : r.status().ToString());
    });
  }
  runner.Stop();
  for (int i = 0; i < 4; ++i) member.RunOne();
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<std::string>{"0", "1", "2", "3"}));
}

// ---- out of threads or processes (testing/out_of_tasks.h) ----

// Runs one piece of work that must be refused with kResourceExhausted,
// then, if `lift` can undo the limit, one that must succeed. Exit codes:
// 20 the refusal was not told at once, 21 not kResourceExhausted, 22 not
// saying why, 23 the work failed once the limit was lifted.
int RefusedThenRun(const std::function<bool()>& lift) {
  FakeMemberThread member;
  ForkRunner runner([&member](std::function<void()> task) { member.Post(std::move(task)); });
  std::optional<absl::StatusOr<std::string>> result;
  runner.Run([] { return std::string("state"); }, 0,
             [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  // A refusal is told at once, on this thread.
  if (!result.has_value()) return 20;
  if (result->status().code() != absl::StatusCode::kResourceExhausted) return 21;
  if (result->status().message().find("Resource temporarily unavailable") == std::string::npos) {
    return 22;
  }
  // A reader that started ends without a child: Stop joins it.
  runner.Stop();
  if (!lift()) return 0;
  result.reset();
  runner.Run([] { return std::string("state"); }, 0,
             [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  member.RunOne();
  if (!result.has_value() || !result->ok() || **result != "state") return 23;
  return 0;
}

// The member's background work (snapshots, HashKV) fails with an error
// when no thread can start, instead of aborting the process: with the
// fork first, the fork took the last task and the reader's std::thread
// threw on the member thread.
TEST(ForkRunner, WithNoThreadToSpareTheWorkFailsInsteadOfAbortingTheProcess) {
  ExpectChildSucceeds("no thread", [] {
    std::optional<NoNewThreads> no_threads(std::in_place);
    if (!no_threads->ok()) return 10;
    return RefusedThenRun([&no_threads] {
      no_threads.reset();
      return true;
    });
  });
}

// The reader thread starts, the fork fails: the work fails, and the reader
// ends without a child to wait for.
TEST(ForkRunner, WithNoProcessToSpareTheWorkFailsAndItsReaderEnds) {
  ExpectChildSucceeds("no process", [] {
    if (!ForbidNewProcesses()) return 10;
    return RefusedThenRun([] { return false; });  // a filter stays
  });
}

}  // namespace
}  // namespace etc::server
