// Watches against a model: for random writes and random watchers (a key, a
// range, a prefix, a subtree; from a past, the current or a future revision;
// with filters and prev_kv), what each watcher receives is exactly the
// model's events from its start revision on, in revision order, each once,
// whole revisions per response, even when its client drains slowly and it
// has to catch up from history; a watcher that falls behind compaction is
// cancelled with the compact revision.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kv/store.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace etc::kv {
namespace {

using etcdserverpb::WatchCreateRequest;
using etcdserverpb::WatchResponse;

kvpb::Response Put(Store& store, const std::string& key, const std::string& value) {
  kvpb::Request request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  return store.Apply(request);
}

kvpb::Response Delete(Store& store, const std::string& key, const std::string& end = "") {
  kvpb::Request request;
  request.mutable_delete_range()->set_key(key);
  request.mutable_delete_range()->set_range_end(end);
  return store.Apply(request);
}

kvpb::Response Compact(Store& store, Revision revision) {
  kvpb::Request request;
  request.mutable_compaction()->set_revision(revision);
  return store.Apply(request);
}

std::vector<WatchResponse> Drain(Store& store, WatcherId id) {
  std::vector<WatchResponse> all;
  for (int round = 0; round < 10000; ++round) {
    std::vector<WatchResponse> some = store.watches().Take(id, 1);
    if (some.empty()) break;
    for (auto& r : some) all.push_back(std::move(r));
  }
  return all;
}

WatchCreateRequest Watch(const std::string& key, const std::string& end = "", Revision start = 0) {
  WatchCreateRequest request;
  request.set_key(key);
  request.set_range_end(end);
  request.set_start_revision(start);
  return request;
}

TEST(WatchTest, CreatedThenEventsOfEachRevisionTogether) {
  Store store;
  auto id = store.CreateWatch({}, Watch("a", "c"));
  ASSERT_TRUE(id.ok());
  kvpb::Request txn;
  auto* success = txn.mutable_txn()->mutable_success();
  success->Add()->mutable_request_put()->set_key("b");
  success->Add()->mutable_request_put()->set_key("a");
  ASSERT_EQ(store.Apply(txn).error_code(), 0);
  Put(store, "zzz", "ignored");
  Delete(store, "a");
  auto responses = Drain(store, *id);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_TRUE(responses[0].created());
  // One response per revision, events in the order the txn wrote them.
  ASSERT_EQ(responses[1].events_size(), 2);
  EXPECT_EQ(responses[1].events(0).kv().key(), "b");
  EXPECT_EQ(responses[1].events(1).kv().key(), "a");
  EXPECT_EQ(responses[1].events(0).kv().mod_revision(), 1);
  ASSERT_EQ(responses[2].events_size(), 1);
  EXPECT_EQ(responses[2].events(0).type(), mvccpb::Event::DELETE);
  EXPECT_EQ(responses[2].events(0).kv().mod_revision(), 3);
}

TEST(WatchTest, StartRevisionZeroMeansFromNowOn) {
  Store store;
  Put(store, "k", "1");
  auto id = store.CreateWatch({}, Watch("k"));
  Put(store, "k", "2");
  auto responses = Drain(store, *id);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].events(0).kv().value(), "2");
}

TEST(WatchTest, FutureStartRevisionDeliversNothingBelowIt) {
  // etcd #20221: a watch on a future revision must not return older events.
  Store store;
  auto id = store.CreateWatch({}, Watch("k", "", 3));
  Put(store, "k", "1");
  Put(store, "k", "2");
  Put(store, "k", "3");
  auto responses = Drain(store, *id);
  ASSERT_EQ(responses.size(), 2u);
  ASSERT_EQ(responses[1].events_size(), 1);
  EXPECT_EQ(responses[1].events(0).kv().mod_revision(), 3);
}

TEST(WatchTest, CompactedStartIsCancelledWithTheCompactRevision) {
  Store store;
  for (int i = 0; i < 5; ++i) Put(store, "k", std::to_string(i));
  ASSERT_EQ(Compact(store, 4).error_code(), 0);
  auto id = store.CreateWatch({}, Watch("k", "", 2));
  ASSERT_TRUE(id.ok());
  auto responses = Drain(store, *id);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_TRUE(responses[0].created());
  EXPECT_TRUE(responses[1].canceled());
  EXPECT_EQ(responses[1].compact_revision(), 4);
  EXPECT_FALSE(store.watches().exists(*id));
  // From the compact revision itself, history is still there.
  auto from_compact = store.CreateWatch({}, Watch("k", "", 4));
  auto events = Drain(store, *from_compact);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].events_size(), 2);
}

