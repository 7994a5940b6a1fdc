// The server's log lines, one JSON object per line on stderr as etcd's
// structured logs are ({"level":"warn","msg":"..."}), and a bound on how
// often an event that an overload repeats may write one: a process out of
// descriptors or threads fails every accept or every task it tries, and a
// line per failure would flood the log (and the disk under it) just when
// the operator needs to read it.
//
//   LogJson("info", "serving member ...");
//
//   RateLimitedLog refused(/*interval_ms=*/10'000);
//   if (uint64_t events = refused.Count(NowMs())) {
//     LogJson("warn", absl::StrCat("refused ", events, " connections: ..."));
//   }
//   // and now and then, so that the end of a burst is told too:
//   if (uint64_t events = refused.Due(NowMs())) { ... }
#ifndef ETC_SERVER_JSON_LOG_H_
#define ETC_SERVER_JSON_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace etc::server {

// `message` as the body of a JSON string: quotes, backslashes and control
// characters escaped (an error text may hold any of them).
std::string JsonEscape(std::string_view message);

// Writes {"level":<level>,"msg":<message>} and a newline to stderr, whole
// (one write, so lines from several threads do not interleave).
void LogJson(std::string_view level, std::string_view message);

// Counts events and lets at most one log line per interval speak for them.
// Thread-safe. Time comes in as an argument (milliseconds of a monotonic
// clock), so tests need no sleeps.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(int64_t interval_ms) : interval_ms_(interval_ms) {}

  // Counts one event. If no line was written in the last interval, returns
  // how many events the line to write now stands for (this one and those
  // held back since the last line); otherwise 0, and the event waits.
  uint64_t Count(int64_t now_ms);
  // The events held back, once the interval since the last line has
  // passed (0 if none, or too early): for a periodic call, so that the
  // end of a burst is told without waiting for another event.
  uint64_t Due(int64_t now_ms);

 private:
  uint64_t Take(int64_t now_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t interval_ms_;
  absl::Mutex mu_;
  bool written_ ABSL_GUARDED_BY(mu_) = false;
  int64_t last_line_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t held_back_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace etc::server

#endif  // ETC_SERVER_JSON_LOG_H_
