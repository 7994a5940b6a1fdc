// Shrinking a failing run's faults: drop one fault at a time while the run
// still fails the same way, until no single fault can go (a 1-minimal set,
// as delta debugging's last step finds).
#ifndef ETC_SIM_SHRINK_H_
#define ETC_SIM_SHRINK_H_

#include <cstddef>
#include <functional>
#include <vector>

namespace etc::sim {

// `kept`: the positions (in the drawn schedule) of the faults the failing
// run had; `still_fails` replays a subset. Returns the smallest subset
// found.
inline std::vector<size_t> ShrinkFaults(
    std::vector<size_t> kept, const std::function<bool(const std::vector<size_t>&)>& still_fails) {
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < kept.size(); ++i) {
      std::vector<size_t> candidate = kept;
      candidate.erase(candidate.begin() + static_cast<long>(i));
      if (still_fails(candidate)) {
        kept = std::move(candidate);
        progress = true;
        break;
      }
    }
  }
  return kept;
}

}  // namespace etc::sim

#endif  // ETC_SIM_SHRINK_H_
