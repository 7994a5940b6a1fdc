#include "server/fork_runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/idle_priority.h"

namespace etc::server {
namespace {

// In the child: writes everything or leaves with a failure status.
[[noreturn]] void WriteAllAndExit(int fd, const std::string& data) {
  const char* next = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = write(fd, next, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(1);
    next += n;
    left -= static_cast<size_t>(n);
  }
  _exit(0);
}

int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

}  // namespace

void ForkRunner::Run(std::function<std::string()> compute, size_t size_hint_bytes, Done done) {
  JoinReaders(/*all=*/false);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    Refuse(std::move(done), "make a pipe", errno);
    return;
  }
  auto job = std::make_shared<Job>();
  job->read_fd = fds[0];
  job->size_hint_bytes = size_hint_bytes;
  job->done = std::move(done);
  std::thread reader;
  try {
    reader = std::thread([this, job] { Read(*job); });
  } catch (const std::system_error& e) {
    close(fds[0]);
    close(fds[1]);
    Refuse(std::move(job->done), "start a thread", e.code().value());
    return;
  }
  pthread_setname_np(reader.native_handle(), "etc-snap-read");
  job->started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    // The child: this thread alone, the state as of the fork. It runs only
    // when the server's threads leave a core idle: every member snapshots
    // at about the same index, and three serializations at once must not
    // starve the requests.
    close(fds[0]);
    LowerToIdlePriority();
    WriteAllAndExit(fds[1], compute());
  }
  int fork_error = errno;
  close(fds[1]);
  // Taken back before the reader hears of a failed fork: it then only ends.
  Done refused = pid < 0 ? std::move(job->done) : nullptr;
  {
    absl::MutexLock lock(&job->mu);
    job->forked = true;
    job->pid = pid;
    job->fork_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - job->started)
                       .count();
  }
  readers_.push_back(Reader{std::move(reader), job});
  if (pid < 0) Refuse(std::move(refused), "fork", fork_error);
}

void ForkRunner::Read(Job& job) {
  pid_t pid;
  int64_t fork_us;
  {
    absl::MutexLock lock(&job.mu);
    job.mu.Await(absl::Condition(&job.forked));
    pid = job.pid;
    fork_us = job.fork_us;
  }
  if (pid < 0) {
    close(job.read_fd);
    job.finished.store(true);
    return;
  }
  // The copying (and the fresh pages it fills) at idle priority, as the
  // child computes; the result is posted from here, at this thread's own.
  absl::StatusOr<std::string> result = absl::UnknownError("not collected");
  RunAtIdlePriority([&] { result = Collect(job.read_fd, pid, job.size_hint_bytes); });
  if (result.ok()) {
    LogJson("info", absl::StrCat("background work on the key tree: ", result->size(), " bytes in ",
                                 MsSince(job.started), " ms (child process ", pid,
                                 "; the fork paused the member ", fork_us, " us)"));
  }
  if (result.status().code() == absl::StatusCode::kDataLoss && on_child_found_damage_) {
    post_(on_child_found_damage_);
  }
  post_([done = std::move(job.done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
  job.finished.store(true);
}

void ForkRunner::Refuse(Done done, const char* what, int error) {
  std::string message =
      absl::StrCat("background work on the key tree: cannot ", what, ": ", std::strerror(error));
  // Out of tasks (EAGAIN), memory or descriptors: the process's limits,
  // not a fault in the work; it may succeed later.
  bool exhausted = error == EAGAIN || error == ENOMEM || error == EMFILE || error == ENFILE;
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  if (uint64_t refused = refused_log_.Count(now_ms)) {
    LogJson("warn", absl::StrCat(message, " (", refused,
                                 " time(s); a snapshot is tried again later, a hash request "
                                 "fails)"));
  }
  done(exhausted ? absl::ResourceExhaustedError(message) : absl::InternalError(message));
}

absl::StatusOr<std::string> ForkRunner::Collect(int fd, pid_t pid, size_t size_hint_bytes) {
  std::string data;
  data.reserve(size_hint_bytes);
  std::vector<char> buffer(1 << 20);
  for (;;) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer.data(), static_cast<size_t>(n));
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitFoundDamage) {
    return absl::DataLossError("background work: the child process found damaged data");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError("background work: the child process failed");
  }
  return data;
}

void ForkRunner::JoinReaders(bool all) {
  for (auto it = readers_.begin(); it != readers_.end();) {
    if (all || it->job->finished.load()) {
      it->thread.join();
      it = readers_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace etc::server
