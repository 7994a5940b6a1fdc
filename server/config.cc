#include "server/config.h"

#include <openssl/sha.h>

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "kv/store.h"
#include "storage/record.h"

namespace etc::server {
namespace {

// Every flag etcd 3.4 users commonly pass that this server understands,
// with its help text.
const std::map<std::string, std::string>& KnownFlags() {
  static const auto* flags = new std::map<std::string, std::string>{
      {"name", "human-readable name for this member (default \"default\")"},
      {"data-dir", "path to the data directory (default \"<name>.etc\")"},
      {"listen-client-urls", "URLs to listen on for client traffic"},
      {"advertise-client-urls", "client URLs to advertise to the rest of the cluster"},
      {"listen-peer-urls", "URLs to listen on for peer traffic"},
      {"initial-advertise-peer-urls", "this member's peer URLs to advertise"},
      {"initial-cluster", "initial cluster configuration: name=peerURL,..."},
      {"initial-cluster-state", "new or existing"},
      {"initial-cluster-token", "initial cluster token (members' and cluster's ids hash it)"},
      {"heartbeat-interval", "time (ms) of a heartbeat interval"},
      {"election-timeout", "time (ms) for an election to time out"},
      {"snapshot-count", "applied entries between snapshots"},
      {"quota-backend-bytes", "raise an alarm past this size (0: 2 GiB; at most 8 GiB)"},
      {"max-request-bytes", "largest client request accepted"},
      {"max-txn-ops", "most operations in one txn"},
      {"experimental-watch-progress-notify-interval",
       "how often watchers with progress_notify hear the revision (a duration: 500ms, 10s, 10m)"},
      {"listen-metrics-urls", "more URLs to serve /metrics and /health on (HTTP only)"},
      {"log-level", "debug, info, warn or error"},
      {"auth-token-ttl", "time (in seconds) an unused auth token lives (default 300)"},
      {"cert-file", "client server TLS certificate (PEM), for https:// client URLs"},
      {"key-file", "client server TLS key (PEM)"},
      {"trusted-ca-file", "CA (PEM) that client certificates must chain to"},
      {"client-cert-auth", "require client certificates signed by --trusted-ca-file (true/false)"},
      {"peer-cert-file", "peer TLS certificate (PEM), for https:// peer URLs"},
      {"peer-key-file", "peer TLS key (PEM)"},
      {"peer-trusted-ca-file", "CA (PEM) peers' certificates must chain to"},
      {"peer-client-cert-auth", "require peer client certificates (true/false)"},
      {"enable-v2", "serve etcd v2's keys API (/v2/keys) over the same keys as v3 (true/false)"},
      {"repair-damaged-data",
       "repair a damaged log or snapshot from the leader instead of refusing to start "
       "(true/false, default true)"},
      {"values-in-memory",
       "keep values in the heap instead of the value log under <data-dir>/member/values "
       "(true/false, default false)"},
  };
  return *flags;
}

// Flags that, as Go's boolean flags, may stand alone ("--enable-v2"
// means --enable-v2=true); only "--flag=false" turns one off.
bool IsBoolFlag(const std::string& name) {
  return name == "enable-v2" || name == "client-cert-auth" || name == "peer-client-cert-auth" ||
         name == "repair-damaged-data" || name == "values-in-memory";
}

absl::StatusOr<int64_t> Int(const std::string& flag, const std::string& value, int64_t min) {
  int64_t out = 0;
  if (!absl::SimpleAtoi(value, &out) || out < min) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": expected an integer >= ", min));
  }
  return out;
}

std::vector<std::string> Urls(const std::string& value) {
  std::vector<std::string> out;
  for (absl::string_view url : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(url));
  }
  return out;
}

uint64_t BigEndian64(const unsigned char* bytes) {
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i) out = out << 8 | bytes[i];
  return out;
}

// etcd's ids: a member's is SHA-1 of its sorted peer URLs and the cluster
// token; the cluster's is SHA-1 of its sorted member ids. Same inputs, same
// ids as etcd would compute.
}  // namespace

