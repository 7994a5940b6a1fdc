// Watch delivery to clients' streams on a real key tree, with sinks the
// test drains (or not) by hand.
#include "member/watch_streams.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "kv/errors.h"

namespace etc::member {
namespace {

class FakeSink : public WatchSink {
 public:
  size_t Pending() override { return queue.size(); }
  size_t PendingBytes() override { return queue.bytes(); }
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t merge_limit) override {
    ++pushes;
    queue.Push(std::move(responses), merge_limit);
    max_pending = std::max(max_pending, queue.size());
  }
  void Blocked() override { ++blocked; }
  // The client reads everything queued.
  std::vector<etcdserverpb::WatchResponse> Drain() {
    std::vector<etcdserverpb::WatchResponse> out;
    while (!queue.empty()) out.push_back(queue.Pop());
    return out;
  }
  WatchQueue queue;
  size_t max_pending = 0;
  int pushes = 0;
  int blocked = 0;
};

kvpb::Request Put(const std::string& key, const std::string& value) {
  kvpb::Request request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  return request;
}

etcdserverpb::WatchCreateRequest Prefix(const std::string& prefix, int64_t watch_id = 0) {
  etcdserverpb::WatchCreateRequest create;
  create.set_key(prefix);
  create.set_range_end(kv::PrefixEnd(prefix));
  create.set_watch_id(watch_id);
  return create;
}

// The revisions of the events in `responses` for watch `id`, in order.
std::vector<int64_t> Revisions(const std::vector<etcdserverpb::WatchResponse>& responses,
                               int64_t id) {
  std::vector<int64_t> revisions;
  for (const auto& response : responses) {
    if (response.watch_id() != id) continue;
    for (const auto& event : response.events()) revisions.push_back(event.kv().mod_revision());
  }
  return revisions;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t r = from; r <= to; ++r) out.push_back(r);
  return out;
}

class WatchStreamsTest : public ::testing::Test {
 protected:
  WatchStreamsTest() : streams_(&store_, Options()) {}
  static WatchStreamsOptions Options() {
    WatchStreamsOptions options;
    options.max_queued_responses = 4;
    options.max_merged_bytes = 0;  // one response per revision: easy to count
    options.progress_interval_ms = 1000;
    options.max_watchers_per_stream = 3;
    return options;
  }
  void Write(int n, const std::string& prefix = "/a/") {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(store_.Apply(Put(prefix + std::to_string(i), "v")).error_code(), 0);
      streams_.Deliver(now_ms_);
    }
  }
  kv::Store store_;
  WatchStreams streams_;
  int64_t now_ms_ = 1;
};

TEST_F(WatchStreamsTest, AWatcherGetsItsCreatedResponseThenEveryEventUnderItsOwnId) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  streams_.Create(stream, Prefix("/a/", 7));
  std::vector<etcdserverpb::WatchResponse> created = sink->Drain();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_TRUE(created[0].created());
  EXPECT_EQ(created[0].watch_id(), 7);
  Write(3);
  ASSERT_EQ(store_.Apply(Put("/b/x", "not watched")).error_code(), 0);
  streams_.Deliver(now_ms_);
  EXPECT_EQ(Revisions(sink->Drain(), 7), Range(1, 3));
}

TEST_F(WatchStreamsTest, AStreamThatIsNotReadHoldsABoundedQueueAndLosesNothing) {
  auto slow = std::make_shared<FakeSink>();
  auto fast = std::make_shared<FakeSink>();
  WatchStreams::StreamId slow_stream = streams_.Open(slow, {});
  WatchStreams::StreamId fast_stream = streams_.Open(fast, {});
  streams_.Create(slow_stream, Prefix("/a/", 1));
  streams_.Create(fast_stream, Prefix("/a/", 1));
  std::vector<etcdserverpb::WatchResponse> fast_seen = fast->Drain();
  // 40 revisions while the slow client reads nothing: its stream never
  // holds more than the limit, and the fast one is not held up.
  for (int i = 0; i < 40; ++i) {
    Write(1, "/a/" + std::to_string(i) + "/");
    for (auto& response : fast->Drain()) fast_seen.push_back(std::move(response));
  }
  EXPECT_LE(slow->max_pending, 4u);
  EXPECT_EQ(Revisions(fast_seen, 1), Range(1, 40));
  // The slow client reads again: every revision, once, in order (the hub
  // kept the rest in its bounded form or caught up from history).
  std::vector<etcdserverpb::WatchResponse> slow_seen;
  for (int round = 0; round < 100 && Revisions(slow_seen, 1).size() < 40; ++round) {
    for (auto& response : slow->Drain()) slow_seen.push_back(std::move(response));
    streams_.Deliver(now_ms_);
  }
  EXPECT_EQ(Revisions(slow_seen, 1), Range(1, 40));
  EXPECT_LE(slow->max_pending, 4u);
}

