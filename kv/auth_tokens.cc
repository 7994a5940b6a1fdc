#include "kv/auth_tokens.h"

#include "base/check.h"
#include "kv/errors.h"

namespace etc::kv {

TokenTable::TokenTable(int64_t ttl_ms) : ttl_ms_(ttl_ms) { ETC_CHECK(ttl_ms > 0); }

void TokenTable::Add(const std::string& token, const std::string& username) {
  tokens_[token] = Entry{username, -1};
}

absl::StatusOr<std::string> TokenTable::Resolve(const std::string& token, int64_t now_ms) {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return InvalidAuthTokenError();
  if (Expired(it->second, now_ms)) {
    tokens_.erase(it);
    return InvalidAuthTokenError();
  }
  it->second.last_used_ms = now_ms;
  return it->second.username;
}

void TokenTable::ExpireOld(int64_t now_ms) {
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    if (it->second.last_used_ms < 0) it->second.last_used_ms = now_ms;
    if (Expired(it->second, now_ms)) {
      it = tokens_.erase(it);
    } else {
      ++it;
    }
  }
}

void TokenTable::InvalidateUser(const std::string& username) {
  // A scan, as etcd's: users change rarely, and an index by user would be
  // a second structure to keep in step for that.
  std::erase_if(tokens_, [&username](const auto& token) {
    return token.second.username == username;
  });
}

}  // namespace etc::kv