uint64_t MemberId(std::vector<std::string> peer_urls, const std::string& token,
                  std::optional<int64_t> added_at_unix_seconds) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string input = absl::StrJoin(peer_urls, "") + token;
  if (added_at_unix_seconds.has_value()) absl::StrAppend(&input, *added_at_unix_seconds);
  unsigned char hash[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), hash);
  return BigEndian64(hash);
}

namespace {

uint64_t ClusterId(std::vector<uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  std::string input;
  for (uint64_t id : ids) {
    for (int i = 7; i >= 0; --i) input.push_back(static_cast<char>((id >> (8 * i)) & 0xFF));
  }
  unsigned char hash[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), hash);
  return BigEndian64(hash);
}

}  // namespace

absl::StatusOr<std::string> HostPort(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(url, ": expected http(s)://host:port"));
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(url, ": expected http(s)://host:port"));
  }
  return std::string(rest);
}

bool IsTls(const std::string& url) { return absl::StartsWith(url, "https://"); }

namespace {

const std::string* Find(const std::map<std::string, std::string>& values, const std::string& flag) {
  auto it = values.find(flag);
  return it == values.end() ? nullptr : &it->second;
}

// Each flag's value: from the arguments (--flag=value, --flag value, or
// one dash), else from ETCD_FLAG in the environment, as etcd reads them.
absl::StatusOr<std::map<std::string, std::string>> CollectFlags(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& environment) {
  std::map<std::string, std::string> values;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", args[i], "\""));
    }
    std::string name, value;
    size_t equals = arg.find('=');
    if (equals != absl::string_view::npos) {
      name = std::string(arg.substr(0, equals));
      value = std::string(arg.substr(equals + 1));
    } else if (IsBoolFlag(std::string(arg))) {
      name = std::string(arg);
      value = "true";
    } else {
      name = std::string(arg);
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = args[++i];
    }
    if (!KnownFlags().contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    values[name] = value;
  }
  for (const auto& [flag, help] : KnownFlags()) {
    if (values.contains(flag)) continue;
    std::string env = "ETCD_" + flag;
    std::transform(env.begin(), env.end(), env.begin(),
                   [](char c) { return c == '-' ? '_' : static_cast<char>(std::toupper(c)); });
    auto it = environment.find(env);
    if (it != environment.end()) values[flag] = it->second;
  }

  return values;
}

// etcd sets no bound; a year is more than any deployment asks for, and
// keeps the TTL in milliseconds far from overflowing.
constexpr int64_t kMaxAuthTokenTtlSeconds = int64_t{365} * 24 * 60 * 60;

// The integer flags with their bounds.
absl::Status ReadLimits(const std::map<std::string, std::string>& values, ServerConfig* config) {
  auto get = [&values](const std::string& flag) { return Find(values, flag); };
  static_assert(kv::kMaxRequestBytesLimit < int64_t{storage::kMaxRecordPayloadBytes},
                "a request at the limit must fit one WAL record");
  struct IntFlag {
    const char* flag;
    int64_t* field;
    int64_t min;
    int64_t max;
    const char* why_max;
  };
  constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
  for (const IntFlag& f : std::vector<IntFlag>{
           {"heartbeat-interval", &config->heartbeat_interval_ms, 1, kNoMax, ""},
           {"election-timeout", &config->election_timeout_ms, 1, kNoMax, ""},
           {"quota-backend-bytes", &config->quota_backend_bytes, 0, kv::kMaxQuotaBytes,
            "etcd's largest recommended quota; every member holds its key tree in memory"},
           {"max-request-bytes", &config->max_request_bytes, 1, kv::kMaxRequestBytesLimit,
            "a request travels in one log record"},
           {"auth-token-ttl", &config->auth_token_ttl_seconds, 1, kMaxAuthTokenTtlSeconds,
            "an unused token lives a year at most"}}) {
    if (auto v = get(f.flag)) {
      absl::StatusOr<int64_t> parsed = Int(f.flag, *v, f.min);
      if (!parsed.ok()) return parsed.status();
      *f.field = *parsed;
    }
    if (*f.field > f.max) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", f.flag, "=", *f.field, ": at most ", f.max, " (", f.why_max, ")"));
    }
  }
  return absl::OkStatus();
}

