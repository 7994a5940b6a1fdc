// Watches: a member's watchers on keys, ranges, prefixes and subtrees, fed
// from the keyspace's change history. Local state (not replicated): each
// member serves its own clients' watchers from what it applied.
//
// Guarantees: a watcher gets the events of every revision from its start
// revision on, in revision order, each exactly once, and the events of one
// revision in one response. A watcher whose client does not keep up never
// makes memory grow without bound or delays the others: once its queue
// holds `max_queued_events` or `max_queued_bytes_per_watcher` (values
// counted), or all the hub's queues together hold `max_queued_bytes`, it
// stops receiving live events and, as the
// client drains the queue, catches up from the keyspace's history instead;
// if compaction removes history it still needs, it is cancelled with the
// compact revision (the client may start again from there).
//
//   WatchHub hub(&keyspace);
//   WatcherId id = hub.Create(request).value();
//   ... apply writes, then hub.Notify() ...
//   for (WatcherId ready : hub.TakeReady())
//     for (auto& response : hub.Take(ready, 16)) send(response);
#ifndef ETC_KV_WATCH_H_
#define ETC_KV_WATCH_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "kv/keyspace.h"

namespace etc::kv {

using WatcherId = int64_t;

struct WatchLimits {
  // Events queued per watcher before it falls back to catching up.
  size_t max_queued_events = 1024;
  // Events one catch-up step reads from history (whole revisions; a single
  // revision with more events is still delivered whole).
  size_t catch_up_events = 256;
  // The same in bytes (responses' encoded size, values counted), per
  // watcher and for the whole hub: a stalled client's watchers cost at most
  // this, whatever the size of the values written; past it a watcher holds
  // no copies and reads the key tree's history once its client reads.
  size_t max_queued_bytes_per_watcher = 1 << 20;
  size_t max_queued_bytes = 16 << 20;
  // Bytes one catch-up step reads (whole revisions).
  size_t catch_up_bytes = 1 << 20;
};

class WatchHub {
 public:
  explicit WatchHub(const Keyspace* keys, WatchLimits limits = {});
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Creates a watcher. Its first response (created = true) is queued; a
  // start revision below the compaction point queues a cancellation with
  // the compact revision right after it, as etcd does.
  // Errors: kInvalidArgument for an empty key.
  absl::StatusOr<WatcherId> Create(const etcdserverpb::WatchCreateRequest& request);
  // Removes the watcher; returns its cancellation response (nullopt if it
  // did not exist). Undelivered responses are dropped.
  std::optional<etcdserverpb::WatchResponse> Cancel(WatcherId id);

  // Feeds every watcher the revisions applied since the last call. The
  // store calls it after each applied request.
  void Notify();
  // The keyspace was replaced wholesale (a snapshot was installed): every
  // watcher catches up from the new history, or is cancelled if the
  // revisions it needs are gone.
  void OnRestore();

  // Watchers with responses to take (each reported once until drained).
  std::vector<WatcherId> TakeReady();
  // Up to `max_responses` of the watcher's responses, oldest first, and no
  // more once `max_bytes` are taken (at least one); then tops its queue up
  // from history if it had fallen behind.
  std::vector<etcdserverpb::WatchResponse> Take(WatcherId id, size_t max_responses,
                                                size_t max_bytes = SIZE_MAX);
  // A progress notification for the watcher (its header revision says "you
  // have seen everything up to here"), or nullopt while it still has
  // undelivered or not yet caught up events: a progress notification must
  // never overtake events (etcd #15220).
  std::optional<etcdserverpb::WatchResponse> Progress(WatcherId id) const;

  size_t watchers() const { return watchers_.size(); }
  bool exists(WatcherId id) const { return watchers_.contains(id); }
  size_t queued_events(WatcherId id) const;
  size_t queued_bytes(WatcherId id) const;
  // Bytes queued in all watchers.
  size_t queued_bytes() const { return queued_bytes_; }
  // Whether the watcher receives live events (false while it catches up).
  bool synced(WatcherId id) const;

  void CheckInvariants() const;

 private:
  struct Watcher {
    WatcherId id = 0;
    std::string key;
    std::string range_end;
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    // The first revision whose events are not yet queued.
    Revision next_revision = 0;
    bool synced = false;
    bool canceled = false;
    std::deque<etcdserverpb::WatchResponse> queue;
    // The response Notify is building for the revisions it reads (events
    // written into it in place, none copied); empty between calls.
    std::optional<etcdserverpb::WatchResponse> building;
    size_t queued_events = 0;
    size_t queued_bytes = 0;
    // CheckInvariants' record of the newest revision in the queue, as of
    // the last time it walked the queue.
    mutable Revision last_queued_revision = 0;

    KeyRange range() const { return KeyRange{key, range_end}; }
  };

  bool Wants(const Watcher& watcher, const Change& change, const Keyspace::VersionPair& pair) const;
  // One change's key-values, read from the keyspace (its value store may
  // be a file) at most once however many watchers take them.
  struct ChangeKvs {
    const Keyspace* keys;
    std::string_view key;
    Keyspace::VersionPair pair;
    std::optional<mvccpb::KeyValue> current = std::nullopt;
    std::optional<mvccpb::KeyValue> previous = std::nullopt;
    const mvccpb::KeyValue& Current();
    const mvccpb::KeyValue& Previous();
  };
  // Writes the change's event for the watcher into `event`.
  void MakeEvent(const Watcher& watcher, ChangeKvs& kvs, mvccpb::Event* event) const;
  void Enqueue(Watcher& watcher, etcdserverpb::WatchResponse response, size_t events);
  // Whether the watcher's queue has room for more (live or from history).
  bool HasRoom(const Watcher& watcher) const {
    return watcher.queued_events < limits_.max_queued_events &&
           watcher.queued_bytes < limits_.max_queued_bytes_per_watcher;
  }
  // Reads the watcher's events from history, from next_revision on.
  void CatchUp(Watcher& watcher);
  void CancelCompacted(Watcher& watcher);
  void Index(const Watcher& watcher);
  void Unindex(const Watcher& watcher);

  const Keyspace* keys_;
  WatchLimits limits_;
  WatcherId next_id_ = 1;
  // Revisions through which live events were handed out.
  Revision notified_through_ = 0;
  std::map<WatcherId, Watcher> watchers_;
  // Synced watchers by what they watch: single keys by key, ranges listed.
  // Looked up by a change's key without copying it.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };
  std::unordered_map<std::string, std::set<WatcherId>, KeyHash, std::equal_to<>> key_watchers_;
  std::set<WatcherId> range_watchers_;
  std::set<WatcherId> ready_;
  size_t queued_bytes_ = 0;
  // Watchers whose queues changed since CheckInvariants last walked them.
  mutable std::set<WatcherId> unchecked_queues_;
};

}  // namespace etc::kv

#endif  // ETC_KV_WATCH_H_
