#include "server/http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <grpcpp/server_posix.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace etc::server {
namespace {

// Bigger requests are refused (the gRPC side has --max-request-bytes; the
// gateway's JSON is at most a few times larger).
constexpr size_t kMaxHttpRequestBytes = 8 << 20;
constexpr size_t kMaxHeaderBytes = 64 << 10;
// A connection that sent too little to tell its protocol is looked at again
// after this long (not spun on while the rest is on its way).
constexpr int64_t kSniffRetryMs = 5;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 412: return "Precondition Failed";
    case 415: return "Unsupported Media Type";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

}  // namespace

absl::StatusOr<size_t> ParseHttpRequest(const std::string& data, HttpRequest* request) {
  size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (data.size() > kMaxHeaderBytes) return absl::InvalidArgumentError("headers too large");
    return 0;
  }
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> start = absl::StrSplit(lines[0], ' ');
  if (start.size() != 3 || !absl::StartsWith(start[2], "HTTP/1.") || start[1].empty() ||
      start[1][0] != '/') {
    return absl::InvalidArgumentError("malformed request line");
  }
  HttpRequest parsed;
  parsed.method = start[0];
  size_t question = start[1].find('?');
  parsed.path = start[1].substr(0, question);
  if (question != std::string::npos) parsed.query = start[1].substr(question + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos || colon == 0) return absl::InvalidArgumentError("malformed header");
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    parsed.headers[name] = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  if (parsed.headers.contains("transfer-encoding")) {
    return absl::InvalidArgumentError("chunked request bodies are not supported; send Content-Length");
  }
  size_t length = 0;
  auto it = parsed.headers.find("content-length");
  if (it != parsed.headers.end() && !absl::SimpleAtoi(it->second, &length)) {
    return absl::InvalidArgumentError("malformed Content-Length");
  }
  if (length > kMaxHttpRequestBytes) return absl::ResourceExhaustedError("request too large");
  size_t total = header_end + 4 + length;
  if (data.size() < total) return 0;
  parsed.body = data.substr(header_end + 4, length);
  *request = std::move(parsed);
  return total;
}

