#include "sim/watch_workload.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kv/errors.h"
#include "raft/conf_state.h"
#include "sim/registers.h"

namespace etc::sim {
namespace {

// Responses a stream may hold beyond the member's bound: the created,
// cancelled and progress responses a client's own requests add.
constexpr size_t kPendingSlack = 8;
// A watcher must have seen what its member applied this long before the end.
constexpr Micros kLivenessLagUs = 500'000;

// What a watcher watches, readably (its key may be "\0").
std::string Describe(const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return "key " + key;
  if (range_end.size() == 1 && range_end[0] == '\0') return key == std::string(1, '\0') ? "every key" : "keys from " + key;
  return "prefix " + key;
}

}  // namespace

// The client's end of a stream: what the member pushed and the client has
// not read yet.
class WatchWorkload::Sink : public member::WatchSink {
 public:
  size_t Pending() override { return queue.size(); }
  size_t PendingBytes() override { return queue.bytes(); }
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t merge_limit) override {
    queue.Push(std::move(responses), merge_limit);
    max_pending = std::max(max_pending, queue.size());
  }
  void Blocked() override { blocked = true; }
  member::WatchQueue queue;
  size_t max_pending = 0;
  bool blocked = false;
  // Watchers whose create requests went out, in order: created responses
  // come back in the same order.
  std::deque<size_t> creating;
};

WatchWorkload::WatchWorkload(World* world, AuthWorkload* auth, Random random)
    : world_(world), auth_(auth), random_(std::move(random)) {
  world_->add_apply_observer([this](Process& process, uint64_t, const kvpb::Request&,
                                    const kvpb::Response&) { OnApply(process); });
}

void WatchWorkload::OnApply(Process& process) {
  const kv::Keyspace& keys = process.store().keyspace();
  while (recorded_through_ < keys.revision()) {
    int64_t revision = ++recorded_through_;
    ETC_CHECK_GE(revision, keys.compact_revision()) << "a revision compacted before it was recorded";
    std::vector<Change>& changes = revisions_[revision];
    for (auto it = keys.ChangesFrom(revision); it != keys.changes_end() && it->revision == revision;
         ++it) {
      kv::Keyspace::VersionPair pair = kv::Keyspace::VersionAt(*it);
      ETC_CHECK(pair.current != nullptr);
      Change change;
      change.key = std::string(it->key());
      change.deleted = pair.current->tombstone();
      change.value = keys.ValueOf(*pair.current);
      if (pair.previous != nullptr && !pair.previous->tombstone()) {
        change.previous = keys.ValueOf(*pair.previous);
      }
      changes.push_back(std::move(change));
    }
  }
}

void WatchWorkload::Start(int clients, Micros stalls_end_us, Micros end_us) {
  stalls_end_us_ = stalls_end_us;
  world_->queue().At(end_us - kLivenessLagUs, [this] { Mark(); });
  clients_.resize(static_cast<size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    Client& client = clients_[i];
    client.id = i;
    client.random = random_.Fork(i);
    client.session = auth_->NewSession(AuthWorkload::kClientUser);
    client.period_us = client.random.Range(1'000, 20'000);
    int watchers = static_cast<int>(client.random.Range(1, 3));
    for (int w = 0; w < watchers; ++w) {
      Watcher watcher;
      uint64_t kind = client.random.Uniform(4);
      if (kind == 0) {
        watcher.key = RegisterKey(0);
      } else if (kind == 1) {
        watcher.key = "lease/";  // the lease keys: deleted by expiry
        watcher.range_end = kv::PrefixEnd("lease/");
      } else if (kind == 2) {
        watcher.key = std::string(1, '\0');  // every key
        watcher.range_end = std::string(1, '\0');
      } else {
        watcher.key = kRegisterPrefix;  // the register keys
        watcher.range_end = kv::PrefixEnd(kRegisterPrefix);
      }
      watcher.prev_kv = client.random.Chance(0.3);
      if (client.random.Chance(0.15)) {
        (client.random.Chance(0.5) ? watcher.no_put : watcher.no_delete) = true;
      }
      client.watchers.push_back(std::move(watcher));
    }
    world_->queue().At(client.random.Range(0, 300'000), [this, &client] {
      // Some watchers start in the past (perhaps below the compaction).
      for (Watcher& watcher : client.watchers) {
        if (client.random.Chance(0.3)) {
          watcher.next_revision =
              std::max<int64_t>(1, recorded_through_ - static_cast<int64_t>(client.random.Range(0, 60)));
        }
      }
      Connect(client);
    });
  }
}

