// One queue of timed events on virtual time. Events at the same time run in
// the order they were scheduled, so a run is a pure function of its seed.
#ifndef ETC_SIM_EVENT_QUEUE_H_
#define ETC_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "base/check.h"

namespace etc::sim {

// Virtual time in microseconds since the start of the run.
using Micros = int64_t;

class EventQueue {
 public:
  void At(Micros time_us, std::function<void()> event) {
    ETC_CHECK_GE(time_us, now_us_) << "scheduling an event in the past";
    queue_.push(Scheduled{time_us, next_sequence_++, std::move(event)});
  }
  void After(Micros delay_us, std::function<void()> event) { At(now_us_ + delay_us, std::move(event)); }

  // Runs the earliest event; false when none is left.
  bool RunNext() {
    if (queue_.empty()) return false;
    // The event may schedule more; move it out first.
    Scheduled next = std::move(const_cast<Scheduled&>(queue_.top()));
    queue_.pop();
    now_us_ = next.time_us;
    ++events_run_;
    next.event();
    return true;
  }

  Micros now_us() const { return now_us_; }
  uint64_t events_run() const { return events_run_; }
  bool empty() const { return queue_.empty(); }
  Micros next_time_us() const { return queue_.empty() ? now_us_ : queue_.top().time_us; }

 private:
  struct Scheduled {
    Micros time_us;
    uint64_t sequence;
    std::function<void()> event;
    bool operator>(const Scheduled& other) const {
      return time_us != other.time_us ? time_us > other.time_us : sequence > other.sequence;
    }
  };
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue_;
  Micros now_us_ = 0;
  uint64_t next_sequence_ = 0;
  uint64_t events_run_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_EVENT_QUEUE_H_
