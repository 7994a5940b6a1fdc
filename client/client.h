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
// Thread-safe: any number of threads may call one client. It implements
// ClientInterface (client_interface.h), so code written against that runs
// on a simulated cluster too (sim/testing.h).
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
#include "client/client_interface.h"
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

class Client;

// The gRPC client's watch: a thread reading one Watch stream at a time.
class GrpcWatcher final : public Watcher {
 public:
  ~GrpcWatcher() override;
  void Stop() override;
  int64_t last_revision() const override { return last_revision_.load(); }

 private:
  friend class Client;
  explicit GrpcWatcher(int64_t start_revision) : progress_(start_revision) {}
  void Run();

  Client* client_ = nullptr;
  etcdserverpb::WatchCreateRequest create_;
  std::function<void(const etcdserverpb::WatchResponse&)> on_response_;
  WatchProgress progress_;  // the watch thread's
  std::atomic<int64_t> last_revision_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable created_cv_;
  bool created_ = false;                    // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // the stream's, for Stop
  std::thread thread_;
};

// The gRPC client's keep-alive loop, on a thread of its own.
class GrpcKeepAlive final : public KeepAlive {
 public:
  ~GrpcKeepAlive() override;
  void Stop() override;
  int64_t ttl() const override { return ttl_.load(); }

 private:
  friend class Client;
  GrpcKeepAlive() = default;

  std::atomic<int64_t> ttl_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class Client final : public ClientInterface {
 public:
  // Errors: no endpoints, or authentication failed.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();

  // ---- ClientInterface (client_interface.h) ----
  absl::StatusOr<etcdserverpb::RangeResponse> Range(
      const etcdserverpb::RangeRequest& request) override;
  absl::StatusOr<etcdserverpb::PutResponse> PutRaw(const etcdserverpb::PutRequest& request) override;
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRaw(
      const etcdserverpb::DeleteRangeRequest& request) override;
  absl::StatusOr<etcdserverpb::TxnResponse> TxnRaw(const etcdserverpb::TxnRequest& request) override;
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision,
                                                           bool physical = false) override;
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl_seconds,
                                                         int64_t id = 0) override;
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> RevokeRaw(int64_t id) override;
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(int64_t id,
                                                                   bool keys = false) override;
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveOnceResponse(int64_t id) override;
  std::unique_ptr<KeepAlive> KeepAliveForever(int64_t id, int64_t ttl_seconds) override;
  std::unique_ptr<Watcher> Watch(
      etcdserverpb::WatchCreateRequest create,
      std::function<void(const etcdserverpb::WatchResponse&)> on_response) override;
  absl::StatusOr<std::string> Lock(const std::string& name, int64_t lease,
                                   std::chrono::milliseconds timeout) override;
  absl::Status Unlock(const std::string& key) override;
  absl::StatusOr<v3electionpb::LeaderKey> Campaign(const std::string& name, int64_t lease,
                                                   const std::string& value,
                                                   std::chrono::milliseconds timeout) override;
  absl::Status Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value) override;
  absl::StatusOr<mvccpb::KeyValue> Leader(const std::string& name) override;
  absl::Status Resign(const v3electionpb::LeaderKey& leader) override;
  void SleepFor(std::chrono::milliseconds duration) override;
  int64_t now_ms() override;

  // A call to a service this class does not wrap (etc's Tree service:
  // client/tree_client.h), with the client's endpoints, failover, token
  // and re-login. `repeatable`: retried on the next endpoint after
  // UNAVAILABLE. `stream`: no deadline (else the request timeout).
  absl::Status CallService(
      bool repeatable, bool stream,
      const std::function<grpc::Status(grpc::Channel*, grpc::ClientContext*)>& call);

  // ---- cluster ----
  absl::StatusOr<etcdserverpb::MemberListResponse> MemberList();
  // The status of the endpoint the client uses now.
  absl::StatusOr<etcdserverpb::StatusResponse> Status();

  // The endpoint requests go to now.
  std::string current_endpoint() const;

 private:
  friend class GrpcWatcher;
  friend class GrpcKeepAlive;
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
  // The rest of etcd's API as etcctl needs it: membership changes, the lease list, maintenance (snapshot,
  // defragment, alarms, hash) and auth. Reads and idempotent calls fail
  // over like the others; membership changes and auth writes are sent once.
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> LeaseLeases();

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
