// The run's event trace: every event folds into a 64-bit FNV-1a hash (the
// same seed and binary must give the same hash), and with printing enabled a
// readable line per event goes to a stream.
#ifndef ETC_SIM_TRACE_H_
#define ETC_SIM_TRACE_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "sim/event_queue.h"

namespace etc::sim {

class Trace {
 public:
  explicit Trace(const EventQueue* clock, FILE* print_to = nullptr)
      : clock_(clock), print_to_(print_to) {}

  bool printing() const { return print_to_ != nullptr; }

  void Mix(uint64_t value) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (value >> (8 * i)) & 0xff;
      hash_ *= 0x100000001b3ULL;
    }
  }
  void Mix(std::string_view text) {
    for (unsigned char c : text) {
      hash_ ^= c;
      hash_ *= 0x100000001b3ULL;
    }
    Mix(text.size());
  }

  // Records an event: its kind and numbers are hashed; `detail` is only
  // formatted and printed when printing.
  template <typename DetailFn>
  void Event(std::string_view kind, uint64_t a, uint64_t b, DetailFn&& detail) {
    Mix(static_cast<uint64_t>(clock_->now_us()));
    Mix(kind);
    Mix(a);
    Mix(b);
    if (print_to_ != nullptr) {
      std::string line = detail();
      std::fprintf(print_to_, "%10.3fms %-12.*s %s\n", clock_->now_us() / 1000.0,
                   static_cast<int>(kind.size()), kind.data(), line.c_str());
    }
  }

  uint64_t hash() const { return hash_; }

 private:
  const EventQueue* clock_;
  FILE* print_to_;
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

}  // namespace etc::sim

#endif  // ETC_SIM_TRACE_H_
