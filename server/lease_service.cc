#include "server/lease_service.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/rpc.h"

namespace etc::server {
namespace {

using KeepAliveReactor = grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                                 etcdserverpb::LeaseKeepAliveResponse>;

// One client's keep-alive stream. Reads run on gRPC's threads; each
// request is renewed by the leader's lessor (on this member's thread, or
// forwarded to the leader's peer service) and answered from whichever
// thread has the answer; answers go out in the order of their requests (as
// etcd's, which renews one request at a time), one write at a time, each
// started by the one before. At most kMaxPendingRenewals requests are read and not yet
// written: past that the stream stops reading, so a client that sends
// faster than it reads is held back by gRPC's flow control, not queued in
// our memory.
//
// gRPC runs no reaction of a bidi reactor on the thread that starts an
// operation (they go to its executor), so operations start under mu_, and
// none can start after Finish. The stream owns itself until gRPC is done
// with it (OnDone); renewals in flight hold it too, and an answer that
// comes after Finish is dropped.
class KeepAliveStream final : public KeepAliveReactor,
                              public std::enable_shared_from_this<KeepAliveStream> {
 public:
  static constexpr size_t kMaxPendingRenewals = 64;

  KeepAliveStream(MemberHost* host, Peers* peers) : host_(host), peers_(peers) {}

  // Before gRPC has the reactor: starts reading.
  void Begin() {
    absl::MutexLock lock(&mu_);
    self_ = shared_from_this();
    Advance();
  }

 private:
  void OnReadDone(bool ok) override {
    std::optional<int64_t> renew;
    uint64_t seq = 0;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok) {
        reads_done_ = true;  // the client half-closed, or the call broke
      } else if (!finished_ && !gone_ && !error_.has_value()) {
        ++renewing_;
        renew = request_.id();
        seq = next_read_seq_++;
      }
      Advance();
    }
    if (renew.has_value()) Renew(*renew, seq);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // A failed write means the client is gone: nothing more can be sent.
    if (!ok) gone_ = true;
    Advance();
  }

