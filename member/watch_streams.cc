#include "member/watch_streams.h"

#include <algorithm>
#include <utility>

#include "base/check.h"
#include "member/watch_fragment.h"

namespace etc::member {
namespace {

// How many times one delivery goes back to the key tree for more of a
// watcher's responses (each time as many as the stream has room for).
constexpr int kMaxDeliveryRounds = 8;

}  // namespace

// ------------------------------------------------------------------ queue --

void WatchQueue::Push(std::vector<etcdserverpb::WatchResponse> responses,
                      size_t merge_limit_bytes) {
  for (etcdserverpb::WatchResponse& response : responses) {
    if (!queue_.empty() && merge_limit_bytes > 0 && tail_mergeable_ &&
        MergeWatchResponse(&queue_.back(), &tail_bytes_, &response, merge_limit_bytes)) {
      bytes_ += tail_bytes_ - sizes_.back();
      sizes_.back() = tail_bytes_;
      continue;
    }
    size_t size = response.ByteSizeLong();
    tail_mergeable_ = merge_limit_bytes > 0;
    tail_bytes_ = tail_mergeable_ ? size : 0;
    queue_.push_back(std::move(response));
    sizes_.push_back(size);
    bytes_ += size;
  }
}

etcdserverpb::WatchResponse WatchQueue::Pop() {
  ETC_CHECK(!queue_.empty());
  etcdserverpb::WatchResponse front = std::move(queue_.front());
  queue_.pop_front();
  bytes_ -= sizes_.front();
  sizes_.pop_front();
  // The response now in flight can take no more events.
  if (queue_.empty()) tail_mergeable_ = false;
  return front;
}

void WatchQueue::Clear() {
  queue_.clear();
  sizes_.clear();
  bytes_ = 0;
  tail_mergeable_ = false;
  tail_bytes_ = 0;
}

// ---------------------------------------------------------------- streams --

WatchStreams::WatchStreams(kv::Store* store, WatchStreamsOptions options)
    : store_(store), options_(options) {}

WatchStreams::StreamId WatchStreams::Open(std::shared_ptr<WatchSink> sink,
                                          std::optional<std::string> token) {
  StreamId id = next_stream_++;
  Stream& stream = streams_[id];
  stream.sink = std::move(sink);
  stream.token = std::move(token);
  return id;
}

void WatchStreams::Close(StreamId stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  for (const auto& [hub, local] : it->second.local_of) {
    store_->watches().Cancel(hub);
    owner_.erase(hub);
    deferred_.erase(hub);
  }
  streams_.erase(it);
}

void WatchStreams::Refuse(Stream& stream, int64_t watch_id, std::string reason) {
  etcdserverpb::WatchResponse refused;
  refused.set_watch_id(watch_id);
  refused.set_created(true);
  refused.set_canceled(true);
  refused.set_cancel_reason(std::move(reason));
  std::vector<etcdserverpb::WatchResponse> one;
  one.push_back(std::move(refused));
  stream.sink->Push(std::move(one), 0);
}

void WatchStreams::Create(StreamId stream_id, const etcdserverpb::WatchCreateRequest& request) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  int64_t local = request.watch_id();
  if (local < 0) {
    // -1 is the id progress notifications for the whole stream carry: a
    // watcher with it could not tell its own from them.
    Refuse(stream, local, "etcdserver: invalid watch ID");
    return;
  }
  if (local == 0) {
    while (stream.hub_of.contains(stream.next_local)) ++stream.next_local;
    local = stream.next_local++;
  }
  if (stream.hub_of.contains(local)) {
    Refuse(stream, local, "etcdserver: duplicate watch ID");
    return;
  }
  if (stream.hub_of.size() >= options_.max_watchers_per_stream) {
    Refuse(stream, local, "etcdserver: too many watchers on this stream");
    return;
  }
  absl::StatusOr<kv::AuthInfo> who =
      resolver_ ? resolver_(stream.token) : absl::StatusOr<kv::AuthInfo>(kv::AuthInfo{});
  if (!who.ok()) {
    Refuse(stream, local, std::string(who.status().message()));
    return;
  }
  absl::StatusOr<kv::WatcherId> id = store_->CreateWatch(*who, request);
  if (!id.ok()) {
    Refuse(stream, local, std::string(id.status().message()));
    return;
  }
  stream.local_of[*id] = local;
  stream.hub_of[local] = *id;
  if (request.fragment()) stream.fragmenting.insert(local);
  if (request.progress_notify()) stream.progress_notify.insert(local);
  owner_[*id] = stream_id;
  // The created response goes out now, whatever the stream holds: clients
  // match created responses to their create requests by order (etcd's
  // clientv3 does), so it must never wait behind another watcher's. What
  // follows it (from a compacted start, the cancellation) takes its turn.
  std::vector<etcdserverpb::WatchResponse> created = store_->watches().Take(*id, 1);
  ETC_CHECK(created.size() == 1 && created[0].created());
  created[0].set_watch_id(local);
  stream.sink->Push(std::move(created), 0);
  deferred_.insert(*id);
  if (DeliverOne(*id)) deferred_.erase(*id);
}

void WatchStreams::Forget(Stream& stream, kv::WatcherId hub) {
  auto local = stream.local_of.find(hub);
  if (local != stream.local_of.end()) {
    stream.fragmenting.erase(local->second);
    stream.progress_notify.erase(local->second);
    stream.hub_of.erase(local->second);
    stream.local_of.erase(local);
  }
  owner_.erase(hub);
  deferred_.erase(hub);
}

