// The server's background runner (member::BackgroundRunner): long reads of
// the key tree (snapshots, whole-tree hashes) run in a child process.
// fork() gives the child the key tree as it is at that instant
// (copy-on-write), so the child computes while the member thread goes on
// applying; the member thread pauses only for the fork itself, not for the
// seconds a large tree takes. The child runs nothing but the computation
// and a write to a pipe, then leaves with _exit; a reader thread here
// collects the bytes and posts them to the member thread.
//
//   ForkRunner runner([&host](std::function<void()> task) { host.Post(task); });
//   machine.set_background_runner(&runner);
//
// Run is called on the member thread (it forks that thread's view).
#ifndef ETC_SERVER_FORK_RUNNER_H_
#define ETC_SERVER_FORK_RUNNER_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "member/interfaces.h"

namespace etc::server {

class ForkRunner : public member::BackgroundRunner {
 public:
  // How a result reaches the member thread.
  using Post = std::function<void(std::function<void()> task)>;
  explicit ForkRunner(Post post) : post_(std::move(post)) {}
  ~ForkRunner() override { Stop(); }
  ForkRunner(const ForkRunner&) = delete;
  ForkRunner& operator=(const ForkRunner&) = delete;

  void Run(std::function<std::string()> compute, size_t size_hint_bytes, Done done) override;
  // Waits for the children running (their results are still posted).
  void Stop() { JoinReaders(/*all=*/true); }

 private:
  struct Reader {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  // Reads the child's bytes to the end, then reaps it: the result is whole
  // only if the child exited cleanly.
  static absl::StatusOr<std::string> Collect(int fd, pid_t pid, size_t size_hint_bytes);
  // Joins the readers that are done (all of them: waits).
  void JoinReaders(bool all);

  Post post_;
  std::vector<Reader> readers_;  // member thread only
};

}  // namespace etc::server

#endif  // ETC_SERVER_FORK_RUNNER_H_
