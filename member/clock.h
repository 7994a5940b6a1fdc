// The one clock a member's policies read (lease expiry, request deadlines,
// token expiry, progress notifications). The server passes the machine's
// monotonic clock; the simulator a virtual one that drifts and jumps with
// its faults. Nothing under member/ reads time any other way.
#ifndef ETC_MEMBER_CLOCK_H_
#define ETC_MEMBER_CLOCK_H_

#include <cstdint>

namespace etc::member {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since an arbitrary start; never decreases.
  virtual int64_t now_ms() = 0;
};

}  // namespace etc::member

#endif  // ETC_MEMBER_CLOCK_H_
