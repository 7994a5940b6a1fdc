#include "kv/watch.h"

#include "base/check.h"
#include "kv/errors.h"

namespace etc::kv {

WatchHub::WatchHub(const Keyspace* keys, WatchLimits limits)
    : keys_(keys), limits_(limits), notified_through_(keys->revision()) {
  ETC_CHECK(limits_.max_queued_events > 0 && limits_.catch_up_events > 0);
}

absl::StatusOr<WatcherId> WatchHub::Create(const etcdserverpb::WatchCreateRequest& request) {
  if (request.key().empty()) return EmptyKeyError();
  if (request.start_revision() < 0) {
    return absl::InvalidArgumentError("etcdserver: negative start revision");
  }
  Watcher watcher;
  watcher.id = next_id_++;
  watcher.key = request.key();
  watcher.range_end = request.range_end();
  watcher.prev_kv = request.prev_kv();
  for (int filter : request.filters()) {
    if (filter == etcdserverpb::WatchCreateRequest::NOPUT) watcher.no_put = true;
    if (filter == etcdserverpb::WatchCreateRequest::NODELETE) watcher.no_delete = true;
  }
  // Start revision 0 means "from the next revision on" (etcd #11496).
  Revision now = keys_->revision();
  watcher.next_revision = request.start_revision() == 0 ? now + 1 : request.start_revision();
  // A future start revision waits, live, for its revision (etcd #20221:
  // no event below it is ever delivered).
  watcher.synced = watcher.next_revision > now;
  WatcherId id = watcher.id;
  auto [it, inserted] = watchers_.emplace(id, std::move(watcher));
  Watcher& w = it->second;
  Index(w);
  etcdserverpb::WatchResponse created;
  created.set_watch_id(id);
  created.set_created(true);
  created.mutable_header()->set_revision(now);
  Enqueue(w, std::move(created), 0);
  if (!w.synced) CatchUp(w);
  return id;
}

std::optional<etcdserverpb::WatchResponse> WatchHub::Cancel(WatcherId id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return std::nullopt;
  Unindex(it->second);
  queued_bytes_ -= it->second.queued_bytes;
  watchers_.erase(it);
  ready_.erase(id);
  etcdserverpb::WatchResponse canceled;
  canceled.set_watch_id(id);
  canceled.set_canceled(true);
  canceled.mutable_header()->set_revision(keys_->revision());
  return canceled;
}

void WatchHub::Index(const Watcher& watcher) {
  if (watcher.range_end.empty()) {
    key_watchers_[watcher.key].insert(watcher.id);
  } else {
    range_watchers_.insert(watcher.id);
  }
}

void WatchHub::Unindex(const Watcher& watcher) {
  if (watcher.range_end.empty()) {
    auto it = key_watchers_.find(watcher.key);
    if (it == key_watchers_.end()) return;
    it->second.erase(watcher.id);
    if (it->second.empty()) key_watchers_.erase(it);
  } else {
    range_watchers_.erase(watcher.id);
  }
}

bool WatchHub::Wants(const Watcher& watcher, const Change& change,
                     const Keyspace::VersionPair& pair) const {
  if (pair.current == nullptr) return false;
  if (!watcher.range().Contains(change.key())) return false;
  return pair.current->tombstone() ? !watcher.no_delete : !watcher.no_put;
}

const mvccpb::KeyValue& WatchHub::ChangeKvs::Current() {
  if (!current.has_value()) current = keys->ToKeyValue(key, *pair.current);
  return *current;
}

const mvccpb::KeyValue& WatchHub::ChangeKvs::Previous() {
  if (!previous.has_value()) previous = keys->ToKeyValue(key, *pair.previous);
  return *previous;
}

void WatchHub::MakeEvent(const Watcher& watcher, ChangeKvs& kvs, mvccpb::Event* event) const {
  if (kvs.pair.current->tombstone()) {
    event->set_type(mvccpb::Event::DELETE);
    event->mutable_kv()->set_key(kvs.key.data(), kvs.key.size());
    event->mutable_kv()->set_mod_revision(kvs.pair.current->mod_revision);
  } else {
    event->set_type(mvccpb::Event::PUT);
    *event->mutable_kv() = kvs.Current();
  }
  if (watcher.prev_kv && kvs.pair.previous != nullptr) *event->mutable_prev_kv() = kvs.Previous();
}

void WatchHub::Enqueue(Watcher& watcher, etcdserverpb::WatchResponse response, size_t events) {
  size_t bytes = response.ByteSizeLong();
  watcher.queue.push_back(std::move(response));
  watcher.queued_events += events;
  watcher.queued_bytes += bytes;
  queued_bytes_ += bytes;
  ready_.insert(watcher.id);
  unchecked_queues_.insert(watcher.id);
}

void WatchHub::Notify() {
  Revision now = keys_->revision();
  if (now <= notified_through_) return;
  Revision from = notified_through_ + 1;
  notified_through_ = now;
  // Each synced watcher's events over the new revisions go straight into
  // the response it will get (Watcher::building): with a hundred watchers
  // on a key, every allocation saved here is saved a hundred times a write.
  auto consider = [&](WatcherId id, const Change& change, ChangeKvs& kvs) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) return;
    Watcher& watcher = it->second;
    if (!watcher.synced || watcher.canceled || change.revision < watcher.next_revision) return;
    if (!Wants(watcher, change, kvs.pair)) return;
    if (!watcher.building.has_value()) watcher.building.emplace();
    MakeEvent(watcher, kvs, watcher.building->add_events());
  };
  if (from < keys_->compact_revision()) from = keys_->compact_revision();
  for (auto change = keys_->ChangesFrom(from); change != keys_->changes_end(); ++change) {
    ChangeKvs kvs{keys_, change->key(), Keyspace::VersionAt(*change)};
    auto by_key = key_watchers_.find(change->key());
    if (by_key != key_watchers_.end()) {
      for (WatcherId id : by_key->second) consider(id, *change, kvs);
    }
    for (WatcherId id : range_watchers_) consider(id, *change, kvs);
  }
  for (auto& [id, watcher] : watchers_) {
    if (!watcher.synced || watcher.canceled) continue;
    if (watcher.building.has_value()) {
      etcdserverpb::WatchResponse response = std::move(*watcher.building);
      watcher.building.reset();
      if (!HasRoom(watcher) || queued_bytes_ >= limits_.max_queued_bytes) {
        // Too far behind (or the hub holds all it may): stop queueing live
        // events; Take catches it up from history, starting with the
        // revisions dropped here, once its client reads (ready even with
        // an empty queue, so that Take comes).
        watcher.synced = false;
        ready_.insert(id);
        continue;
      }
      response.set_watch_id(id);
      response.mutable_header()->set_revision(now);
      size_t count = static_cast<size_t>(response.events_size());
      Enqueue(watcher, std::move(response), count);
    }
    watcher.next_revision = std::max(watcher.next_revision, now + 1);
  }
}

