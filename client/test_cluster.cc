#include "client/test_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"

namespace etc::client::testing {
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

namespace {

int g_counter = 0;

}  // namespace

Cluster::Cluster(std::string server, int members, std::vector<std::string> extra_flags)
    : server_(std::move(server)), extra_flags_(std::move(extra_flags)) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  dir_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/cluster-", getpid(), "-", g_counter++);
  std::filesystem::create_directories(dir_);
  for (int i = 0; i < members; ++i) {
    client_ports_.push_back(FreePort());
    peer_ports_.push_back(FreePort());
    cluster_ += absl::StrCat(i == 0 ? "" : ",", "m", i, "=http://127.0.0.1:", peer_ports_[i]);
  }
  for (int i = 0; i < members; ++i) Start(i);
}

Cluster::~Cluster() {
  for (pid_t pid : pids_) {
    if (pid > 0) kill(pid, SIGKILL);
  }
  for (pid_t pid : pids_) {
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
}

void Cluster::Start(int i) {
  std::string client = absl::StrCat("http://127.0.0.1:", client_ports_[i]);
  std::string peer = absl::StrCat("http://127.0.0.1:", peer_ports_[i]);
  std::vector<std::string> args = {server_,
                                   "--name", absl::StrCat("m", i),
                                   "--data-dir", absl::StrCat(dir_, "/m", i),
                                   "--listen-client-urls", client,
                                   "--advertise-client-urls", client,
                                   "--listen-peer-urls", peer,
                                   "--initial-advertise-peer-urls", peer,
                                   "--initial-cluster", cluster_,
                                   "--initial-cluster-state", "new"};
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  pid_t pid = fork();
  if (pid == 0) {
    std::string log = absl::StrCat(dir_, "/m", i, ".log");
    FILE* out = std::freopen(log.c_str(), "a", stderr);
    (void)out;
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pids_.push_back(pid);
}

std::string Cluster::Endpoint(int i) const { return absl::StrCat("127.0.0.1:", client_ports_[i]); }

int Cluster::IndexOf(const std::string& endpoint) const {
  for (size_t i = 0; i < client_ports_.size(); ++i) {
    if (Endpoint(static_cast<int>(i)) == endpoint) return static_cast<int>(i);
  }
  return -1;
}

void Cluster::Kill(int i) {
  kill(pids_[i], SIGKILL);
  waitpid(pids_[i], nullptr, 0);
  pids_[i] = 0;
}

std::vector<std::string> Cluster::Endpoints() const {
  std::vector<std::string> endpoints;
  for (size_t i = 0; i < client_ports_.size(); ++i) endpoints.push_back(Endpoint(i));
  return endpoints;
}

std::unique_ptr<Client> Cluster::Connect(ClientOptions options) {
  if (options.endpoints.empty()) options.endpoints = Endpoints();
  auto client = Client::Connect(options);
  if (!client.ok()) return nullptr;
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::Status put = (*client)->Put("/ready", "1").status();
    // A user who may not write it still tells the cluster is up.
    if (put.ok() || put.code() == absl::StatusCode::kPermissionDenied) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::move(*client);
}

}  // namespace etc::client::testing
