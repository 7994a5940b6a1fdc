// The server's background runner (member::BackgroundRunner): long reads of
// the key tree (snapshots, whole-tree hashes) run in a child process.
// fork() gives the child the key tree as it is at that instant
// (copy-on-write), so the child computes while the member thread goes on
// applying; the member thread pauses only for the fork itself, not for the
// seconds a large tree takes. The child runs nothing but the computation
// and a write to a pipe, then leaves with _exit; a reader thread here
// collects the bytes and posts them to the member thread.
//
// Out of threads or processes (a task limit: systemd's TasksMax, a
// container's pids limit), the work fails with kResourceExhausted, logged
// at most once every 10 s, and the member goes on: a snapshot is tried
// again later, a client's HashKV gets the error. The reader thread starts
// before the fork, so that a child never exists without a thread to reap
// it (a std::thread that failed after the fork threw on the member thread
// and aborted the process).
//
//   ForkRunner runner([&host](std::function<void()> task) { host.Post(task); });
//   machine.set_background_runner(&runner);
//
// Run is called on the member thread (it forks that thread's view).
#ifndef ETC_SERVER_FORK_RUNNER_H_
#define ETC_SERVER_FORK_RUNNER_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "member/interfaces.h"
#include "server/json_log.h"

namespace etc::server {

class ForkRunner : public member::BackgroundRunner {
 public:
  // How a result reaches the member thread.
  using Post = std::function<void(std::function<void()> task)>;
  explicit ForkRunner(Post post, std::function<void()> on_child_found_damage = nullptr)
      : post_(std::move(post)), on_child_found_damage_(std::move(on_child_found_damage)) {}
  // The status a child leaves with when the work found the member's data
  // damaged (a value that fails its checksum): not a failure a retry could
  // cure. The runner then posts `on_child_found_damage` (the server stops
  // the member, as it does when it finds the damage itself) and the work
  // fails with kDataLoss.
  static constexpr int kExitFoundDamage = 3;
  ~ForkRunner() override { Stop(); }
  ForkRunner(const ForkRunner&) = delete;
  ForkRunner& operator=(const ForkRunner&) = delete;

  void Run(std::function<std::string()> compute, size_t size_hint_bytes, Done done) override;
  // Waits for the children running (their results are still posted).
  void Stop() { JoinReaders(/*all=*/true); }

 private:
  // One run, shared by the member thread and its reader.
  struct Job {
    int read_fd = -1;
    size_t size_hint_bytes = 0;
    Done done;  // the reader's once the child exists
    std::chrono::steady_clock::time_point started;
    absl::Mutex mu;
    bool forked ABSL_GUARDED_BY(mu) = false;
    pid_t pid ABSL_GUARDED_BY(mu) = -1;  // -1: the fork failed
    int64_t fork_us ABSL_GUARDED_BY(mu) = 0;
    std::atomic<bool> finished{false};
  };
  struct Reader {
    std::thread thread;
    std::shared_ptr<Job> job;
  };
  // The reader thread: waits for the fork, then collects and posts.
  void Read(Job& job);
  // Reads the child's bytes to the end, then reaps it: the result is whole
  // only if the child exited cleanly.
  static absl::StatusOr<std::string> Collect(int fd, pid_t pid, size_t size_hint_bytes);
  // The work cannot run: `what` failed with `error`. Logged (rate-limited)
  // and told to `done`.
  void Refuse(Done done, const char* what, int error);
  // Joins the readers that are done (all of them: waits).
  void JoinReaders(bool all);

  Post post_;
  std::function<void()> on_child_found_damage_;
  std::vector<Reader> readers_;  // member thread only
  RateLimitedLog refused_log_{10'000};
};

}  // namespace etc::server

#endif  // ETC_SERVER_FORK_RUNNER_H_
