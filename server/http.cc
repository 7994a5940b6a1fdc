#include "server/http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
// An idle HTTP connection is closed after this long.
constexpr int kIdleTimeoutMs = 60000;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
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
  return absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                      "\r\nContent-Type: ", response.content_type,
                      "\r\nContent-Length: ", response.body.size(),
                      keep_alive ? "" : "\r\nConnection: close", "\r\n\r\n", response.body);
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(const std::string& host_port,
                                                          grpc::Server* grpc_server,
                                                          HttpHandler handler) {
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
  listener->acceptor_ = std::thread([l = listener.get()] { l->AcceptLoop(); });
  pthread_setname_np(listener->acceptor_.native_handle(), "etc-http");
  return listener;
}

Listener::~Listener() { Stop(); }

void Listener::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::unique_lock<std::mutex> lock(mu_);
  for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
  idle_.wait(lock, [this] { return serving_ == 0; });
}

void Listener::AcceptLoop() {
  while (!stopping_.load()) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) return;
      if (errno == EMFILE || errno == ENFILE) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++serving_;
    }
    std::thread([this, fd] {
      pthread_setname_np(pthread_self(), "etc-http-conn");
      Serve(fd);
      std::lock_guard<std::mutex> lock(mu_);
      if (--serving_ == 0) idle_.notify_all();
    }).detach();
  }
}

void Listener::Serve(int fd) {
  // Which protocol: HTTP/2's connection preface begins "PRI * HTTP/2.0",
  // which no HTTP/1.x request line does.
  char peek[3];
  size_t have = 0;
  while (have < sizeof(peek)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    ssize_t n = recv(fd, peek, sizeof(peek), MSG_PEEK);
    if (n <= 0) break;
    have = static_cast<size_t>(n);
    if (have < sizeof(peek)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (have < sizeof(peek) || stopping_.load()) {
    close(fd);
    return;
  }
  if (std::memcmp(peek, "PRI", 3) == 0) {
    if (grpc_server_ == nullptr) {
      close(fd);
      return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    grpc::AddInsecureChannelFromFd(grpc_server_, fd);  // gRPC owns it now
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.insert(fd);
  }
  std::string buffer;
  char chunk[16384];
  for (;;) {
    HttpRequest request;
    absl::StatusOr<size_t> used = ParseHttpRequest(buffer, &request);
    if (!used.ok()) {
      HttpResponse bad;
      bad.status = used.status().code() == absl::StatusCode::kResourceExhausted ? 413 : 400;
      bad.content_type = "text/plain; charset=utf-8";
      bad.body = std::string(used.status().message()) + "\n";
      std::string out = FormatHttpResponse(bad, false);
      (void)send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      break;
    }
    if (*used == 0) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, kIdleTimeoutMs) <= 0) break;
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    buffer.erase(0, *used);
    auto connection = request.headers.find("connection");
    bool keep_alive = connection == request.headers.end() ||
                      absl::AsciiStrToLower(connection->second) != "close";
    HttpResponse response = handler_(request);
    std::string out = FormatHttpResponse(response, keep_alive);
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    if (sent < out.size() || !keep_alive || stopping_.load()) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
  }
  close(fd);
}

}  // namespace etc::server
