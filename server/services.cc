#include "server/services.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "kv/errors.h"
#include "server/backup.h"
#include "server/config.h"
#include "server/fragment.h"

namespace etc::server {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC number their codes alike.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// Sets the member's part of a response header: cluster id, member id, Raft
// term (the revision is the key tree's).
void StampHeader(etcdserverpb::ResponseHeader* header, const MemberHost& host) {
  header->set_cluster_id(host.options().cluster_id);
  header->set_member_id(host.options().member_id);
  header->set_raft_term(host.term());
}

// StampHeader on every response header in `message`, nested ones included.
void StampHeaders(google::protobuf::Message* message, const MemberHost& host) {
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  const google::protobuf::Reflection* reflection = message->GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->message_type() == etcdserverpb::ResponseHeader::descriptor() &&
        !field->is_repeated()) {
      StampHeader(static_cast<etcdserverpb::ResponseHeader*>(
                      reflection->MutableMessage(message, field)),
                  host);
      continue;
    }
    // Nested responses (txn operations) carry headers too.
    if (field->is_repeated()) {
      for (int j = 0; j < reflection->FieldSize(*message, field); ++j) {
        StampHeaders(reflection->MutableRepeatedMessage(message, field, j), host);
      }
    } else if (reflection->HasField(*message, field)) {
      StampHeaders(reflection->MutableMessage(message, field), host);
    }
  }
}

enum class Mode { kWrite, kLinearizableRead, kSerializableRead };

// The token the client sent: etcd clients send it as "token" metadata after
// Authenticate; the JSON gateway passes an HTTP Authorization header on.
std::optional<std::string> TokenOf(const grpc::ServerContextBase* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("token");
  if (it == metadata.end()) it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

// Who holds `token`, on the member thread: nobody without a token or with
// auth disabled (then every request is allowed).
absl::StatusOr<kv::AuthInfo> Resolve(MemberHost::Context& c, const std::optional<std::string>& token) {
  return c.kv().Resolve(token);
}

// Runs a request on the member thread: finds who asks (from the token),
// then proposes it or reads. `done` runs on the member thread exactly once
// (MemberHost answers every request within its request timeout).
void Submit(MemberHost* host, std::optional<std::string> token, kvpb::Request request, Mode mode,
            MemberHost::Done done) {
  if (mode != Mode::kSerializableRead && host->learner()) {
    // A learner's state may lag any amount; etcd refuses the same.
    done(absl::UnavailableError("etcdserver: rpc not supported for learner"));
    return;
  }
  host->Post([token = std::move(token), request = std::move(request), mode,
              done = std::move(done)](MemberHost::Context& c) mutable {
    absl::StatusOr<kv::AuthInfo> who = Resolve(c, token);
    if (!who.ok()) {
      done(who.status());
      return;
    }
    request.mutable_header()->set_username(who->username);
    request.mutable_header()->set_auth_revision(who->revision);
    if (mode == Mode::kWrite) {
      c.host().StartWrite(std::move(request), std::move(done));
    } else {
      c.host().StartRead(std::move(request), mode == Mode::kSerializableRead, std::move(done));
    }
  });
}

// Submit, waiting for the answer (for the handlers that still block).
absl::StatusOr<kvpb::Response> Call(MemberHost* host, std::optional<std::string> token,
                                    kvpb::Request request, Mode mode) {
  struct Pending {
    absl::Notification done;
    absl::StatusOr<kvpb::Response> result;
  };
  auto pending = std::make_shared<Pending>();
  Submit(host, std::move(token), std::move(request), mode,
         [pending](absl::StatusOr<kvpb::Response> response) {
           pending->result = std::move(response);
           pending->done.Notify();
         });
  pending->done.WaitForNotification();
  return std::move(pending->result);
}

// Who is asking: the user the request's token was issued to, checked on
// the member that applied the Authenticate. Without a token, or with auth
// disabled, nobody.
absl::StatusOr<kv::AuthInfo> Who(MemberHost* host, grpc::ServerContext* context) {
  std::optional<std::string> token = TokenOf(context);
  if (!token.has_value()) return kv::AuthInfo{};
  return OnMember<absl::StatusOr<kv::AuthInfo>>(
      host, [&token](MemberHost::Context& c) { return Resolve(c, token); });
}

// Calls the leader's peer service (for what only the leader can answer).
absl::Status CallLeader(
    MemberHost* host, Peers* peers,
    const std::function<grpc::Status(peerpb::Peer::Stub*, grpc::ClientContext*)>& call) {
  uint64_t leader = host->leader();
  std::shared_ptr<peerpb::Peer::Stub> stub =
      leader == 0 || peers == nullptr ? nullptr : peers->Stub(leader);
  if (stub == nullptr) return absl::UnavailableError("etcdserver: no leader");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status status = call(stub.get(), &context);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return absl::OkStatus();
}

// Copies the result of `response` into `out` with headers stamped.
template <typename Out>
grpc::Status Reply(const absl::StatusOr<kvpb::Response>& response,
                   const Out& (kvpb::Response::*get)() const, Out* out, const MemberHost& host) {
  if (!response.ok()) return ToGrpc(response.status());
  *out = ((*response).*get)();
  StampHeaders(out, host);
  return grpc::Status::OK;
}

// The whole of a blocking unary handler: wrap the client's request in a
// kvpb.Request, run it, unwrap and stamp the answer.
template <typename Request, typename Response>
grpc::Status Forward(MemberHost* host, grpc::ServerContext* context, const Request& request,
                     Request* (kvpb::Request::*wrap)(),
                     const Response& (kvpb::Response::*unwrap)() const, Mode mode,
                     Response* response) {
  kvpb::Request r;
  *(r.*wrap)() = request;
  return Reply(Call(host, TokenOf(context), std::move(r), mode), unwrap, response, *host);
}

// The same for a callback handler on raw bytes: no thread waits (the
// member thread finishes the call), the request is parsed straight into
// the kvpb.Request and the answer serialized straight from the key tree's
// response. Raw bytes also let a malformed request get etcd's INTERNAL
// (gRPC C++'s typed callback handlers answer it UNIMPLEMENTED).
template <typename Request, typename Response>
grpc::ServerUnaryReactor* Start(MemberHost* host, grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* raw, grpc::ByteBuffer* out,
                                Request* (kvpb::Request::*wrap)(),
                                Response* (kvpb::Response::*unwrap)(),
                                Mode (*mode_of)(const kvpb::Request&)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  kvpb::Request r;
  grpc::ByteBuffer bytes(*raw);
  grpc::Status parsed = grpc::SerializationTraits<Request>::Deserialize(&bytes, (r.*wrap)());
  if (!parsed.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                 "grpc: error unmarshalling request: " + parsed.error_message()));
    return reactor;
  }
  Mode mode = mode_of(r);
  Submit(host, TokenOf(context), std::move(r), mode,
         [host, reactor, unwrap, out](absl::StatusOr<kvpb::Response> result) {
           if (!result.ok()) {
             reactor->Finish(ToGrpc(result.status()));
             return;
           }
           Response* response = ((*result).*unwrap)();
           StampHeaders(response, *host);
           bool own_buffer = false;
           grpc::Status serialized =
               grpc::SerializationTraits<Response>::Serialize(*response, out, &own_buffer);
           reactor->Finish(serialized);
         });
  return reactor;
}