TEST(WatchTest, DeleteAtTheCompactionPointIsStillDelivered) {
  // etcd #18089 / #19179: delete events lost around compaction.
  Store store;
  Put(store, "k", "1");       // 1
  Delete(store, "k");         // 2
  ASSERT_EQ(Compact(store, 2).error_code(), 0);
  auto id = store.CreateWatch({}, Watch("k", "", 2));
  auto responses = Drain(store, *id);
  ASSERT_EQ(responses.size(), 2u);
  ASSERT_EQ(responses[1].events_size(), 1);
  EXPECT_EQ(responses[1].events(0).type(), mvccpb::Event::DELETE);
}

TEST(WatchTest, ProgressNeverOvertakesEvents) {
  // etcd #15220: a progress notification must not claim a revision whose
  // events the watcher has not been given yet.
  Store store;
  auto id = store.CreateWatch({}, Watch("k"));
  Drain(store, *id);
  EXPECT_TRUE(store.watches().Progress(*id).has_value());
  Put(store, "k", "1");
  EXPECT_FALSE(store.watches().Progress(*id).has_value());
  Drain(store, *id);
  auto progress = store.watches().Progress(*id);
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->header().revision(), 1);
  EXPECT_EQ(progress->events_size(), 0);
}

TEST(WatchTest, SlowWatcherIsBoundedAndCatchesUpWithoutLosingEvents) {
  StoreOptions options;
  options.watch.max_queued_events = 8;
  options.watch.catch_up_events = 4;
  Store store(options);
  auto slow = store.CreateWatch({}, Watch("k", PrefixEnd("k")));
  auto fast = store.CreateWatch({}, Watch("k", PrefixEnd("k")));
  std::vector<std::string> fast_values;
  for (int i = 0; i < 200; ++i) {
    Put(store, "k" + std::to_string(i % 3), std::to_string(i));
    // The slow watcher's queue never exceeds the bound (plus one revision).
    EXPECT_LE(store.watches().queued_events(*slow), 9u);
    for (auto& r : Drain(store, *fast)) {
      for (auto& e : r.events()) fast_values.push_back(e.kv().value());
    }
  }
  EXPECT_FALSE(store.watches().synced(*slow));
  std::vector<std::string> slow_values;
  Revision last = 0;
  for (auto& r : Drain(store, *slow)) {
    for (auto& e : r.events()) {
      EXPECT_GT(e.kv().mod_revision(), last);
      last = e.kv().mod_revision();
      slow_values.push_back(e.kv().value());
    }
  }
  EXPECT_EQ(fast_values.size(), 200u);
  EXPECT_EQ(slow_values, fast_values);
  EXPECT_TRUE(store.watches().synced(*slow));
  // Back to live delivery.
  Put(store, "k0", "live");
  auto live = Drain(store, *slow);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].events(0).kv().value(), "live");
  store.CheckInvariants();
}

