#include "client/etcctl_signals.h"

#include <signal.h>

#include <ctime>

namespace etc::etcctl {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForSignalOr(const std::function<bool()>& done) {
  sigset_t set = StopSignals();
  const timespec kPoll = {0, 100 * 1000 * 1000};
  while (!done()) {
    int sig = sigtimedwait(&set, nullptr, &kPoll);
    if (sig > 0) return sig;
  }
  return 0;
}

}  // namespace etc::etcctl
