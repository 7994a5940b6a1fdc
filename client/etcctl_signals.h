// Waiting for Ctrl-C (SIGINT) or SIGTERM in the commands that run until
// told to stop (watch, lease keep-alive, lock, elect), so they can clean up
// (unlock, resign) before leaving.
//
//   BlockStopSignals();                 // first, before threads start
//   int sig = WaitForSignalOr([&] { return done.load(); });
#ifndef ETC_CLIENT_ETCCTL_SIGNALS_H_
#define ETC_CLIENT_ETCCTL_SIGNALS_H_

#include <functional>

namespace etc::etcctl {

// Blocks SIGINT and SIGTERM in this thread and the threads it starts later.
void BlockStopSignals();

// The signal that arrived, or 0 once `done()` is true (checked every 100 ms).
int WaitForSignalOr(const std::function<bool()>& done);

}  // namespace etc::etcctl

#endif  // ETC_CLIENT_ETCCTL_SIGNALS_H_
