// A small deterministic pseudo-random generator (SplitMix64). The core takes
// all its randomness from one of these, seeded by the caller, so a seed
// replays a run exactly on every platform.
#ifndef ETC_RAFT_RNG_H_
#define ETC_RAFT_RNG_H_

#include <cstdint>

namespace etc::raft {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound); bound must be positive. The modulo bias is
  // negligible for the small bounds used here (election timeouts).
  uint64_t Uniform(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_RNG_H_
