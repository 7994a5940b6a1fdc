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
#include "server/rpc.h"

namespace etc::server {

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
      // An unknown lease answers TTL 0: the client's sign that it expired.
      // Anything else (no leader, a leader not ready) ends the stream with
      // the error, and the client renews again on a new one.
      if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
        return ToGrpc(ttl.status());
      }
      etcdserverpb::LeaseKeepAliveResponse response;
      response.set_id(id);
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
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
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
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
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
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
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
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
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
    absl::StatusOr<int64_t> revision = OnMember<absl::StatusOr<int64_t>>(
        host_, [](MemberHost::Context& c) { return c.store().revision(); });
    // The change is done; a header without the revision beats no answer.
    response->mutable_header()->set_revision(revision.value_or(0));
    StampHeaders(response, *host_);
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
    absl::StatusOr<etcdserverpb::StatusResponse> status =
        OnMember<absl::StatusOr<etcdserverpb::StatusResponse>>(host_, [](MemberHost::Context& context) {
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
      out.set_islearner(context.kv().is_learner());
      return out;
    });
    if (!status.ok()) return ToGrpc(status.status());
    *response = std::move(*status);
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
  grpc::Status Hash(grpc::ServerContext* context, const etcdserverpb::HashRequest*,
                    etcdserverpb::HashResponse* response) override {
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
    // The key tree's running digest: equal on members that applied the
    // same log, and no walk of the tree on the member thread.
    absl::StatusOr<etcdserverpb::HashResponse> hash =
        OnMember<absl::StatusOr<etcdserverpb::HashResponse>>(host_, [](MemberHost::Context& context) {
          etcdserverpb::HashResponse out;
          uint64_t digest = context.store().StateDigest();
          out.set_hash(static_cast<uint32_t>(digest ^ (digest >> 32)));
          out.mutable_header()->set_revision(context.store().revision());
          return out;
        });
    if (!hash.ok()) return ToGrpc(hash.status());
    *response = std::move(*hash);
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  grpc::Status HashKV(grpc::ServerContext* context, const etcdserverpb::HashKVRequest* request,
                      etcdserverpb::HashKVResponse* response) override {
    return Forward(host_, context, *request, &kvpb::Request::mutable_hash_kv, &kvpb::Response::hash_kv,
                   Mode::kLinearizableRead, response);
  }
  grpc::Status Defragment(grpc::ServerContext* context, const etcdserverpb::DefragmentRequest*,
                          etcdserverpb::DefragmentResponse* response) override {
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
    // The key tree lives in memory and compaction frees its space at once;
    // what can be compacted is the files: a snapshot now (taken in the
    // background, unless one is already being taken) lets the log release
    // its segments once it is saved.
    absl::StatusOr<int64_t> revision =
        OnMember<absl::StatusOr<int64_t>>(host_, [](MemberHost::Context& c) {
          c.member().SnapshotNow();
          return c.store().revision();
        });
    if (!revision.ok()) return ToGrpc(revision.status());
    response->mutable_header()->set_revision(*revision);
    StampHeaders(response, *host_);
    return grpc::Status::OK;
  }
  // A consistent copy of the key tree (kv::Store::Snapshot, taken on the
  // member thread) in a backup file's framing (server/backup.h), streamed
  // in 32 KiB pieces and followed, as etcd's is, by a last message holding
  // its SHA-256.
  grpc::Status Snapshot(grpc::ServerContext* context, const etcdserverpb::SnapshotRequest*,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override {
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
    // Serialized by the snapshot child process, off the member thread (a
    // large key tree takes seconds), then framed here.
    // The callback may outlive this call (Await gives up after a minute).
    auto state = std::make_shared<absl::StatusOr<std::string>>(absl::UnknownError("not taken"));
    absl::Status waited = Await(absl::Seconds(60), [&](std::function<void(absl::Status)> done) {
      host_->SnapshotKeyTree([state, done = std::move(done)](absl::StatusOr<std::string> data) {
        *state = std::move(data);
        done(state->status());
      });
    });
    if (!waited.ok()) return ToGrpc(waited);
    std::string framed = EncodeBackup(**state);
    std::string* data = &framed;
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
  grpc::Status MoveLeader(grpc::ServerContext* context, const etcdserverpb::MoveLeaderRequest* request,
                          etcdserverpb::MoveLeaderResponse* response) override {
    if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
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

Services::Services(MemberHost* host, Peers* peers, std::string cluster_token)
    : kv_(std::make_unique<KvService>(host)),
      watch_(std::make_unique<WatchService>(host)),
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
