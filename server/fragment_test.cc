#include "server/fragment.h"

#include <gtest/gtest.h>

namespace etc::server {
namespace {

etcdserverpb::WatchResponse WithEvents(int count, size_t value_bytes) {
  etcdserverpb::WatchResponse response;
  response.set_watch_id(7);
  response.mutable_header()->set_revision(99);
  for (int i = 0; i < count; ++i) {
    mvccpb::Event* event = response.add_events();
    event->mutable_kv()->set_key("k" + std::to_string(i));
    event->mutable_kv()->set_value(std::string(value_bytes, 'v'));
  }
  return response;
}

TEST(FragmentWatchResponse, SmallResponsesAreLeftWhole) {
  auto pieces = FragmentWatchResponse(WithEvents(3, 10), 1 << 20);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_FALSE(pieces[0].fragment());
  EXPECT_EQ(pieces[0].events_size(), 3);
}

TEST(FragmentWatchResponse, LargeOnesSplitInOrderUnderTheLimit) {
  const size_t limit = 1000;
  auto pieces = FragmentWatchResponse(WithEvents(50, 100), limit);
  ASSERT_GT(pieces.size(), 1u);
  int next = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_LE(pieces[i].ByteSizeLong(), limit);
    EXPECT_EQ(pieces[i].fragment(), i + 1 < pieces.size()) << i;
    EXPECT_EQ(pieces[i].watch_id(), 7);
    EXPECT_EQ(pieces[i].header().revision(), 99);
    for (const mvccpb::Event& event : pieces[i].events()) {
      EXPECT_EQ(event.kv().key(), "k" + std::to_string(next++));
    }
  }
  EXPECT_EQ(next, 50);
}

TEST(FragmentWatchResponse, AnEventOverTheLimitTravelsAlone) {
  auto pieces = FragmentWatchResponse(WithEvents(3, 5000), 1000);
  ASSERT_EQ(pieces.size(), 3u);
  for (const auto& piece : pieces) EXPECT_EQ(piece.events_size(), 1);
}

}  // namespace
}  // namespace etc::server
