#include "server/fork_runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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
    done(absl::InternalError(absl::StrCat("background work: pipe: ", std::strerror(errno))));
    return;
  }
  auto started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    close(fds[0]);
    close(fds[1]);
    done(absl::InternalError(absl::StrCat("background work: fork: ", std::strerror(error))));
    return;
  }
  if (pid == 0) {
    // The child: this thread alone, the state as of the fork. It runs only
    // when the server's threads leave a core idle: every member snapshots
    // at about the same index, and three serializations at once must not
    // starve the requests.
    close(fds[0]);
    sched_param idle{};
    if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0) (void)nice(19);
    WriteAllAndExit(fds[1], compute());
  }
  close(fds[1]);
  int64_t fork_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::thread reader([this, fd = fds[0], pid, size_hint_bytes, started, fork_us, finished,
                      done = std::move(done)]() mutable {
    absl::StatusOr<std::string> result = Collect(fd, pid, size_hint_bytes);
    if (result.ok()) {
      std::fprintf(stderr,
                   "{\"level\":\"info\",\"msg\":\"background work on the key tree: %zu bytes in "
                   "%lld ms (child process %d; the fork paused the member %lld us)\"}\n",
                   result->size(), static_cast<long long>(MsSince(started)),
                   static_cast<int>(pid), static_cast<long long>(fork_us));
    }
    post_([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
    finished->store(true);
  });
  pthread_setname_np(reader.native_handle(), "etc-snap-read");
  readers_.push_back(Reader{std::move(reader), finished});
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
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError("background work: the child process failed");
  }
  return data;
}

void ForkRunner::JoinReaders(bool all) {
  for (auto it = readers_.begin(); it != readers_.end();) {
    if (all || it->finished->load()) {
      it->thread.join();
      it = readers_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace etc::server