Mode WriteMode(const kvpb::Request&) { return Mode::kWrite; }

}  // namespace

// ------------------------------------------------------------------ KV --

// Callback handlers: a request in flight holds no thread (the member
// thread finishes it), so thousands of concurrent clients cost no threads.
using KvCallbackBase = etcdserverpb::KV::WithRawCallbackMethod_Range<
    etcdserverpb::KV::WithRawCallbackMethod_Put<etcdserverpb::KV::WithRawCallbackMethod_DeleteRange<
        etcdserverpb::KV::WithRawCallbackMethod_Txn<
            etcdserverpb::KV::WithRawCallbackMethod_Compact<etcdserverpb::KV::Service>>>>>;

class Services::KvService final : public KvCallbackBase {
 public:
  explicit KvService(MemberHost* host) : host_(host) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                  grpc::ByteBuffer* out) override {
    return Start(host_, context, in, out, &kvpb::Request::mutable_range,
                 &kvpb::Response::mutable_range, +[](const kvpb::Request& r) {
                   return r.range().serializable() ? Mode::kSerializableRead
                                                   : Mode::kLinearizableRead;
                 });
  }
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                grpc::ByteBuffer* out) override {
    return Start(host_, context, in, out, &kvpb::Request::mutable_put, &kvpb::Response::mutable_put,
                 &WriteMode);
  }
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override {
    return Start(host_, context, in, out, &kvpb::Request::mutable_delete_range,
                 &kvpb::Response::mutable_delete_range, &WriteMode);
  }
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                grpc::ByteBuffer* out) override {
    // A read-only txn is a linearizable read; anything else goes through the log.
    return Start(host_, context, in, out, &kvpb::Request::mutable_txn, &kvpb::Response::mutable_txn,
                 +[](const kvpb::Request& r) {
                   return kv::Store::IsReadOnly(r) ? Mode::kLinearizableRead : Mode::kWrite;
                 });
  }
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override {
    return Start(host_, context, in, out, &kvpb::Request::mutable_compaction,
                 &kvpb::Response::mutable_compaction, &WriteMode);
  }

 private:
  MemberHost* host_;
};

// --------------------------------------------------------------- Watch --

