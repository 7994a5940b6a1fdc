#include "member/watch_fragment.h"

#include <gtest/gtest.h>

namespace etc::member {
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

// One revision's response, as the watch hub queues it.
etcdserverpb::WatchResponse AtRevision(int64_t watch_id, int64_t revision) {
  etcdserverpb::WatchResponse response;
  response.set_watch_id(watch_id);
  response.mutable_header()->set_revision(revision);
  mvccpb::Event* event = response.add_events();
  event->mutable_kv()->set_key("k");
  event->mutable_kv()->set_value("v" + std::to_string(revision));
  event->mutable_kv()->set_mod_revision(revision);
  return response;
}

TEST(MergeWatchResponse, EventsOfLaterRevisionsJoinInOrderWithTheLatestHeader) {
  etcdserverpb::WatchResponse into = AtRevision(7, 10);
  size_t bytes = into.ByteSizeLong();
  for (int64_t revision = 11; revision <= 13; ++revision) {
    etcdserverpb::WatchResponse next = AtRevision(7, revision);
    ASSERT_TRUE(MergeWatchResponse(&into, &bytes, &next, 1 << 20));
  }
  ASSERT_EQ(into.events_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(into.events(i).kv().mod_revision(), 10 + i);
  EXPECT_EQ(into.header().revision(), 13);
  EXPECT_EQ(into.watch_id(), 7);
  EXPECT_GE(bytes, into.ByteSizeLong());
}

TEST(MergeWatchResponse, OnlyPlainEventResponsesOfOneWatcherUnderTheLimitMerge) {
  auto refused = [](etcdserverpb::WatchResponse next, size_t max_bytes) {
    etcdserverpb::WatchResponse into = AtRevision(7, 10);
    etcdserverpb::WatchResponse before = into;
    size_t bytes = into.ByteSizeLong();
    bool merged = MergeWatchResponse(&into, &bytes, &next, max_bytes);
    EXPECT_EQ(into.SerializeAsString(), before.SerializeAsString());
    return !merged;
  };
  EXPECT_TRUE(refused(AtRevision(8, 11), 1 << 20));  // another watcher
  etcdserverpb::WatchResponse canceled = AtRevision(7, 11);
  canceled.set_canceled(true);
  EXPECT_TRUE(refused(canceled, 1 << 20));
  etcdserverpb::WatchResponse compacted = AtRevision(7, 11);
  compacted.clear_events();
  compacted.set_compact_revision(5);
  EXPECT_TRUE(refused(compacted, 1 << 20));
  etcdserverpb::WatchResponse fragment = AtRevision(7, 11);
  fragment.set_fragment(true);
  EXPECT_TRUE(refused(fragment, 1 << 20));
  etcdserverpb::WatchResponse progress;
  progress.set_watch_id(7);
  progress.mutable_header()->set_revision(11);
  EXPECT_TRUE(refused(progress, 1 << 20));
  etcdserverpb::WatchResponse created = AtRevision(7, 11);
  created.set_created(true);
  EXPECT_TRUE(refused(created, 1 << 20));
  size_t one = AtRevision(7, 10).ByteSizeLong();
  EXPECT_TRUE(refused(AtRevision(7, 11), 2 * one - 1));  // over the limit
  // A response that is not plain does not take others either.
  etcdserverpb::WatchResponse into = AtRevision(7, 10);
  into.set_created(true);
  size_t bytes = into.ByteSizeLong();
  etcdserverpb::WatchResponse next = AtRevision(7, 11);
  EXPECT_FALSE(MergeWatchResponse(&into, &bytes, &next, 1 << 20));
  EXPECT_EQ(next.events_size(), 1);
}

}  // namespace
}  // namespace etc::member
