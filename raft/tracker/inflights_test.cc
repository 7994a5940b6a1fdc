#include "raft/tracker/inflights.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <utility>

namespace etc::raft::tracker {
namespace {

TEST(Inflights, FullByCountThenFreed) {
  Inflights window(3, 0);
  window.Add(1, 10);
  window.Add(2, 10);
  EXPECT_FALSE(window.Full());
  window.Add(5, 10);
  EXPECT_TRUE(window.Full());
  window.FreeLE(2);
  EXPECT_EQ(window.count(), 1u);
  EXPECT_EQ(window.bytes(), 10u);
  EXPECT_FALSE(window.Full());
  window.FreeLE(100);
  EXPECT_EQ(window.count(), 0u);
}

TEST(Inflights, FullByBytes) {
  Inflights window(100, 25);
  window.Add(1, 10);
  window.Add(2, 10);
  EXPECT_FALSE(window.Full());
  window.Add(3, 10);
  EXPECT_TRUE(window.Full());
  window.FreeLE(1);
  EXPECT_FALSE(window.Full());
}

TEST(Inflights, WrapsAroundTheRing) {
  Inflights window(4, 0);
  Index next = 1;
  for (int round = 0; round < 10; ++round) {
    while (!window.Full()) window.Add(next++, 1);
    window.FreeLE(next - 3);
    EXPECT_EQ(window.count(), 2u);
  }
}

// The ring buffer against a plain deque.
RC_GTEST_PROP(InflightsProperty, MatchesDequeModel, ()) {
  size_t max_count = *rc::gen::inRange<size_t>(1, 10);
  uint64_t max_bytes = *rc::gen::element<uint64_t>(0, 50, 200);
  Inflights window(max_count, max_bytes);
  std::deque<std::pair<Index, uint64_t>> model;
  Index next = 1;
  int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; ++step) {
    uint64_t model_bytes = 0;
    for (const auto& flight : model) model_bytes += flight.second;
    bool model_full = model.size() == max_count || (max_bytes != 0 && model_bytes >= max_bytes);
    RC_ASSERT(window.Full() == model_full);
    RC_ASSERT(window.count() == model.size());
    RC_ASSERT(window.bytes() == model_bytes);
    if (!model_full && *rc::gen::inRange(0, 3) != 0) {
      next += *rc::gen::inRange<Index>(1, 4);
      uint64_t bytes = *rc::gen::inRange<uint64_t>(0, 40);
      window.Add(next, bytes);
      model.emplace_back(next, bytes);
    } else {
      Index upto = next - *rc::gen::inRange<Index>(0, 6);
      window.FreeLE(upto);
      while (!model.empty() && model.front().first <= upto) model.pop_front();
    }
  }
}

}  // namespace
}  // namespace etc::raft::tracker