// Large values: what stalled watchers hold is bounded in bytes (per watcher
// and for the hub), not only in events; past it they read history instead
// of holding copies, and lose nothing.
TEST(WatchTest, StalledWatchersAreBoundedInBytesAndCatchUpWithoutLosingEvents) {
  constexpr size_t kValueBytes = 10 * 1024;
  constexpr size_t kPerWatcherBytes = 64 * 1024;
  constexpr size_t kHubBytes = 256 * 1024;
  // One revision's response: its value plus a little framing.
  constexpr size_t kResponseBytes = kValueBytes + 256;
  StoreOptions options;
  options.watch.max_queued_bytes_per_watcher = kPerWatcherBytes;
  options.watch.max_queued_bytes = kHubBytes;
  options.watch.catch_up_bytes = 32 * 1024;
  Store store(options);
  std::vector<WatcherId> stalled;
  for (int i = 0; i < 50; ++i) stalled.push_back(*store.CreateWatch({}, Watch("k", PrefixEnd("k"))));
  WatcherId fast = *store.CreateWatch({}, Watch("k", PrefixEnd("k")));
  std::vector<std::string> written;
  std::vector<std::string> fast_values;
  size_t most_hub_bytes = 0;
  for (int i = 0; i < 200; ++i) {
    std::string value = std::to_string(i) + std::string(kValueBytes, 'v');
    written.push_back(value);
    Put(store, "k" + std::to_string(i % 3), value);
    most_hub_bytes = std::max(most_hub_bytes, store.watches().queued_bytes());
    for (WatcherId id : stalled) {
      ASSERT_LE(store.watches().queued_bytes(id), kPerWatcherBytes + kResponseBytes);
    }
    for (auto& r : Drain(store, fast)) {
      for (auto& e : r.events()) fast_values.push_back(e.kv().value());
    }
    store.CheckInvariants();
  }
  // The hub held at most its budget (and one response, and the reading
  // watcher's catch-up step, past it), where holding every event would be
  // 50 x 200 x 10 KiB = 100 MB.
  EXPECT_LE(most_hub_bytes, kHubBytes + kResponseBytes + 32 * 1024 + kResponseBytes);
  EXPECT_GE(most_hub_bytes, kHubBytes) << "the budget was reached";
  // The fast watcher, not held up, got everything (live or from history).
  EXPECT_TRUE(fast_values == written) << fast_values.size() << " values";
  for (WatcherId id : stalled) {
    std::vector<std::string> values;
    Revision last = 0;
    for (auto& r : Drain(store, id)) {
      for (auto& e : r.events()) {
        ASSERT_GT(e.kv().mod_revision(), last);
        last = e.kv().mod_revision();
        values.push_back(e.kv().value());
      }
    }
    ASSERT_TRUE(values == written) << "watcher " << id << ": " << values.size() << " values";
    EXPECT_TRUE(store.watches().synced(id));
  }
  EXPECT_EQ(store.watches().queued_bytes(), 0u);
  store.CheckInvariants();
}

TEST(WatchTest, SlowWatcherBehindCompactionIsCancelled) {
  StoreOptions options;
  options.watch.max_queued_events = 2;
  options.watch.catch_up_events = 2;
  Store store(options);
  auto id = store.CreateWatch({}, Watch("k"));
  for (int i = 0; i < 20; ++i) Put(store, "k", std::to_string(i));
  ASSERT_EQ(Compact(store, 15).error_code(), 0);
  auto responses = Drain(store, *id);
  ASSERT_FALSE(responses.empty());
  EXPECT_TRUE(responses.back().canceled());
  EXPECT_EQ(responses.back().compact_revision(), 15);
  EXPECT_FALSE(responses.back().cancel_reason().empty());
}

TEST(WatchTest, FiltersAndPrevKv) {
  Store store;
  WatchCreateRequest no_put = Watch("k");
  no_put.add_filters(WatchCreateRequest::NOPUT);
  no_put.set_prev_kv(true);
  WatchCreateRequest no_delete = Watch("k");
  no_delete.add_filters(WatchCreateRequest::NODELETE);
  auto deletes = store.CreateWatch({}, no_put);
  auto puts = store.CreateWatch({}, no_delete);
  Put(store, "k", "1");
  Put(store, "k", "2");
  Delete(store, "k");
  auto d = Drain(store, *deletes);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].events(0).type(), mvccpb::Event::DELETE);
  EXPECT_EQ(d[1].events(0).prev_kv().value(), "2");
  auto p = Drain(store, *puts);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_FALSE(p[1].events(0).has_prev_kv());
}

