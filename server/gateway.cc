#include "server/gateway.h"

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "server/gateway_codec.h"
#include "server/gateway_stream.h"
#include "server/v3electionpb/v3election.pb.h"
#include "server/v3lockpb/v3lock.pb.h"

namespace etc::server {
namespace {

struct RouteTarget {
  std::string method;  // "/etcdserverpb.KV/Range"
  const google::protobuf::Message* request;
  const google::protobuf::Message* response;
};

template <typename Request, typename Response>
RouteTarget Route(const char* method) {
  return RouteTarget{method, &Request::default_instance(), &Response::default_instance()};
}

// etcd 3.4's gateway routes (rpc.proto's google.api.http options) to gRPC
// methods. /v3/maintenance/hash is Hash: etcd maps HashKV to the same path
// and Hash wins there too.
const std::map<std::string, RouteTarget>& Routes() {
  static const auto* routes = new std::map<std::string, RouteTarget>{
      {"/v3/kv/range", Route<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>("/etcdserverpb.KV/Range")},
      {"/v3/kv/put", Route<etcdserverpb::PutRequest, etcdserverpb::PutResponse>("/etcdserverpb.KV/Put")},
      {"/v3/kv/deleterange", Route<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>("/etcdserverpb.KV/DeleteRange")},
      {"/v3/kv/txn", Route<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>("/etcdserverpb.KV/Txn")},
      {"/v3/kv/compaction", Route<etcdserverpb::CompactionRequest, etcdserverpb::CompactionResponse>("/etcdserverpb.KV/Compact")},
      {"/v3/lease/grant", Route<etcdserverpb::LeaseGrantRequest, etcdserverpb::LeaseGrantResponse>("/etcdserverpb.Lease/LeaseGrant")},
      {"/v3/lease/revoke", Route<etcdserverpb::LeaseRevokeRequest, etcdserverpb::LeaseRevokeResponse>("/etcdserverpb.Lease/LeaseRevoke")},
      {"/v3/kv/lease/revoke", Route<etcdserverpb::LeaseRevokeRequest, etcdserverpb::LeaseRevokeResponse>("/etcdserverpb.Lease/LeaseRevoke")},
      {"/v3/lease/timetolive", Route<etcdserverpb::LeaseTimeToLiveRequest, etcdserverpb::LeaseTimeToLiveResponse>("/etcdserverpb.Lease/LeaseTimeToLive")},
      {"/v3/kv/lease/timetolive", Route<etcdserverpb::LeaseTimeToLiveRequest, etcdserverpb::LeaseTimeToLiveResponse>("/etcdserverpb.Lease/LeaseTimeToLive")},
      {"/v3/lease/leases", Route<etcdserverpb::LeaseLeasesRequest, etcdserverpb::LeaseLeasesResponse>("/etcdserverpb.Lease/LeaseLeases")},
      {"/v3/kv/lease/leases", Route<etcdserverpb::LeaseLeasesRequest, etcdserverpb::LeaseLeasesResponse>("/etcdserverpb.Lease/LeaseLeases")},
      {"/v3/cluster/member/add", Route<etcdserverpb::MemberAddRequest, etcdserverpb::MemberAddResponse>("/etcdserverpb.Cluster/MemberAdd")},
      {"/v3/cluster/member/remove", Route<etcdserverpb::MemberRemoveRequest, etcdserverpb::MemberRemoveResponse>("/etcdserverpb.Cluster/MemberRemove")},
      {"/v3/cluster/member/update", Route<etcdserverpb::MemberUpdateRequest, etcdserverpb::MemberUpdateResponse>("/etcdserverpb.Cluster/MemberUpdate")},
      {"/v3/cluster/member/list", Route<etcdserverpb::MemberListRequest, etcdserverpb::MemberListResponse>("/etcdserverpb.Cluster/MemberList")},
      {"/v3/cluster/member/promote", Route<etcdserverpb::MemberPromoteRequest, etcdserverpb::MemberPromoteResponse>("/etcdserverpb.Cluster/MemberPromote")},
      {"/v3/maintenance/alarm", Route<etcdserverpb::AlarmRequest, etcdserverpb::AlarmResponse>("/etcdserverpb.Maintenance/Alarm")},
      {"/v3/maintenance/status", Route<etcdserverpb::StatusRequest, etcdserverpb::StatusResponse>("/etcdserverpb.Maintenance/Status")},
      {"/v3/maintenance/defragment", Route<etcdserverpb::DefragmentRequest, etcdserverpb::DefragmentResponse>("/etcdserverpb.Maintenance/Defragment")},
      {"/v3/maintenance/hash", Route<etcdserverpb::HashRequest, etcdserverpb::HashResponse>("/etcdserverpb.Maintenance/Hash")},
      {"/v3/maintenance/transfer-leadership", Route<etcdserverpb::MoveLeaderRequest, etcdserverpb::MoveLeaderResponse>("/etcdserverpb.Maintenance/MoveLeader")},
      {"/v3/auth/enable", Route<etcdserverpb::AuthEnableRequest, etcdserverpb::AuthEnableResponse>("/etcdserverpb.Auth/AuthEnable")},
      {"/v3/auth/disable", Route<etcdserverpb::AuthDisableRequest, etcdserverpb::AuthDisableResponse>("/etcdserverpb.Auth/AuthDisable")},
      {"/v3/auth/authenticate", Route<etcdserverpb::AuthenticateRequest, etcdserverpb::AuthenticateResponse>("/etcdserverpb.Auth/Authenticate")},
      {"/v3/auth/user/add", Route<etcdserverpb::AuthUserAddRequest, etcdserverpb::AuthUserAddResponse>("/etcdserverpb.Auth/UserAdd")},
      {"/v3/auth/user/get", Route<etcdserverpb::AuthUserGetRequest, etcdserverpb::AuthUserGetResponse>("/etcdserverpb.Auth/UserGet")},
      {"/v3/auth/user/list", Route<etcdserverpb::AuthUserListRequest, etcdserverpb::AuthUserListResponse>("/etcdserverpb.Auth/UserList")},
      {"/v3/auth/user/delete", Route<etcdserverpb::AuthUserDeleteRequest, etcdserverpb::AuthUserDeleteResponse>("/etcdserverpb.Auth/UserDelete")},
      {"/v3/auth/user/changepw", Route<etcdserverpb::AuthUserChangePasswordRequest, etcdserverpb::AuthUserChangePasswordResponse>("/etcdserverpb.Auth/UserChangePassword")},
      {"/v3/auth/user/grant", Route<etcdserverpb::AuthUserGrantRoleRequest, etcdserverpb::AuthUserGrantRoleResponse>("/etcdserverpb.Auth/UserGrantRole")},
      {"/v3/auth/user/revoke", Route<etcdserverpb::AuthUserRevokeRoleRequest, etcdserverpb::AuthUserRevokeRoleResponse>("/etcdserverpb.Auth/UserRevokeRole")},
      {"/v3/auth/role/add", Route<etcdserverpb::AuthRoleAddRequest, etcdserverpb::AuthRoleAddResponse>("/etcdserverpb.Auth/RoleAdd")},
      {"/v3/auth/role/get", Route<etcdserverpb::AuthRoleGetRequest, etcdserverpb::AuthRoleGetResponse>("/etcdserverpb.Auth/RoleGet")},
      {"/v3/auth/role/list", Route<etcdserverpb::AuthRoleListRequest, etcdserverpb::AuthRoleListResponse>("/etcdserverpb.Auth/RoleList")},
      {"/v3/auth/role/delete", Route<etcdserverpb::AuthRoleDeleteRequest, etcdserverpb::AuthRoleDeleteResponse>("/etcdserverpb.Auth/RoleDelete")},
      {"/v3/auth/role/grant", Route<etcdserverpb::AuthRoleGrantPermissionRequest, etcdserverpb::AuthRoleGrantPermissionResponse>("/etcdserverpb.Auth/RoleGrantPermission")},
      {"/v3/auth/role/revoke", Route<etcdserverpb::AuthRoleRevokePermissionRequest, etcdserverpb::AuthRoleRevokePermissionResponse>("/etcdserverpb.Auth/RoleRevokePermission")},
      {"/v3/lock/lock", Route<v3lockpb::LockRequest, v3lockpb::LockResponse>("/v3lockpb.Lock/Lock")},
      {"/v3/lock/unlock",
       Route<v3lockpb::UnlockRequest, v3lockpb::UnlockResponse>("/v3lockpb.Lock/Unlock")},
      {"/v3/election/campaign", Route<v3electionpb::CampaignRequest, v3electionpb::CampaignResponse>(
                                    "/v3electionpb.Election/Campaign")},
      {"/v3/election/proclaim", Route<v3electionpb::ProclaimRequest, v3electionpb::ProclaimResponse>(
                                    "/v3electionpb.Election/Proclaim")},
      {"/v3/election/leader", Route<v3electionpb::LeaderRequest, v3electionpb::LeaderResponse>(
                                  "/v3electionpb.Election/Leader")},
      {"/v3/election/resign", Route<v3electionpb::ResignRequest, v3electionpb::ResignResponse>(
                                  "/v3electionpb.Election/Resign")},
  };
  return *routes;
}

HttpResponse Json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

class Gateway {
 public:
  Gateway(MemberHost* host, Metrics* metrics, grpc::Server* grpc_server, bool enable_v2)
      : host_(host), metrics_(metrics) {
    if (grpc_server != nullptr) {
      stub_ = std::make_unique<grpc::GenericStub>(
          grpc_server->InProcessChannel(grpc::ChannelArguments()));
      if (enable_v2) v2_ = std::make_unique<V2Api>(host);
    }
  }