bool WatchWorkload::StreamAlive(Client& client) {
  if (client.sink == nullptr || client.member == 0) return false;
  Process& process = world_->process(client.member);
  if (!process.up() || process.generation != client.generation) return false;
  // A member that left the cluster applies nothing more: go elsewhere.
  if (process.member()->removed_from_cluster()) return false;
  return true;
}

void WatchWorkload::Connect(Client& client) {
  if (world_->failed()) return;
  client.sink.reset();
  client.member = 0;
  for (Watcher& watcher : client.watchers) watcher.local_id = -1;
  std::vector<NodeId> candidates;
  for (NodeId id : world_->Members()) {
    Process& process = world_->process(id);
    if (process.up() && !process.paused) candidates.push_back(id);
  }
  if (candidates.empty()) {
    world_->queue().After(20'000, [this, &client] { Connect(client); });
    return;
  }
  NodeId target = candidates[client.random.Uniform(candidates.size())];
  Process& process = world_->process(target);
  client.sink = std::make_shared<Sink>();
  client.member = target;
  client.generation = process.generation;
  world_->trace().Event("watch.connect", static_cast<uint64_t>(client.id), target, [&] {
    return absl::StrCat("watch client ", client.id, " opens a stream on member ", target);
  });
  world_->RunOn(process, [this, &client, &process, sink = client.sink] {
    if (client.sink != sink) return;  // it went elsewhere meanwhile
    absl::StatusOr<kv::AuthInfo> who = auth_->Who(process, client.session);
    if (!who.ok()) {
      // Not logged in here (yet): the next drain finds no stream and
      // connects again.
      client.sink.reset();
      return;
    }
    client.stream = process.kv->watch_streams().Open(client.sink, client.session.token);
    for (size_t w = 0; w < client.watchers.size(); ++w) CreateOn(client, w);
  });
  world_->queue().After(client.period_us, [this, &client] { Drain(client); });
}

void WatchWorkload::CreateOn(Client& client, size_t index) {
  Watcher& watcher = client.watchers[index];
  etcdserverpb::WatchCreateRequest create;
  create.set_key(watcher.key);
  create.set_range_end(watcher.range_end);
  create.set_start_revision(watcher.next_revision);
  create.set_prev_kv(watcher.prev_kv);
  create.set_progress_notify(index == 0);
  if (watcher.no_put) create.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (watcher.no_delete) create.add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  watcher.creating = true;
  client.sink->creating.push_back(index);
  world_->process(client.member).kv->watch_streams().Create(client.stream, create);
}

void WatchWorkload::Drain(Client& client) {
  if (world_->failed()) return;
  if (!StreamAlive(client)) {
    ++stats_.failovers;
    world_->queue().After(client.random.Range(5'000, 50'000), [this, &client] { Connect(client); });
    return;
  }
  Micros now_us = world_->queue().now_us();
  stats_.max_pending = std::max(stats_.max_pending, client.sink->max_pending);
  size_t bound = world_->swarm().watch_queue_bound;
  if (client.sink->max_pending > bound + kPendingSlack) {
    world_->Fail("watch-backpressure",
                 absl::StrCat("watch client ", client.id, "'s stream on member ", client.member,
                              " held ", client.sink->max_pending, " responses (the bound is ",
                              bound, ")"));
    return;
  }
  if (now_us >= client.stalled_until_us) {
    for (int read = 0; read < 16 && !client.sink->queue.empty() && !world_->failed(); ++read) {
      Check(client, client.sink->queue.Pop());
      if (client.sink->queue.empty() && client.sink->blocked && StreamAlive(client)) {
        // Read all it held after the member found it full: wake the member
        // (as the server's stream does when its writes are out).
        client.sink->blocked = false;
        world_->RunOn(world_->process(client.member), [] {});
      }
    }
    if (client.reopen && StreamAlive(client)) {
      Process& process = world_->process(client.member);
      world_->RunOn(process, [&client, &process, stream = client.stream] {
        process.kv->watch_streams().Close(stream);
      });
      client.sink.reset();  // the next drain reconnects
    }
    client.reopen = false;
    if (now_us < stalls_end_us_ && client.random.Chance(0.01)) {
      // The client stops reading for a while (a slow consumer).
      client.stalled_until_us = std::min(stalls_end_us_, now_us + client.random.Range(100'000, 1'500'000));
    }
    if (client.random.Chance(0.05)) {
      Process& process = world_->process(client.member);
      world_->RunOn(process, [&client, &process] {
        process.kv->watch_streams().RequestProgress(client.stream);
      });
    }
  }
  world_->queue().After(client.period_us, [this, &client] { Drain(client); });
}

WatchWorkload::Watcher* WatchWorkload::ByLocalId(Client& client, int64_t local_id) {
  for (Watcher& watcher : client.watchers) {
    if (watcher.local_id == local_id && local_id >= 0) return &watcher;
  }
  return nullptr;
}

bool WatchWorkload::Matches(const Watcher& watcher, const Change& change) const {
  if ((watcher.no_put && !change.deleted) || (watcher.no_delete && change.deleted)) return false;
  if (watcher.range_end.empty()) return change.key == watcher.key;
  if (change.key < watcher.key) return false;
  bool unbounded = watcher.range_end.size() == 1 && watcher.range_end[0] == '\0';
  return unbounded || change.key < watcher.range_end;
}

bool WatchWorkload::NoneBetween(const Watcher& watcher, int64_t from, int64_t through,
                                const char* what, Client& client) {
  for (auto it = revisions_.lower_bound(from); it != revisions_.end() && it->first <= through;
       ++it) {
    for (const Change& change : it->second) {
      if (!Matches(watcher, change)) continue;
      world_->Fail(what, absl::StrCat("watch client ", client.id, " on member ", client.member,
                                      " (watching ", Describe(watcher.key, watcher.range_end), ") never got the ",
                                      change.deleted ? "delete" : "put", " of ", change.key,
                                      " at revision ", it->first, ", but went on past it"));
      return false;
    }
  }
  return true;
}

void WatchWorkload::Check(Client& client, const etcdserverpb::WatchResponse& response) {
  int64_t revision = response.header().revision();
  world_->trace().Event("watch.read", static_cast<uint64_t>(client.id),
                        static_cast<uint64_t>(response.watch_id()), [&] {
                          std::string events;
                          for (const auto& e : response.events()) {
                            absl::StrAppend(&events, " ", e.type() == mvccpb::Event::DELETE ? "del " : "put ",
                                            e.kv().key(), "@", e.kv().mod_revision());
                          }
                          return absl::StrCat("watch client ", client.id, " reads watch ",
                                              response.watch_id(), " rev ", revision,
                                              response.created() ? " created" : "",
                                              response.canceled() ? " canceled" : "",
                                              " compact ", response.compact_revision(), events);
                        });
  if (response.watch_id() == -1) {
    // The stream's progress: every watcher has seen everything through it.
    ++stats_.progress;
    for (Watcher& watcher : client.watchers) {
      if (watcher.local_id < 0 || watcher.creating) continue;
      if (!NoneBetween(watcher, watcher.next_revision, revision, "watch-progress", client)) return;
      watcher.next_revision = std::max(watcher.next_revision, revision + 1);
    }
    return;
  }
  if (response.created()) {
    OnCreated(client, response);
    return;
  }
  Watcher* watcher = ByLocalId(client, response.watch_id());
  if (watcher == nullptr) {
    world_->Fail("watch", absl::StrCat("watch client ", client.id, " got a response for watch ",
                                       response.watch_id(), ", which it does not have"));
    return;
  }
  if (response.canceled()) {
    if (response.compact_revision() <= 0) {
      world_->Fail("watch", absl::StrCat("watch client ", client.id, "'s watcher was cancelled: ",
                                         response.cancel_reason()));
      return;
    }
    // Compacted: the revisions below it are gone; start again from there.
    ++stats_.compacted;
    watcher->next_revision = std::max(watcher->next_revision, response.compact_revision());
    watcher->local_id = -1;
    Process& process = world_->process(client.member);
    size_t index = static_cast<size_t>(watcher - client.watchers.data());
    world_->RunOn(process, [this, &client, index] { CreateOn(client, index); });
    return;
  }
  if (response.events_size() == 0) {
    // A progress notification for this watcher.
    ++stats_.progress;
    if (!NoneBetween(*watcher, watcher->next_revision, revision, "watch-progress", client)) return;
    watcher->next_revision = std::max(watcher->next_revision, revision + 1);
    return;
  }
  CheckEvents(client, *watcher, response);
}

void WatchWorkload::OnCreated(Client& client, const etcdserverpb::WatchResponse& response) {
  ETC_CHECK(!client.sink->creating.empty()) << "a created response nobody asked for";
  Watcher& watcher = client.watchers[client.sink->creating.front()];
  client.sink->creating.pop_front();
  watcher.creating = false;
  // A refused watcher is not on the stream: the stream's progress says
  // nothing of it (voters=7 seed 229 judged one by it after its re-creation
  // from a compacted revision was refused for a token the member lacked).
  watcher.local_id = response.canceled() ? -1 : response.watch_id();
  if (response.canceled()) {
    if (auth_->enabled() && (response.cancel_reason() == kv::InvalidAuthTokenError().message() ||
                             response.cancel_reason() == kv::UserEmptyError().message())) {
      // The member does not know the token (it restored a snapshot, which
      // holds no tokens, or learned of auth only since the stream opened):
      // log in again and reopen, as a client does.
      client.session.token.reset();
      client.reopen = true;
      return;
    }
    world_->Fail("watch", absl::StrCat("watch client ", client.id, "'s watcher was refused: ",
                                       response.cancel_reason()));
    return;
  }
  // A start of 0 is the revision after the member's current one.
  if (watcher.next_revision == 0) watcher.next_revision = response.header().revision() + 1;
}

void WatchWorkload::CheckEvents(Client& client, Watcher& watcher,
                                const etcdserverpb::WatchResponse& response) {
  int i = 0;
  while (i < response.events_size() && !world_->failed()) {
    int64_t revision = response.events(i).kv().mod_revision();
    auto fail = [&](const std::string& what) {
      world_->Fail("watch", absl::StrCat("watch client ", client.id, " on member ", client.member,
                                         " (watching ", Describe(watcher.key, watcher.range_end), "), revision ", revision,
                                         ": ", what));
    };
    if (revision < watcher.next_revision) {
      fail(absl::StrCat("an event it had seen, or out of order (expected revision ",
                        watcher.next_revision, " or later)"));
      return;
    }
    if (revision > recorded_through_) {
      fail("an event of a revision no member applied");
      return;
    }
    if (!NoneBetween(watcher, watcher.next_revision, revision - 1, "watch-gap", client)) return;
    std::vector<const Change*> expected;
    for (const Change& change : revisions_[revision]) {
      if (Matches(watcher, change)) expected.push_back(&change);
    }
    size_t n = 0;
    for (; i < response.events_size() && response.events(i).kv().mod_revision() == revision; ++i) {
      const mvccpb::Event& event = response.events(i);
      if (n >= expected.size()) {
        fail(absl::StrCat("more events than the revision has for it (", expected.size(), ")"));
        return;
      }
      const Change& change = *expected[n++];
      bool deleted = event.type() == mvccpb::Event::DELETE;
      if (event.kv().key() != change.key || deleted != change.deleted ||
          (!deleted && event.kv().value() != change.value)) {
        fail(absl::StrCat("got ", deleted ? "delete " : "put ", event.kv().key(), " = ",
                          event.kv().value(), ", the revision has ",
                          change.deleted ? "delete " : "put ", change.key, " = ", change.value));
        return;
      }
      if (event.has_prev_kv() &&
          (!change.previous.has_value() || event.prev_kv().value() != *change.previous)) {
        fail(absl::StrCat("prev_kv of ", change.key, " is ", event.prev_kv().value(), ", was ",
                          change.previous.value_or("(none)")));
        return;
      }
      ++stats_.events;
    }
    if (n != expected.size()) {
      fail(absl::StrCat(n, " of the revision's ", expected.size(), " events for it"));
      return;
    }
    watcher.next_revision = revision + 1;
  }
}

void WatchWorkload::Mark() {
  for (Client& client : clients_) {
    client.mark_member = 0;
    if (!StreamAlive(client) || world_->process(client.member).paused) continue;
    client.mark_member = client.member;
    client.mark_generation = client.generation;
    client.mark_revision = world_->process(client.member).store().revision();
  }
}

void WatchWorkload::CheckEnd() {
  std::vector<NodeId> members = world_->Members();
  for (Client& client : clients_) {
    if (world_->failed()) return;
    // The same stream as at the mark, on a running member of the cluster.
    if (client.mark_member == 0 || client.member != client.mark_member ||
        client.generation != client.mark_generation || !StreamAlive(client) ||
        world_->process(client.member).paused ||
        std::find(members.begin(), members.end(), client.member) == members.end()) {
      continue;
    }
    while (!client.sink->queue.empty() && !world_->failed()) Check(client, client.sink->queue.Pop());
    for (Watcher& watcher : client.watchers) {
      if (watcher.local_id < 0 || watcher.creating) continue;
      for (auto it = revisions_.lower_bound(watcher.next_revision);
           it != revisions_.end() && it->first <= client.mark_revision; ++it) {
        for (const Change& change : it->second) {
          if (!Matches(watcher, change)) continue;
          world_->Fail("watch-liveness",
                       absl::StrCat("watch client ", client.id, " on member ", client.member,
                                    " (watching ", Describe(watcher.key, watcher.range_end), ") has not seen revision ",
                                    it->first, ", which that member had applied ",
                                    kLivenessLagUs / 1000, "ms before the end"));
          return;
        }
      }
    }
  }
}

}  // namespace etc::sim
