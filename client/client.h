// A C++ client for etcd's v3 gRPC API, for etc and etcd alike.
//
//   auto client = etc::client::Client::Connect({.endpoints = {"127.0.0.1:2379"}}).value();
//   client->Put("/config/mode", "fast");
//   auto got = client->Get("/config/", {.prefix = true});
//   auto txn = etc::client::Txn()
//                  .If(etc::client::ValueEquals("/config/mode", "fast"))
//                  .Then(etc::client::PutOp("/config/ok", "1"));
//   client->Commit(txn);
//
// Endpoints and failover: the client talks to one endpoint at a time. A
// request that certainly did not reach a server (the endpoint could not be
// connected to) moves on to the next endpoint and is sent there; a request
// that is safe to repeat (reads, lease time-to-live, revoke, keep-alive,
// member list, status) is also retried on the next endpoint after an
// UNAVAILABLE answer. A write that reached a server and failed is never
// sent again: its outcome is the caller's to find out.
//
// Auth: with a user and password, the client authenticates on connect and
// again when the server says its token expired.
//
// Thread-safe: any number of threads may call one client.
#ifndef ETC_CLIENT_CLIENT_H_
#define ETC_CLIENT_CLIENT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/v3electionpb/v3election.grpc.pb.h"
#include "server/v3lockpb/v3lock.grpc.pb.h"

namespace etc::client {

struct ClientOptions {
  // host:port of each member's client URL.
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
  // nullptr: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string user;
  std::string password;
  // gRPC channels per endpoint (more spread load over connections).
  int connections_per_endpoint = 1;
};

struct GetOptions {
  bool prefix = false;
  std::string range_end = {};  // "" = just the key (unless prefix)
  int64_t revision = 0;
  int64_t limit = 0;
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;
};

struct PutOptions {
  int64_t lease = 0;
  bool prev_kv = false;
};

struct DeleteOptions {
  bool prefix = false;
  bool prev_kv = false;
};

// The smallest key greater than every key with `prefix` ("\0" for "").
std::string PrefixEnd(const std::string& prefix);

// Transaction pieces.
etcdserverpb::Compare ValueEquals(const std::string& key, const std::string& value);
etcdserverpb::Compare VersionEquals(const std::string& key, int64_t version);
etcdserverpb::Compare ModRevisionEquals(const std::string& key, int64_t revision);
etcdserverpb::Compare CreateRevisionEquals(const std::string& key, int64_t revision);
etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0);
etcdserverpb::RequestOp GetOp(const std::string& key, GetOptions options = {});
etcdserverpb::RequestOp DeleteOp(const std::string& key, DeleteOptions options = {});

class Txn {
 public:
  Txn& If(etcdserverpb::Compare compare);
  Txn& Then(etcdserverpb::RequestOp op);
  Txn& Else(etcdserverpb::RequestOp op);
  const etcdserverpb::TxnRequest& request() const { return request_; }

 private:
  etcdserverpb::TxnRequest request_;
};

class Client;

// A watch that survives the loss of its endpoint: it reconnects (to the
// next endpoint) and resumes from the revision after the last one it
// delivered (or, before any event, after the revision the server created
// it at), so no event is lost or repeated. Stops when destroyed, or after
// the server cancels it (a compacted start revision: the cancel response
// is delivered first).
class Watcher {
 public:
  ~Watcher();
  void Stop();
  // Everything up to this revision was delivered: the newest of the last
  // event's revision, a progress notification's and the revision the
  // watch was created at (0 before the server confirmed it).
  int64_t last_revision() const { return last_revision_.load(); }

 private:
  friend class Client;
  Watcher() = default;
  void Run();

  Client* client_ = nullptr;
  etcdserverpb::WatchCreateRequest create_;
  std::function<void(const etcdserverpb::WatchResponse&)> on_response_;
  std::atomic<int64_t> last_revision_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable created_cv_;
  bool created_ = false;                    // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // the stream's, for Stop
  std::thread thread_;
};