TEST(WatchStreamsBytesTest, AStreamThatIsNotReadHoldsAboutItsByteBudgetWhateverTheValues) {
  constexpr size_t kValueBytes = 100 * 1024;
  kv::Store store;
  WatchStreamsOptions options;
  options.max_queued_bytes = 512 * 1024;
  WatchStreams streams(&store, options);
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams.Open(sink, {});
  // Four watchers of one prefix, as a client with several watches has.
  for (int64_t id = 1; id <= 4; ++id) streams.Create(stream, Prefix("/a/", id));
  size_t most_bytes = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(store.Apply(Put("/a/" + std::to_string(i), std::string(kValueBytes, 'v')))
                  .error_code(),
              0);
    streams.Deliver(1);
    most_bytes = std::max(most_bytes, sink->PendingBytes());
  }
  // 64 slots of 100 KiB would be 6.4 MB; the budget stops it at about
  // 512 KiB (one response may pass it).
  EXPECT_LE(most_bytes, options.max_queued_bytes + kValueBytes + 1024);
  EXPECT_GE(most_bytes, options.max_queued_bytes);
  // Read at last: every revision for every watcher, once, in order.
  std::vector<etcdserverpb::WatchResponse> seen;
  for (int round = 0; round < 1000 && Revisions(seen, 4).size() < 100; ++round) {
    for (auto& response : sink->Drain()) seen.push_back(std::move(response));
    streams.Deliver(1);
  }
  for (int64_t id = 1; id <= 4; ++id) EXPECT_EQ(Revisions(seen, id), Range(1, 100));
}

TEST_F(WatchStreamsTest, CreatedResponsesComeInTheOrderOfTheRequestsEvenWhenTheStreamIsFull) {
  // etcd's clientv3 matches created responses to its create requests by
  // order: one must never wait behind another watcher's events.
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  streams_.Create(stream, Prefix("/a/", 1));
  Write(6);  // the stream is full now, and the member was told
  EXPECT_GT(sink->blocked, 0);
  std::vector<int64_t> created;
  auto note_created = [&created](const std::vector<etcdserverpb::WatchResponse>& responses) {
    for (const auto& response : responses) {
      if (response.created()) created.push_back(response.watch_id());
    }
  };
  streams_.Create(stream, Prefix("/b/", 2));
  // The client reads before the member's next delivery, and asks for one
  // more watcher, whose answer finds room at once.
  note_created(sink->Drain());
  streams_.Create(stream, Prefix("/c/", 3));
  for (int round = 0; round < 20; ++round) {
    note_created(sink->Drain());
    streams_.Deliver(now_ms_);
  }
  EXPECT_EQ(created, (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(WatchStreamsTest, AWatcherCatchingUpGetsManyRevisionsPerMessageWhenTheyMerge) {
  WatchStreamsOptions options = Options();
  options.max_merged_bytes = 64 * 1024;
  WatchStreams streams(&store_, options);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(store_.Apply(Put("/a/" + std::to_string(i), "v")).error_code(), 0);
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams.Open(sink, {});
  etcdserverpb::WatchCreateRequest create = Prefix("/a/", 1);
  create.set_start_revision(1);
  streams.Create(stream, create);
  // One delivery step: the four slots hold far more than four revisions.
  streams.Deliver(now_ms_);
  std::vector<etcdserverpb::WatchResponse> responses = sink->Drain();
  EXPECT_LE(responses.size(), 4u);
  EXPECT_GT(Revisions(responses, 1).size(), 20u);
}

TEST_F(WatchStreamsTest, DuplicateNegativeAndTooManyWatchIdsAreRefused) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  streams_.Create(stream, Prefix("/a/", 5));
  streams_.Create(stream, Prefix("/b/", 5));
  streams_.Create(stream, Prefix("/c/", -1));
  std::vector<etcdserverpb::WatchResponse> responses = sink->Drain();
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_FALSE(responses[0].canceled());
  EXPECT_TRUE(responses[1].canceled());
  EXPECT_EQ(responses[1].cancel_reason(), "etcdserver: duplicate watch ID");
  EXPECT_TRUE(responses[2].canceled());
  EXPECT_EQ(responses[2].cancel_reason(), "etcdserver: invalid watch ID");
  streams_.Create(stream, Prefix("/d/"));
  streams_.Create(stream, Prefix("/e/"));
  streams_.Create(stream, Prefix("/f/"));
  responses = sink->Drain();
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_FALSE(responses[1].canceled());
  EXPECT_EQ(responses[2].cancel_reason(), "etcdserver: too many watchers on this stream");
  EXPECT_EQ(streams_.watchers(), 3u);
}

TEST_F(WatchStreamsTest, ProgressNeverOvertakesEventsStillToBeDelivered) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  streams_.Create(stream, Prefix("/a/", 1));
  sink->Drain();
  // Ten revisions, the client reads none: the stream holds four and the
  // hub the rest, so no progress may claim revision 10 yet.
  Write(10);
  streams_.RequestProgress(stream);
  std::vector<etcdserverpb::WatchResponse> seen;
  for (int round = 0; round < 20; ++round) {
    for (auto& response : sink->Drain()) seen.push_back(std::move(response));
    streams_.Deliver(now_ms_);
  }
  // The request is answered once, after the last event, claiming it.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().watch_id(), -1);
  EXPECT_EQ(seen.back().header().revision(), 10);
  seen.pop_back();
  for (const auto& response : seen) EXPECT_NE(response.watch_id(), -1) << "progress overtook events";
  EXPECT_EQ(Revisions(seen, 1), Range(1, 10));
  // Caught up: a new request is answered at once.
  streams_.RequestProgress(stream);
  std::vector<etcdserverpb::WatchResponse> progress = sink->Drain();
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].watch_id(), -1);
  EXPECT_EQ(progress[0].header().revision(), 10);
}

