// The etc server: one member of an etcd-compatible cluster. Takes etcd's
// flags (see --help), serves etcd's v3 gRPC API on the client URLs, and
// keeps its data in --data-dir. With no flags: one member on
// 127.0.0.1:2379 with its data in ./default.etc, as etcd does.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "server/config.h"
#include "server/member_host.h"
#include "server/services.h"
#include "storage/posix_fs.h"

extern char** environ;

namespace etc::server {
namespace {

absl::Notification* g_stop = nullptr;

void OnSignal(int) {
  if (g_stop != nullptr && !g_stop->HasBeenNotified()) g_stop->Notify();
}

void Log(const std::string& level, const std::string& message) {
  std::fprintf(stderr, "{\"level\":\"%s\",\"msg\":\"%s\"}\n", level.c_str(), message.c_str());
  std::fflush(stderr);
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
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
  std::map<std::string, std::string> environment;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    size_t equals = entry.find('=');
    if (equals != std::string::npos) environment[entry.substr(0, equals)] = entry.substr(equals + 1);
  }
  absl::StatusOr<ServerConfig> config = ParseFlags(args, environment);
  if (!config.ok()) {
    Log("error", std::string(config.status().message()));
    return 2;
  }
  if (config->initial_cluster_state == "existing") {
    Log("error",
        "--initial-cluster-state=existing (joining after member add) is not supported by this "
        "build of etc yet: start every member of a new cluster together");
    return 2;
  }

  MemberHostOptions options;
  options.member_id = config->member_id;
  options.cluster_id = config->cluster_id;
  for (const ClusterMember& member : config->initial_cluster) {
    options.initial_voters.push_back(member.id);
  }
  options.data_dir = config->data_dir;
  options.tick_ms = config->heartbeat_interval_ms;
  options.election_ticks = config->election_timeout_ms / config->heartbeat_interval_ms;
  options.snapshot_count = config->snapshot_count;
  if (config->quota_backend_bytes > 0) options.store.quota_bytes = config->quota_backend_bytes;
  options.store.max_request_bytes = config->max_request_bytes;
  options.store.max_txn_ops = config->max_txn_ops;
  // A lease shorter than an election could expire during one.
  options.store.min_lease_ttl_seconds =
      (3 * config->election_timeout_ms / 2 + 999) / 1000;

  storage::PosixFs fs;
  std::map<uint64_t, std::string> peer_addresses;
  for (const ClusterMember& member : config->initial_cluster) {
    peer_addresses[member.id] = *HostPort(member.peer_urls.front());
  }
  Peers peers(config->member_id, config->cluster_id, peer_addresses);
  absl::StatusOr<std::unique_ptr<MemberHost>> host = MemberHost::Start(options, &fs, &peers);
  if (!host.ok()) {
    Log("error", absl::StrCat("cannot start: ", host.status().ToString()));
    return 1;
  }

  std::vector<MemberInfo> members;
  for (const ClusterMember& member : config->initial_cluster) {
    MemberInfo info;
    info.id = member.id;
    info.name = member.name;
    info.peer_urls = member.peer_urls;
    if (member.id == config->member_id) info.client_urls = config->advertise_client_urls;
    members.push_back(info);
  }
  Services services(host->get(), members, &peers);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(config->max_request_bytes + 1024 * 1024));
  builder.SetMaxSendMessageSize(64 << 20);
  std::vector<int> ports(config->listen_client_urls.size(), 0);
  for (size_t i = 0; i < config->listen_client_urls.size(); ++i) {
    builder.AddListeningPort(*HostPort(config->listen_client_urls[i]),
                             grpc::InsecureServerCredentials(), &ports[i]);
  }
  services.Register(&builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  for (size_t i = 0; i < ports.size(); ++i) {
    if (server == nullptr || ports[i] == 0) {
      Log("error", absl::StrCat("cannot listen on ", config->listen_client_urls[i],
                                " (is the port in use?)"));
      (*host)->Stop();
      return 1;
    }
  }
  // The peer port, for the other members' Raft messages.
  PeerService peer_service(host->get(), config->cluster_id);
  grpc::ServerBuilder peer_builder;
  peer_builder.SetMaxReceiveMessageSize(256 << 20);
  std::vector<int> peer_ports(config->listen_peer_urls.size(), 0);
  for (size_t i = 0; i < config->listen_peer_urls.size(); ++i) {
    peer_builder.AddListeningPort(*HostPort(config->listen_peer_urls[i]),
                                  grpc::InsecureServerCredentials(), &peer_ports[i]);
  }
  peer_builder.RegisterService(&peer_service);
  std::unique_ptr<grpc::Server> peer_server = peer_builder.BuildAndStart();
  for (size_t i = 0; i < peer_ports.size(); ++i) {
    if (peer_server == nullptr || peer_ports[i] == 0) {
      Log("error", absl::StrCat("cannot listen on ", config->listen_peer_urls[i],
                                " (is the port in use?)"));
      server->Shutdown();
      (*host)->Stop();
      return 1;
    }
  }
  Log("info", absl::StrCat("serving member ", absl::Hex(config->member_id), " (", config->name,
                           ") of cluster ", absl::Hex(config->cluster_id), " on ",
                           absl::StrJoin(config->listen_client_urls, ","), ", data in ",
                           config->data_dir));

  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  stop.WaitForNotification();
  Log("info", "shutting down: finishing in-flight requests");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  peer_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  peers.Stop();
  (*host)->Stop();
  Log("info", "stopped");
  return 0;
}

}  // namespace
}  // namespace etc::server

int main(int argc, char** argv) { return etc::server::Run(argc, argv); }