// The values into the config's typed fields, each checked on its own.
absl::Status ReadValues(const std::map<std::string, std::string>& values, ServerConfig* config) {
  auto get = [&values](const std::string& flag) { return Find(values, flag); };
  if (auto v = get("name")) config->name = *v;
  config->data_dir = config->name + ".etc";
  if (auto v = get("data-dir")) config->data_dir = *v;
  if (auto v = get("listen-client-urls")) config->listen_client_urls = Urls(*v);
  if (auto v = get("listen-metrics-urls")) config->listen_metrics_urls = Urls(*v);
  if (auto v = get("advertise-client-urls")) config->advertise_client_urls = Urls(*v);
  if (auto v = get("listen-peer-urls")) config->listen_peer_urls = Urls(*v);
  if (auto v = get("initial-advertise-peer-urls")) config->initial_advertise_peer_urls = Urls(*v);
  if (auto v = get("initial-cluster-state")) config->initial_cluster_state = *v;
  if (auto v = get("initial-cluster-token")) config->initial_cluster_token = *v;
  if (auto v = get("log-level")) config->log_level = *v;
  for (const auto& [flag, field] : std::vector<std::pair<std::string, std::string*>>{
           {"cert-file", &config->client_tls.cert_file},
           {"key-file", &config->client_tls.key_file},
           {"trusted-ca-file", &config->client_tls.trusted_ca_file},
           {"peer-cert-file", &config->peer_tls.cert_file},
           {"peer-key-file", &config->peer_tls.key_file},
           {"peer-trusted-ca-file", &config->peer_tls.trusted_ca_file}}) {
    if (auto v = get(flag)) *field = *v;
  }
  for (const auto& [flag, field] : std::vector<std::pair<std::string, bool*>>{
           {"client-cert-auth", &config->client_tls.client_cert_auth},
           {"peer-client-cert-auth", &config->peer_tls.client_cert_auth},
           {"enable-v2", &config->enable_v2},
           {"repair-damaged-data", &config->repair_damaged_data},
           {"values-in-memory", &config->values_in_memory}}) {
    if (auto v = get(flag)) {
      if (*v != "true" && *v != "false") {
        return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", *v, ": expected true or false"));
      }
      *field = *v == "true";
    }
  }
  if (absl::Status s = ReadLimits(values, config); !s.ok()) return s;
  if (auto v = get("snapshot-count")) {
    absl::StatusOr<int64_t> parsed = Int("snapshot-count", *v, 1);
    if (!parsed.ok()) return parsed.status();
    config->snapshot_count = static_cast<uint64_t>(*parsed);
  }
  if (auto v = get("experimental-watch-progress-notify-interval")) {
    absl::Duration interval;
    if (!absl::ParseDuration(*v, &interval) || interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--experimental-watch-progress-notify-interval=", *v, ": expected a duration like 10m"));
    }
    config->watch_progress_notify_interval_ms = absl::ToInt64Milliseconds(interval);
  }
  if (auto v = get("max-txn-ops")) {
    absl::StatusOr<int64_t> parsed = Int("max-txn-ops", *v, 1);
    if (!parsed.ok()) return parsed.status();
    config->max_txn_ops = static_cast<int>(*parsed);
  }

  return absl::OkStatus();
}

