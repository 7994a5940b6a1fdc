#include "server/fork_runner.h"

#include <unistd.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

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
        _exit(3);
      },
      0, [&result](absl::StatusOr<std::string> r) { result = std::move(r); });
  member.RunOne();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kInternal);
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

}  // namespace
}  // namespace etc::server