void WatchHub::OnRestore() {
  notified_through_ = keys_->revision();
  for (auto& [id, watcher] : watchers_) {
    if (watcher.canceled) continue;
    if (watcher.next_revision <= keys_->revision()) {
      watcher.synced = false;
      // Top up now if it has room; otherwise Take will.
      if (HasRoom(watcher)) CatchUp(watcher);
    }
  }
}

void WatchHub::CancelCompacted(Watcher& watcher) {
  watcher.canceled = true;
  watcher.synced = false;
  etcdserverpb::WatchResponse canceled;
  canceled.set_watch_id(watcher.id);
  canceled.set_canceled(true);
  canceled.set_compact_revision(keys_->compact_revision());
  canceled.set_cancel_reason("mvcc: required revision has been compacted");
  canceled.mutable_header()->set_revision(keys_->revision());
  Enqueue(watcher, std::move(canceled), 0);
}

void WatchHub::CatchUp(Watcher& watcher) {
  if (watcher.synced || watcher.canceled) return;
  Revision now = keys_->revision();
  if (watcher.next_revision < keys_->compact_revision()) {
    CancelCompacted(watcher);
    return;
  }
  etcdserverpb::WatchResponse response;
  size_t events_bytes = 0;
  // The revision being read, and the first one left unread (0: none).
  Revision reading = 0;
  Revision stopped_at = 0;
  for (auto change = keys_->ChangesFrom(watcher.next_revision); change != keys_->changes_end();
       ++change) {
    // Stop between revisions (never inside one) once enough was gathered.
    if ((static_cast<size_t>(response.events_size()) >= limits_.catch_up_events ||
         events_bytes >= limits_.catch_up_bytes) &&
        change->revision != reading) {
      stopped_at = change->revision;
      break;
    }
    reading = change->revision;
    ChangeKvs kvs{keys_, change->key(), Keyspace::VersionAt(*change)};
    if (Wants(watcher, *change, kvs.pair)) {
      mvccpb::Event* event = response.add_events();
      MakeEvent(watcher, kvs, event);
      events_bytes += event->ByteSizeLong();
    }
  }
  watcher.next_revision = stopped_at == 0 ? now + 1 : stopped_at;
  if (response.events_size() > 0) {
    response.set_watch_id(watcher.id);
    response.mutable_header()->set_revision(now);
    size_t count = static_cast<size_t>(response.events_size());
    Enqueue(watcher, std::move(response), count);
  }
  if (watcher.next_revision > now) watcher.synced = true;
}