// One client stream's watchers, as a gRPC callback reactor: no thread per
// stream. The member thread pushes responses (bounded: it stops taking from
// the watch hub while the client is behind, so a slow client's backlog
// stays in the hub's bounded form); they are written one at a time, each
// write started by the one before it.
class WatchStream : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest,
                                                   etcdserverpb::WatchResponse> {
 public:
  // What the stream's requests do (run on gRPC's threads).
  struct Handlers {
    std::function<void(const etcdserverpb::WatchCreateRequest&)> create;
    std::function<void(int64_t)> cancel;
    std::function<void()> progress;
    // The client is gone: its watchers go too; `done` once they are.
    std::function<void(std::function<void()> done)> close;
  };

  WatchStream(MemberHost* host) : host_(host) {}
  // Starts reading, as `who`.
  void Begin(kv::AuthInfo who, Handlers handlers) {
    this->who = std::move(who);
    handlers_ = std::move(handlers);
    StartRead(&request_);
  }

  // Any thread: queues responses for the client, in order. A plain event
  // response that would wait behind another of its watcher's joins it, up
  // to `merge_limit_bytes` (0: never), so revisions that queued up together
  // (or while a write was out) go as one message.
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t merge_limit_bytes = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return;
    for (etcdserverpb::WatchResponse& response : responses) {
      // The header's revision was set by the hub; the rest is the member's.
      StampHeader(response.mutable_header(), *host_);
      if (!queue_.empty() && merge_limit_bytes > 0 && tail_mergeable_ &&
          MergeWatchResponse(&queue_.back(), &tail_bytes_, &response, merge_limit_bytes)) {
        continue;
      }
      tail_mergeable_ = merge_limit_bytes > 0;
      tail_bytes_ = tail_mergeable_ ? response.ByteSizeLong() : 0;
      queue_.push_back(std::move(response));
    }
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    writing_now_ = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // No Finish while a write is out (writing_), so the stream lives.
    StartWrite(&writing_now_);
  }
  void Push(etcdserverpb::WatchResponse response) {
    std::vector<etcdserverpb::WatchResponse> one;
    one.push_back(std::move(response));
    Push(std::move(one));
  }
  // Responses not yet written.
  size_t Pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size() + (writing_ ? 1 : 0);
  }

  // Hub watcher id <-> the stream's own watch id (member thread only).
  std::map<kv::WatcherId, int64_t> local_of;
  std::map<int64_t, kv::WatcherId> hub_of;
  int64_t next_local = 0;
  // The stream's user (from its token).
  kv::AuthInfo who;
  // Its watchers created with `fragment` and with `progress_notify` (by
  // local id; member thread only).
  std::set<int64_t> fragmenting;
  std::set<int64_t> progress_notify;

  // Held by the member thread's maps and by gRPC until OnDone: the last
  // owner frees it.
  std::shared_ptr<WatchStream> self;

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side (or the call broke): drop the watchers,
      // then finish once the writes are out.
      handlers_.close([this] {
        std::unique_lock<std::mutex> lock(mu_);
        closed_ = true;
        queue_.clear();
        reads_done_ = true;
        if (!writing_) {
          lock.unlock();
          Finish(grpc::Status::OK);
        }
      });
      return;
    }
    if (request_.has_create_request()) {
      handlers_.create(request_.create_request());
    } else if (request_.has_cancel_request()) {
      handlers_.cancel(request_.cancel_request().watch_id());
    } else if (request_.has_progress_request()) {
      handlers_.progress();
    }
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok) {
      closed_ = true;  // the client is gone; the read side will notice
      queue_.clear();
    }
    if (!queue_.empty()) {
      writing_now_ = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      StartWrite(&writing_now_);
      return;
    }
    writing_ = false;
    if (reads_done_) {
      lock.unlock();
      Finish(grpc::Status::OK);
    }
  }
  void OnDone() override {
    // gRPC is done with it; the member thread's maps no longer hold it
    // (close ran first).
    std::shared_ptr<WatchStream> last = std::move(self);
  }

  MemberHost* host_;
  Handlers handlers_;
  etcdserverpb::WatchRequest request_;
  std::mutex mu_;
  std::deque<etcdserverpb::WatchResponse> queue_;
  etcdserverpb::WatchResponse writing_now_;
  // Whether queue_.back() may take more events (its watcher allows
  // merging), and its size.
  bool tail_mergeable_ = false;
  size_t tail_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool reads_done_ = false;
};

