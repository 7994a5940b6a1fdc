// The window of append messages a leader has sent to one follower and not yet
// seen acknowledged. Bounding it by count and by bytes keeps a slow follower
// from queueing unbounded data and starving heartbeats (raft-traps #10).
//
//   Inflights window(/*max_count=*/256, /*max_bytes=*/1 << 20);
//   if (!window.Full()) { send(...); window.Add(last_index_sent, bytes_sent); }
//   window.FreeLE(acked_index);
#ifndef ETC_RAFT_TRACKER_INFLIGHTS_H_
#define ETC_RAFT_TRACKER_INFLIGHTS_H_

#include <cstdint>
#include <vector>

#include "raft/quorum/quorum.h"

namespace etc::raft::tracker {

class Inflights {
 public:
  // max_bytes == 0 means no byte limit.
  Inflights(size_t max_count, uint64_t max_bytes);

  // Records a message whose last entry is `index`. Indexes must increase.
  void Add(Index index, uint64_t bytes);
  // Frees every message whose last index is <= `index`.
  void FreeLE(Index index);
  void Reset();
  bool Full() const;
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  size_t max_count() const { return max_count_; }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  struct Flight {
    Index index = 0;
    uint64_t bytes = 0;
  };
  // A ring buffer, grown lazily up to max_count_ so idle followers cost little.
  std::vector<Flight> ring_;
  size_t start_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
  size_t max_count_;
  uint64_t max_bytes_;
};

}  // namespace etc::raft::tracker

#endif  // ETC_RAFT_TRACKER_INFLIGHTS_H_
