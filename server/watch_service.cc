#include "server/watch_service.h"

#include <memory>
#include <mutex>
#include <vector>

#include "member/watch_streams.h"
#include "server/rpc.h"

namespace etc::server {
namespace {

// One client's stream. Reads run on gRPC's threads and post each request
// to the member thread; the member thread pushes responses (bounded by
// WatchStreams); writes go out one at a time. It owns itself until gRPC is
// done with it (OnDone), and the member's WatchStreams holds it as the
// sink until the stream closes.
class WatchStream final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>,
      public member::WatchSink {
 public:
  explicit WatchStream(MemberHost* host) : host_(host) {}

  // On the member thread, once the stream's user is known: starts reading.
  void Begin(member::WatchStreams::StreamId id) {
    id_ = id;
    StartRead(&request_);
  }

  size_t Pending() override {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size() + (writing_ ? 1 : 0);
  }

  size_t PendingBytes() override {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.bytes() + (writing_ ? writing_bytes_ : 0);
  }

  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t merge_limit) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return;
    // The header's revision was set by the key tree; the rest is the member's.
    for (etcdserverpb::WatchResponse& response : responses) {
      StampHeader(response.mutable_header(), *host_);
    }
    queue_.Push(std::move(responses), merge_limit);
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    grpc::WriteOptions options = PopForWrite();
    lock.unlock();
    // No Finish while a write is out (writing_), so the stream lives.
    StartWrite(&writing_now_, options);
  }

  void Blocked() override {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = true;
  }

  // Holds the stream until gRPC is done with it.
  std::shared_ptr<WatchStream> self_;

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      Close();
      return;
    }
    member::WatchStreams::StreamId id = id_;
    if (request_.has_create_request()) {
      host_->Post([id, create = request_.create_request()](MemberHost::Context& c) {
        c.kv().watch_streams().Create(id, create);
      });
    } else if (request_.has_cancel_request()) {
      host_->Post([id, watch_id = request_.cancel_request().watch_id()](MemberHost::Context& c) {
        c.kv().watch_streams().Cancel(id, watch_id);
      });
    } else if (request_.has_progress_request()) {
      host_->Post([id](MemberHost::Context& c) { c.kv().watch_streams().RequestProgress(id); });
    }
    StartRead(&request_);
  }

  // The client closed its side (or the call broke): the member drops the
  // watchers, then the stream finishes once the writes are out.
  void Close() {
    member::WatchStreams::StreamId id = id_;
    host_->Post([this, id](MemberHost::Context& c) {
      c.kv().watch_streams().Close(id);
      std::unique_lock<std::mutex> lock(mu_);
      closed_ = true;
      queue_.Clear();
      reads_done_ = true;
      if (!writing_) {
        lock.unlock();
        Finish(grpc::Status::OK);
      }
    });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    first_write_done_ = true;
    if (!ok) {
      closed_ = true;  // the client is gone; the read side will notice
      queue_.Clear();
    }
    if (!queue_.empty()) {
      grpc::WriteOptions options = PopForWrite();
      lock.unlock();
      StartWrite(&writing_now_, options);
      return;
    }
    writing_ = false;
    if (reads_done_) {
      lock.unlock();
      Finish(grpc::Status::OK);
      return;
    }
    if (blocked_) {
      // The member stopped feeding this stream while it was full: all of
      // it is written now, so wake the member to send more.
      blocked_ = false;
      lock.unlock();
      host_->Post([](MemberHost::Context&) {});
    }
  }

  // The next response to write, and how: while more wait behind it, gRPC
  // is told more follow (the buffer hint), so that the responses queued
  // together (each watcher's own on a shared stream) leave in one send, not
  // one send each. Never on the stream's first write: that one carries the
  // response headers, and gRPC's HTTP/2 server holds a hinted first message
  // without completing it, so the stream would hang. Called with mu_ held
  // and the queue not empty.
  grpc::WriteOptions PopForWrite() {
    writing_now_ = queue_.Pop();
    writing_bytes_ = writing_now_.ByteSizeLong();
    grpc::WriteOptions options;
    if (!queue_.empty() && first_write_done_) options.set_buffer_hint();
    return options;
  }

  void OnDone() override {
    // gRPC is done with it, and the member closed it first (or never
    // opened it): the last owner frees it.
    std::shared_ptr<WatchStream> last = std::move(self_);
  }

  MemberHost* host_;
  member::WatchStreams::StreamId id_ = 0;
  etcdserverpb::WatchRequest request_;
  std::mutex mu_;
  member::WatchQueue queue_;
  etcdserverpb::WatchResponse writing_now_;
  // Its size, taken before gRPC has it.
  size_t writing_bytes_ = 0;
  bool writing_ = false;
  // A write completed: the headers went with it (see PopForWrite).
  bool first_write_done_ = false;
  bool blocked_ = false;
  bool closed_ = false;
  bool reads_done_ = false;
};

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* context) {
  auto stream = std::make_shared<WatchStream>(host_);
  // gRPC holds the reactor until OnDone, whatever the member thread does.
  stream->self_ = stream;
  WatchStream* raw = stream.get();
  std::weak_ptr<WatchStream> weak = stream;
  host_->Post([weak, token = TokenOf(context)](MemberHost::Context& c) {
    std::shared_ptr<WatchStream> stream = weak.lock();
    if (stream == nullptr) return;
    // A token that means nothing here fails the stream at once; each
    // create is checked again as the token's user is then.
    absl::StatusOr<kv::AuthInfo> who = c.kv().Resolve(token);
    if (!who.ok()) {
      stream->Finish(ToGrpc(who.status()));
      return;
    }
    stream->Begin(c.kv().watch_streams().Open(stream, token));
  });
  return raw;
}

}  // namespace etc::server