class Services::WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  WatchService(MemberHost* host, int64_t progress_interval_ms)
      : host_(host), progress_interval_ms_(progress_interval_ms) {
    host_->set_after_step([this](MemberHost::Context& context) {
      Deliver(context);
      NotifyProgress(context);
    });
  }

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override {
    auto stream = std::make_shared<WatchStream>(host_);
    stream->self = stream;
    WatchStream* raw = stream.get();
    std::weak_ptr<WatchStream> weak = stream;
    host_->Post([this, weak, token = TokenOf(context)](MemberHost::Context& c) {
      std::shared_ptr<WatchStream> state = weak.lock();
      if (state == nullptr) return;
      absl::StatusOr<kv::AuthInfo> who = Resolve(c, token);
      if (!who.ok()) {
        state->Finish(ToGrpc(who.status()));
        return;
      }
      WatchStream::Handlers handlers;
      std::weak_ptr<WatchStream> stream = state;
      handlers.create = [this, stream](const etcdserverpb::WatchCreateRequest& create) {
        if (auto state = stream.lock()) Create(state, create);
      };
      handlers.cancel = [this, stream](int64_t id) {
        if (auto state = stream.lock()) Cancel(state, id);
      };
      handlers.progress = [this, stream] {
        if (auto state = stream.lock()) Progress(state);
      };
      handlers.close = [this, stream](std::function<void()> done) {
        host_->Post([this, stream, done = std::move(done)](MemberHost::Context& context) {
          if (auto state = stream.lock()) {
            for (const auto& [hub, local] : state->local_of) {
              context.store().watches().Cancel(hub);
              streams_.erase(hub);
              deferred_.erase(hub);
            }
          }
          done();
        });
      };
      state->Begin(*who, std::move(handlers));
    });
    return raw;
  }

 private:
  static constexpr size_t kMaxQueuedResponses = 64;
  static constexpr size_t kMaxMergedBytes = 64 * 1024;

  void Create(const std::shared_ptr<WatchStream>& state,
              const etcdserverpb::WatchCreateRequest& create) {
    host_->Post([this, state, create](MemberHost::Context& context) {
      int64_t local = create.watch_id();
      if (local == 0) {
        while (state->hub_of.contains(state->next_local)) ++state->next_local;
        local = state->next_local++;
      }
      if (state->hub_of.contains(local)) {
        etcdserverpb::WatchResponse refused;
        refused.set_watch_id(local);
        refused.set_created(true);
        refused.set_canceled(true);
        refused.set_cancel_reason("etcdserver: duplicate watch ID");
        state->Push(std::move(refused));
        return;
      }
      absl::StatusOr<kv::WatcherId> id = context.store().CreateWatch(state->who, create);
      if (!id.ok()) {
        etcdserverpb::WatchResponse refused;
        refused.set_watch_id(local);
        refused.set_created(true);
        refused.set_canceled(true);
        refused.set_cancel_reason(std::string(id.status().message()));
        state->Push(std::move(refused));
        return;
      }
      state->local_of[*id] = local;
      state->hub_of[local] = *id;
      if (create.fragment()) state->fragmenting.insert(local);
      if (create.progress_notify()) state->progress_notify.insert(local);
      streams_[*id] = state;
      Deliver(context);
    });
  }

  void Cancel(const std::shared_ptr<WatchStream>& state, int64_t local) {
    host_->Post([this, state, local](MemberHost::Context& context) {
      auto it = state->hub_of.find(local);
      if (it == state->hub_of.end()) return;
      std::optional<etcdserverpb::WatchResponse> canceled =
          context.store().watches().Cancel(it->second);
      streams_.erase(it->second);
      state->local_of.erase(it->second);
      state->fragmenting.erase(local);
      state->progress_notify.erase(local);
      state->hub_of.erase(it);
      if (canceled.has_value()) {
        canceled->set_watch_id(local);
        state->Push(std::move(*canceled));
      }
    });
  }

  void Progress(const std::shared_ptr<WatchStream>& state) {
    host_->Post([state](MemberHost::Context& context) {
      // Only when every watcher of the stream has seen everything (a
      // progress notification must never overtake events).
      for (const auto& [hub, local] : state->local_of) {
        if (!context.store().watches().Progress(hub).has_value()) return;
      }
      etcdserverpb::WatchResponse progress;
      progress.set_watch_id(-1);
      progress.mutable_header()->set_revision(context.store().revision());
      state->Push(std::move(progress));
    });
  }

  // Member thread: moves ready responses to their streams, while they keep up.
  void Deliver(MemberHost::Context& context) {
    kv::WatchHub& hub = context.store().watches();
    for (kv::WatcherId id : hub.TakeReady()) deferred_.insert(id);
    for (auto it = deferred_.begin(); it != deferred_.end();) {
      auto stream = streams_.find(*it);
      if (stream == streams_.end()) {
        it = deferred_.erase(it);
        continue;
      }
      std::shared_ptr<WatchStream> state = stream->second;
      size_t pending = state->Pending();
      if (pending >= kMaxQueuedResponses) {
        ++it;
        continue;
      }
      int64_t local = state->local_of[*it];
      // etcd's limit for a fragment: the request size limit.
      size_t request_limit = static_cast<size_t>(host_->options().store.max_request_bytes);
      bool fragmenting = state->fragmenting.contains(local);
      // Revisions that queued up while the stream was busy go out as one
      // message, small enough that a stream's queue stays as bounded as
      // the hub's (a fragmenting watcher's pieces keep their own sizes).
      size_t merge_limit = fragmenting ? 0 : std::min(kMaxMergedBytes, request_limit);
      std::vector<etcdserverpb::WatchResponse> responses =
          hub.Take(*it, kMaxQueuedResponses - pending);
      for (etcdserverpb::WatchResponse& response : responses) response.set_watch_id(local);
      if (fragmenting) {
        std::vector<etcdserverpb::WatchResponse> pieces;
        for (etcdserverpb::WatchResponse& response : responses) {
          for (etcdserverpb::WatchResponse& piece :
               FragmentWatchResponse(std::move(response), request_limit)) {
            pieces.push_back(std::move(piece));
          }
        }
        responses = std::move(pieces);
      }
      state->Push(std::move(responses), merge_limit);
      if (!hub.exists(*it)) {
        // Cancelled (compacted) and delivered: forget it.
        state->hub_of.erase(local);
        state->local_of.erase(*it);
        streams_.erase(*it);
      }
      it = deferred_.erase(it);
    }
  }

  // Member thread: every progress interval, each watcher that asked for
  // progress notifications and has seen everything gets one (etcd's
  // --experimental-watch-progress-notify-interval, 10 minutes by default).
  void NotifyProgress(MemberHost::Context& context) {
    int64_t now = context.now_ms();
    if (next_progress_ms_ == 0) next_progress_ms_ = now + progress_interval_ms_;
    if (now < next_progress_ms_) return;
    next_progress_ms_ = now + progress_interval_ms_;
    for (const auto& [hub, state] : streams_) {
      auto local = state->local_of.find(hub);
      if (local == state->local_of.end() || !state->progress_notify.contains(local->second)) {
        continue;
      }
      std::optional<etcdserverpb::WatchResponse> progress = context.store().watches().Progress(hub);
      if (!progress.has_value()) continue;  // events still to deliver come first
      progress->set_watch_id(local->second);
      state->Push(std::move(*progress));
    }
  }

  MemberHost* host_;
  int64_t progress_interval_ms_;
  // Member thread only.
  int64_t next_progress_ms_ = 0;
  std::map<kv::WatcherId, std::shared_ptr<WatchStream>> streams_;
  std::set<kv::WatcherId> deferred_;
};

// --------------------------------------------------------------- Lease --

class Services::LeaseService final : public etcdserverpb::Lease::Service {
 public:
  LeaseService(MemberHost* host, Peers* peers) : host_(host), peers_(peers) {}