// Keeps a lease alive in the background (a keep-alive every third of its
// TTL, failing over like any safe request) until destroyed.
class KeepAlive {
 public:
  ~KeepAlive();
  void Stop();
  // The TTL the last keep-alive returned; 0 once the lease is gone.
  int64_t ttl() const { return ttl_.load(); }

 private:
  friend class Client;
  KeepAlive() = default;

  std::atomic<int64_t> ttl_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class Client {
 public:
  // Errors: no endpoints, or authentication failed.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();

  // ---- KV ----
  absl::StatusOr<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                                PutOptions options = {});
  absl::StatusOr<etcdserverpb::RangeResponse> Get(const std::string& key, GetOptions options = {});
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key,
                                                           DeleteOptions options = {});
  absl::StatusOr<etcdserverpb::TxnResponse> Commit(const Txn& txn);
  // physical: answer once the compacted revisions are physically removed.
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision,
                                                           bool physical = false);
  // The raw calls (all options).
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> PutRaw(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> TxnRaw(const etcdserverpb::TxnRequest& request);
  // A call to a service this class does not wrap (etc's Tree service:
  // client/tree_client.h), with the client's endpoints, failover, token
  // and re-login. `repeatable`: retried on the next endpoint after
  // UNAVAILABLE. `stream`: no deadline (else the request timeout).
  absl::Status CallService(
      bool repeatable, bool stream,
      const std::function<grpc::Status(grpc::Channel*, grpc::ClientContext*)>& call);

  // ---- leases ----
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl_seconds, int64_t id = 0);
  absl::Status Revoke(int64_t id);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(int64_t id, bool keys = false);
  // One keep-alive; returns the new TTL (0: the lease is gone).
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t id);
  std::unique_ptr<KeepAlive> KeepAliveForever(int64_t id, int64_t ttl_seconds);

  // ---- watch ----
  // Returns once the server confirmed the watch (so every write made after
  // this returns is seen), or after the dial timeout if no endpoint
  // answered; the watch keeps trying in the background either way.
  std::unique_ptr<Watcher> Watch(etcdserverpb::WatchCreateRequest create,
                                 std::function<void(const etcdserverpb::WatchResponse&)> on_response);

  // ---- lock and election (the v3lock / v3election services) ----
  // Blocks until the lock is held (or `timeout` passes); returns the key
  // that holds it.
  absl::StatusOr<std::string> Lock(const std::string& name, int64_t lease,
                                   std::chrono::milliseconds timeout);
  absl::Status Unlock(const std::string& key);
  absl::StatusOr<v3electionpb::LeaderKey> Campaign(const std::string& name, int64_t lease,
                                                   const std::string& value,
                                                   std::chrono::milliseconds timeout);
  absl::Status Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value);
  absl::StatusOr<mvccpb::KeyValue> Leader(const std::string& name);
  absl::Status Resign(const v3electionpb::LeaderKey& leader);

  // ---- cluster ----
  absl::StatusOr<etcdserverpb::MemberListResponse> MemberList();
  // The status of the endpoint the client uses now.
  absl::StatusOr<etcdserverpb::StatusResponse> Status();

  // The endpoint requests go to now.
  std::string current_endpoint() const;

 private:
  friend class Watcher;
  friend class KeepAlive;
  struct Endpoint {
    std::string address;
    std::vector<std::shared_ptr<grpc::Channel>> channels;
  };
  enum class Safety { kRepeatable, kOnce };

  explicit Client(ClientOptions options);
  absl::Status Authenticate();
  std::unique_ptr<grpc::ClientContext> NewContext(std::chrono::milliseconds timeout) const;
  // Runs `call` against endpoints until it succeeds or may not be retried.
  absl::Status Call(Safety safety, std::chrono::milliseconds timeout,
                    const std::function<grpc::Status(grpc::Channel*, grpc::ClientContext*)>& call);
  std::shared_ptr<grpc::Channel> Channel(size_t endpoint);
  void MoveOn(size_t from);

  ClientOptions options_;
  std::vector<Endpoint> endpoints_;
  std::atomic<size_t> current_{0};
  std::atomic<uint64_t> next_channel_{0};
  mutable std::mutex token_mu_;
  std::string token_;

 public:
  // ---- administration and etcctl's extra calls ----
  // The rest of etcd's API as etcctl needs it: raw deletes and physical
  // compaction, membership changes, the lease list, maintenance (snapshot,
  // defragment, alarms, hash) and auth. Reads and idempotent calls fail
  // over like the others; membership changes and auth writes are sent once.
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRaw(
      const etcdserverpb::DeleteRangeRequest& request);
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> LeaseLeases();
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> RevokeRaw(int64_t id);
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveOnceResponse(int64_t id);

  absl::StatusOr<etcdserverpb::MemberAddResponse> MemberAdd(const std::vector<std::string>& peer_urls,
                                                            bool learner);
  absl::StatusOr<etcdserverpb::MemberRemoveResponse> MemberRemove(uint64_t id);
  absl::StatusOr<etcdserverpb::MemberUpdateResponse> MemberUpdate(
      uint64_t id, const std::vector<std::string>& peer_urls);
  absl::StatusOr<etcdserverpb::MemberPromoteResponse> MemberPromote(uint64_t id);

  // Streams the current endpoint's backend snapshot to `on_chunk` (false
  // from it stops early); no deadline: a big database takes its time.
  absl::Status Snapshot(const std::function<bool(const etcdserverpb::SnapshotResponse&)>& on_chunk);
  absl::StatusOr<etcdserverpb::DefragmentResponse> Defragment();
  absl::StatusOr<etcdserverpb::AlarmResponse> Alarm(const etcdserverpb::AlarmRequest& request);
  absl::StatusOr<etcdserverpb::HashKVResponse> HashKV(int64_t revision);

  absl::StatusOr<etcdserverpb::AuthEnableResponse> AuthEnable();
  absl::StatusOr<etcdserverpb::AuthDisableResponse> AuthDisable();
  absl::StatusOr<etcdserverpb::AuthUserAddResponse> UserAdd(const etcdserverpb::AuthUserAddRequest& r);
  absl::StatusOr<etcdserverpb::AuthUserDeleteResponse> UserDelete(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthUserGetResponse> UserGet(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthUserListResponse> UserList();
  absl::StatusOr<etcdserverpb::AuthUserChangePasswordResponse> UserChangePassword(
      const std::string& name, const std::string& password);
  absl::StatusOr<etcdserverpb::AuthUserGrantRoleResponse> UserGrantRole(const std::string& user,
                                                                        const std::string& role);
  absl::StatusOr<etcdserverpb::AuthUserRevokeRoleResponse> UserRevokeRole(const std::string& user,
                                                                          const std::string& role);
  absl::StatusOr<etcdserverpb::AuthRoleAddResponse> RoleAdd(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleDeleteResponse> RoleDelete(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleGetResponse> RoleGet(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleListResponse> RoleList();
  absl::StatusOr<etcdserverpb::AuthRoleGrantPermissionResponse> RoleGrantPermission(
      const etcdserverpb::AuthRoleGrantPermissionRequest& request);
  absl::StatusOr<etcdserverpb::AuthRoleRevokePermissionResponse> RoleRevokePermission(
      const etcdserverpb::AuthRoleRevokePermissionRequest& request);

 private:
  // One unary call of `Service` through Call(), within `timeout` or the
  // request timeout (defined in client_unary.h).
  template <typename Service, typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      Safety safety, std::chrono::milliseconds timeout,
      grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request);
  template <typename Service, typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      Safety safety,
      grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request);
};

}  // namespace etc::client

#endif  // ETC_CLIENT_CLIENT_H_
