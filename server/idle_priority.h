// Work that must only take CPU the requests leave: a member's own
// snapshot, read from the child that computed it and written to its file
// (hundreds of megabytes copied, and as many fresh pages zeroed). At
// normal priority that copying competed with the requests on a busy
// machine: a row of 100,000 puts over 400,000 versions ran 25-30% slower
// when it crossed a snapshot (docs/benchmarks.md).
//
// The work runs on a thread of its own at the lowest priority (SCHED_IDLE,
// as the snapshot's child process runs), and the caller waits for it. The
// caller keeps its own priority: an idle thread must never hold a lock a
// request's thread waits for (Linux would leave that thread waiting until
// a core goes idle), so the caller takes the locks and posts the results.
//
//   std::string data;
//   RunAtIdlePriority([&] { data = ReadAll(fd); });
//   Post(std::move(data));  // at the caller's priority
#ifndef ETC_SERVER_IDLE_PRIORITY_H_
#define ETC_SERVER_IDLE_PRIORITY_H_

#include <functional>

namespace etc::server {

// Runs `work` on a new thread of idle priority and returns when it is
// done. Where no thread can be started (a task limit), it runs on the
// caller's thread at the caller's priority: late work beats none. `work`
// must not take a lock that a thread of normal priority may wait for.
void RunAtIdlePriority(const std::function<void()>& work);

// Lowers the calling thread to idle priority (SCHED_IDLE; where that is
// refused, nice 19). One way: an unprivileged thread cannot raise it again.
void LowerToIdlePriority();

}  // namespace etc::server

#endif  // ETC_SERVER_IDLE_PRIORITY_H_
