// The simulator's only source of randomness: xoshiro256** seeded through
// SplitMix64. Every component forks its own stream from the seed, so adding
// a draw in one component does not shift the others' choices.
#ifndef ETC_SIM_RANDOM_H_
#define ETC_SIM_RANDOM_H_

#include <cmath>
#include <cstdint>

namespace etc::sim {

class Random {
 public:
  explicit Random(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& word : state_) word = SplitMix(x);
  }

  // An independent stream for component `stream`.
  Random Fork(uint64_t stream) const {
    return Random(state_[0] ^ (stream * 0x9e3779b97f4a7c15ULL) ^ state_[3]);
  }

  uint64_t Next() {
    uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound); bound > 0.
  uint64_t Uniform(uint64_t bound) { return Next() % bound; }
  // Uniform in [lo, hi].
  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Uniform(static_cast<uint64_t>(hi - lo + 1)));
  }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double probability) { return Unit() < probability; }
  // Exponentially distributed with the given mean.
  double Exponential(double mean) { return -mean * std::log(1.0 - Unit()); }

 private:
  static uint64_t SplitMix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t state_[4];
};

}  // namespace etc::sim

#endif  // ETC_SIM_RANDOM_H_