TEST_F(WatchStreamsTest, NothingTheMemberPushesOutgrowsAFullStream) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  etcdserverpb::WatchCreateRequest create = Prefix("/a/", 1);
  create.set_progress_notify(true);
  streams_.Create(stream, create);
  Write(20);
  // The client reads nothing for a long time and keeps asking for
  // progress: neither periodic nor requested notifications pile up.
  for (int i = 0; i < 30; ++i) {
    now_ms_ += 1000;
    streams_.RequestProgress(stream);
    streams_.Deliver(now_ms_);
  }
  EXPECT_LE(sink->max_pending, 4u);
}

TEST_F(WatchStreamsTest, WatchersThatAskForProgressGetItEveryInterval) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  etcdserverpb::WatchCreateRequest create = Prefix("/a/", 3);
  create.set_progress_notify(true);
  streams_.Create(stream, create);
  streams_.Create(stream, Prefix("/b/", 4));
  sink->Drain();
  Write(2);
  sink->Drain();
  now_ms_ += 500;
  streams_.Deliver(now_ms_);
  EXPECT_TRUE(sink->Drain().empty());
  now_ms_ += 600;
  streams_.Deliver(now_ms_);
  std::vector<etcdserverpb::WatchResponse> progress = sink->Drain();
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].watch_id(), 3);
  EXPECT_EQ(progress[0].header().revision(), 2);
  EXPECT_EQ(progress[0].events_size(), 0);
}

TEST_F(WatchStreamsTest, CancelAndCloseRemoveTheWatchersFromTheKeyTree) {
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, {});
  streams_.Create(stream, Prefix("/a/", 1));
  streams_.Create(stream, Prefix("/b/", 2));
  EXPECT_EQ(store_.watches().watchers(), 2u);
  streams_.Cancel(stream, 1);
  std::vector<etcdserverpb::WatchResponse> responses = sink->Drain();
  EXPECT_TRUE(responses.back().canceled());
  EXPECT_EQ(responses.back().watch_id(), 1);
  EXPECT_EQ(store_.watches().watchers(), 1u);
  streams_.Close(stream);
  EXPECT_EQ(store_.watches().watchers(), 0u);
  EXPECT_EQ(streams_.streams(), 0u);
  Write(2);  // nothing to deliver to, nothing kept
  EXPECT_TRUE(sink->Drain().empty());
}

