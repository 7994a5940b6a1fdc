#include "server/v2_keys.h"

#include <chrono>
#include <utility>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "kv/auth.h"
#include "kv/errors.h"
#include "kv/tree.h"
#include "member/errors.h"
#include "server/auth_service.h"
#include "server/rpc.h"
#include "server/v2_watch.h"

namespace etc::server {
namespace {

constexpr std::string_view kKeysPrefix = "/v2/keys";


HttpResponse Text(int status, std::string body, std::string type = "text/plain; charset=utf-8") {
  HttpResponse response;
  response.status = status;
  response.content_type = std::move(type);
  response.body = std::move(body);
  return response;
}

using Answer = V2Answer;

// The time left on each lease in `expiry`, from the member's lessor (on
// the member thread); leases it does not know are dropped.
void FillExpiry(kv::Store* store, std::map<int64_t, NodeExpiry>* expiry) {
  int64_t now_ms = SteadyNowMs();
  for (auto it = expiry->begin(); it != expiry->end();) {
    std::optional<int64_t> left = store->lessor().RemainingMs(it->first, now_ms);
    if (!left) {
      it = expiry->erase(it);
      continue;
    }
    it->second = NodeExpiry{*left, UnixNsOfSteadyMs(now_ms + *left)};
    ++it;
  }
}

void CollectLeases(const kvpb::TreeNode& node, std::map<int64_t, NodeExpiry>* out) {
  if (node.lease() != 0) (*out)[node.lease()];
  for (const kvpb::TreeNode& child : node.nodes()) CollectLeases(child, out);
}

// Runs `request` as `token`'s user; `done` gets the answer on the member
// thread (the member answers every request within its request timeout).
void Start(MemberHost* host, const std::optional<std::string>& token, kvpb::Request request,
           Mode mode, std::function<void(Answer)> done) {
  host->Post([token, request = std::move(request), mode, done = std::move(done)](
                 MemberHost::Context& c) mutable {
    if (absl::Status s = c.kv().Authorize(token, &request); !s.ok()) {
      Answer refused;
      refused.response = s;
      done(std::move(refused));
      return;
    }
    member::Member* member = &c.member();
    kv::Store* store = &c.store();
    MemberHost::Done answered = [done = std::move(done), member,
                                 store](absl::StatusOr<kvpb::Response> response) {
      // On the member thread: what only it may read.
      Answer answer;
      answer.raft_index = member->applied_index();
      if (response.ok() && response->has_tree()) {
        CollectLeases(response->tree().node(), &answer.expiry);
        CollectLeases(response->tree().prev_node(), &answer.expiry);
        FillExpiry(store, &answer.expiry);
      }
      answer.response = std::move(response);
      done(std::move(answer));
    };
    if (mode == Mode::kWrite) {
      c.host().StartWrite(std::move(request), std::move(answered));
    } else {
      c.host().StartRead(std::move(request), mode == Mode::kSerializableRead, std::move(answered));
    }
  });
}

// Start, waiting for the answer (for a login, on a worker).
Answer Run(MemberHost* host, const std::optional<std::string>& token, kvpb::Request request,
           Mode mode) {
  struct Pending {
    absl::Notification done;
    Answer answer;
  };
  auto pending = std::make_shared<Pending>();
  Start(host, token, std::move(request), mode, [pending](Answer answer) {
    pending->answer = std::move(answer);
    pending->done.Notify();
  });
  absl::Duration timeout = absl::Milliseconds(host->options().request_timeout_ms) + absl::Seconds(1);
  if (!pending->done.WaitForNotificationWithTimeout(timeout)) {
    Answer timed_out;
    timed_out.response = absl::UnavailableError(member::kRequestTimedOut);
    return timed_out;
  }
  return std::move(pending->answer);
}

// Go's ServeMux cleaning of a request path: path.Clean, keeping a trailing
// slash.
std::string CleanUrlPath(const std::string& path) {
  std::string clean = kv::NormalizeTreePath(path).value_or(path);
  if (path.size() > 1 && path.back() == '/' && clean != "/") clean += '/';
  return clean;
}

std::string CountName(const kvpb::Request& request) {
  if (request.has_tree_get()) return "gets";
  if (request.has_tree_delete()) {
    bool compare = !request.tree_delete().prev_value().empty() || request.tree_delete().prev_index() != 0;
    return compare ? "compareAndDelete" : "delete";
  }
  switch (request.tree_set().mode()) {
    case kvpb::TreeSetRequest::CREATE:
    case kvpb::TreeSetRequest::CREATE_IN_ORDER:
      return "create";
    case kvpb::TreeSetRequest::UPDATE:
      return "update";
    case kvpb::TreeSetRequest::COMPARE_AND_SWAP:
      return "compareAndSwap";
    default:
      return "sets";
  }
}

}  // namespace

V2Api::V2Api(MemberHost* host)
    : host_(host),
      cluster_id_hex_(absl::StrFormat("%x", host->options().cluster_id)),
      start_unix_ns_(UnixNsOfSteadyMs(SteadyNowMs())) {}

bool V2Api::Serves(std::string_view path) {
  for (std::string_view prefix : {"/v2/keys", "/v2/members", "/v2/stats/"}) {
    if (path.starts_with(prefix)) return true;
  }
  return path == "/v2/machines";
}

void V2Api::AddHeaders(int64_t etcd_index, HttpResponse* response) const {
  response->headers.emplace_back("X-Etcd-Cluster-Id", cluster_id_hex_);
  response->headers.emplace_back("X-Etcd-Index", absl::StrCat(etcd_index));
  response->headers.emplace_back("Access-Control-Allow-Origin", "*");
  response->headers.emplace_back("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
  response->headers.emplace_back("Access-Control-Allow-Headers", "accept, content-type, authorization");
}

HttpResponse V2Api::Error(const V2Error& error) const {
  HttpResponse response = Text(V2ErrorHttpStatus(error.code), V2ErrorBody(error), "application/json");
  AddHeaders(error.index, &response);
  return response;
}

HttpResponse V2Api::ErrorOf(const absl::Status& status) const {
  // With auth on, a request without credentials is nobody's: v2 says so
  // as for any refusal.
  if (status == kv::UserEmptyError()) return Error({110, "Insufficient credentials", 0});
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return Error({110, "Insufficient credentials", 0});
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return Error({209, std::string(status.message()), 0});
    default:
      // No leader, a timeout, NOSPACE: etcd answers these 300 too.
      return Error({300, std::string(status.message()), 0});
  }
}

std::variant<HttpResponse, V2KeyRequest> V2Api::ReadKeyRequest(const HttpRequest& request) const {
  absl::StatusOr<std::string> path = UnescapePath(request.path);
  if (!path.ok()) return Error({210, std::string(path.status().message()), 0});
  std::string clean = CleanUrlPath(*path);
  if (clean != *path) {
    HttpResponse moved = Text(301, "", "text/html; charset=utf-8");
    if (request.method == "GET") moved.body = absl::StrCat("<a href=\"", clean, "\">Moved Permanently</a>.\n\n");
    moved.headers.emplace_back("Location", request.query.empty() ? clean : clean + "?" + request.query);
    return moved;
  }
  if (request.method == "OPTIONS") {
    HttpResponse options = Text(200, "");
    AddHeaders(0, &options);
    return options;
  }
  if (request.method != "GET" && request.method != "HEAD" && request.method != "PUT" &&
      request.method != "POST" && request.method != "DELETE") {
    HttpResponse response = Text(405, "Method Not Allowed\n");
    response.headers.emplace_back("Allow", "HEAD,GET,PUT,POST,DELETE");
    response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return response;
  }
  absl::StatusOr<std::string> key = kv::NormalizeTreePath(path->substr(kKeysPrefix.size()));
  if (!key.ok()) return Error({209, std::string(key.status().message()), 0});
  V2Parsed parsed = ParseV2KeyRequest(request, *key);
  if (parsed.error) return Error(*parsed.error);
  return std::move(parsed.key);
}

void V2Api::Serve(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
  if (!std::string_view(request.path).starts_with(kKeysPrefix)) {
    return exchange->Respond(Discovery(request));
  }
  std::variant<HttpResponse, V2KeyRequest> read = ReadKeyRequest(request);
  if (HttpResponse* answer = std::get_if<HttpResponse>(&read)) {
    return exchange->Respond(std::move(*answer));
  }
  V2KeyRequest key = std::move(std::get<V2KeyRequest>(read));
  // A user's first request logs in (a round through the log, on this
  // worker); later ones reuse the token.
  absl::StatusOr<std::optional<std::string>> token = TokenFor(request);
  if (!token.ok()) return exchange->Respond(ErrorOf(token.status()));
  // A long-poll watch answers when its event comes (v2_watch.h).
  if (key.wait) return StartV2Watch(this, std::move(key), std::move(*token), std::move(exchange));
  bool sent_token = token->has_value();
  std::string credentials = sent_token ? CredentialsOf(request) : "";
  auto finish = [this, key, exchange, credentials](Answer answer) {
    if (!answer.response.ok() &&
        answer.response.status().code() == absl::StatusCode::kUnauthenticated &&
        !credentials.empty()) {
      // The member forgot the token (restarted, or a snapshot replaced its
      // state): the next request logs in again.
      std::lock_guard<std::mutex> lock(tokens_mu_);
      tokens_.erase(credentials);
    }
    exchange->Respond(ResponseFor(key, std::move(answer)));
  };
  Mode mode = key.request.has_tree_get()
                  ? (key.quorum ? Mode::kLinearizableRead : Mode::kSerializableRead)
                  : Mode::kWrite;
  if (!key.ttl.has_value() || !key.request.has_tree_set()) {
    return Start(host_, *token, key.request, mode, std::move(finish));
  }
  // A TTL is a lease of its own, granted first: one that a failed write
  // leaves unused holds no key and runs out by itself.
  kvpb::Request grant;
  grant.mutable_lease_grant()->set_ttl(*key.ttl);
  Start(host_, *token, std::move(grant), Mode::kWrite,
        [this, key, token = *token, mode, finish = std::move(finish)](Answer granted) mutable {
          if (!granted.response.ok()) return finish(std::move(granted));
          kvpb::Request request = key.request;
          request.mutable_tree_set()->set_lease(granted.response->lease_grant().id());
          Start(host_, token, std::move(request), mode, std::move(finish));
        });
}

HttpResponse V2Api::Discovery(const HttpRequest& request) {
  if (std::string_view(request.path).starts_with("/v2/members")) return Members(request);
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = Text(405, "Method Not Allowed\n");
    response.headers.emplace_back("Allow", "GET");
    return response;
  }
  if (request.path == "/v2/machines") return Machines();
  return Stats(request.path.substr(std::string_view("/v2/stats/").size()));
}