std::string FormatHttpResponse(const HttpResponse& response, bool keep_alive) {
  std::string head = absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                                  "\r\nContent-Type: ", response.content_type,
                                  "\r\nContent-Length: ", response.body.size());
  for (const auto& [name, value] : response.headers) absl::StrAppend(&head, "\r\n", name, ": ", value);
  return absl::StrCat(head, keep_alive ? "" : "\r\nConnection: close", "\r\n\r\n", response.body);
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(const std::string& host_port,
                                                          grpc::Server* grpc_server,
                                                          HttpHandler handler,
                                                          ListenerOptions options) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("address without a port");
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", host_port, ": ",
                                                   gai_strerror(rc)));
  }
  std::unique_ptr<Listener> listener(new Listener());
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
      last_error = std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    listener->port_ = bound.ss_family == AF_INET6
                          ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                          : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    listener->listen_fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  if (listener->listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host_port, ": ", last_error));
  }
  listener->grpc_server_ = grpc_server;
  listener->handler_ = std::move(handler);
  listener->options_ = options;
  fcntl(listener->listen_fd_, F_SETFL, fcntl(listener->listen_fd_, F_GETFL) | O_NONBLOCK);
  listener->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  listener->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (listener->epoll_fd_ < 0 || listener->wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("epoll: ", std::strerror(errno)));
  }
  for (int fd : {listener->listen_fd_, listener->wake_fd_}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(listener->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  listener->poller_ = std::thread([l = listener.get()] { l->PollLoop(); });
  pthread_setname_np(listener->poller_.native_handle(), "etc-http");
  for (int i = 0; i < std::max(1, options.workers); ++i) {
    listener->workers_.emplace_back([l = listener.get()] { l->Work(); });
    pthread_setname_np(listener->workers_.back().native_handle(), "etc-http-work");
  }
  return listener;
}

Listener::~Listener() { Stop(); }

void Listener::Stop() {
  if (stopping_.exchange(true)) return;
  WakePoller();
  if (poller_.joinable()) poller_.join();
  work_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  // What the workers handed back after the poller left.
  for (Connection& connection : returned_) close(connection.fd);
  returned_.clear();
  for (Job& job : jobs_) close(job.connection.fd);
  jobs_.clear();
  for (int fd : {listen_fd_, epoll_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
  listen_fd_ = epoll_fd_ = wake_fd_ = -1;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Writes all of `out` to a non-blocking socket, waiting for room at most
// `timeout_ms` at a time.
bool SendAll(int fd, const std::string& out, int timeout_ms) {
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

HttpResponse PlainError(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(body);
  return response;
}

}  // namespace

void Listener::WakePoller() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void Listener::Watch(Connection connection) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.fd = connection.fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, connection.fd, &event) != 0) {
    Close(connection.fd);
    return;
  }
  int fd = connection.fd;
  watched_[fd] = std::move(connection);
  waiting_connections_.store(watched_.size());
}

void Listener::Forget(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  watched_.erase(fd);
  waiting_connections_.store(watched_.size());
}

void Listener::Close(int fd) {
  Forget(fd);
  close(fd);
  open_connections_.fetch_sub(1);
}

void Listener::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EAGAIN: all taken; EMFILE/ENFILE: out of descriptors (the pending
      // connections wait in the backlog until one closes).
      return;
    }
    if (open_connections_.load() >= options_.max_connections && !CloseSilentLongest()) {
      // At the limit with every connection being answered: closed at
      // once, before it costs anything.
      close(fd);
      continue;
    }
    open_connections_.fetch_add(1);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Connection connection;
    connection.fd = fd;
    connection.deadline_ms = NowMs() + options_.idle_timeout_ms;
    connection.last_heard = ++heard_;
    Watch(std::move(connection));
  }
}

bool Listener::CloseSilentLongest() {
  // A scan, only at the limit: cheaper than keeping the connections
  // ordered on every byte they send.
  auto silent_longest = watched_.end();
  for (auto it = watched_.begin(); it != watched_.end(); ++it) {
    if (silent_longest == watched_.end() ||
        std::make_pair(!it->second.sniffing, it->second.last_heard) <
            std::make_pair(!silent_longest->second.sniffing, silent_longest->second.last_heard)) {
      silent_longest = it;
    }
  }
  if (silent_longest == watched_.end()) return false;
  Close(silent_longest->first);
  return true;
}

bool Listener::OnReadable(Connection& connection) {
  int fd = connection.fd;
  if (connection.sniffing) {
    // Peeked, not read: a gRPC connection is handed over whole, preface
    // included. HTTP/2's preface begins "PRI * HTTP/2.0", which no
    // HTTP/1.x request line does.
    char peek[3];
    ssize_t n = recv(fd, peek, sizeof(peek), MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      Close(fd);
      return false;
    }
    if (n < static_cast<ssize_t>(sizeof(peek))) {
      // The rest comes soon: stop watching it for a moment (epoll would
      // report it readable again at once).
      epoll_event event{};
      event.data.fd = fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
      connection.rearm_at_ms = NowMs() + kSniffRetryMs;
      return true;
    }
    connection.sniffing = false;
    if (std::memcmp(peek, "PRI", 3) == 0) {
      Forget(fd);
      open_connections_.fetch_sub(1);
      if (grpc_server_ == nullptr) {
        close(fd);
        return false;
      }
      grpc::AddInsecureChannelFromFd(grpc_server_, fd);  // gRPC owns it now
      return false;
    }
  }
  char chunk[16384];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      connection.buffer.append(chunk, static_cast<size_t>(n));
      if (connection.buffer.size() > kMaxHttpRequestBytes + kMaxHeaderBytes) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Close(fd);  // closed by the client, or broken
    return false;
  }
  connection.deadline_ms = NowMs() + options_.idle_timeout_ms;
  connection.last_heard = ++heard_;
  return Dispatch(connection);
}

