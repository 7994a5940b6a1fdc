// The Tree service's WatchTree: a server stream that is a client of the
// member's watch streams (member/watch_streams.h), as etcd's Watch service
// and v2's long poll are. One member stream with one watcher over the
// directory's subtree [path + "/", PrefixEnd(path + "/")); for depth
// CHILDREN the events whose key has a '/' after the directory's prefix
// are dropped here (and a response left with no events is not sent). The
// watcher's created / canceled responses become the stream's: created
// first; a compacted start revision, a permission denied or any other
// cancel ends the stream after its canceled response. A client that goes
// away takes the member's stream with it.
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <mutex>
#include <utility>
#include <vector>

#include "kv/keyspace.h"
#include "member/watch_streams.h"
#include "server/rpc.h"
#include "server/tree_service.h"

namespace etc::server {
namespace {

bool IsChild(std::string_view key, std::string_view prefix) {
  std::string_view rest = key.substr(prefix.size());
  return !rest.empty() && rest.find('/') == std::string_view::npos;
}

class TreeWatch final : public grpc::ServerWriteReactor<etcpb::WatchTreeResponse>,
                        public member::WatchSink,
                        public std::enable_shared_from_this<TreeWatch> {
 public:
  TreeWatch(MemberHost* host, const etcpb::WatchTreeRequest& request)
      : host_(host),
        prefix_(TreePrefix(NormalTreePath(request.path()))),
        children_only_(request.depth() == etcpb::WatchTreeRequest::CHILDREN) {}

  // Holds the watch until gRPC is done with it.
  std::shared_ptr<TreeWatch> self_;

  // On the member thread, once the caller's token is known: the member's
  // stream, with one watcher over the subtree (unless the client left).
  void Begin(MemberHost::Context& c, std::optional<std::string> token,
             const etcpb::WatchTreeRequest& request) {
    if (closed_on_member_) return;
    id_ = c.kv().watch_streams().Open(shared_from_this(), std::move(token));
    etcdserverpb::WatchCreateRequest create;
    create.set_key(prefix_);
    create.set_range_end(kv::PrefixEnd(prefix_));
    create.set_start_revision(request.start_revision());
    create.set_prev_kv(request.prev_kv());
    create.set_progress_notify(request.progress_notify());
    c.kv().watch_streams().Create(id_, create);
  }

  size_t Pending() override {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size() + (writing_ ? 1 : 0);
  }

  size_t PendingBytes() override {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_bytes_ + (writing_ ? writing_bytes_ : 0);
  }

  void Blocked() override {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = true;
  }

  // On the member thread.
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t) override {
    std::unique_lock<std::mutex> lock(mu_);
    for (etcdserverpb::WatchResponse& response : responses) {
      if (ending_) return;
      std::optional<etcpb::WatchTreeResponse> out = Translate(response);
      if (!out.has_value()) continue;
      if (out->canceled()) ending_ = true;
      queued_bytes_ += out->ByteSizeLong();
      queue_.push_back(std::move(*out));
    }
    WriteNextLocked(lock);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      // The client is gone: so is the member's stream.
      queue_.clear();
      queued_bytes_ = 0;
      ending_ = true;
    }
    WriteNextLocked(lock);
  }

  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.clear();
      queued_bytes_ = 0;
      ending_ = true;
      if (writing_ || finished_) return;
      finished_ = true;
    }
    CloseOnMember();
    Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override { std::shared_ptr<TreeWatch> last = std::move(self_); }

  // Ends the stream before it began (unless the client already left: a
  // reactor is finished once).
  void Fail(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    ending_ = true;
    if (finished_) return;
    finished_ = true;
    Finish(ToGrpc(status));
  }

 private:
  // Starts the next write, or finishes the stream once the last one (a
  // canceled response) is out. Called with mu_ held; may release it.
  void WriteNextLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      writing_now_ = std::move(queue_.front());
      queue_.pop_front();
      writing_bytes_ = writing_now_.ByteSizeLong();
      queued_bytes_ -= writing_bytes_;
      lock.unlock();
      StartWrite(&writing_now_);
      return;
    }
    if (ending_) {
      finished_ = true;
      lock.unlock();
      CloseOnMember();
      Finish(grpc::Status::OK);
      return;
    }
    if (blocked_) {
      // The member stopped feeding this stream while it was full.
      blocked_ = false;
      lock.unlock();
      host_->Post([](MemberHost::Context&) {});
    }
  }

  // Later, on the member thread (the streams may be being walked now),
  // which alone reads and writes id_ and closed_on_member_.
  void CloseOnMember() {
    host_->Post([self = shared_from_this()](MemberHost::Context& c) {
      self->closed_on_member_ = true;
      if (self->id_ != 0) c.kv().watch_streams().Close(self->id_);
    });
  }

  // What the client hears of a watcher's response: nothing for an event
  // response whose events all fall outside the requested depth.
  std::optional<etcpb::WatchTreeResponse> Translate(etcdserverpb::WatchResponse& in) {
    etcpb::WatchTreeResponse out;
    *out.mutable_header() = in.header();
    StampHeader(out.mutable_header(), *host_);
    out.set_created(in.created());
    out.set_canceled(in.canceled());
    out.set_cancel_reason(in.cancel_reason());
    out.set_compact_revision(in.compact_revision());
    for (mvccpb::Event& event : *in.mutable_events()) {
      if (children_only_ && !IsChild(event.kv().key(), prefix_)) continue;
      *out.add_events() = std::move(event);
    }
    if (in.events_size() > 0 && out.events_size() == 0 && !in.created() && !in.canceled()) {
      return std::nullopt;
    }
    return out;
  }

  MemberHost* host_;
  const std::string prefix_;
  const bool children_only_;
  // The member thread's: the member's stream (0: not open).
  member::WatchStreams::StreamId id_ = 0;
  bool closed_on_member_ = false;
  std::mutex mu_;
  std::deque<etcpb::WatchTreeResponse> queue_;
  etcpb::WatchTreeResponse writing_now_;
  // The queue's encoded size, and the write's (taken before gRPC has it).
  size_t queued_bytes_ = 0;
  size_t writing_bytes_ = 0;
  bool writing_ = false;
  bool blocked_ = false;
  // No more responses are taken (a cancel was queued, or the client left).
  bool ending_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerWriteReactor<etcpb::WatchTreeResponse>* TreeService::WatchTree(
    grpc::CallbackServerContext* context, const etcpb::WatchTreeRequest* request) {
  auto watch = std::make_shared<TreeWatch>(host_, *request);
  watch->self_ = watch;
  TreeWatch* raw = watch.get();
  absl::Status invalid = absl::OkStatus();
  if (request->start_revision() < 0) {
    invalid = absl::InvalidArgumentError("etcdserver: negative revision");
  } else if (!etcpb::WatchTreeRequest::Depth_IsValid(request->depth())) {
    invalid = absl::InvalidArgumentError("etcdserver: unknown watch depth");
  }
  if (!invalid.ok()) {
    raw->Fail(invalid);
    return raw;
  }
  std::weak_ptr<TreeWatch> weak = watch;
  host_->Post([weak, token = TokenOf(context), request = *request](MemberHost::Context& c) {
    std::shared_ptr<TreeWatch> watch = weak.lock();
    if (watch == nullptr) return;
    // A token that means nothing here fails the stream at once; the
    // watcher's create is checked again as the token's user is then.
    absl::StatusOr<kv::AuthInfo> who = c.kv().Resolve(token);
    if (!who.ok()) {
      watch->Fail(who.status());
      return;
    }
    watch->Begin(c, token, request);
  });
  return raw;
}

}  // namespace etc::server