void WatchStreams::Cancel(StreamId stream_id, int64_t watch_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  auto hub = stream.hub_of.find(watch_id);
  if (hub == stream.hub_of.end()) return;
  kv::WatcherId id = hub->second;
  std::optional<etcdserverpb::WatchResponse> canceled = store_->watches().Cancel(id);
  Forget(stream, id);
  if (canceled.has_value()) {
    canceled->set_watch_id(watch_id);
    std::vector<etcdserverpb::WatchResponse> one;
    one.push_back(std::move(*canceled));
    stream.sink->Push(std::move(one), 0);
  }
}

void WatchStreams::RequestProgress(StreamId stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second.progress_wanted = true;
  TryProgress(it->second);
}

void WatchStreams::TryProgress(Stream& stream) {
  if (!stream.progress_wanted || Full(stream)) return;
  // Only when every watcher of the stream has seen everything (a progress
  // notification must never overtake events, etcd #15220).
  for (const auto& [hub, local] : stream.local_of) {
    if (deferred_.contains(hub) || !store_->watches().Progress(hub).has_value()) return;
  }
  stream.progress_wanted = false;
  etcdserverpb::WatchResponse progress;
  progress.set_watch_id(-1);
  progress.mutable_header()->set_revision(store_->revision());
  std::vector<etcdserverpb::WatchResponse> one;
  one.push_back(std::move(progress));
  stream.sink->Push(std::move(one), 0);
}

bool WatchStreams::DeliverOne(kv::WatcherId hub_id) {
  auto owner = owner_.find(hub_id);
  if (owner == owner_.end()) return true;  // its stream is gone
  Stream& stream = streams_.at(owner->second);
  if (Full(stream)) {
    stream.sink->Blocked();
    return false;
  }
  size_t pending = stream.sink->Pending();
  int64_t local = stream.local_of.at(hub_id);
  bool fragmenting = stream.fragmenting.contains(local);
  // Revisions that queued up while the stream was busy go out as one
  // message, small enough that a stream's queue stays as bounded as the
  // hub's (a fragmenting watcher's pieces keep their own sizes).
  size_t merge_limit =
      fragmenting ? 0 : std::min(options_.max_merged_bytes, options_.max_fragment_bytes);
  kv::WatchHub& hub = store_->watches();
  // Responses merge as they go in, so a stream's slots count messages, not
  // revisions: take more while they still fit (a watcher catching up from
  // history reads one revision per response), a few rounds at most.
  for (int round = 0; round < kMaxDeliveryRounds && !Full(stream); ++round) {
    std::vector<etcdserverpb::WatchResponse> responses =
        hub.Take(hub_id, options_.max_queued_responses - pending,
                 options_.max_queued_bytes - stream.sink->PendingBytes());
    if (responses.empty()) break;
    for (etcdserverpb::WatchResponse& response : responses) response.set_watch_id(local);
    if (fragmenting) {
      std::vector<etcdserverpb::WatchResponse> pieces;
      for (etcdserverpb::WatchResponse& response : responses) {
        for (etcdserverpb::WatchResponse& piece :
             FragmentWatchResponse(std::move(response), options_.max_fragment_bytes)) {
          pieces.push_back(std::move(piece));
        }
      }
      responses = std::move(pieces);
    }
    stream.sink->Push(std::move(responses), merge_limit);
    pending = stream.sink->Pending();
  }
  // Full now, with more perhaps to come: the sink wakes the member when
  // its client has read.
  if (Full(stream)) stream.sink->Blocked();
  // Cancelled (compacted) and delivered: forget it.
  if (!hub.exists(hub_id)) Forget(stream, hub_id);
  return true;
}

void WatchStreams::Deliver(int64_t now_ms) {
  for (kv::WatcherId id : store_->watches().TakeReady()) deferred_.insert(id);
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    kv::WatcherId id = *it;
    // DeliverOne may forget this watcher (never another one).
    auto next = std::next(it);
    // A watcher whose stream is full stays here (the hub reports a watcher
    // ready only once until it is drained).
    if (DeliverOne(id)) deferred_.erase(id);
    it = next;
  }
  for (auto& [id, stream] : streams_) TryProgress(stream);
  NotifyProgress(now_ms);
}

void WatchStreams::NotifyProgress(int64_t now_ms) {
  if (next_progress_ms_ == 0) next_progress_ms_ = now_ms + options_.progress_interval_ms;
  if (now_ms < next_progress_ms_) return;
  next_progress_ms_ = now_ms + options_.progress_interval_ms;
  for (auto& [stream_id, stream] : streams_) {
    // A full stream's client is behind: its notification can wait for the
    // next interval (the bound holds for everything the member pushes).
    if (Full(stream)) continue;
    for (int64_t local : stream.progress_notify) {
      kv::WatcherId hub = stream.hub_of.at(local);
      if (deferred_.contains(hub)) continue;
      std::optional<etcdserverpb::WatchResponse> progress = store_->watches().Progress(hub);
      if (!progress.has_value()) continue;  // events still to deliver come first
      progress->set_watch_id(local);
      std::vector<etcdserverpb::WatchResponse> one;
      one.push_back(std::move(*progress));
      stream.sink->Push(std::move(one), 0);
    }
  }
}

}  // namespace etc::member