  grpc::Status LeaseGrant(grpc::ServerContext* context, const etcdserverpb::LeaseGrantRequest* request,
                          etcdserverpb::LeaseGrantResponse* response) override {
    return Forward(host_, context, *request, &kvpb::Request::mutable_lease_grant, &kvpb::Response::lease_grant,
                   Mode::kWrite, response);
  }
  grpc::Status LeaseRevoke(grpc::ServerContext* context, const etcdserverpb::LeaseRevokeRequest* request,
                           etcdserverpb::LeaseRevokeResponse* response) override {
    return Forward(host_, context, *request, &kvpb::Request::mutable_lease_revoke, &kvpb::Response::lease_revoke,
                   Mode::kWrite, response);
  }
  grpc::Status LeaseKeepAlive(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                               etcdserverpb::LeaseKeepAliveRequest>* stream) override {
    etcdserverpb::LeaseKeepAliveRequest request;
    while (stream->Read(&request)) {
      kv::LeaseId id = request.id();
      absl::StatusOr<int64_t> ttl = host_->LeaderKeepAlive(id);
      if (!ttl.ok() && ttl.status().code() == absl::StatusCode::kFailedPrecondition) {
        // Only the leader's lessor may renew: forward.
        etcdserverpb::LeaseKeepAliveResponse forwarded;
        absl::Status status = ForwardToLeader(
            [&](peerpb::Peer::Stub* stub, grpc::ClientContext* context) {
              return stub->LeaseKeepAlive(context, request, &forwarded);
            });
        if (!status.ok()) return ToGrpc(status);
        ttl = forwarded.ttl();
      }
      etcdserverpb::LeaseKeepAliveResponse response;
      response.set_id(id);
      // An unknown lease answers TTL 0: the client's sign that it expired.
      response.set_ttl(ttl.ok() ? *ttl : 0);
      StampHeaders(&response, *host_);
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }
  grpc::Status LeaseTimeToLive(grpc::ServerContext*,
                               const etcdserverpb::LeaseTimeToLiveRequest* request,
                               etcdserverpb::LeaseTimeToLiveResponse* response) override {
    absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> local = host_->LeaderTimeToLive(*request);
    if (local.ok()) {
      *response = std::move(*local);
    } else if (local.status().code() == absl::StatusCode::kFailedPrecondition) {
      absl::Status status =
          ForwardToLeader([&](peerpb::Peer::Stub* stub, grpc::ClientContext* context) {
            return stub->LeaseTimeToLive(context, *request, response);
          });
      if (!status.ok()) return ToGrpc(status);
    } else {
      return ToGrpc(local.status());
    }
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  grpc::Status LeaseLeases(grpc::ServerContext* context, const etcdserverpb::LeaseLeasesRequest* request,
                           etcdserverpb::LeaseLeasesResponse* response) override {
    return Forward(host_, context, *request, &kvpb::Request::mutable_lease_leases, &kvpb::Response::lease_leases,
                   Mode::kLinearizableRead, response);
  }

 private:
  absl::Status ForwardToLeader(
      const std::function<grpc::Status(peerpb::Peer::Stub*, grpc::ClientContext*)>& call) {
    return CallLeader(host_, peers_, call);
  }

  MemberHost* host_;
  Peers* peers_;
};

// ---------------------------------------------------------------- Auth --

class Services::AuthService final : public etcdserverpb::Auth::Service {
 public:
  explicit AuthService(MemberHost* host) : host_(host) {}

  grpc::Status AuthEnable(grpc::ServerContext* context, const etcdserverpb::AuthEnableRequest* r,
                          etcdserverpb::AuthEnableResponse* response) override {
    return Forward(host_, context, *r, &kvpb::Request::mutable_auth_enable,
                   &kvpb::Response::auth_enable, Mode::kWrite, response);
  }
  grpc::Status AuthDisable(grpc::ServerContext* context, const etcdserverpb::AuthDisableRequest* r,
                           etcdserverpb::AuthDisableResponse* response) override {
    return Forward(host_, context, *r, &kvpb::Request::mutable_auth_disable,
                   &kvpb::Response::auth_disable, Mode::kWrite, response);
  }
  grpc::Status Authenticate(grpc::ServerContext*, const etcdserverpb::AuthenticateRequest* r,
                            etcdserverpb::AuthenticateResponse* response) override {
    // The slow password check runs here, not on the member thread: fetch
    // the stored hash, check, then propose the token.
    std::string name = r->name();
    auto user = OnMember<absl::StatusOr<authpb::User>>(
        host_, [name](MemberHost::Context& c) -> absl::StatusOr<authpb::User> {
          if (!c.store().auth().enabled()) return kv::AuthNotEnabledError();
          return c.store().auth().UserGet(name);
        });
    if (!user.ok()) {
      if (user.status().code() == absl::StatusCode::kFailedPrecondition &&
          user.status().message() == kv::AuthNotEnabledError().message()) {
        return ToGrpc(user.status());
      }
      return ToGrpc(kv::AuthFailedError());
    }
    if (user->options().no_password() || !kv::CheckPasswordHash(r->password(), user->password())) {
      return ToGrpc(kv::AuthFailedError());
    }
    kvpb::Request request;
    request.mutable_authenticate()->set_name(name);
    request.mutable_authenticate()->set_token(NewToken());
    return Reply(Call(host_, std::nullopt, std::move(request), Mode::kWrite), &kvpb::Response::authenticate,
                 response, *host_);
  }
  grpc::Status UserAdd(grpc::ServerContext* context, const etcdserverpb::AuthUserAddRequest* r,
                       etcdserverpb::AuthUserAddResponse* response) override {
    kvpb::UserAdd add;
    add.set_name(r->name());
    *add.mutable_options() = r->options();
    if (!r->options().no_password()) add.set_password_hash(Hash(r->password()));
    return Forward(host_, context, add, &kvpb::Request::mutable_user_add, &kvpb::Response::user_add,
                   Mode::kWrite, response);
  }
  grpc::Status UserChangePassword(grpc::ServerContext* context,
                                  const etcdserverpb::AuthUserChangePasswordRequest* r,
                                  etcdserverpb::AuthUserChangePasswordResponse* response) override {
    kvpb::UserChangePassword change;
    change.set_name(r->name());
    change.set_password_hash(Hash(r->password()));
    return Forward(host_, context, change, &kvpb::Request::mutable_user_change_password,
                   &kvpb::Response::user_change_password, Mode::kWrite, response);
  }
#define ETC_AUTH_FORWARD(Method, Req, Resp, field, mode)                                   \
  grpc::Status Method(grpc::ServerContext* context, const etcdserverpb::Req* r,            \
                      etcdserverpb::Resp* response) override {                             \
    return Forward(host_, context, *r, &kvpb::Request::mutable_##field,                    \
                   &kvpb::Response::field, mode, response);                                \
  }
  ETC_AUTH_FORWARD(UserGet, AuthUserGetRequest, AuthUserGetResponse, user_get,
                   Mode::kLinearizableRead)
  ETC_AUTH_FORWARD(UserList, AuthUserListRequest, AuthUserListResponse, user_list,
                   Mode::kLinearizableRead)
  ETC_AUTH_FORWARD(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse, user_delete,
                   Mode::kWrite)
  ETC_AUTH_FORWARD(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
                   user_grant_role, Mode::kWrite)
  ETC_AUTH_FORWARD(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse,
                   user_revoke_role, Mode::kWrite)
  ETC_AUTH_FORWARD(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse, role_add, Mode::kWrite)
  ETC_AUTH_FORWARD(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse, role_get,
                   Mode::kLinearizableRead)
  ETC_AUTH_FORWARD(RoleList, AuthRoleListRequest, AuthRoleListResponse, role_list,
                   Mode::kLinearizableRead)
  ETC_AUTH_FORWARD(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse, role_delete,
                   Mode::kWrite)
  ETC_AUTH_FORWARD(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                   AuthRoleGrantPermissionResponse, role_grant_permission, Mode::kWrite)
  ETC_AUTH_FORWARD(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                   AuthRoleRevokePermissionResponse, role_revoke_permission, Mode::kWrite)
#undef ETC_AUTH_FORWARD

 private:
  static std::string RandomBytes(size_t n) {
    std::string bytes(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
      // Without randomness no salt or token is safe to hand out.
      std::abort();
    }
    return bytes;
  }
  static std::string Hash(const std::string& password) {
    return kv::HashPassword(password, RandomBytes(16));
  }
  // etcd's simple-token shape: random letters, a dot, a counter.
  std::string NewToken() {
    static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::string random = RandomBytes(16);
    std::string token;
    for (char c : random) token.push_back(kLetters[static_cast<unsigned char>(c) % 52]);
    return absl::StrCat(token, ".", next_token_.fetch_add(1));
  }

  MemberHost* host_;
  std::atomic<uint64_t> next_token_{1};
};

// ------------------------------------------------------------- Cluster --

class Services::ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  ClusterService(MemberHost* host, Peers* peers, std::string cluster_token)
      : host_(host), peers_(peers), cluster_token_(std::move(cluster_token)) {}

  grpc::Status MemberList(grpc::ServerContext*, const etcdserverpb::MemberListRequest*,
                          etcdserverpb::MemberListResponse* response) override {
    ListMembers(host_->membership(), response->mutable_members());
    Finish(response);
    return grpc::Status::OK;
  }

  grpc::Status MemberAdd(grpc::ServerContext* context, const etcdserverpb::MemberAddRequest* request,
                         etcdserverpb::MemberAddResponse* response) override {
    if (absl::Status s = RequireAdmin(context); !s.ok()) return ToGrpc(s);
    std::vector<std::string> urls(request->peerurls().begin(), request->peerurls().end());
    if (absl::Status s = CheckPeerUrls(urls, 0); !s.ok()) return ToGrpc(s);
    Membership current = host_->membership();
    if (request->islearner()) {
      size_t learners = 0;
      for (uint64_t id : current.Ids()) learners += current.IsLearner(id) ? 1 : 0;
      if (learners >= 1) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            "etcdserver: too many learner members in cluster");
      }
    }
    // etcd's id for an added member: its peer URLs, the token and the time.
    int64_t now = absl::ToUnixSeconds(absl::Now());
    uint64_t id = MemberId(urls, cluster_token_, now);
    while (id == 0 || current.Contains(id) || current.removed.contains(id)) {
      id = MemberId(urls, cluster_token_, ++now);
    }
    raftpb::ConfChange change;
    change.add_changes()->set_type(request->islearner() ? raftpb::ADD_LEARNER_NODE
                                                        : raftpb::ADD_NODE);
    change.mutable_changes(0)->set_node_id(id);
    peerpb::MemberAttributes attributes;
    for (const std::string& url : urls) attributes.add_peer_urls(url);
    absl::Status status = Await(absl::Milliseconds(host_->options().request_timeout_ms), [&](std::function<void(absl::Status)> done) {
      host_->ChangeMembership(change, attributes, std::move(done));
    });
    if (!status.ok()) return ToGrpc(MembershipError(status));
    etcdserverpb::Member* member = response->mutable_member();
    member->set_id(id);
    for (const std::string& url : urls) member->add_peerurls(url);
    member->set_islearner(request->islearner());
    ListMembers(host_->membership(), response->mutable_members());
    Finish(response);
    return grpc::Status::OK;
  }

  grpc::Status MemberRemove(grpc::ServerContext* context,
                            const etcdserverpb::MemberRemoveRequest* request,
                            etcdserverpb::MemberRemoveResponse* response) override {
    if (absl::Status s = RequireAdmin(context); !s.ok()) return ToGrpc(s);
    if (!host_->membership().Contains(request->id())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: member not found");
    }
    raftpb::ConfChange change;
    change.add_changes()->set_type(raftpb::REMOVE_NODE);
    change.mutable_changes(0)->set_node_id(request->id());
    absl::Status status = Await(absl::Milliseconds(host_->options().request_timeout_ms), [&](std::function<void(absl::Status)> done) {
      host_->ChangeMembership(change, std::nullopt, std::move(done));
    });
    if (!status.ok()) return ToGrpc(MembershipError(status));
    ListMembers(host_->membership(), response->mutable_members());
    Finish(response);
    return grpc::Status::OK;
  }

  grpc::Status MemberUpdate(grpc::ServerContext* context,
                            const etcdserverpb::MemberUpdateRequest* request,
                            etcdserverpb::MemberUpdateResponse* response) override {
    if (absl::Status s = RequireAdmin(context); !s.ok()) return ToGrpc(s);
    std::vector<std::string> urls(request->peerurls().begin(), request->peerurls().end());
    Membership current = host_->membership();
    if (!current.Contains(request->id())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: member not found");
    }
    if (absl::Status s = CheckPeerUrls(urls, request->id()); !s.ok()) return ToGrpc(s);
    peerpb::MemberAttributes attributes = current.attributes[request->id()];
    attributes.clear_peer_urls();
    for (const std::string& url : urls) attributes.add_peer_urls(url);
    absl::Status status = Await(absl::Milliseconds(host_->options().request_timeout_ms), [&](std::function<void(absl::Status)> done) {
      host_->UpdateAttributes(request->id(), attributes, std::move(done));
    });
    if (!status.ok()) return ToGrpc(MembershipError(status));
    ListMembers(host_->membership(), response->mutable_members());
    Finish(response);
    return grpc::Status::OK;
  }

  grpc::Status MemberPromote(grpc::ServerContext* context,
                             const etcdserverpb::MemberPromoteRequest* request,
                             etcdserverpb::MemberPromoteResponse* response) override {
    if (absl::Status s = RequireAdmin(context); !s.ok()) return ToGrpc(s);
    absl::Status status;
    if (host_->leader() == host_->options().member_id) {
      status = Await(absl::Milliseconds(host_->options().request_timeout_ms), [&](std::function<void(absl::Status)> done) {
        host_->PromoteLearner(request->id(), std::move(done));
      });
    } else {
      // Only the leader knows how far the learner's log is.
      status = CallLeader(host_, peers_, [&](peerpb::Peer::Stub* stub, grpc::ClientContext* call) {
        etcdserverpb::MemberPromoteResponse ignored;
        return stub->MemberPromote(call, *request, &ignored);
      });
    }
    if (!status.ok()) return ToGrpc(MembershipError(status));
    ListMembers(host_->membership(), response->mutable_members());
    Finish(response);
    return grpc::Status::OK;
  }

 private:
  template <typename Response>
  void Finish(Response* response) {
    response->mutable_header()->set_revision(
        OnMember<int64_t>(host_, [](MemberHost::Context& c) { return c.store().revision(); }));
    StampHeaders(response, *host_);
  }

  // Changing the membership needs the root role once auth is enabled.
  absl::Status RequireAdmin(grpc::ServerContext* context) {
    absl::StatusOr<kv::AuthInfo> who = Who(host_, context);
    if (!who.ok()) return who.status();
    return OnMember<absl::Status>(host_, [&who](MemberHost::Context& c) {
      if (!c.store().auth().enabled()) return absl::OkStatus();
      return c.store().auth().CheckAdmin(*who);
    });
  }

  // Valid peer URLs that no other member than `self` uses.
  absl::Status CheckPeerUrls(const std::vector<std::string>& urls, uint64_t self) {
    if (urls.empty()) return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
    for (const std::string& url : urls) {
      if (!HostPort(url).ok()) {
        return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
      }
    }
    Membership current = host_->membership();
    for (const auto& [id, attributes] : current.attributes) {
      if (id == self || !current.Contains(id)) continue;
      for (const std::string& url : attributes.peer_urls()) {
        if (std::find(urls.begin(), urls.end(), url) != urls.end()) {
          return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
        }
      }
    }
    return absl::OkStatus();
  }

  // The Raft core refuses a second change while one is pending; etcd says
  // so in its own words.
  static absl::Status MembershipError(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kFailedPrecondition &&
        absl::StrContains(status.message(), "pending")) {
      return absl::UnavailableError("etcdserver: unhealthy cluster");
    }
    return status;
  }

  MemberHost* host_;
  Peers* peers_;
  std::string cluster_token_;
};