  void Handle(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
    // etcd 3.4 serves its gateway under /v3beta/ too (it rewrites the path
    // before routing); /v3alpha/ is gone.
    std::string path = request.path;
    if (absl::StartsWith(path, "/v3beta/")) path = "/v3/" + path.substr(8);
    if (v2_ != nullptr && V2Api::Serves(request.path)) return v2_->Serve(request, std::move(exchange));
    if (stub_ != nullptr) {
      if (std::optional<GatewayStream> stream = GatewayStreamAt(path)) {
        if (request.method != "POST") return exchange->Respond(Json(405, "Method Not Allowed\n"));
        return ServeGatewayStream(*stream, stub_.get(), request, std::move(exchange));
      }
      auto route = Routes().find(path);
      if (route != Routes().end()) {
        if (request.method != "POST") return exchange->Respond(Json(405, "Method Not Allowed\n"));
        return Call(route->second, request, std::move(exchange));
      }
    }
    exchange->Respond(Serve(request));
  }

 private:
  // What is answered at once: /health waits for the member, but at most a
  // second.
  HttpResponse Serve(const HttpRequest& request) {
    if (request.path == "/metrics") {
      if (request.method != "GET") return Json(405, "Method Not Allowed\n");
      HttpResponse response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = metrics_->Render();
      return response;
    }
    if (request.path == "/health") {
      if (request.method != "GET") return Json(405, "Method Not Allowed\n");
      return Health(request);
    }
    if (request.path == "/version" && request.method == "GET") {
      return Json(200, "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}");
    }
    return Json(404, "404 page not found\n");
  }