TEST(WatchTest, CancelAndRestore) {
  Store store;
  auto id = store.CreateWatch({}, Watch("k"));
  auto canceled = store.watches().Cancel(*id);
  ASSERT_TRUE(canceled.has_value());
  EXPECT_TRUE(canceled->canceled());
  EXPECT_FALSE(store.watches().Cancel(*id).has_value());

  // A snapshot installed under a watcher: it catches up from the new
  // history, or is cancelled if that history was compacted.
  Store leader;
  for (int i = 0; i < 6; ++i) Put(leader, "k", std::to_string(i));
  Store follower;
  Put(follower, "k", "0");
  auto watcher = follower.CreateWatch({}, Watch("k"));
  Drain(follower, *watcher);
  ASSERT_TRUE(follower.Restore(leader.Snapshot()).ok());
  auto caught_up = Drain(follower, *watcher);
  ASSERT_EQ(caught_up.size(), 1u);
  EXPECT_EQ(caught_up[0].events_size(), 5);
  ASSERT_EQ(Compact(leader, 6).error_code(), 0);
  Put(leader, "k", "x");
  Store behind;
  Put(behind, "k", "0");
  auto lost = behind.CreateWatch({}, Watch("k"));
  Drain(behind, *lost);
  ASSERT_TRUE(behind.Restore(leader.Snapshot()).ok());
  auto cancel = Drain(behind, *lost);
  ASSERT_FALSE(cancel.empty());
  EXPECT_TRUE(cancel.back().canceled());
  EXPECT_EQ(cancel.back().compact_revision(), 6);
}

// ---- the property ----

struct Event {
  Revision revision;
  std::string key;
  bool is_delete;
  std::string value;
  std::optional<std::string> prev;
  bool operator==(const Event&) const = default;
};

void showValue(const Event& e, std::ostream& os) {
  os << "{r" << e.revision << " " << e.key << (e.is_delete ? " DEL" : " PUT=") << e.value
     << (e.prev ? " prev=" + *e.prev : "") << "}";
}

