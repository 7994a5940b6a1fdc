// Access control, as etcd v3 does it: users with password hashes and roles,
// roles with read / write / readwrite permissions on a key, a range or a
// prefix, a root user and role, auth enable / disable, and an auth revision
// that moves with every change (a request checked under an older revision
// is refused rather than applied under newer rules).
//
// AuthStore is replicated state: every change comes through the log and is
// deterministic. Password hashing takes its salt as an argument (the
// proposer draws it), and tokens live in a separate, local TokenTable
// (auth_tokens.h).
//
//   AuthStore auth;
//   auth.UserAdd("root", HashPassword("pw", salt), {});
//   auth.UserGrantRole("root", "root");
//   auth.Enable();
//   auth.CheckRange(user, revision, {"/a/", PrefixEnd("/a/")});   // Status
#ifndef ETC_KV_AUTH_H_
#define ETC_KV_AUTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/authpb/auth.pb.h"
#include "kv/keyspace.h"

namespace etc::kv {

inline constexpr char kRootUser[] = "root";
inline constexpr char kRootRole[] = "root";

// A salted, slow password hash (PBKDF2-HMAC-SHA256 from OpenSSL), encoded
// with its parameters so the iteration count can grow later:
// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". `salt` should be 16
// random bytes; `iterations` defaults to a cost of a few milliseconds.
inline constexpr int kDefaultPasswordIterations = 20000;
std::string HashPassword(std::string_view password, std::string_view salt,
                         int iterations = kDefaultPasswordIterations);
// Whether `password` matches `encoded` (false for a malformed encoding).
bool CheckPasswordHash(std::string_view password, std::string_view encoded);
// Whether `encoded` has the shape HashPassword produces.
bool IsPasswordHash(std::string_view encoded);

// Who is asking: the user a token resolved to (empty: nobody) and the auth
// revision it was checked against.
struct AuthInfo {
  std::string username;
  uint64_t revision = 0;
};

class AuthStore {
 public:
  bool enabled() const { return enabled_; }
  uint64_t revision() const { return revision_; }

  // ---- changes (each bumps the revision when it changes anything) ----
  // Errors: root user missing or without the root role.
  absl::Status Enable();
  void Disable();
  absl::Status UserAdd(const std::string& name, const std::string& password_hash,
                       const authpb::UserAddOptions& options);
  absl::Status UserDelete(const std::string& name);
  absl::Status UserChangePassword(const std::string& name, const std::string& password_hash);
  absl::Status UserGrantRole(const std::string& name, const std::string& role);
  absl::Status UserRevokeRole(const std::string& name, const std::string& role);
  absl::Status RoleAdd(const std::string& name);
  absl::Status RoleDelete(const std::string& name);
  absl::Status RoleGrantPermission(const std::string& name, const authpb::Permission& permission);
  absl::Status RoleRevokePermission(const std::string& name, std::string_view key,
                                    std::string_view range_end);

  // ---- queries ----
  absl::StatusOr<authpb::User> UserGet(const std::string& name) const;
  absl::StatusOr<authpb::Role> RoleGet(const std::string& name) const;
  std::vector<std::string> UserList() const;
  std::vector<std::string> RoleList() const;
  bool HasRole(const std::string& user, const std::string& role) const;
  // For Authenticate: the user exists, has a password, and it matches.
  // Errors: auth not enabled, authentication failed.
  absl::Status CheckPassword(const std::string& name, std::string_view password) const;

  // ---- permission checks (all OK while auth is disabled) ----
  absl::Status CheckRead(const AuthInfo& who, KeyRange range) const;
  absl::Status CheckWrite(const AuthInfo& who, KeyRange range) const;
  // User and role management, auth enable/disable, member changes: `who`
  // holds the root role now. Errors: user empty, old revision (checked
  // against an older auth store, as key requests), user not found,
  // permission denied.
  absl::Status CheckAdmin(const AuthInfo& who) const;

  // ---- whole state ----
  std::vector<authpb::User> users() const;
  std::vector<authpb::Role> roles() const;
  // Replaces everything. Errors: kDataLoss for inconsistent data.
  absl::Status Restore(bool enabled, uint64_t revision, std::vector<authpb::User> users,
                       std::vector<authpb::Role> roles);

 private:
  absl::Status CheckPermission(const AuthInfo& who, KeyRange range, bool write) const;
  bool UserHasRootRole(const authpb::User& user) const;

  bool enabled_ = false;
  // Starts at 1 so that 0 can mean "no user given" (as in etcd).
  uint64_t revision_ = 1;
  std::map<std::string, authpb::User> users_;
  std::map<std::string, authpb::Role> roles_;
};

}  // namespace etc::kv

#endif  // ETC_KV_AUTH_H_
