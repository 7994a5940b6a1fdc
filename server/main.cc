// The etc server: one member of an etcd-compatible cluster. Takes etcd's
// flags (see --help), serves etcd's v3 gRPC API on the client URLs, and
// keeps its data in --data-dir. With no flags: one member on
// 127.0.0.1:2379 with its data in ./default.etc, as etcd does.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <signal.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "kv/store.h"
#include "server/backup.h"
#include "server/config.h"
#include "server/gateway.h"
#include "server/grpc_metrics.h"
#include "server/http.h"
#include "server/identity.h"
#include "server/json_log.h"
#include "server/metrics.h"
#include "server/peerpb/peer.grpc.pb.h"
#include "server/peers.h"
#include "server/raft_stream.h"
#include "server/member_host.h"
#include "server/services.h"
#include "storage/posix_fs.h"

extern char** environ;

namespace etc::server {
namespace {

// Set by the signal handler, read by the main loop: a lock-free atomic is
// all a handler may touch (absl::Notification takes a mutex, which a signal
// arriving while the main thread holds it would deadlock on).
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

struct JoinInfo {
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  std::map<uint64_t, std::string> addresses;
};

// --initial-cluster-state=existing: asks the running members (the others
// in --initial-cluster) which member this is, by its peer URLs, after an
// `etcdctl member add`.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// What a https:// URL's listener presents and requires (etcd's
// --cert-file, --key-file, --trusted-ca-file, --client-cert-auth).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerTls(const TlsFiles& files) {
  absl::StatusOr<std::string> cert = ReadFile(files.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(files.key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      files.client_cert_auth ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!files.trusted_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(files.trusted_ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

// Whether members dial each other's peer ports with TLS (any https://
// peer URL); without, Raft messages go over raft streams.
bool PeersUseTls(const ServerConfig& config) {
  bool tls = false;
  for (const ClusterMember& member : config.initial_cluster) {
    for (const std::string& url : member.peer_urls) tls = tls || IsTls(url);
  }
  for (const std::string& url : config.initial_advertise_peer_urls) tls = tls || IsTls(url);
  return tls;
}

// How this member dials its peers: TLS with its peer certificate (peers
// may require it) when the peer URLs are https://.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> PeerDialTls(const ServerConfig& config) {
  if (!PeersUseTls(config)) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  if (!config.peer_tls.trusted_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(config.peer_tls.trusted_ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  if (!config.peer_tls.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(config.peer_tls.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(config.peer_tls.key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

absl::StatusOr<JoinInfo> Join(const ServerConfig& config,
                              const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  std::set<std::string> own_urls(config.initial_advertise_peer_urls.begin(),
                                 config.initial_advertise_peer_urls.end());
  std::string last_error = "no other member in --initial-cluster";
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    for (const ClusterMember& member : config.initial_cluster) {
      if (member.name == config.name) continue;
      std::unique_ptr<peerpb::Peer::Stub> stub = peerpb::Peer::NewStub(grpc::CreateChannel(
          *HostPort(member.peer_urls.front()), credentials));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      peerpb::MembersResponse response;
      grpc::Status status = stub->Members(&context, peerpb::MembersRequest(), &response);
      if (!status.ok()) {
        last_error = absl::StrCat(member.peer_urls.front(), ": ", status.error_message());
        continue;
      }
      JoinInfo join;
      join.cluster_id = response.cluster_id();
      for (const etcdserverpb::Member& listed : response.members()) {
        std::set<std::string> urls(listed.peerurls().begin(), listed.peerurls().end());
        if (urls == own_urls) join.member_id = listed.id();
        if (listed.peerurls_size() > 0) {
          absl::StatusOr<std::string> address = HostPort(listed.peerurls(0));
          if (address.ok()) join.addresses[listed.id()] = *address;
        }
      }
      if (join.member_id == 0) {
        return absl::NotFoundError(absl::StrCat(
            "no member of the cluster has the peer URLs ",
            absl::StrJoin(config.initial_advertise_peer_urls, ","),
            ": add it first (etcdctl member add ", config.name, " --peer-urls=...)"));
      }
      return join;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  return absl::UnavailableError(absl::StrCat("no running member answered: ", last_error));
}

void OnSignal(int) { g_stop_requested.store(true, std::memory_order_relaxed); }

// One JSON object per line, as etcd's structured logs.
void Log(const std::string& level, const std::string& message) { LogJson(level, message); }

absl::Status MakeParents(const std::string& data_dir) {
  std::error_code error;
  std::filesystem::path parent = std::filesystem::path(data_dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", parent.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> Environment() {
  std::map<std::string, std::string> environment;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    size_t equals = entry.find('=');
    if (equals != std::string::npos) environment[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  return environment;
}

// `etc snapshot restore <file> [flags]`: a new cluster's member data
// directory from a snapshot (`etcdctl snapshot save`), with the same flags
// the member will start with (--name, --initial-cluster,
// --initial-cluster-token, --initial-advertise-peer-urls, --data-dir).
// Every member of the new cluster is restored from the same file.
int RestoreSnapshot(const std::vector<std::string>& args) {
  if (args.empty() || args[0].starts_with("-")) {
    Log("error", "usage: etc snapshot restore <file> [--name ... --initial-cluster ... --data-dir ...]");
    return 2;
  }
  absl::StatusOr<ServerConfig> config =
      ParseFlags(std::vector<std::string>(args.begin() + 1, args.end()), Environment());
  if (!config.ok()) {
    Log("error", std::string(config.status().message()));
    return 2;
  }
  std::ifstream in(args[0], std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    Log("error", absl::StrCat("cannot read ", args[0]));
    return 1;
  }
  absl::StatusOr<std::string> state = DecodeBackup(bytes);
  if (!state.ok()) {
    Log("error", absl::StrCat(args[0], ": ", state.status().message()));
    return 1;
  }
  kv::Store check{kv::StoreOptions()};
  if (absl::Status s = check.Restore(*state); !s.ok()) {
    Log("error", absl::StrCat(args[0], " is not a snapshot of etc's key tree: ", s.message()));
    return 1;
  }
  std::vector<uint64_t> voters;
  std::map<uint64_t, peerpb::MemberAttributes> attributes;
  for (const ClusterMember& member : config->initial_cluster) {
    voters.push_back(member.id);
    for (const std::string& url : member.peer_urls) attributes[member.id].add_peer_urls(url);
  }
  storage::PosixFs fs;
  if (absl::Status s = MakeParents(config->data_dir); !s.ok()) {
    Log("error", std::string(s.message()));
    return 1;
  }
  {
    absl::StatusOr<std::unique_ptr<storage::DataDir>> dir =
        storage::DataDir::Open(&fs, config->data_dir, {});
    absl::Status s = dir.ok() ? BootstrapDataDir(dir->get(), voters, attributes, *state)
                              : dir.status();
    if (!s.ok()) {
      Log("error", absl::StrCat("cannot restore into ", config->data_dir, ": ", s.message()));
      return 1;
    }
  }
  if (absl::Status s = WriteIdentity(&fs, config->data_dir, {config->member_id, config->cluster_id});
      !s.ok()) {
    Log("error", absl::StrCat("cannot restore: ", s.message()));
    return 1;
  }
  Log("info", absl::StrCat("restored ", args[0], " (revision ", check.revision(), ") into ",
                           config->data_dir, " for member ", absl::Hex(config->member_id),
                           " of cluster ", absl::Hex(config->cluster_id)));
  return 0;
}

// An error starting the member: its exit code (2: the flags or files it
// was given are wrong, 1: anything else) and what to log.
struct StartError {
  int exit_code = 1;
  std::string message;
};

// `--help`, `--version` and `snapshot restore`, which run and exit.
std::optional<int> RunCommand(const std::vector<std::string>& args) {
  if (args.size() >= 2 && args[0] == "snapshot" && args[1] == "restore") {
    return RestoreSnapshot(std::vector<std::string>(args.begin() + 2, args.end()));
  }
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(Usage().c_str(), stdout);
      return 0;
    }
    if (arg == "--version") {
      std::puts("etc (etcd API 3.4)");
      return 0;
    }
  }
  return std::nullopt;
}

// Which member of which cluster this is, and where the others are: from
// the data directory on a restart, from the running members when joining
// (--initial-cluster-state=existing), from the flags for a new cluster
// (whose members are then the initial voters).
std::optional<StartError> PlaceMember(const ServerConfig& config,
                                      const std::optional<Identity>& stored,
                                      const std::shared_ptr<grpc::ChannelCredentials>& peer_dial,
                                      MemberHostOptions* options,
                                      std::map<uint64_t, std::string>* addresses) {
  options->member_id = config.member_id;
  options->cluster_id = config.cluster_id;
  // Where the other members are, as the flags say (the replicated
  // membership takes over once this member has it).
  for (const ClusterMember& member : config.initial_cluster) {
    (*addresses)[member.id] = *HostPort(member.peer_urls.front());
  }
  if (stored.has_value()) {
    if (config.initial_cluster_state == "new" &&
        (stored->member_id != config.member_id || stored->cluster_id != config.cluster_id)) {
      return StartError{
          1, absl::StrCat("data directory ", config.data_dir, " belongs to member ",
                          absl::Hex(stored->member_id), " of cluster ", absl::Hex(stored->cluster_id),
                          ", but the flags describe member ", absl::Hex(config.member_id),
                          " of cluster ", absl::Hex(config.cluster_id),
                          " (check --name, --initial-cluster and --data-dir)")};
    }
    options->member_id = stored->member_id;
    options->cluster_id = stored->cluster_id;
  } else if (config.initial_cluster_state == "existing") {
    absl::StatusOr<JoinInfo> join = Join(config, peer_dial);
    if (!join.ok()) {
      return StartError{1, absl::StrCat("cannot join the cluster: ", join.status().message())};
    }
    options->member_id = join->member_id;
    options->cluster_id = join->cluster_id;
    *addresses = join->addresses;
  } else {
    for (const ClusterMember& member : config.initial_cluster) {
      options->initial_voters.push_back(member.id);
      peerpb::MemberAttributes& attributes = options->initial_attributes[member.id];
      for (const std::string& url : member.peer_urls) attributes.add_peer_urls(url);
    }
  }
  return std::nullopt;
}

// What the flags say about the member's timing, snapshots and limits.
void ApplyFlags(const ServerConfig& config, MemberHostOptions* options) {
  options->watch_progress_interval_ms = config.watch_progress_notify_interval_ms;
  options->self.set_name(config.name);
  for (const std::string& url : config.initial_advertise_peer_urls) options->self.add_peer_urls(url);
  for (const std::string& url : config.advertise_client_urls) options->self.add_client_urls(url);
  options->data_dir = config.data_dir;
  options->tick_ms = config.heartbeat_interval_ms;
  options->election_ticks = config.election_timeout_ms / config.heartbeat_interval_ms;
  options->snapshot_count = config.snapshot_count;
  options->storage.repair_damage = config.repair_damaged_data;
  options->values_in_memory = config.values_in_memory;
  if (config.quota_backend_bytes > 0) options->store.quota_bytes = config.quota_backend_bytes;
  options->store.max_request_bytes = config.max_request_bytes;
  options->store.max_txn_ops = config.max_txn_ops;
  options->store.auth_token_ttl_ms = config.auth_token_ttl_seconds * 1000;
  // A lease shorter than an election could expire during one.
  options->store.min_lease_ttl_seconds = (3 * config.election_timeout_ms / 2 + 999) / 1000;
}

// What serves a started member, stopped in an order that lets each part
// finish with the parts it uses: the client ports (in-flight requests get
// a grace period), the peer port, the peer transport, the member.
struct Serving {
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<grpc::Server> client_server;
  std::unique_ptr<grpc::Server> peer_server;
  RaftStreamServer* raft_streams = nullptr;
  Peers* peers = nullptr;
  MemberHost* host = nullptr;
  Services* services = nullptr;

  void Stop(std::chrono::seconds client_grace = std::chrono::seconds(0)) {
    for (auto& listener : listeners) listener->Stop();
    if (services != nullptr) services->Disconnect();
    if (client_server != nullptr) {
      client_server->Shutdown(std::chrono::system_clock::now() + client_grace);
    }
    if (peer_server != nullptr) {
      peer_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
    if (raft_streams != nullptr) raft_streams->Stop();
    if (peers != nullptr) peers->Stop();
    if (host != nullptr) host->Stop();
    // Gone while what they serve (the services, the member) still exists.
    listeners.clear();
    client_server.reset();
    peer_server.reset();
  }
};

// The gRPC server for clients: https:// URLs are its own TLS ports; for
// plaintext URLs it has no port of its own, the HTTP listeners hand it
// their HTTP/2 connections (the same port also serves HTTP/1.1, as
// etcd's does).
std::optional<StartError> StartClientServer(const ServerConfig& config, Services* services,
                                            Metrics* metrics, Serving* serving) {
  grpc::ServerBuilder builder;
  // etcd's gRPC limit: the largest request plus 512 KiB of overhead.
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes + 512 * 1024));
  builder.SetMaxSendMessageSize(64 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MetricsInterceptorFactory(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  services->Register(&builder);
  std::vector<int> tls_ports(config.listen_client_urls.size(), 0);
  for (size_t i = 0; i < config.listen_client_urls.size(); ++i) {
    if (!IsTls(config.listen_client_urls[i])) continue;
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = ServerTls(config.client_tls);
    if (!tls.ok()) return StartError{2, absl::StrCat("client TLS: ", tls.status().message())};
    builder.AddListeningPort(*HostPort(config.listen_client_urls[i]), *tls, &tls_ports[i]);
  }
  serving->client_server = builder.BuildAndStart();
  if (serving->client_server == nullptr) {
    return StartError{1, "cannot start the gRPC server (is a client port in use?)"};
  }
  services->Connect(serving->client_server.get());
  for (size_t i = 0; i < tls_ports.size(); ++i) {
    if (IsTls(config.listen_client_urls[i]) && tls_ports[i] == 0) {
      return StartError{1, absl::StrCat("cannot listen on ", config.listen_client_urls[i],
                                        " (is the port in use?)")};
    }
  }
  return std::nullopt;
}

// The HTTP/1.1 listeners: each plaintext client URL (gRPC handed over,
// HTTP and the JSON gateway served) and each --listen-metrics-urls.
std::optional<StartError> StartListeners(const ServerConfig& config, Metrics* metrics,
                                         Serving* serving) {
  auto listen = [&](const std::string& url, grpc::Server* grpc_server) -> std::optional<StartError> {
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Start(
        *HostPort(url), grpc_server, MakeHttpHandler(serving->host, metrics, grpc_server, config.enable_v2));
    if (!listener.ok()) {
      return StartError{1, absl::StrCat("cannot listen on ", url, ": ",
                                        listener.status().message(), " (is the port in use?)")};
    }
    serving->listeners.push_back(std::move(*listener));
    return std::nullopt;
  };
  for (const std::string& url : config.listen_client_urls) {
    if (IsTls(url)) continue;
    if (std::optional<StartError> e = listen(url, serving->client_server.get())) return e;
  }
  for (const std::string& url : config.listen_metrics_urls) {
    if (std::optional<StartError> e = listen(url, nullptr)) return e;
  }
  return std::nullopt;
}

// The peer port, for the other members' Raft messages: https:// URLs are
// the gRPC server's own TLS ports; a plaintext URL is a Listener that hands
// HTTP/2 connections to the gRPC server and raft streams to `raft_streams`
// (HTTP/1.1 requests get 404).
std::optional<StartError> StartPeerServer(const ServerConfig& config, PeerService* service,
                                          RaftStreamServer* raft_streams, Serving* serving) {
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(256 << 20);
  std::vector<int> ports(config.listen_peer_urls.size(), 0);
  for (size_t i = 0; i < config.listen_peer_urls.size(); ++i) {
    if (!IsTls(config.listen_peer_urls[i])) continue;
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls = ServerTls(config.peer_tls);
    if (!tls.ok()) return StartError{2, absl::StrCat("peer TLS: ", tls.status().message())};
    builder.AddListeningPort(*HostPort(config.listen_peer_urls[i]), *tls, &ports[i]);
  }
  builder.RegisterService(service);
  serving->peer_server = builder.BuildAndStart();
  if (serving->peer_server == nullptr) {
    return StartError{1, "cannot start the peers' gRPC server (is a peer port in use?)"};
  }
  serving->raft_streams = raft_streams;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string& url = config.listen_peer_urls[i];
    if (IsTls(url)) {
      if (ports[i] == 0) {
        return StartError{1, absl::StrCat("cannot listen on ", url, " (is the port in use?)")};
      }
      continue;
    }
    ListenerOptions options;
    options.raft_stream = [raft_streams](int fd) { raft_streams->Serve(fd); };
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Start(
        *HostPort(url), serving->peer_server.get(),
        [](const HttpRequest&) { return HttpResponse{404, "text/plain", {}, "not found\n"}; },
        options);
    if (!listener.ok()) {
      return StartError{1, absl::StrCat("cannot listen on ", url, ": ", listener.status().message(),
                                        " (is the port in use?)")};
    }
    serving->listeners.push_back(std::move(*listener));
  }
  return std::nullopt;
}

// Until SIGTERM or SIGINT, or until the cluster removed this member.
void ServeUntilStopped(const MemberHost& host) {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // Polled: the handler only sets the flag.
  while (!g_stop_requested.load(std::memory_order_relaxed)) {
    absl::SleepFor(absl::Milliseconds(100));
    if (host.removed()) {
      Log("warn", "this member has been permanently removed from the cluster; shutting down");
      return;
    }
  }
}

// The peer transport's addresses come from the flags, then from the
// replicated membership. A removed member's address is kept: it must still
// be told it was removed (it shuts down only when a peer confirms).
void FollowMembership(MemberHost* host, Peers* peers, std::map<uint64_t, std::string> addresses) {
  host->set_on_membership_change([peers, addresses](const Membership& membership) mutable {
    for (const auto& [id, attributes] : membership.attributes) {
      if (attributes.peer_urls().empty()) continue;
      absl::StatusOr<std::string> address = HostPort(attributes.peer_urls(0));
      if (address.ok()) addresses[id] = *address;
    }
    peers->SetAddresses(addresses);
  });
}

// Every connection costs a descriptor, and the soft limit a service gets
// by default (systemd's 1024) is far below what it may use (its hard
// limit): raised to the hard limit, as Go's runtime does for etcd, so that
// thousands of clients (etcd 3.4 serves 3,000 idle connections) do not
// run the client port out of descriptors. Everything here polls with
// epoll: no select() with its 1024-descriptor ceiling.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  rlim_t soft_before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  Log("info", absl::StrCat("raised the open file limit from ", soft_before, " to ", limit.rlim_cur,
                           " (the hard limit)"));
}

int Fail(const StartError& error, Serving* serving) {
  Log("error", error.message);
  serving->Stop();
  return error.exit_code;
}

int Run(int argc, char** argv) {
  // Debian's Abseil checks every mutex acquisition for lock-order cycles
  // (a debug aid that showed up at 1% of the leader's CPU under load).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::optional<int> exit_code = RunCommand(args)) return *exit_code;
  RaiseDescriptorLimit();
  absl::StatusOr<ServerConfig> config = ParseFlags(args, Environment());
  Serving serving;
  if (!config.ok()) return Fail({2, std::string(config.status().message())}, &serving);
  storage::PosixFs fs;
  // As etcd, the data directory's parents are created too.
  if (absl::Status s = MakeParents(config->data_dir); !s.ok()) {
    return Fail({1, std::string(s.message())}, &serving);
  }
  absl::StatusOr<std::optional<Identity>> identity = ReadIdentity(&fs, config->data_dir);
  if (!identity.ok()) {
    return Fail({1, absl::StrCat("cannot start: ", identity.status().ToString())}, &serving);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> peer_dial = PeerDialTls(*config);
  if (!peer_dial.ok()) {
    return Fail({2, absl::StrCat("peer TLS: ", peer_dial.status().message())}, &serving);
  }
  Metrics metrics;
  MemberHostOptions options;
  options.metrics = &metrics;
  std::map<uint64_t, std::string> addresses;
  if (auto e = PlaceMember(*config, *identity, *peer_dial, &options, &addresses)) {
    return Fail(*e, &serving);
  }
  ApplyFlags(*config, &options);
  Peers peers(options.member_id, options.cluster_id, addresses, *peer_dial,
              /*raft_stream=*/!PeersUseTls(*config));
  absl::StatusOr<std::unique_ptr<MemberHost>> host = MemberHost::Start(options, &fs, &peers);
  if (!host.ok()) return Fail({1, absl::StrCat("cannot start: ", host.status().ToString())}, &serving);
  serving.peers = &peers;
  serving.host = host->get();
  peers.set_snapshot_loader([host = host->get()](const raftpb::SnapshotMetadata& metadata) {
    return host->LoadSnapshot(metadata);
  });
  if (!identity->has_value()) {
    if (absl::Status s =
            WriteIdentity(&fs, config->data_dir, {options.member_id, options.cluster_id});
        !s.ok()) {
      return Fail({1, absl::StrCat("cannot record the member's identity: ", s.ToString())},
                  &serving);
    }
  }
  FollowMembership(host->get(), &peers, addresses);
  Services services(host->get(), &peers, config->initial_cluster_token);
  serving.services = &services;
  // A key tree at its quota serializes to about 1.25 times the quota; a
  // peer announcing more than twice that is not sending our snapshot.
  PeerService peer_service(host->get(), options.cluster_id,
                           std::min<uint64_t>(storage::kMaxSnapshotPayloadBytes,
                                              2 * static_cast<uint64_t>(options.store.quota_bytes)));
  if (auto e = StartClientServer(*config, &services, &metrics, &serving)) return Fail(*e, &serving);
  if (auto e = StartListeners(*config, &metrics, &serving)) return Fail(*e, &serving);
  RaftStreamServer raft_streams(options.cluster_id,
                                [host = host->get()](std::vector<raftpb::Message> messages) {
                                  host->Receive(std::move(messages));
                                });
  if (auto e = StartPeerServer(*config, &peer_service, &raft_streams, &serving)) {
    return Fail(*e, &serving);
  }
  Log("info", absl::StrCat("serving member ", absl::Hex(options.member_id), " (", config->name,
                           ") of cluster ", absl::Hex(options.cluster_id), " on ",
                           absl::StrJoin(config->listen_client_urls, ","), ", data in ",
                           config->data_dir));
  ServeUntilStopped(**host);
  Log("info", "shutting down: finishing in-flight requests");
  serving.Stop(std::chrono::seconds(5));
  Log("info", "stopped");
  return 0;
}

}  // namespace
}  // namespace etc::server

int main(int argc, char** argv) { return etc::server::Run(argc, argv); }