HttpResponse V2Api::ResponseFor(const V2KeyRequest& key, Answer answer) {
  if (!answer.response.ok()) {
    Count(key.request, false);
    return ErrorOf(answer.response.status());
  }
  const kvpb::TreeResponse& tree = answer.response->tree();
  int64_t index = tree.header().revision();
  if (tree.error_code() != 0) {
    Count(key.request, false);
    return Error({tree.error_code(), tree.error_cause(), index});
  }
  Count(key.request, true);
  ExpiryOf expiry = [&answer](int64_t lease) -> std::optional<NodeExpiry> {
    auto it = answer.expiry.find(lease);
    if (it == answer.expiry.end()) return std::nullopt;
    return it->second;
  };
  bool created = tree.action() == "create" || (tree.action() == "set" && !tree.has_prev_node());
  bool no_value = key.no_value_on_success && !key.request.has_tree_get();
  HttpResponse response =
      Text(created ? 201 : 200, V2EventBody(tree, expiry, no_value), "application/json");
  AddHeaders(index, &response);
  response.headers.emplace_back("X-Raft-Index", absl::StrCat(answer.raft_index));
  response.headers.emplace_back("X-Raft-Term", absl::StrCat(host_->term()));
  if (key.method == "HEAD") response.body.clear();
  return response;
}

