// Clients' watch streams on a member: etcd's Watch RPC without the wire.
// A stream holds a client's watchers (created and cancelled by id, each
// with its own flags); after every step the member moves the key tree's
// ready responses (kv::WatchHub) to the streams, but only while a stream's
// client keeps up: at most `max_queued_responses` (and about
// `max_queued_bytes`) wait in a stream, and a
// stream that is behind leaves its backlog in the hub's bounded form, which
// catches up from history later. So a client that stops reading never
// makes memory grow, and never holds up another stream.
//
// The server's gRPC reactor and the simulator's watch clients are both
// WatchSinks; the policy here is what both run.
//
//   WatchStreams streams(&store, {});
//   WatchStreams::StreamId id = streams.Open(sink, token);
//   streams.Create(id, create_request);   // the created response goes to sink
//   streams.Deliver();                    // after every step
//   streams.Close(id);
#ifndef ETC_MEMBER_WATCH_STREAMS_H_
#define ETC_MEMBER_WATCH_STREAMS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "kv/store.h"

namespace etc::member {

// The responses a stream holds for its client, oldest first. A plain event
// response that would wait behind another of its watcher's joins it, up to
// a size (MergeWatchResponse), so that revisions that queued up together go
// as one message. Not thread-safe: its owner locks around it.
class WatchQueue {
 public:
  // Queues `responses` in order; merge_limit_bytes 0: never merge.
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t merge_limit_bytes);
  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }
  // The queued responses' encoded size.
  size_t bytes() const { return bytes_; }
  // Takes the oldest response (requires !empty()).
  etcdserverpb::WatchResponse Pop();
  void Clear();

 private:
  std::deque<etcdserverpb::WatchResponse> queue_;
  // Each response's size as counted in bytes_ (the tail's as merged).
  std::deque<size_t> sizes_;
  size_t bytes_ = 0;
  // Whether queue_.back() may take more events, and its size.
  bool tail_mergeable_ = false;
  size_t tail_bytes_ = 0;
};

// Where a stream's responses go: the client's connection.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Responses queued and not yet taken by the client.
  virtual size_t Pending() = 0;
  // Their encoded size (values counted): what the client's slowness costs
  // the member's memory.
  virtual size_t PendingBytes() = 0;
  // Queues responses for the client, in order (see WatchQueue::Push).
  virtual void Push(std::vector<etcdserverpb::WatchResponse> responses,
                    size_t merge_limit_bytes) = 0;
  // The member found (or left) the stream full: the sink
  // should wake the member (any input will do) once its client has read
  // what it holds, so that a backlog drains at the client's pace rather
  // than at the member's next tick.
  virtual void Blocked() = 0;
};

struct WatchStreamsOptions {
  // Responses a stream may hold before the member stops feeding it, and
  // their bytes (a response or one delivery round may pass the latter).
  size_t max_queued_responses = 64;
  size_t max_queued_bytes = 4 << 20;
  // Revisions merged into one response up to this size.
  size_t max_merged_bytes = 64 * 1024;
  // A fragmenting watcher's pieces stay within this (etcd's request limit).
  size_t max_fragment_bytes = 1536 * 1024;
  // Watchers that asked for progress notifications get one this often
  // (etcd's --experimental-watch-progress-notify-interval).
  int64_t progress_interval_ms = 600'000;
  // Watchers per stream (etcd has no limit; one client cannot make the
  // member track without bound).
  size_t max_watchers_per_stream = 10'000;
};

class WatchStreams {
 public:
  using StreamId = uint64_t;

  WatchStreams(kv::Store* store, WatchStreamsOptions options);

  // Who holds a token now (KvMember::Resolve); not set: nobody, whatever
  // the token.
  using Resolver = std::function<absl::StatusOr<kv::AuthInfo>(const std::optional<std::string>&)>;
  void set_resolver(Resolver resolver) { resolver_ = std::move(resolver); }

  // A client's stream, with the token it opened the stream with (none:
  // nobody). Each create is checked as the token's user is at that
  // moment, as etcd checks each: the member may have learned of the token
  // or of auth only since the stream opened (a member just added), and the
  // user's rights may have changed.
  StreamId Open(std::shared_ptr<WatchSink> sink, std::optional<std::string> token);
  // The client went away: its watchers go too.
  void Close(StreamId stream);
  // A create request: the created (or refused) response goes to the sink
  // at once, in the order of the requests (clients match them by order).
  // A client-chosen id must be unused and not negative (-1 is what
  // progress notifications carry).
  void Create(StreamId stream, const etcdserverpb::WatchCreateRequest& request);
  void Cancel(StreamId stream, int64_t watch_id);
  // A progress request: one notification with watch id -1, once every
  // watcher of the stream has seen everything (never ahead of events) and
  // the stream has room (requests made meanwhile share the answer).
  void RequestProgress(StreamId stream);

  // After every step: moves ready responses to streams that keep up, and
  // sends the periodic progress notifications.
  void Deliver(int64_t now_ms);

  size_t streams() const { return streams_.size(); }
  size_t watchers() const { return owner_.size(); }

 private:
  struct Stream {
    std::shared_ptr<WatchSink> sink;
    std::optional<std::string> token;
    // Hub watcher id <-> the stream's own watch id.
    std::map<kv::WatcherId, int64_t> local_of;
    std::map<int64_t, kv::WatcherId> hub_of;
    int64_t next_local = 0;
    std::set<int64_t> fragmenting;
    std::set<int64_t> progress_notify;
    // A progress request waits for room and for every watcher to catch up.
    bool progress_wanted = false;
  };

  void Refuse(Stream& stream, int64_t watch_id, std::string reason);
  void Forget(Stream& stream, kv::WatcherId hub);
  // Moves one watcher's ready responses to its stream, if it keeps up;
  // false if the stream is full (the watcher waits).
  bool DeliverOne(kv::WatcherId hub);
  void NotifyProgress(int64_t now_ms);
  // Answers the stream's progress request if it can now.
  void TryProgress(Stream& stream);
  bool Full(Stream& stream) {
    return stream.sink->Pending() >= options_.max_queued_responses ||
           stream.sink->PendingBytes() >= options_.max_queued_bytes;
  }

  kv::Store* store_;
  WatchStreamsOptions options_;
  StreamId next_stream_ = 1;
  std::map<StreamId, Stream> streams_;
  Resolver resolver_;
  // Which stream each hub watcher belongs to.
  std::map<kv::WatcherId, StreamId> owner_;
  // Watchers with responses the hub reported ready, not yet moved.
  std::set<kv::WatcherId> deferred_;
  int64_t next_progress_ms_ = 0;
};

}  // namespace etc::member

#endif  // ETC_MEMBER_WATCH_STREAMS_H_
