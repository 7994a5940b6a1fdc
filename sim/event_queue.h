// One queue of timed events on virtual time. Events at the same time run in
// the order they were scheduled, so a run is a pure function of its seed.
#ifndef ETC_SIM_EVENT_QUEUE_H_
#define ETC_SIM_EVENT_QUEUE_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "base/check.h"

namespace etc::sim {

// Virtual time in microseconds since the start of the run.
using Micros = int64_t;

class EventQueue {
 public:
  void At(Micros time_us, std::function<void()> event) {
    ETC_CHECK_GE(time_us, now_us_) << "scheduling an event in the past";
    uint32_t slot = 0;
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(events_.size());
      events_.push_back(std::move(event));
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
      events_[slot] = std::move(event);
    }
    heap_.push_back(Scheduled{time_us, next_sequence_++, slot});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  }
  void After(Micros delay_us, std::function<void()> event) { At(now_us_ + delay_us, std::move(event)); }

  // Runs the earliest event; false when none is left.
  bool RunNext() {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    Scheduled next = heap_.back();
    heap_.pop_back();
    // The event may schedule more, which may take its slot; move it out first.
    std::function<void()> event = std::move(events_[next.slot]);
    events_[next.slot] = nullptr;
    free_slots_.push_back(next.slot);
    now_us_ = next.time_us;
    ++events_run_;
    event();
    return true;
  }

  Micros now_us() const { return now_us_; }
  uint64_t events_run() const { return events_run_; }
  bool empty() const { return heap_.empty(); }
  Micros next_time_us() const { return heap_.empty() ? now_us_ : heap_.front().time_us; }

 private:
  // The heap orders small plain records; the events stay put in their slots
  // (sifting a std::function per level cost more than the comparison).
  struct Scheduled {
    Micros time_us;
    uint64_t sequence;
    uint32_t slot;
    bool operator>(const Scheduled& other) const {
      return time_us != other.time_us ? time_us > other.time_us : sequence > other.sequence;
    }
  };
  std::vector<Scheduled> heap_;
  std::vector<std::function<void()>> events_;
  std::vector<uint32_t> free_slots_;
  Micros now_us_ = 0;
  uint64_t next_sequence_ = 0;
  uint64_t events_run_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_EVENT_QUEUE_H_