TEST_F(WatchStreamsTest, AFragmentingWatchersLargeRevisionComesInPieces) {
  WatchStreamsOptions options = Options();
  options.max_fragment_bytes = 300;
  WatchStreams streams(&store_, options);
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams.Open(sink, {});
  etcdserverpb::WatchCreateRequest create = Prefix("/a/", 1);
  create.set_fragment(true);
  streams.Create(stream, create);
  sink->Drain();
  kvpb::Request txn;
  for (int i = 0; i < 6; ++i) {
    *txn.mutable_txn()->add_success()->mutable_request_put() =
        Put("/a/" + std::to_string(i), std::string(100, 'x')).put();
  }
  ASSERT_EQ(store_.Apply(txn).error_code(), 0);
  streams.Deliver(now_ms_);
  std::vector<etcdserverpb::WatchResponse> pieces = sink->Drain();
  ASSERT_GT(pieces.size(), 1u);
  int events = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].fragment(), i + 1 < pieces.size());
    events += pieces[i].events_size();
  }
  EXPECT_EQ(events, 6);
}

TEST(WatchQueue, EventResponsesOfOneWatcherMergeUpToTheLimit) {
  WatchQueue queue;
  auto at = [](int64_t id, int64_t revision) {
    etcdserverpb::WatchResponse response;
    response.set_watch_id(id);
    response.mutable_header()->set_revision(revision);
    response.add_events()->mutable_kv()->set_mod_revision(revision);
    return response;
  };
  std::vector<etcdserverpb::WatchResponse> batch = {at(1, 1), at(1, 2), at(2, 3), at(2, 4)};
  queue.Push(std::move(batch), 64 * 1024);
  ASSERT_EQ(queue.size(), 2u);
  etcdserverpb::WatchResponse first = queue.Pop();
  EXPECT_EQ(first.events_size(), 2);
  EXPECT_EQ(first.header().revision(), 2);
  // Without a limit, nothing merges.
  std::vector<etcdserverpb::WatchResponse> more = {at(3, 5), at(3, 6)};
  queue.Push(std::move(more), 0);
  EXPECT_EQ(queue.size(), 3u);
}

TEST_F(WatchStreamsTest, AStreamsCreatesAreCheckedAsItsTokensUserIsNowNotAsWhenItOpened) {
  auto apply = [this](kvpb::Request request) {
    request.mutable_header()->set_username("root");
    request.mutable_header()->set_auth_revision(store_.auth().revision());
    kvpb::Response response = store_.Apply(request);
    ASSERT_EQ(response.error_code(), 0) << response.error_message();
  };
  kvpb::Request add;
  add.mutable_user_add()->set_name("root");
  add.mutable_user_add()->mutable_options()->set_no_password(true);
  apply(add);
  kvpb::Request grant;
  grant.mutable_user_grant_role()->set_user("root");
  grant.mutable_user_grant_role()->set_role("root");
  apply(grant);
  kvpb::Request enable;
  enable.mutable_auth_enable();
  apply(enable);
  // The token resolves as KvMember resolves it: to its user at the auth
  // store's current revision.
  streams_.set_resolver([this](const std::optional<std::string>& token)
                            -> absl::StatusOr<kv::AuthInfo> {
    if (token != "root-token") return kv::InvalidAuthTokenError();
    return kv::AuthInfo{"root", store_.auth().revision()};
  });
  auto sink = std::make_shared<FakeSink>();
  WatchStreams::StreamId stream = streams_.Open(sink, std::string("root-token"));
  // Another role appears: nothing about root changed.
  kvpb::Request role;
  role.mutable_role_add()->set_name("other");
  apply(role);
  streams_.Create(stream, Prefix("/a/"));
  std::vector<etcdserverpb::WatchResponse> responses = sink->Drain();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0].created());
  EXPECT_FALSE(responses[0].canceled()) << responses[0].cancel_reason();
  // A token that no longer resolves refuses the create, with its reason.
  WatchStreams::StreamId stale = streams_.Open(sink, std::string("gone-token"));
  streams_.Create(stale, Prefix("/a/"));
  responses = sink->Drain();
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0].canceled());
  EXPECT_EQ(responses[0].cancel_reason(), "etcdserver: invalid auth token");
}

}  // namespace
}  // namespace etc::member