std::string V2Api::CredentialsOf(const HttpRequest& request) {
  auto header = request.headers.find("authorization");
  if (header == request.headers.end()) return "";
  std::string_view value = header->second;
  std::string credentials;
  if (!value.starts_with("Basic ") ||
      !absl::Base64Unescape(absl::string_view(value.data() + 6, value.size() - 6), &credentials) ||
      credentials.find(':') == std::string::npos) {
    return "";
  }
  return credentials;
}

absl::StatusOr<std::optional<std::string>> V2Api::TokenFor(const HttpRequest& request) {
  if (request.headers.find("authorization") == request.headers.end()) {
    return std::optional<std::string>();
  }
  std::string credentials = CredentialsOf(request);
  if (credentials.empty()) return absl::UnauthenticatedError("malformed basic auth");
  int64_t now_ms = SteadyNowMs();
  {
    std::lock_guard<std::mutex> lock(tokens_mu_);
    auto it = tokens_.find(credentials);
    // A member forgets a token unused for 5 minutes: log in again before.
    if (it != tokens_.end() && now_ms - it->second.last_used_ms < kTokenReuseMs) {
      it->second.last_used_ms = now_ms;
      return std::optional<std::string>(it->second.token);
    }
  }
  std::string name = credentials.substr(0, credentials.find(':'));
  std::string password = credentials.substr(credentials.find(':') + 1);
  auto hash = OnMember<absl::StatusOr<std::string>>(
      host_, [name](MemberHost::Context& c) { return c.kv().PasswordHashOf(name); });
  // With auth off, credentials are ignored (as etcd's v2 API does).
  if (hash.status().code() == absl::StatusCode::kFailedPrecondition) {
    return std::optional<std::string>();
  }
  if (!hash.ok() || !kv::CheckPasswordHash(password, *hash)) {
    return absl::UnauthenticatedError("wrong user or password");
  }
  kvpb::Request login;
  login.mutable_authenticate()->set_name(name);
  login.mutable_authenticate()->set_token(NewAuthToken());
  std::string token = login.authenticate().token();
  Answer logged_in = Run(host_, std::nullopt, std::move(login), Mode::kWrite);
  if (!logged_in.response.ok()) return logged_in.response.status();
  std::lock_guard<std::mutex> lock(tokens_mu_);
  if (tokens_.size() >= 1000) tokens_.clear();
  tokens_[credentials] = CachedToken{token, now_ms};
  return std::optional<std::string>(token);
}