// What only the flags together can get wrong.
absl::Status CheckTogether(const ServerConfig& config) {
  if (config.initial_cluster_state != "new" && config.initial_cluster_state != "existing") {
    return absl::InvalidArgumentError(absl::StrCat("--initial-cluster-state=",
                                                   config.initial_cluster_state,
                                                   ": expected new or existing"));
  }
  if (config.election_timeout_ms < 5 * config.heartbeat_interval_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--election-timeout (", config.election_timeout_ms,
        " ms) must be at least 5 times --heartbeat-interval (", config.heartbeat_interval_ms,
        " ms)"));
  }
  for (const std::string& url : config.listen_metrics_urls) {
    if (absl::Status s = HostPort(url).status(); !s.ok()) return s;
    if (IsTls(url)) {
      return absl::InvalidArgumentError(absl::StrCat("--listen-metrics-urls=", url,
                                                     ": the metrics port serves http:// only"));
    }
  }
  for (const auto& [urls, tls, what] :
       std::vector<std::tuple<const std::vector<std::string>*, const TlsFiles*, std::string>>{
           {&config.listen_client_urls, &config.client_tls, "--cert-file and --key-file"},
           {&config.listen_peer_urls, &config.peer_tls, "--peer-cert-file and --peer-key-file"}}) {
    for (const std::string& url : *urls) {
      if (IsTls(url) && (tls->cert_file.empty() || tls->key_file.empty())) {
        return absl::InvalidArgumentError(absl::StrCat(url, ": https needs ", what));
      }
    }
  }
  for (const auto* tls : {&config.client_tls, &config.peer_tls}) {
    if (tls->client_cert_auth && tls->trusted_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "client certificate authentication needs a trusted CA file (--trusted-ca-file or "
          "--peer-trusted-ca-file)");
    }
  }
  for (const auto* urls : {&config.listen_client_urls, &config.listen_peer_urls,
                           &config.initial_advertise_peer_urls, &config.advertise_client_urls}) {
    if (urls->empty()) return absl::InvalidArgumentError("an URL list is empty");
    for (const std::string& url : *urls) {
      if (absl::Status s = HostPort(url).status(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// --initial-cluster (default: this member alone), with every member's id
// from its peer URLs and the token, and the cluster's id from theirs.
absl::Status ReadInitialCluster(const std::map<std::string, std::string>& values,
                                ServerConfig* config) {
  auto get = [&values](const std::string& flag) { return Find(values, flag); };
  if (auto v = get("initial-cluster")) {
    std::map<std::string, ClusterMember> by_name;
    for (absl::string_view item : absl::StrSplit(*v, ',', absl::SkipWhitespace())) {
      std::vector<std::string> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
      if (parts.size() != 2 || parts[0].empty()) {
        return absl::InvalidArgumentError(absl::StrCat("--initial-cluster: \"", item,
                                                       "\" is not name=peerURL"));
      }
      if (absl::Status s = HostPort(parts[1]).status(); !s.ok()) return s;
      ClusterMember& member = by_name[parts[0]];
      member.name = parts[0];
      member.peer_urls.push_back(parts[1]);
    }
    for (auto& [name, member] : by_name) config->initial_cluster.push_back(member);
  } else {
    config->initial_cluster.push_back(ClusterMember{config->name, config->initial_advertise_peer_urls});
  }
  bool found = false;
  std::vector<uint64_t> ids;
  for (ClusterMember& member : config->initial_cluster) {
    member.id = MemberId(member.peer_urls, config->initial_cluster_token);
    ids.push_back(member.id);
    if (member.name == config->name) {
      found = true;
      config->member_id = member.id;
      std::set<std::string> advertised(config->initial_advertise_peer_urls.begin(),
                                       config->initial_advertise_peer_urls.end());
      std::set<std::string> listed(member.peer_urls.begin(), member.peer_urls.end());
      if (advertised != listed) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--initial-cluster lists ", config->name, " at ", absl::StrJoin(listed, ","),
            " but --initial-advertise-peer-urls says ", absl::StrJoin(advertised, ",")));
      }
    }
  }
  if (!found) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--initial-cluster has no member named \"", config->name, "\" (--name)"));
  }
  config->cluster_id = ClusterId(ids);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& environment) {
  absl::StatusOr<std::map<std::string, std::string>> values = CollectFlags(args, environment);
  if (!values.ok()) return values.status();
  ServerConfig config;
  if (absl::Status s = ReadValues(*values, &config); !s.ok()) return s;
  if (absl::Status s = CheckTogether(config); !s.ok()) return s;
  if (absl::Status s = ReadInitialCluster(*values, &config); !s.ok()) return s;
  return config;
}

std::string Usage() {
  std::string out = "usage: etc [flags]\n\nServes one etcd-compatible member. Flags (etcd's names):\n";
  for (const auto& [flag, help] : KnownFlags()) absl::StrAppend(&out, "  --", flag, "\n      ", help, "\n");
  return out;
}

}  // namespace etc::server