  HttpResponse Health(const HttpRequest& request) {
    std::vector<std::string> excluded;
    for (absl::string_view pair : absl::StrSplit(request.query, '&')) {
      if (absl::StartsWith(pair, "exclude=")) excluded.emplace_back(pair.substr(8));
    }
    bool healthy = true;
    std::vector<std::string> alarms = OnMemberAlarms();
    for (const std::string& alarm : alarms) {
      if (std::find(excluded.begin(), excluded.end(), alarm) == excluded.end()) healthy = false;
    }
    if (healthy && host_->leader() == 0) healthy = false;
    if (healthy) healthy = LinearizableReadWorks();
    (healthy ? metrics_->health_success : metrics_->health_failures).fetch_add(1);
    if (!healthy) return Json(503, "{\"health\":\"false\"}\n");
    return Json(200, "{\"health\":\"true\"}");
  }

  // The active alarms; a member thread that does not answer is unhealthy too.
  std::vector<std::string> OnMemberAlarms() {
    absl::StatusOr<std::vector<std::string>> alarms =
        OnMember<absl::StatusOr<std::vector<std::string>>>(host_, [](MemberHost::Context& context) {
          std::vector<std::string> alarms;
          for (const auto& [member, type] : context.store().alarms()) {
            alarms.push_back(
                etcdserverpb::AlarmType_Name(static_cast<etcdserverpb::AlarmType>(type)));
          }
          return alarms;
        });
    if (!alarms.ok()) return {"MEMBER_THREAD_UNRESPONSIVE"};
    return *alarms;
  }

