// The Client's administration calls (membership, maintenance, auth, and
// the raw calls etcctl prints whole): each one unary call through Unary
// (client_unary.h), with the failover, deadline and re-login of Call.
#include "client/client.h"
#include "client/client_unary.h"

namespace etc::client {

using internal::StubOn;

absl::StatusOr<etcdserverpb::LeaseLeasesResponse> Client::LeaseLeases() {
  return Unary<etcdserverpb::Lease>(Safety::kRepeatable, &etcdserverpb::Lease::Stub::LeaseLeases,
                                    etcdserverpb::LeaseLeasesRequest());
}

absl::StatusOr<etcdserverpb::MemberAddResponse> Client::MemberAdd(
    const std::vector<std::string>& peer_urls, bool learner) {
  etcdserverpb::MemberAddRequest request;
  for (const std::string& url : peer_urls) request.add_peerurls(url);
  request.set_islearner(learner);
  return Unary<etcdserverpb::Cluster>(Safety::kOnce, &etcdserverpb::Cluster::Stub::MemberAdd, request);
}

absl::StatusOr<etcdserverpb::MemberRemoveResponse> Client::MemberRemove(uint64_t id) {
  etcdserverpb::MemberRemoveRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::Cluster>(Safety::kOnce, &etcdserverpb::Cluster::Stub::MemberRemove,
                                      request);
}

absl::StatusOr<etcdserverpb::MemberUpdateResponse> Client::MemberUpdate(
    uint64_t id, const std::vector<std::string>& peer_urls) {
  etcdserverpb::MemberUpdateRequest request;
  request.set_id(id);
  for (const std::string& url : peer_urls) request.add_peerurls(url);
  return Unary<etcdserverpb::Cluster>(Safety::kOnce, &etcdserverpb::Cluster::Stub::MemberUpdate,
                                      request);
}

absl::StatusOr<etcdserverpb::MemberPromoteResponse> Client::MemberPromote(uint64_t id) {
  etcdserverpb::MemberPromoteRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::Cluster>(Safety::kOnce, &etcdserverpb::Cluster::Stub::MemberPromote,
                                      request);
}

absl::Status Client::Snapshot(
    const std::function<bool(const etcdserverpb::SnapshotResponse&)>& on_chunk) {
  return Call(Safety::kRepeatable, std::chrono::milliseconds(0),
              [&](grpc::Channel* channel, grpc::ClientContext* context) {
                auto stream = StubOn<etcdserverpb::Maintenance>(channel)->Snapshot(
                    context, etcdserverpb::SnapshotRequest());
                etcdserverpb::SnapshotResponse chunk;
                while (stream->Read(&chunk)) {
                  if (!on_chunk(chunk)) {
                    context->TryCancel();
                    break;
                  }
                }
                return stream->Finish();
              });
}

absl::StatusOr<etcdserverpb::DefragmentResponse> Client::Defragment() {
  return Unary<etcdserverpb::Maintenance>(
      Safety::kRepeatable, &etcdserverpb::Maintenance::Stub::Defragment,
      etcdserverpb::DefragmentRequest());
}

absl::StatusOr<etcdserverpb::AlarmResponse> Client::Alarm(const etcdserverpb::AlarmRequest& request) {
  return Unary<etcdserverpb::Maintenance>(Safety::kRepeatable,
                                          &etcdserverpb::Maintenance::Stub::Alarm, request);
}

absl::StatusOr<etcdserverpb::HashKVResponse> Client::HashKV(int64_t revision) {
  etcdserverpb::HashKVRequest request;
  request.set_revision(revision);
  return Unary<etcdserverpb::Maintenance>(Safety::kRepeatable,
                                          &etcdserverpb::Maintenance::Stub::HashKV, request);
}

absl::StatusOr<etcdserverpb::AuthEnableResponse> Client::AuthEnable() {
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::AuthEnable,
                                   etcdserverpb::AuthEnableRequest());
}

absl::StatusOr<etcdserverpb::AuthDisableResponse> Client::AuthDisable() {
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::AuthDisable,
                                   etcdserverpb::AuthDisableRequest());
}

absl::StatusOr<etcdserverpb::AuthUserAddResponse> Client::UserAdd(
    const etcdserverpb::AuthUserAddRequest& request) {
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::UserAdd, request);
}

absl::StatusOr<etcdserverpb::AuthUserDeleteResponse> Client::UserDelete(const std::string& name) {
  etcdserverpb::AuthUserDeleteRequest request;
  request.set_name(name);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::UserDelete, request);
}

absl::StatusOr<etcdserverpb::AuthUserGetResponse> Client::UserGet(const std::string& name) {
  etcdserverpb::AuthUserGetRequest request;
  request.set_name(name);
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::UserGet, request);
}

absl::StatusOr<etcdserverpb::AuthUserListResponse> Client::UserList() {
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::UserList,
                                   etcdserverpb::AuthUserListRequest());
}

absl::StatusOr<etcdserverpb::AuthUserChangePasswordResponse> Client::UserChangePassword(
    const std::string& name, const std::string& password) {
  etcdserverpb::AuthUserChangePasswordRequest request;
  request.set_name(name);
  request.set_password(password);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::UserChangePassword,
                                   request);
}

absl::StatusOr<etcdserverpb::AuthUserGrantRoleResponse> Client::UserGrantRole(
    const std::string& user, const std::string& role) {
  etcdserverpb::AuthUserGrantRoleRequest request;
  request.set_user(user);
  request.set_role(role);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::UserGrantRole, request);
}

absl::StatusOr<etcdserverpb::AuthUserRevokeRoleResponse> Client::UserRevokeRole(
    const std::string& user, const std::string& role) {
  etcdserverpb::AuthUserRevokeRoleRequest request;
  request.set_name(user);
  request.set_role(role);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::UserRevokeRole,
                                   request);
}

absl::StatusOr<etcdserverpb::AuthRoleAddResponse> Client::RoleAdd(const std::string& name) {
  etcdserverpb::AuthRoleAddRequest request;
  request.set_name(name);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::RoleAdd, request);
}

absl::StatusOr<etcdserverpb::AuthRoleDeleteResponse> Client::RoleDelete(const std::string& name) {
  etcdserverpb::AuthRoleDeleteRequest request;
  request.set_role(name);
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::RoleDelete, request);
}

absl::StatusOr<etcdserverpb::AuthRoleGetResponse> Client::RoleGet(const std::string& name) {
  etcdserverpb::AuthRoleGetRequest request;
  request.set_role(name);
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::RoleGet, request);
}

absl::StatusOr<etcdserverpb::AuthRoleListResponse> Client::RoleList() {
  return Unary<etcdserverpb::Auth>(Safety::kRepeatable, &etcdserverpb::Auth::Stub::RoleList,
                                   etcdserverpb::AuthRoleListRequest());
}

absl::StatusOr<etcdserverpb::AuthRoleGrantPermissionResponse> Client::RoleGrantPermission(
    const etcdserverpb::AuthRoleGrantPermissionRequest& request) {
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::RoleGrantPermission,
                                   request);
}

absl::StatusOr<etcdserverpb::AuthRoleRevokePermissionResponse> Client::RoleRevokePermission(
    const etcdserverpb::AuthRoleRevokePermissionRequest& request) {
  return Unary<etcdserverpb::Auth>(Safety::kOnce, &etcdserverpb::Auth::Stub::RoleRevokePermission,
                                   request);
}

}  // namespace etc::client
