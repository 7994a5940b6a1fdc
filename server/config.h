// The `etc` server's configuration from etcd's own flag names, so that
// deployment scripts written for etcd 3.4 carry over. Both "--flag=value"
// and "--flag value" are accepted, and ETCD_<FLAG> environment variables
// (upper case, '-' as '_') fill in flags not given, as with etcd.
//
//   absl::StatusOr<ServerConfig> config = ParseFlags(argc, argv, environ);
#ifndef ETC_SERVER_CONFIG_H_
#define ETC_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace etc::server {

struct ClusterMember {
  std::string name;
  std::vector<std::string> peer_urls;
  uint64_t id = 0;
};

// TLS material, as etcd's --cert-file, --key-file, --trusted-ca-file and
// --client-cert-auth (or their --peer- forms).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  bool client_cert_auth = false;
};

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: "<name>.etc"
  std::vector<std::string> listen_client_urls = {"http://localhost:2379"};
  std::vector<std::string> advertise_client_urls = {"http://localhost:2379"};
  std::vector<std::string> listen_peer_urls = {"http://localhost:2380"};
  std::vector<std::string> listen_metrics_urls;
  std::vector<std::string> initial_advertise_peer_urls = {"http://localhost:2380"};
  std::vector<ClusterMember> initial_cluster;  // default: this member alone
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100000;  // etcd 3.4's default
  int64_t quota_backend_bytes = 0;  // 0: kv::kDefaultQuotaBytes (2 GiB, as etcd)
  int64_t max_request_bytes = 1536 * 1024;
  int max_txn_ops = 128;
  int64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // --auth-token-ttl: a token unused this long is dropped (etcd's default).
  int64_t auth_token_ttl_seconds = 300;
  std::string log_level = "info";
  TlsFiles client_tls;
  TlsFiles peer_tls;
  // --enable-v2: etcd v2's keys API on the client port (etcd 3.4's default
  // is off), over the same keyspace as v3.
  bool enable_v2 = false;
  // --repair-damaged-data: a member whose log or snapshot is damaged keeps
  // what is intact and fetches the rest from the leader instead of
  // refusing to start (etcd refuses; see docs/ARCHITECTURE.md).
  bool repair_damaged_data = true;
  // --values-in-memory: the key tree keeps values in the heap rather than
  // in the value log (etc's own flag; for comparisons, and for trees small
  // enough that memory does not matter).
  bool values_in_memory = false;

  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
};

// Errors: kInvalidArgument naming the flag and what is wrong with it.
absl::StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& environment);

// etcd's member id: SHA-1 of the sorted peer URLs and the cluster token
// (and, for a member added to a running cluster, the time it was added).
uint64_t MemberId(std::vector<std::string> peer_urls, const std::string& token,
                  std::optional<int64_t> added_at_unix_seconds = std::nullopt);

// "http(s)://host:port" -> "host:port" for listening or dialing. Errors
// for anything else.
absl::StatusOr<std::string> HostPort(const std::string& url);
bool IsTls(const std::string& url);

// The usage text for --help.
std::string Usage();

}  // namespace etc::server

#endif  // ETC_SERVER_CONFIG_H_