bool Listener::Dispatch(Connection& connection) {
  int fd = connection.fd;
  Job job;
  absl::StatusOr<size_t> used = ParseHttpRequest(connection.buffer, &job.request);
  if (!used.ok()) {
    int status = used.status().code() == absl::StatusCode::kResourceExhausted ? 413 : 400;
    (void)SendAll(fd, FormatHttpResponse(PlainError(status, std::string(used.status().message()) + "\n"), false), 100);
    Close(fd);
    return false;
  }
  if (*used == 0) return true;  // not complete yet
  connection.buffer.erase(0, *used);
  // The worker owns it until it hands it back: no reads meanwhile. Moved
  // out before Forget, which destroys the poller's entry `connection` is.
  job.connection = std::move(connection);
  Forget(fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.size() < options_.max_queued_requests && !stopping_.load()) {
      jobs_.push_back(std::move(job));
      work_.notify_one();
      return false;
    }
  }
  (void)SendAll(fd, FormatHttpResponse(PlainError(503, "too many requests\n"), false), 100);
  close(fd);
  open_connections_.fetch_sub(1);
  return false;
}

void Listener::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [this] { return !jobs_.empty() || stopping_.load(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto connection_header = job.request.headers.find("connection");
    bool keep_alive = connection_header == job.request.headers.end() ||
                      absl::AsciiStrToLower(connection_header->second) != "close";
    HttpResponse response = handler_(job.request);
    bool sent = SendAll(job.connection.fd, FormatHttpResponse(response, keep_alive),
                        static_cast<int>(options_.idle_timeout_ms));
    job.connection.close_after = !sent || !keep_alive;
    {
      std::lock_guard<std::mutex> lock(mu_);
      returned_.push_back(std::move(job.connection));
    }
    WakePoller();
  }
}

void Listener::PollLoop() {
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    int64_t now = NowMs();
    int64_t next_deadline = now + 1000;
    for (const auto& [fd, connection] : watched_) {
      next_deadline = std::min(next_deadline, connection.deadline_ms);
    }
    for (auto& [fd, connection] : watched_) {
      if (connection.rearm_at_ms == 0) continue;
      if (connection.rearm_at_ms <= now) {
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.fd = fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
        connection.rearm_at_ms = 0;
      } else {
        next_deadline = std::min(next_deadline, connection.rearm_at_ms);
      }
    }
    int timeout = static_cast<int>(std::clamp<int64_t>(next_deadline - now, 0, 1000));
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    if (stopping_.load()) break;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        Accept();
      } else if (fd == wake_fd_) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
      } else if (auto it = watched_.find(fd); it != watched_.end()) {
        OnReadable(it->second);
      }
    }
    // Back from the workers: watched again, or closed; a request already
    // buffered (pipelined) is dispatched at once.
    std::deque<Connection> returned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      returned.swap(returned_);
    }
    for (Connection& connection : returned) {
      if (connection.close_after) {
        close(connection.fd);
        open_connections_.fetch_sub(1);
        continue;
      }
      connection.deadline_ms = NowMs() + options_.idle_timeout_ms;
      int fd = connection.fd;
      Watch(std::move(connection));
      if (auto it = watched_.find(fd); it != watched_.end() && !it->second.buffer.empty()) {
        Dispatch(it->second);
      }
    }
    now = NowMs();
    std::vector<int> expired;
    for (const auto& [fd, connection] : watched_) {
      if (connection.deadline_ms <= now) expired.push_back(fd);
    }
    for (int fd : expired) Close(fd);
  }
  std::vector<int> open;
  for (const auto& [fd, connection] : watched_) open.push_back(fd);
  for (int fd : open) Close(fd);
}

}  // namespace etc::server
