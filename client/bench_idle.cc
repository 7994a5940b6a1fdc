#include "client/bench_idle.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {
namespace {

constexpr int kTimeoutMs = 5000;

void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  (void)setrlimit(RLIMIT_NOFILE, &limit);
}

// A connected socket to `address` (blocking, SO_SNDTIMEO bounding the
// connect), or -1.
int ConnectTo(const addrinfo& address) {
  int fd = socket(address.ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval timeout{kTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, address.ai_addr, address.ai_addrlen) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends GET /version and reads the whole answer (headers and a
// Content-Length body). False if none came within kTimeoutMs.
bool AskOnce(int fd) {
  static const char kRequest[] = "GET /version HTTP/1.1\r\nHost: idle\r\n\r\n";
  if (send(fd, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL) != sizeof(kRequest) - 1) return false;
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  for (;;) {
    size_t headers_end = answer.find("\r\n\r\n");
    if (headers_end != std::string::npos) {
      size_t length = 0;
      size_t at = answer.find("Content-Length: ");
      if (at == std::string::npos) at = answer.find("content-length: ");
      if (at != std::string::npos && at < headers_end) {
        size_t end = answer.find("\r\n", at);
        (void)absl::SimpleAtoi(answer.substr(at + 16, end - at - 16), &length);
      }
      if (answer.size() >= headers_end + 4 + length) return answer.rfind("HTTP/1.1 200", 0) == 0;
    }
    int left_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       deadline - std::chrono::steady_clock::now())
                                       .count());
    pollfd p{fd, POLLIN, 0};
    if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0) return false;
    char chunk[4096];
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    answer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace

std::string TryNewClient(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetString("etc.bench.new_client", absl::StrCat(absl::ToUnixNanos(absl::Now())));  // never a shared connection
  auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3))) {
    return "no connection within 3 s";
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  etcdserverpb::PutRequest put;
  put.set_key("/overload/fresh");
  put.set_value("x");
  etcdserverpb::PutResponse response;
  grpc::Status status = etcdserverpb::KV::NewStub(channel)->Put(&context, put, &response);
  return status.ok() ? "ok" : absl::StrCat("put failed: ", status.error_message());
}

std::unique_ptr<IdleConnections> IdleConnections::Open(const std::string& host_port, int silent,
                                                       int http, Opened* opened) {
  RaiseDescriptorLimit();
  auto idle = std::unique_ptr<IdleConnections>(new IdleConnections());
  *opened = Opened();
  auto started = std::chrono::steady_clock::now();
  size_t colon = host_port.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (colon == std::string::npos ||
      getaddrinfo(host_port.substr(0, colon).c_str(), host_port.substr(colon + 1).c_str(), &hints,
                  &addresses) != 0) {
    opened->failed = silent + http;
    return idle;
  }
  for (int i = 0; i < silent + http; ++i) {
    int fd = ConnectTo(*addresses);
    if (fd < 0) {
      ++opened->failed;
      continue;
    }
    if (i >= silent && !AskOnce(fd)) {
      ++opened->unanswered;
      close(fd);
      continue;
    }
    ++(i < silent ? opened->silent : opened->http);
    idle->fds_.push_back(fd);
  }
  freeaddrinfo(addresses);
  opened->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  idle->opened_at_ = absl::Now();
  idle->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  for (int fd : idle->fds_) {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.fd = fd;
    epoll_ctl(idle->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  idle->watcher_ = std::thread([raw = idle.get()] { raw->Watch(); });
  return idle;
}

IdleConnections::~IdleConnections() {
  stopping_.store(true);
  if (watcher_.joinable()) watcher_.join();
  for (int fd : fds_) close(fd);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

void IdleConnections::Watch() {
  std::vector<epoll_event> events(1024);
  while (!stopping_.load()) {
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      char chunk[4096];
      ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR))) continue;  // not closed
      // Closed by the server (or reset): noted once, no longer watched.
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      std::lock_guard<std::mutex> lock(mu_);
      closed_after_s_.push_back(absl::ToDoubleSeconds(absl::Now() - opened_at_));
    }
  }
}

IdleConnections::Closed IdleConnections::HoldUntil(absl::Duration hold) {
  absl::Duration left = opened_at_ + hold - absl::Now();
  if (left > absl::ZeroDuration()) absl::SleepFor(left);
  Closed closed;
  std::lock_guard<std::mutex> lock(mu_);
  closed.closed = static_cast<int64_t>(closed_after_s_.size());
  closed.open = static_cast<int64_t>(fds_.size()) - closed.closed;
  if (!closed_after_s_.empty()) {
    closed.first_s = *std::min_element(closed_after_s_.begin(), closed_after_s_.end());
    closed.last_s = *std::max_element(closed_after_s_.begin(), closed_after_s_.end());
  }
  return closed;
}

}  // namespace etc::bench
