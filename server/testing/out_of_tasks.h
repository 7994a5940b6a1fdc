// Running out of threads or processes, for tests of code that must fail
// with an error (not abort) then. A task limit (systemd's TasksMax, a
// container's pids limit, RLIMIT_NPROC) makes pthread_create and fork fail
// with EAGAIN. RLIMIT_NPROC does not hold root, which is what Bazel's
// sandbox maps a test to (with no other user to become), and the sandbox's
// cgroup file system is read-only, so each case is made another way:
//
// - NoNewThreads: every new thread's stack (the default, set to 1 GiB) is
//   larger than the address space RLIMIT_AS leaves, so pthread_create
//   fails with EAGAIN while fork, which maps nothing new, still works: a
//   process whose last task a fork takes. Undone when it goes out of scope.
// - ForbidNewProcesses: a seccomp filter fails clone(2) without
//   CLONE_THREAD (what glibc's fork calls) with EAGAIN; threads (clone3,
//   or clone with CLONE_THREAD) still start. Cannot be undone.
//
// Both change the whole process: use them in a child (ExpectChildSucceeds).
//
//   ExpectChildSucceeds("no thread", [] {
//     NoNewThreads no_threads;
//     if (!no_threads.ok()) return 10;
//     ... return 0 if the code under test failed cleanly ...
//   });
#ifndef ETC_SERVER_TESTING_OUT_OF_TASKS_H_
#define ETC_SERVER_TESTING_OUT_OF_TASKS_H_

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>

#include <gtest/gtest.h>

namespace etc::server {

// This process's address space in bytes (VmSize), or -1.
inline int64_t VirtualMemoryBytes() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::sscanf(line, "VmSize: %" SCNd64 " kB", &kib) == 1) break;
  }
  std::fclose(status);
  return kib < 0 ? -1 : kib * 1024;
}

class NoNewThreads {
 public:
  // Leaves `headroom_bytes` of address space for everything but stacks.
  explicit NoNewThreads(int64_t headroom_bytes = int64_t{256} << 20) {
    pthread_getattr_default_np(&saved_attr_);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    bool stack_set = pthread_attr_setstacksize(&attr, kThreadStackBytes) == 0 &&
                     pthread_setattr_default_np(&attr) == 0;
    pthread_attr_destroy(&attr);
    int64_t used_bytes = VirtualMemoryBytes();
    getrlimit(RLIMIT_AS, &saved_limit_);
    rlimit lowered = saved_limit_;
    lowered.rlim_cur = static_cast<rlim_t>(used_bytes + headroom_bytes);
    ok_ = stack_set && used_bytes > 0 && setrlimit(RLIMIT_AS, &lowered) == 0;
    // The premise, checked: no thread starts.
    pthread_t probe;
    if (ok_ && pthread_create(&probe, nullptr, [](void*) -> void* { return nullptr; }, nullptr) !=
                   EAGAIN) {
      ok_ = false;
    }
  }
  ~NoNewThreads() {
    setrlimit(RLIMIT_AS, &saved_limit_);
    pthread_setattr_default_np(&saved_attr_);
    pthread_attr_destroy(&saved_attr_);
  }
  NoNewThreads(const NoNewThreads&) = delete;
  NoNewThreads& operator=(const NoNewThreads&) = delete;
  bool ok() const { return ok_; }

 private:
  static constexpr size_t kThreadStackBytes = size_t{1} << 30;
  pthread_attr_t saved_attr_;
  rlimit saved_limit_{};
  bool ok_ = false;
};

// False if the filter could not be installed, or fork still works.
inline bool ForbidNewProcesses() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    return false;
  }
  // The premise, checked: no process starts.
  pid_t child = fork();
  if (child == 0) _exit(0);
  return child < 0 && errno == EAGAIN;
}

// Runs `body` in a child process and expects it to exit with 0; `what`
// names the case in failures. An exception that escapes `body` ends the
// child (std::terminate), as it would end a server thread, and fails the
// test as the signal that killed it.
inline void ExpectChildSucceeds(const char* what, const std::function<int()>& body) {
  pid_t child = fork();
  if (child == 0) {
    [&body]() noexcept { _exit(body()); }();
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << what << ": the process died of signal " << WTERMSIG(status)
                                 << " (an abort?)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << what << " (the test names what each exit code means)";
}

}  // namespace etc::server

#endif  // ETC_SERVER_TESTING_OUT_OF_TASKS_H_