RC_GTEST_PROP(WatchProperty, EveryWatcherSeesExactlyTheModelsEvents, ()) {
  StoreOptions options;
  options.watch.max_queued_events = *rc::gen::inRange<size_t>(1, 6);
  options.watch.catch_up_events = *rc::gen::inRange<size_t>(1, 6);
  Store store(options);
  const std::vector<std::string> keys = {"/a", "/a/b", "/a/b/c", "/a/d", "/b", "/b/e"};
  // Model: the value of each key after each revision.
  std::vector<std::map<std::string, std::string>> states(1);
  struct Spec {
    WatcherId id;
    std::string key, end;
    Revision start;  // first revision whose events it must get
    bool no_put, no_delete, prev_kv;
    std::vector<Event> got;
    bool canceled = false;
    Revision compact_at_cancel = 0;
  };
  std::vector<Spec> specs;
  Revision compacted = 0;
  auto drain = [&](Spec& spec, size_t max) {
    if (spec.canceled) return;
    for (auto& response : store.watches().Take(spec.id, max)) {
      if (response.canceled()) {
        spec.canceled = true;
        spec.compact_at_cancel = response.compact_revision();
      }
      for (const auto& e : response.events()) {
        Event event{e.kv().mod_revision(), e.kv().key(), e.type() == mvccpb::Event::DELETE,
                    e.kv().value(), std::nullopt};
        if (e.has_prev_kv()) event.prev = e.prev_kv().value();
        spec.got.push_back(event);
      }
    }
  };
  int steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    int kind = *rc::gen::inRange(0, 100);
    Revision now = static_cast<Revision>(states.size()) - 1;
    if (kind < 40) {
      std::string key = *rc::gen::elementOf(keys);
      std::string value = "v" + std::to_string(step);
      RC_ASSERT(Put(store, key, value).error_code() == 0);
      states.push_back(states.back());
      states.back()[key] = value;
    } else if (kind < 55) {
      std::string key = *rc::gen::elementOf(keys);
      bool subtree = *rc::gen::arbitrary<bool>();
      auto [begin, end] = subtree ? SubtreeRange(key) : std::pair<std::string, std::string>{key, ""};
      auto response = Delete(store, begin, end);
      RC_ASSERT(response.error_code() == 0);
      if (response.delete_range().deleted() > 0) {
        states.push_back(states.back());
        for (auto it = states.back().begin(); it != states.back().end();) {
          it = KeyRange{begin, end}.Contains(it->first) ? states.back().erase(it) : std::next(it);
        }
      }
    } else if (kind < 60 && now > compacted) {
      Revision target = *rc::gen::inRange<Revision>(compacted + 1, now + 1);
      RC_ASSERT(Compact(store, target).error_code() == 0);
      compacted = target;
    } else if (kind < 75) {
      Spec spec;
      std::string key = *rc::gen::elementOf(keys);
      switch (*rc::gen::inRange(0, 3)) {
        case 0:
          spec.key = key;
          break;
        case 1:
          std::tie(spec.key, spec.end) = SubtreeRange(key);
          break;
        default:
          spec.key = key;
          spec.end = PrefixEnd(key);
          break;
      }
      Revision start = *rc::gen::inRange<Revision>(0, now + 3);
      spec.start = start == 0 ? now + 1 : start;
      spec.no_put = *rc::gen::weightedElement<bool>({{4, false}, {1, true}});
      spec.no_delete = *rc::gen::weightedElement<bool>({{4, false}, {1, true}});
      spec.prev_kv = *rc::gen::arbitrary<bool>();
      WatchCreateRequest request = Watch(spec.key, spec.end, start);
      if (spec.no_put) request.add_filters(WatchCreateRequest::NOPUT);
      if (spec.no_delete) request.add_filters(WatchCreateRequest::NODELETE);
      request.set_prev_kv(spec.prev_kv);
      auto id = store.CreateWatch({}, request);
      RC_ASSERT(id.ok());
      spec.id = *id;
      specs.push_back(std::move(spec));
    } else {
      if (specs.empty()) continue;
      Spec& spec = specs[*rc::gen::inRange<size_t>(0, specs.size())];
      drain(spec, *rc::gen::inRange<size_t>(1, 4));
    }
    store.CheckInvariants();
  }
  // Drain everything: each Take may top the queue up from history again.
  for (Spec& spec : specs) {
    for (int round = 0; round < 100000 && store.watches().exists(spec.id) && !spec.canceled;
         ++round) {
      size_t before = spec.got.size();
      drain(spec, 1'000'000);
      if (spec.got.size() == before && store.watches().synced(spec.id) &&
          store.watches().queued_events(spec.id) == 0) {
        break;
      }
    }
  }
  for (Spec& spec : specs) {
    KeyRange range{spec.key, spec.end};
    std::vector<Event> expected;
    for (Revision r = std::max<Revision>(spec.start, 1); r < static_cast<Revision>(states.size());
         ++r) {
      const auto& before = states[r - 1];
      const auto& after = states[r];
      std::vector<Event> at_r;
      for (const auto& [key, value] : after) {
        auto old = before.find(key);
        bool changed = old == before.end() || old->second != value;
        // Every put in this model writes a fresh value.
        if (!changed || !range.Contains(key) || spec.no_put) continue;
        std::optional<std::string> prev;
        if (spec.prev_kv && old != before.end()) prev = old->second;
        at_r.push_back(Event{r, key, false, value, prev});
      }
      for (const auto& [key, value] : before) {
        if (after.contains(key) || !range.Contains(key) || spec.no_delete) continue;
        at_r.push_back(Event{r, key, true, "", spec.prev_kv ? std::optional(value) : std::nullopt});
      }
      std::sort(at_r.begin(), at_r.end(),
                [](const Event& a, const Event& b) { return a.key < b.key; });
      expected.insert(expected.end(), at_r.begin(), at_r.end());
    }
    std::vector<Event> got = spec.got;
    // Within a revision the order is the write order; compare as sets per
    // revision, but revisions must be in order.
    for (size_t i = 1; i < got.size(); ++i) RC_ASSERT(got[i - 1].revision <= got[i].revision);
    std::stable_sort(got.begin(), got.end(), [](const Event& a, const Event& b) {
      return a.revision != b.revision ? a.revision < b.revision : a.key < b.key;
    });
    // A previous version older than the compaction point may be gone by
    // the time the event is read from history (etcd drops prev_kv then too).
    for (size_t i = 0; i < std::min(got.size(), expected.size()); ++i) {
      if (!got[i].prev && expected[i].prev && expected[i].revision - 1 < compacted) {
        expected[i].prev.reset();
      }
    }
    if (spec.canceled) {
      // Cancelled for compaction: what it got is a prefix of the truth,
      // ending before history it needed was compacted away.
      RC_ASSERT(spec.compact_at_cancel > 0);
      RC_ASSERT(got.size() <= expected.size());
      RC_ASSERT(std::equal(got.begin(), got.end(), expected.begin()));
      Revision next_needed = got.empty() ? spec.start : got.back().revision + 1;
      RC_ASSERT(next_needed < spec.compact_at_cancel);
    } else {
      RC_ASSERT(got == expected);
    }
  }
}

}  // namespace
}  // namespace etc::kv
