// The tokens of authenticated users, as etcd's simple tokens live: local to
// a member, not replicated (a restarted member forgets them and clients
// authenticate again), and dropped by the same replicated auth changes on
// every member, because every member applies them:
//
// - a user's password changes or the user is deleted: that user's tokens
//   go (etcd's invalidateUser), so a token never outlives the password
//   that earned it, nor a user deleted and made again under its name;
// - auth is turned off: every token goes (etcd's disable), so none
//   survives an off-and-on;
// - a token unused for the TTL (etcd's --auth-token-ttl, 300 s) goes.
//
// Revoking a role or deleting it drops no token, as in etcd 3.4: the
// token names a user only, and every request is checked against that
// user's roles as they are when it applies.
//
// Time enters as arguments (milliseconds of the member's clock).
//
//   TokenTable tokens(/*ttl_ms=*/300'000);
//   tokens.Add("tok.1", "alice");                    // Authenticate applied
//   absl::StatusOr<std::string> user = tokens.Resolve("tok.1", now_ms);
//   tokens.InvalidateUser("alice");                  // her password changed
#ifndef ETC_KV_AUTH_TOKENS_H_
#define ETC_KV_AUTH_TOKENS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace etc::kv {

inline constexpr int64_t kDefaultAuthTokenTtlMs = 300'000;

class TokenTable {
 public:
  explicit TokenTable(int64_t ttl_ms = kDefaultAuthTokenTtlMs);

  int64_t ttl_ms() const { return ttl_ms_; }
  size_t size() const { return tokens_.size(); }

  // Applying an Authenticate has no clock: the token's time starts at the
  // next Resolve or ExpireOld.
  void Add(const std::string& token, const std::string& username);
  // The user `token` was issued to, and the token counts as used now.
  // Errors: kUnauthenticated "invalid auth token" for an unknown, dropped
  // or expired token.
  absl::StatusOr<std::string> Resolve(const std::string& token, int64_t now_ms);
  // Drops every token unused for longer than the TTL.
  void ExpireOld(int64_t now_ms);

  // Drops every token of `username`.
  void InvalidateUser(const std::string& username);
  // Drops every token.
  void Clear() { tokens_.clear(); }

 private:
  struct Entry {
    std::string username;
    // -1: not stamped yet.
    int64_t last_used_ms = -1;
  };
  bool Expired(const Entry& entry, int64_t now_ms) const {
    return entry.last_used_ms >= 0 && now_ms - entry.last_used_ms > ttl_ms_;
  }

  int64_t ttl_ms_;
  std::map<std::string, Entry> tokens_;
};

}  // namespace etc::kv

#endif  // ETC_KV_AUTH_TOKENS_H_