  // The client cancelled, or the server is stopping: finish without
  // waiting for renewals in flight (a stopped member never answers them).
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    gone_ = true;
    Advance();
  }

  void OnDone() override {
    std::shared_ptr<KeepAliveStream> last;  // freed after the lock is released
    absl::MutexLock lock(&mu_);
    last = std::move(self_);
  }

  // Asks this member's lessor first: only the leader's may renew, and a
  // follower hears so at once and forwards.
  void Renew(int64_t id, uint64_t seq) {
    host_->LeaderKeepAlive(id, [self = shared_from_this(), id, seq](absl::StatusOr<int64_t> ttl) {
      if (!ttl.ok() && ttl.status().code() == absl::StatusCode::kFailedPrecondition) {
        self->Forward(id, seq);
        return;
      }
      self->Answer(seq, id, std::move(ttl));
    });
  }

  // Renews on the leader's peer service, answering from the call's
  // completion.
  void Forward(int64_t id, uint64_t seq) {
    struct Call {
      etcdserverpb::LeaseKeepAliveRequest request;
      etcdserverpb::LeaseKeepAliveResponse response;
    };
    auto call = std::make_shared<Call>();
    call->request.set_id(id);
    StartCallLeader(
        host_, peers_,
        [call](peerpb::Peer::Stub* stub, grpc::ClientContext* context,
               std::function<void(grpc::Status)> done) {
          stub->async()->LeaseKeepAlive(context, &call->request, &call->response, std::move(done));
        },
        [self = shared_from_this(), call, id, seq](absl::Status status) {
          if (!status.ok()) {
            self->Answer(seq, id, status);
            return;
          }
          self->Answer(seq, id, call->response.ttl());
        });
  }

  // The answer to the request read `seq`-th.
  void Answer(uint64_t seq, int64_t id, absl::StatusOr<int64_t> ttl) {
    absl::MutexLock lock(&mu_);
    --renewing_;
    if (finished_) return;
    // An unknown lease answers TTL 0: the client's sign that it expired.
    // Anything else (no leader, a leader not ready) ends the stream with
    // the error, and the client renews again on a new one.
    if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
      if (!error_.has_value()) error_ = ToGrpc(ttl.status());
    } else {
      etcdserverpb::LeaseKeepAliveResponse& answer = ready_[seq];
      answer.set_id(id);
      answer.set_ttl(ttl.ok() ? *ttl : 0);
      StampHeader(answer.mutable_header(), *host_);
      // A forwarded renewal may come back after a later local one.
      for (auto it = ready_.begin(); it != ready_.end() && it->first == next_answer_seq_;
           it = ready_.erase(it), ++next_answer_seq_) {
        answers_.push_back(std::move(it->second));
      }
    }
    Advance();
  }

  // Starts what the stream can do now: finish (never while a write is
  // out), the next write, the next read.
  void Advance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    bool ending = gone_ || error_.has_value();
    if (!writing_) {
      if (ending || (reads_done_ && renewing_ == 0 && answers_.empty() && ready_.empty())) {
        finished_ = true;
        Finish(error_.value_or(grpc::Status::OK));
        return;
      }
      if (!answers_.empty()) {
        writing_now_ = std::move(answers_.front());
        answers_.pop_front();
        writing_ = true;
        StartWrite(&writing_now_);
      }
    }
    size_t pending = renewing_ + ready_.size() + answers_.size() + (writing_ ? 1 : 0);
    if (!ending && !reading_ && !reads_done_ && pending < kMaxPendingRenewals) {
      reading_ = true;
      StartRead(&request_);
    }
  }

  MemberHost* const host_;
  Peers* const peers_;
  absl::Mutex mu_;
  std::shared_ptr<KeepAliveStream> self_ ABSL_GUARDED_BY(mu_);
  etcdserverpb::LeaseKeepAliveRequest request_;  // the read in flight fills it
  etcdserverpb::LeaseKeepAliveResponse writing_now_ ABSL_GUARDED_BY(mu_);
  // Answers in request order, ready to write; and those that came before
  // an earlier request's, by the order their requests were read in.
  std::deque<etcdserverpb::LeaseKeepAliveResponse> answers_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, etcdserverpb::LeaseKeepAliveResponse> ready_ ABSL_GUARDED_BY(mu_);
  uint64_t next_read_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_answer_seq_ ABSL_GUARDED_BY(mu_) = 0;
  size_t renewing_ ABSL_GUARDED_BY(mu_) = 0;  // read, not answered yet
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;  // cancelled, or a write failed
  std::optional<grpc::Status> error_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::Status LeaseService::LeaseGrant(grpc::ServerContext* context,
                                      const etcdserverpb::LeaseGrantRequest* request,
                                      etcdserverpb::LeaseGrantResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_grant,
                 &kvpb::Response::lease_grant, Mode::kWrite, response);
}

grpc::Status LeaseService::LeaseRevoke(grpc::ServerContext* context,
                                       const etcdserverpb::LeaseRevokeRequest* request,
                                       etcdserverpb::LeaseRevokeResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_revoke,
                 &kvpb::Response::lease_revoke, Mode::kWrite, response);
}

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  auto stream = std::make_shared<KeepAliveStream>(host_, peers_);
  stream->Begin();
  return stream.get();
}

grpc::Status LeaseService::LeaseTimeToLive(grpc::ServerContext*,
                                           const etcdserverpb::LeaseTimeToLiveRequest* request,
                                           etcdserverpb::LeaseTimeToLiveResponse* response) {
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> local = host_->LeaderTimeToLive(*request);
  if (local.ok()) {
    *response = std::move(*local);
  } else if (local.status().code() == absl::StatusCode::kFailedPrecondition) {
    absl::Status status =
        CallLeader(host_, peers_, [&](peerpb::Peer::Stub* stub, grpc::ClientContext* context) {
          return stub->LeaseTimeToLive(context, *request, response);
        });
    if (!status.ok()) return ToGrpc(status);
  } else {
    return ToGrpc(local.status());
  }
  StampHeaders(response, *host_);
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseLeases(grpc::ServerContext* context,
                                       const etcdserverpb::LeaseLeasesRequest* request,
                                       etcdserverpb::LeaseLeasesResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_leases,
                 &kvpb::Response::lease_leases, Mode::kLinearizableRead, response);
}

}  // namespace etc::server