void V2Api::Count(const kvpb::Request& request, bool ok) {
  std::string counter = absl::StrCat(CountName(request), ok ? "Success" : "Fail");
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++store_stats_[counter];
}

HttpResponse V2Api::Members(const HttpRequest& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    // Membership changes go through the v3 Cluster API.
    HttpResponse response = Text(405, "Method Not Allowed\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  google::protobuf::RepeatedPtrField<etcdserverpb::Member> members;
  ListMembers(host_->membership(), &members);
  auto json = [](const etcdserverpb::Member& m) {
    std::vector<std::string> peers, clients;
    for (const std::string& url : m.peerurls()) peers.push_back(GoJsonString(url));
    for (const std::string& url : m.clienturls()) clients.push_back(GoJsonString(url));
    return absl::StrCat("{\"id\":\"", absl::StrFormat("%x", m.id()), "\",\"name\":", GoJsonString(m.name()),
                        ",\"peerURLs\":[", absl::StrJoin(peers, ","), "],\"clientURLs\":[",
                        absl::StrJoin(clients, ","), "]}");
  };
  std::string_view rest = request.path;
  rest.remove_prefix(std::string_view("/v2/members").size());
  HttpResponse response;
  if (rest.empty() || rest == "/") {
    std::vector<std::string> all;
    for (const auto& m : members) all.push_back(json(m));
    response = Text(200, absl::StrCat("{\"members\":[", absl::StrJoin(all, ","), "]}\n"), "application/json");
  } else if (rest == "/leader") {
    response = Text(503, "{\"message\":\"During election\"}\n", "application/json");
    for (const auto& m : members) {
      if (m.id() == host_->leader()) response = Text(200, json(m) + "\n", "application/json");
    }
  } else {
    response = Text(404, "{\"message\":\"Not found\"}\n", "application/json");
  }
  response.headers.emplace_back("X-Etcd-Cluster-Id", cluster_id_hex_);
  return response;
}

HttpResponse V2Api::Machines() {
  google::protobuf::RepeatedPtrField<etcdserverpb::Member> members;
  ListMembers(host_->membership(), &members);
  std::vector<std::string> urls;
  for (const auto& m : members) {
    for (const std::string& url : m.clienturls()) urls.push_back(url);
  }
  return Text(200, absl::StrJoin(urls, ", "));
}

HttpResponse V2Api::Stats(const std::string& which) {
  std::string id = absl::StrFormat("%x", host_->options().member_id);
  std::string leader = absl::StrFormat("%x", host_->leader());
  bool leading = host_->leader() == host_->options().member_id;
  std::string start = GoJsonString(Rfc3339Nano(start_unix_ns_));
  if (which == "self") {
    return Text(200,
                absl::StrCat("{\"name\":", GoJsonString(host_->options().self.name()), ",\"id\":\"", id,
                             "\",\"state\":\"", leading ? "StateLeader" : "StateFollower",
                             "\",\"startTime\":", start, ",\"leaderInfo\":{\"leader\":\"", leader,
                             "\",\"uptime\":\"\",\"startTime\":", start,
                             "},\"recvAppendRequestCnt\":0,\"sendAppendRequestCnt\":0}\n"),
                "application/json");
  }
  if (which == "leader") {
    if (!leading) return Text(403, "{\"message\":\"not current leader\"}\n", "application/json");
    std::vector<std::string> followers;
    for (uint64_t member : host_->membership().Ids()) {
      if (member == host_->options().member_id) continue;
      followers.push_back(absl::StrCat(
          "\"", absl::StrFormat("%x", member),
          "\":{\"latency\":{\"current\":0,\"average\":0,\"standardDeviation\":0,\"minimum\":0,"
          "\"maximum\":0},\"counts\":{\"fail\":0,\"success\":0}}"));
    }
    return Text(200, absl::StrCat("{\"leader\":\"", id, "\",\"followers\":{", absl::StrJoin(followers, ","), "}}\n"),
                "application/json");
  }
  if (which == "store") {
    std::vector<std::string> fields;
    std::lock_guard<std::mutex> lock(stats_mu_);
    for (const char* name :
         {"getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
          "updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess",
          "compareAndSwapFail", "compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount"}) {
      fields.push_back(absl::StrCat("\"", name, "\":", store_stats_[name]));
    }
    fields.push_back("\"watchers\":0");
    return Text(200, absl::StrCat("{", absl::StrJoin(fields, ","), "}\n"), "application/json");
  }
  return Text(404, "404 page not found\n");
}

}  // namespace etc::server
