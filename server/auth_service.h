// etcd's Auth service: users, roles and tokens, all through the log. The
// slow work (checking a password against its PBKDF2 hash, hashing a new
// one with a random salt) runs on the gRPC thread, so the member thread
// never waits for it and the log carries only hashes: applying stays
// deterministic.
//
//   AuthService auth(host);
//   builder.RegisterService(&auth);
#ifndef ETC_SERVER_AUTH_SERVICE_H_
#define ETC_SERVER_AUTH_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"

namespace etc::server {

// The calls that only wrap the client's request for the key tree, as
// (method, request, response, kvpb field, Mode): declared here and defined
// in auth_service.cc from this one list.
#define ETC_AUTH_FORWARDED_CALLS(X)                                                              \
  X(AuthEnable, AuthEnableRequest, AuthEnableResponse, auth_enable, kWrite)                      \
  X(AuthDisable, AuthDisableRequest, AuthDisableResponse, auth_disable, kWrite)                  \
  X(UserGet, AuthUserGetRequest, AuthUserGetResponse, user_get, kLinearizableRead)               \
  X(UserList, AuthUserListRequest, AuthUserListResponse, user_list, kLinearizableRead)           \
  X(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse, user_delete, kWrite)              \
  X(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, user_grant_role, kWrite) \
  X(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, user_revoke_role,     \
    kWrite)                                                                                      \
  X(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse, role_add, kWrite)                          \
  X(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse, role_get, kLinearizableRead)               \
  X(RoleList, AuthRoleListRequest, AuthRoleListResponse, role_list, kLinearizableRead)           \
  X(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse, role_delete, kWrite)              \
  X(RoleGrantPermission, AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse,        \
    role_grant_permission, kWrite)                                                               \
  X(RoleRevokePermission, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse,     \
    role_revoke_permission, kWrite)

class AuthService final : public etcdserverpb::Auth::Service {
 public:
  explicit AuthService(MemberHost* host) : host_(host) {}

  grpc::Status Authenticate(grpc::ServerContext* context,
                            const etcdserverpb::AuthenticateRequest* r,
                            etcdserverpb::AuthenticateResponse* response) override;
  grpc::Status UserAdd(grpc::ServerContext* context, const etcdserverpb::AuthUserAddRequest* r,
                       etcdserverpb::AuthUserAddResponse* response) override;
  grpc::Status UserChangePassword(grpc::ServerContext* context,
                                  const etcdserverpb::AuthUserChangePasswordRequest* r,
                                  etcdserverpb::AuthUserChangePasswordResponse* response) override;
#define ETC_AUTH_DECLARE(Method, Req, Resp, field, mode)                        \
  grpc::Status Method(grpc::ServerContext* context, const etcdserverpb::Req* r, \
                      etcdserverpb::Resp* response) override;
  ETC_AUTH_FORWARDED_CALLS(ETC_AUTH_DECLARE)
#undef ETC_AUTH_DECLARE

 private:
  MemberHost* host_;
};

// A new token for the member to issue, in etcd's simple-token shape:
// random letters, a dot, a counter (Authenticate's, and v2's basic auth).
std::string NewAuthToken();

}  // namespace etc::server

#endif  // ETC_SERVER_AUTH_SERVICE_H_
