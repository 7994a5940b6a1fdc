#include "server/idle_priority.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <system_error>
#include <thread>

namespace etc::server {

void LowerToIdlePriority() {
  // Linux applies both to the calling thread alone (0: the caller).
  sched_param idle{};
  if (sched_setscheduler(0, SCHED_IDLE, &idle) == 0) return;
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
}

void RunAtIdlePriority(const std::function<void()>& work) {
  std::thread thread;
  try {
    thread = std::thread([&work] {
      LowerToIdlePriority();
      work();
    });
  } catch (const std::system_error&) {
    work();
    return;
  }
  pthread_setname_np(thread.native_handle(), "etc-idle");
  thread.join();
}

}  // namespace etc::server