// --------------------------------------------------------- Maintenance --

class Services::MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  explicit MaintenanceService(MemberHost* host) : host_(host) {}

  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* response) override {
    *response = OnMember<etcdserverpb::StatusResponse>(host_, [](MemberHost::Context& context) {
      etcdserverpb::StatusResponse out;
      const raft::Raft& raft = context.member().node().raft();
      // The etcd API version this server speaks (clients compare it).
      out.set_version("3.4.23");
      out.set_dbsize(context.store().keyspace().size_bytes());
      out.set_dbsizeinuse(context.store().keyspace().size_bytes());
      out.set_leader(raft.leader());
      out.set_raftindex(raft.log().committed());
      out.set_raftterm(raft.term());
      out.set_raftappliedindex(context.member().applied_index());
      out.mutable_header()->set_revision(context.store().revision());
      for (const auto& [member, type] : context.store().alarms()) {
        out.add_errors(absl::StrCat("memberID:", member, " alarm:",
                                    etcdserverpb::AlarmType_Name(
                                        static_cast<etcdserverpb::AlarmType>(type))));
      }
      raftpb::ConfState conf = context.member().Status().conf_state;
      out.set_islearner(std::find(conf.learners().begin(), conf.learners().end(),
                                  raft.id()) != conf.learners().end());
      return out;
    });
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  grpc::Status Alarm(grpc::ServerContext* context, const etcdserverpb::AlarmRequest* request,
                     etcdserverpb::AlarmResponse* response) override {
    Mode mode = request->action() == etcdserverpb::AlarmRequest::GET ? Mode::kLinearizableRead
                                                                     : Mode::kWrite;
    return Forward(host_, context, *request, &kvpb::Request::mutable_alarm, &kvpb::Response::alarm, mode,
                   response);
  }
  grpc::Status Hash(grpc::ServerContext*, const etcdserverpb::HashRequest*,
                    etcdserverpb::HashResponse* response) override {
    *response = OnMember<etcdserverpb::HashResponse>(host_, [](MemberHost::Context& context) {
      etcdserverpb::HashResponse out;
      out.set_hash(context.store().Hash());
      out.mutable_header()->set_revision(context.store().revision());
      return out;
    });
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  grpc::Status HashKV(grpc::ServerContext* context, const etcdserverpb::HashKVRequest* request,
                      etcdserverpb::HashKVResponse* response) override {
    return Forward(host_, context, *request, &kvpb::Request::mutable_hash_kv, &kvpb::Response::hash_kv,
                   Mode::kLinearizableRead, response);
  }
  grpc::Status Defragment(grpc::ServerContext*, const etcdserverpb::DefragmentRequest*,
                          etcdserverpb::DefragmentResponse* response) override {
    // The key tree lives in memory and compaction frees its space at once;
    // what can be compacted is the files: a snapshot now (taken in the
    // background, unless one is already being taken) lets the log release
    // its segments once it is saved.
    response->mutable_header()->set_revision(
        OnMember<int64_t>(host_, [](MemberHost::Context& c) {
          c.member().SnapshotNow();
          return c.store().revision();
        }));
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  // A consistent copy of the key tree (kv::Store::Snapshot, taken on the
  // member thread) in a backup file's framing (server/backup.h), streamed
  // in 32 KiB pieces and followed, as etcd's is, by a last message holding
  // its SHA-256.
  grpc::Status Snapshot(grpc::ServerContext* context, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override {
    absl::StatusOr<kv::AuthInfo> who = Who(host_, context);
    if (!who.ok()) return ToGrpc(who.status());
    absl::StatusOr<std::string> data =
        OnMember<absl::StatusOr<std::string>>(host_, [&who](MemberHost::Context& c) {
          if (c.store().auth().enabled()) {
            if (absl::Status s = c.store().auth().CheckAdmin(*who); !s.ok()) {
              return absl::StatusOr<std::string>(s);
            }
          }
          return absl::StatusOr<std::string>(EncodeBackup(c.store().Snapshot()));
        });
    if (!data.ok()) return ToGrpc(data.status());
    // The digest travels last, apart from the data (etcdctl checks it is
    // there; `etc snapshot restore` checks it matches).
    std::string digest = data->substr(data->size() - kBackupDigestBytes);
    data->resize(data->size() - kBackupDigestBytes);
    constexpr size_t kChunkBytes = 32 * 1024;
    for (size_t sent = 0; sent < data->size();) {
      size_t n = std::min(kChunkBytes, data->size() - sent);
      etcdserverpb::SnapshotResponse response;
      response.set_blob(data->substr(sent, n));
      sent += n;
      response.set_remaining_bytes(data->size() - sent);
      if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    }
    etcdserverpb::SnapshotResponse last;
    last.set_blob(digest);
    writer->Write(last);
    return grpc::Status::OK;
  }
  grpc::Status MoveLeader(grpc::ServerContext*, const etcdserverpb::MoveLeaderRequest* request,
                          etcdserverpb::MoveLeaderResponse* response) override {
    uint64_t target = request->targetid();
    absl::Status status = OnMember<absl::Status>(host_, [target](MemberHost::Context& context) {
      return context.member().TransferLeadership(target);
    });
    if (!status.ok()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "etcdserver: bad leader transferee");
    }
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }

 private:
  MemberHost* host_;
};

// ------------------------------------------------------------ Services --

Services::Services(MemberHost* host, Peers* peers, std::string cluster_token,
                   int64_t watch_progress_interval_ms)
    : kv_(std::make_unique<KvService>(host)),
      watch_(std::make_unique<WatchService>(host, watch_progress_interval_ms)),
      lease_(std::make_unique<LeaseService>(host, peers)),
      auth_(std::make_unique<AuthService>(host)),
      cluster_(std::make_unique<ClusterService>(host, peers, std::move(cluster_token))),
      maintenance_(std::make_unique<MaintenanceService>(host)),
      recipes_(MakeRecipes()),
      lock_(std::make_unique<LockService>(recipes_)),
      election_(std::make_unique<ElectionService>(recipes_)) {}

void Services::Connect(grpc::Server* server) {
  ConnectRecipes(recipes_.get(), server->InProcessChannel(grpc::ChannelArguments()));
}

Services::~Services() = default;

void Services::Register(grpc::ServerBuilder* builder) {
  builder->RegisterService(kv_.get());
  builder->RegisterService(watch_.get());
  builder->RegisterService(lease_.get());
  builder->RegisterService(auth_.get());
  builder->RegisterService(cluster_.get());
  builder->RegisterService(maintenance_.get());
  builder->RegisterService(lock_.get());
  builder->RegisterService(election_.get());
}

}  // namespace etc::server
