// etcd v2's keys API on the client port, served with --enable-v2 over the
// same keyspace as v3 (kv/tree.h): GET/HEAD/PUT/POST/DELETE /v2/keys/...
// as etcd 3.4 answers them (bodies, status codes, X-Etcd-Index,
// X-Raft-Index, X-Raft-Term, X-Etcd-Cluster-Id, CORS), with v2's TTLs as
// leases and HTTP basic auth against the v3 users and roles. Also what v2
// clients use to find the cluster: /v2/members, /v2/machines and
// /v2/stats/{self,leader,store}.
//
// Requests run through the member like every client request (followers
// forward writes and quorum reads) and are answered from the member's
// callback, so no worker thread waits for them; long-poll watches
// (wait=true) are v2_watch.h's.
#ifndef ETC_SERVER_V2_KEYS_H_
#define ETC_SERVER_V2_KEYS_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "absl/status/statusor.h"
#include "server/http.h"
#include "server/member_host.h"
#include "server/v2_json.h"
#include "server/v2_request.h"

namespace etc::server {

// What a v2 request got from the member, read on the member thread: the
// key tree's answer, the Raft index applied, and the time left on every
// lease it shows.
struct V2Answer {
  absl::StatusOr<kvpb::Response> response = absl::UnknownError("no answer");
  uint64_t raft_index = 0;
  std::map<int64_t, NodeExpiry> expiry;
};

class V2Api {
 public:
  explicit V2Api(MemberHost* host);

  // Whether `path` is one of v2's (/v2/keys..., /v2/members..., /v2/machines,
  // /v2/stats/...).
  static bool Serves(std::string_view path);

  // Answers a request through `exchange`, from the member thread once the
  // member answered (a watch once its event comes): no thread waits (but a
  // user's first request with credentials logs in on this one).
  void Serve(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);


  // Who the request's basic-auth credentials log in as: a token of the
  // member's (issued once per user and password, then reused), none without
  // credentials or with auth off. Errors: a V2Error (110) to answer.
  absl::StatusOr<std::optional<std::string>> TokenFor(const HttpRequest& request);
  // "user:password" from a basic-auth header; empty if none or malformed.
  static std::string CredentialsOf(const HttpRequest& request);

  // The headers every v2 answer carries (cluster id, CORS); X-Etcd-Index too.
  void AddHeaders(int64_t etcd_index, HttpResponse* response) const;

  MemberHost* host() const { return host_; }

  // A /v2/keys request read and checked: the key request, or the answer
  // to give at once (a refusal, a redirect, OPTIONS).
  std::variant<HttpResponse, V2KeyRequest> ReadKeyRequest(const HttpRequest& request) const;
  // A refused request's status as v2 words it.
  HttpResponse ErrorOf(const absl::Status& status) const;
  HttpResponse Error(const V2Error& error) const;

 private:
  // /v2/members, /v2/machines, /v2/stats/*: answered at once.
  HttpResponse Discovery(const HttpRequest& request);
  // The HTTP answer to a key request's member answer.
  HttpResponse ResponseFor(const V2KeyRequest& key, V2Answer answer);
  HttpResponse Members(const HttpRequest& request);
  HttpResponse Machines();
  HttpResponse Stats(const std::string& which);
  // Counts an answer in /v2/stats/store.
  void Count(const kvpb::Request& request, bool ok);

  MemberHost* host_;
  std::string cluster_id_hex_;
  int64_t start_unix_ns_;
  // Members forget tokens unused for 5 minutes (kv::TokenTable).
  static constexpr int64_t kTokenReuseMs = 240'000;
  struct CachedToken {
    std::string token;
    int64_t last_used_ms = 0;
  };
  std::mutex tokens_mu_;
  // "user:password" -> token. Bounded: cleared when it grows past 1,000.
  std::map<std::string, CachedToken> tokens_;
  // /v2/stats/store's counters, by name.
  std::mutex stats_mu_;
  std::map<std::string, int64_t> store_stats_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_V2_KEYS_H_