  // A read through ReadIndex, answered within a second. With auth on it is
  // refused by the key tree only after the read index was confirmed, which
  // is all this asks.
  bool LinearizableReadWorks() {
    kvpb::Request request;
    request.mutable_range()->set_key("health");
    request.mutable_range()->set_limit(1);
    absl::Status status = Await(absl::Seconds(1), [&](std::function<void(absl::Status)> done) {
      host_->Read(std::move(request), /*serializable=*/false,
                  [done = std::move(done)](absl::StatusOr<kvpb::Response> response) {
                    done(response.status());
                  });
    });
    return status.ok() || status.code() == absl::StatusCode::kPermissionDenied ||
           status.code() == absl::StatusCode::kUnauthenticated ||
           status.code() == absl::StatusCode::kInvalidArgument;
  }

  // Starts the gRPC call and returns: its completion answers. A call may
  // wait as long as its client does (a lock, a campaign), as through etcd's
  // gateway; the client leaving cancels it.
  void Call(const RouteTarget& route, const HttpRequest& request,
            std::shared_ptr<HttpExchange> exchange) {
    std::unique_ptr<google::protobuf::Message> input(route.request->New());
    if (absl::Status parsed = GatewayFromJson(request.body.empty() ? "{}" : request.body, input.get());
        !parsed.ok()) {
      exchange->Respond(GatewayError(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(parsed.message()))));
      return;
    }
    struct Pending {
      grpc::ClientContext context;
      grpc::ByteBuffer request;
      grpc::ByteBuffer response;
    };
    auto pending = std::make_shared<Pending>();
    auto authorization = request.headers.find("authorization");
    if (authorization != request.headers.end()) {
      pending->context.AddMetadata("authorization", authorization->second);
    }
    pending->request = ToByteBuffer(*input);
    stub_->UnaryCall(&pending->context, route.method, grpc::StubOptions(), &pending->request,
                     &pending->response, [pending, exchange, &route](grpc::Status status) {
                       exchange->Respond(Answer(route, status, pending->response));
                     });
    std::weak_ptr<Pending> weak = pending;
    exchange->OnClose([weak] {
      if (std::shared_ptr<Pending> live = weak.lock()) live->context.TryCancel();
    });
  }

  static HttpResponse Answer(const RouteTarget& route, const grpc::Status& status,
                             const grpc::ByteBuffer& bytes) {
    if (!status.ok()) return GatewayError(status);
    std::unique_ptr<google::protobuf::Message> output(route.response->New());
    if (!FromByteBuffer(bytes, output.get())) {
      return GatewayError(grpc::Status(grpc::StatusCode::INTERNAL, "cannot decode the response"));
    }
    return Json(200, GatewayToJson(*output));
  }

  MemberHost* host_;
  Metrics* metrics_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::unique_ptr<V2Api> v2_;
};

}  // namespace

AsyncHttpHandler MakeHttpHandler(MemberHost* host, Metrics* metrics, grpc::Server* grpc_server,
                                 bool enable_v2) {
  auto gateway = std::make_shared<Gateway>(host, metrics, grpc_server, enable_v2);
  return [gateway](const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
    gateway->Handle(request, std::move(exchange));
  };
}

}  // namespace etc::server