std::vector<WatcherId> WatchHub::TakeReady() {
  std::vector<WatcherId> ready(ready_.begin(), ready_.end());
  ready_.clear();
  return ready;
}

std::vector<etcdserverpb::WatchResponse> WatchHub::Take(WatcherId id, size_t max_responses,
                                                        size_t max_bytes) {
  std::vector<etcdserverpb::WatchResponse> out;
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return out;
  Watcher& watcher = it->second;
  // A watcher that fell behind with nothing queued (the hub's budget was
  // spent by others) reads history first, so that a Take that finds
  // nothing means there is nothing.
  if (watcher.queue.empty() && !watcher.synced && !watcher.canceled) CatchUp(watcher);
  size_t taken_bytes = 0;
  while (out.size() < max_responses && !watcher.queue.empty() &&
         (out.empty() || taken_bytes < max_bytes)) {
    size_t bytes = watcher.queue.front().ByteSizeLong();
    watcher.queued_events -= static_cast<size_t>(watcher.queue.front().events_size());
    watcher.queued_bytes -= bytes;
    queued_bytes_ -= bytes;
    taken_bytes += bytes;
    out.push_back(std::move(watcher.queue.front()));
    watcher.queue.pop_front();
  }
  unchecked_queues_.insert(id);
  bool was_canceled = watcher.canceled;
  // From history, at the client's pace (not bound by the hub's budget,
  // which only stops live events: a client that reads must progress).
  if (!watcher.synced && !watcher.canceled && HasRoom(watcher)) CatchUp(watcher);
  if (!watcher.queue.empty()) ready_.insert(id);
  if (was_canceled && watcher.queue.empty()) {
    // Its cancellation was delivered: it is gone.
    Unindex(watcher);
    watchers_.erase(it);
    ready_.erase(id);
  }
  return out;
}

std::optional<etcdserverpb::WatchResponse> WatchHub::Progress(WatcherId id) const {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return std::nullopt;
  const Watcher& watcher = it->second;
  if (!watcher.synced || watcher.canceled || !watcher.queue.empty()) return std::nullopt;
  etcdserverpb::WatchResponse progress;
  progress.set_watch_id(id);
  progress.mutable_header()->set_revision(keys_->revision());
  return progress;
}

size_t WatchHub::queued_events(WatcherId id) const {
  auto it = watchers_.find(id);
  return it == watchers_.end() ? 0 : it->second.queued_events;
}

size_t WatchHub::queued_bytes(WatcherId id) const {
  auto it = watchers_.find(id);
  return it == watchers_.end() ? 0 : it->second.queued_bytes;
}

bool WatchHub::synced(WatcherId id) const {
  auto it = watchers_.find(id);
  return it != watchers_.end() && it->second.synced;
}

void WatchHub::CheckInvariants() const {
  ETC_CHECK_EQ(notified_through_, keys_->revision()) << "Notify was not called after a write";
  // Queued responses never change in place: a queue is walked again (its
  // sizes summed, its order checked) only after responses were added to or
  // taken from it since the last check, not on every check (the simulator
  // checks after every apply, and sizing every queued response each time
  // cost more than the apply).
  for (WatcherId id : unchecked_queues_) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) continue;  // its cancellation was delivered
    const Watcher& watcher = it->second;
    ETC_CHECK(!watcher.building.has_value()) << "watcher " << id << " left a response half-built";
    size_t events = 0;
    size_t bytes = 0;
    Revision last = 0;
    for (const auto& response : watcher.queue) {
      events += static_cast<size_t>(response.events_size());
      bytes += response.ByteSizeLong();
      for (const auto& event : response.events()) {
        ETC_CHECK_GE(event.kv().mod_revision(), last) << "watcher " << id << " out of order";
        last = event.kv().mod_revision();
      }
    }
    ETC_CHECK_EQ(events, watcher.queued_events);
    ETC_CHECK_EQ(bytes, watcher.queued_bytes);
    watcher.last_queued_revision = last;
  }
  unchecked_queues_.clear();
  size_t total_bytes = 0;
  for (const auto& [id, watcher] : watchers_) {
    total_bytes += watcher.queued_bytes;
    ETC_CHECK(watcher.last_queued_revision < watcher.next_revision)
        << "watcher " << id << " queued past next_revision";
    if (watcher.synced) ETC_CHECK_GT(watcher.next_revision, keys_->revision());
  }
  ETC_CHECK_EQ(total_bytes, queued_bytes_);
}

}  // namespace etc::kv
