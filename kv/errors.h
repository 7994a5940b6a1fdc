// The errors the key tree returns, with etcd 3.4's gRPC codes and messages:
// clients (etcdctl, the Go and Python clients) match on the text, so these
// are part of the wire format. The server turns an absl::Status into a gRPC
// status code-for-code.
#ifndef ETC_KV_ERRORS_H_
#define ETC_KV_ERRORS_H_

#include "absl/status/status.h"

namespace etc::kv {

inline absl::Status CompactedError() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
}
inline absl::Status FutureRevisionError() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision");
}
inline absl::Status EmptyKeyError() {
  return absl::InvalidArgumentError("etcdserver: key is not provided");
}
inline absl::Status KeyNotFoundError() {
  return absl::InvalidArgumentError("etcdserver: key not found");
}
inline absl::Status ValueProvidedError() {
  return absl::InvalidArgumentError("etcdserver: value is provided");
}
inline absl::Status LeaseProvidedError() {
  return absl::InvalidArgumentError("etcdserver: lease is provided");
}
inline absl::Status TooManyOpsError() {
  return absl::InvalidArgumentError("etcdserver: too many operations in txn request");
}
inline absl::Status DuplicateKeyError() {
  return absl::InvalidArgumentError("etcdserver: duplicate key given in txn request");
}
inline absl::Status RequestTooLargeError() {
  return absl::InvalidArgumentError("etcdserver: request is too large");
}
inline absl::Status NoSpaceError() {
  return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
}
inline absl::Status LeaseNotFoundError() {
  return absl::NotFoundError("etcdserver: requested lease not found");
}
inline absl::Status LeaseExistsError() {
  return absl::FailedPreconditionError("etcdserver: lease already exists");
}
inline absl::Status LeaseTtlTooLargeError() {
  return absl::OutOfRangeError("etcdserver: too large lease TTL");
}
inline absl::Status RootUserNotExistError() {
  return absl::FailedPreconditionError("etcdserver: root user does not exist");
}
inline absl::Status RootRoleNotExistError() {
  return absl::FailedPreconditionError("etcdserver: root user does not have root role");
}
inline absl::Status UserAlreadyExistError() {
  return absl::FailedPreconditionError("etcdserver: user name already exists");
}
inline absl::Status UserEmptyError() {
  return absl::InvalidArgumentError("etcdserver: user name is empty");
}
inline absl::Status UserNotFoundError() {
  return absl::FailedPreconditionError("etcdserver: user name not found");
}
inline absl::Status RoleAlreadyExistError() {
  return absl::FailedPreconditionError("etcdserver: role name already exists");
}
inline absl::Status RoleNotFoundError() {
  return absl::FailedPreconditionError("etcdserver: role name not found");
}
inline absl::Status RoleEmptyError() {
  return absl::InvalidArgumentError("etcdserver: role name is empty");
}
inline absl::Status AuthFailedError() {
  return absl::InvalidArgumentError(
      "etcdserver: authentication failed, invalid user ID or password");
}
inline absl::Status PermissionDeniedError() {
  return absl::PermissionDeniedError("etcdserver: permission denied");
}
inline absl::Status RoleNotGrantedError() {
  return absl::FailedPreconditionError("etcdserver: role is not granted to the user");
}
inline absl::Status PermissionNotGrantedError() {
  return absl::FailedPreconditionError("etcdserver: permission is not granted to the role");
}
inline absl::Status AuthNotEnabledError() {
  return absl::FailedPreconditionError("etcdserver: authentication is not enabled");
}
inline absl::Status InvalidAuthTokenError() {
  return absl::UnauthenticatedError("etcdserver: invalid auth token");
}
inline absl::Status InvalidAuthManagementError() {
  return absl::InvalidArgumentError("etcdserver: invalid auth management");
}
inline absl::Status AuthOldRevisionError() {
  return absl::InvalidArgumentError("etcdserver: revision of auth store is old");
}

}  // namespace etc::kv

#endif  // ETC_KV_ERRORS_H_
