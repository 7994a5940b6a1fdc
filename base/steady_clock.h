// The machine's monotonic clock in milliseconds, for hosts' timeouts and
// rate limits (never for the replicated state, which has no clock).
#ifndef ETC_BASE_STEADY_CLOCK_H_
#define ETC_BASE_STEADY_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace etc::base {

inline int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace etc::base

#endif  // ETC_BASE_STEADY_CLOCK_H_
