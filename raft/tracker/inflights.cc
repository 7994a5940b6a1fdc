#include "raft/tracker/inflights.h"

#include <algorithm>

#include "base/check.h"

namespace etc::raft::tracker {

Inflights::Inflights(size_t max_count, uint64_t max_bytes)
    : max_count_(max_count), max_bytes_(max_bytes) {
  ETC_CHECK_GT(max_count, 0u) << "a window must allow one message in flight";
}

void Inflights::Add(Index index, uint64_t bytes) {
  ETC_CHECK(!Full()) << "adding to a full in-flight window";
  if (count_ > 0) {
    const Flight& last = ring_[(start_ + count_ - 1) % ring_.size()];
    ETC_CHECK_GT(index, last.index) << "in-flight indexes must increase";
  }
  if (count_ == ring_.size()) {
    // Grow and unwrap so that start_ is 0 again.
    std::vector<Flight> grown;
    grown.reserve(std::min(max_count_, std::max<size_t>(2 * ring_.size(), 4)));
    for (size_t i = 0; i < count_; ++i) grown.push_back(ring_[(start_ + i) % ring_.size()]);
    grown.resize(grown.capacity());
    ring_ = std::move(grown);
    start_ = 0;
  }
  ring_[(start_ + count_) % ring_.size()] = Flight{index, bytes};
  ++count_;
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (count_ > 0 && ring_[start_].index <= index) {
    bytes_ -= ring_[start_].bytes;
    start_ = (start_ + 1) % ring_.size();
    --count_;
  }
  if (count_ == 0) start_ = 0;
}

void Inflights::Reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

bool Inflights::Full() const {
  return count_ == max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

}  // namespace etc::raft::tracker
