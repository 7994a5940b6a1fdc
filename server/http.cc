#include "server/http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <utility>

#include <grpcpp/server_posix.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/tcp_address.h"

namespace etc::server {
namespace {

// An answer's buffer, once written, keeps at most this much capacity: a
// connection waiting for its next answer should cost little.
constexpr size_t kKeptOutputCapacity = 64 << 10;
// A connection that sent too little to tell its protocol is looked at again
// after this long (not spun on while the rest is on its way).
constexpr int64_t kSniffRetryMs = 5;

}  // namespace


// ---------------------------------------------------------- connections --

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HttpResponse PlainError(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(body);
  return response;
}

// Whether the request's head is in `buffer` and asks for "100 Continue"
// before its body (curl does for bodies over 1 MiB, and waits a second
// for it otherwise).
bool ExpectsContinue(const std::string& buffer) {
  size_t header_end = buffer.find("\r\n\r\n");
  if (header_end == std::string::npos) return false;
  for (absl::string_view line : absl::StrSplit(absl::string_view(buffer).substr(0, header_end), "\r\n")) {
    size_t colon = line.find(':');
    if (colon != absl::string_view::npos &&
        absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)), "expect") &&
        absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(colon + 1)), "100-continue")) {
      return true;
    }
  }
  return false;
}

bool KeepAlive(const HttpRequest& request) {
  auto connection = request.headers.find("connection");
  return connection == request.headers.end() || !absl::EqualsIgnoreCase(connection->second, "close");
}

}  // namespace

// One HTTP/1.1 connection. The poller alone reads it, and alone closes its
// socket (so a descriptor number is never reused while anything may still
// write to it); the exchange answering it writes from any thread under mu.
struct Listener::Conn : std::enable_shared_from_this<Conn> {
  Conn(Listener* owner, int fd, const ListenerOptions& options)
      : owner(owner),
        fd(fd),
        max_buffered_bytes(options.max_stream_buffered_bytes),
        drain_timeout_ms(options.idle_timeout_ms) {}

  // Sets what epoll reports for it.
  void Watch(uint32_t wanted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (released || wanted == events) return;
    epoll_event event{};
    event.events = wanted;
    event.data.fd = fd;
    epoll_ctl(owner->epoll_fd_, EPOLL_CTL_MOD, fd, &event);
    events = wanted;
  }

  size_t queued() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return out.size() - out_sent; }

  // Writes what the socket takes now; false if the client is gone.
  bool Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // After an answer's bytes were queued: the poller is told to watch for
  // room, to take the connection back once the exchange is over and all
  // is written, or to close it.
  void Settle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (released) return;
    if (closing) {
      owner->Return(shared_from_this());
    } else if (queued() > 0) {
      Watch(EPOLLOUT | EPOLLRDHUP);
    } else {
      Watch(EPOLLRDHUP);
      if (over) {
        closing = close_when_drained;
        owner->Return(shared_from_this());
      }
    }
  }

  // Sends nothing more: the client sees the connection end now, and the
  // poller closes it.
  void CutOff() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (released) return;
    closing = true;
    shutdown(fd, SHUT_RDWR);
    std::string().swap(out);  // freed now, not when the poller closes it
    out_sent = 0;
    drain_deadline_ms.store(0);
    Settle();
  }

  Listener* const owner;  // used only under mu while !released
  const int fd;
  const size_t max_buffered_bytes;
  const int64_t drain_timeout_ms;

  // The poller's own.
  std::string buffer;  // received, not yet a request
  int64_t deadline_ms = 0;
  // Which protocol is not known yet (HTTP/2's preface starts "PRI").
  bool sniffing = true;
  // When it was accepted or last sent bytes, in the poller's order
  // (heard_): the smallest has been silent longest.
  uint64_t last_heard = 0;
  // Watched again from then (0: watched now).
  int64_t rearm_at_ms = 0;
  // A request was dispatched and the connection is not taken back yet.
  bool answering = false;
  // "100 Continue" went out for the request being received.
  bool continued = false;

  absl::Mutex mu;
  bool closing ABSL_GUARDED_BY(mu) = false;   // nothing more goes out
  bool released ABSL_GUARDED_BY(mu) = false;  // the socket is closed or gRPC's
  Exchange* exchange ABSL_GUARDED_BY(mu) = nullptr;  // answering, not over
  bool over ABSL_GUARDED_BY(mu) = false;      // answered: taken back once written
  bool close_when_drained ABSL_GUARDED_BY(mu) = false;
  std::string out ABSL_GUARDED_BY(mu);        // queued; out_sent of it written
  size_t out_sent ABSL_GUARDED_BY(mu) = 0;
  uint32_t events ABSL_GUARDED_BY(mu) = 0;    // what epoll reports
  // While bytes wait for a client that reads none: when it is closed.
  std::atomic<int64_t> drain_deadline_ms{0};
};

bool Listener::Conn::Flush() {
  if (released) return false;
  bool progressed = false;
  while (out_sent < out.size()) {
    ssize_t n = send(fd, out.data() + out_sent, out.size() - out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      out_sent += static_cast<size_t>(n);
      progressed = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return false;
    }
  }
  if (out_sent == out.size()) {
    out_sent = 0;
    if (out.capacity() > kKeptOutputCapacity) {
      std::string().swap(out);
    } else {
      out.clear();
    }
    drain_deadline_ms.store(0);
    return true;
  }
  if (out_sent >= out.size() / 2) {  // amortized: each byte moves at most once
    out.erase(0, out_sent);
    out_sent = 0;
  }
  if (progressed || drain_deadline_ms.load() == 0) {
    drain_deadline_ms.store(NowMs() + drain_timeout_ms);
  }
  return true;
}

// An exchange's OnClose, taken out under the connection's lock and run (if
// the exchange was cut short) or only released once the lock is: it may
// take locks of its own, or hold the exchange. Declared before the lock,
// so it is destroyed after it.
struct Ending {
  std::function<void()> on_close;
  bool run = false;
  ~Ending() {
    if (run && on_close) on_close();
  }
};

// An HttpExchange on a Conn: at most one per connection is not over (a
// pipelined request waits for the one before it), and its state lives
// under the connection's mutex.
class Listener::Exchange final : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Conn> conn, bool keep_alive)
      : conn_(std::move(conn)), keep_alive_(keep_alive) {}

  ~Exchange() override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (over()) return;
    // Dropped without an answer: the client must not wait forever.
    bool waiting = state_ == State::kWaiting;
    End(/*answered=*/false, &ending);
    if (waiting) {
      Conclude(FormatHttpResponse(PlainError(500, "the server gave no answer\n"), false), false);
    } else {
      conn_->CutOff();  // a chunked body cut short tells the client
    }
  }

  void Respond(HttpResponse response) override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (state_ != State::kWaiting) return;
    End(/*answered=*/true, &ending);
    Conclude(FormatHttpResponse(response, keep_alive_), keep_alive_);
  }

  void StartStream(HttpResponse head) override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (state_ != State::kWaiting) return;
    state_ = State::kStreaming;
    conn_->out.append(FormatHttpStreamHead(head, keep_alive_));
    if (!Write()) End(/*answered=*/false, &ending);
  }

  bool Send(std::string chunk) override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (state_ != State::kStreaming) return false;
    conn_->out.append(FormatHttpChunk(chunk));
    // Written first, so a client that keeps up never meets the cap.
    if (Write()) return true;
    End(/*answered=*/false, &ending);
    return false;
  }

  void Finish() override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (state_ != State::kStreaming) return;
    End(/*answered=*/true, &ending);
    Conclude("0\r\n\r\n", keep_alive_);
  }

  void OnClose(std::function<void()> on_close) override {
    Ending ending;
    absl::MutexLock lock(&conn_->mu);
    if (over()) {
      ending.on_close = std::move(on_close);
      ending.run = state_ == State::kCutShort;
    } else if (on_close_) {
      on_close_ = [first = std::move(on_close_), second = std::move(on_close)] {
        first();
        second();
      };
    } else {
      on_close_ = std::move(on_close);
    }
  }

  size_t buffered_bytes() const override {
    absl::MutexLock lock(&conn_->mu);
    return conn_->released ? 0 : conn_->queued();
  }

  // The exchange is over: answered in full, or cut short (its OnClose is
  // then to run). Either way the OnClose leaves it, into `ending`.
  void End(bool answered, Ending* ending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu) {
    state_ = answered ? State::kAnswered : State::kCutShort;
    if (conn_->exchange == this) conn_->exchange = nullptr;
    ending->on_close = std::exchange(on_close_, nullptr);
    ending->run = !answered;
  }

 private:
  enum class State { kWaiting, kStreaming, kAnswered, kCutShort };

  bool over() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu) {
    return state_ == State::kAnswered || state_ == State::kCutShort;
  }

  // Writes what it can of what is queued. False, with the client cut off,
  // if it is gone or reads too slowly.
  bool Write() ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu) {
    if (!conn_->Flush() || conn_->queued() > conn_->max_buffered_bytes) {
      conn_->CutOff();
      return false;
    }
    conn_->Settle();
    return true;
  }

  // The answer's last bytes: the connection goes back to reading requests
  // (or is closed) once they are written.
  void Conclude(absl::string_view last, bool keep_alive) ABSL_EXCLUSIVE_LOCKS_REQUIRED(conn_->mu) {
    if (conn_->released) return;
    conn_->out.append(last.data(), last.size());
    conn_->over = true;
    conn_->close_when_drained = !keep_alive;
    if (!conn_->Flush()) {
      conn_->CutOff();
      return;
    }
    conn_->Settle();
  }

  const std::shared_ptr<Conn> conn_;
  const bool keep_alive_;
  State state_ ABSL_GUARDED_BY(conn_->mu) = State::kWaiting;
  std::function<void()> on_close_ ABSL_GUARDED_BY(conn_->mu);
};

// -------------------------------------------------------------- listener --

absl::StatusOr<std::unique_ptr<Listener>> Listener::Start(const std::string& host_port,
                                                          grpc::Server* grpc_server,
                                                          AsyncHttpHandler handler,
                                                          ListenerOptions options) {
  absl::StatusOr<TcpAddresses> found = ResolveTcp(host_port, /*passive=*/true);
  if (!found.ok()) return found.status();
  std::unique_ptr<Listener> listener(new Listener());
  std::string last_error = "no address";
  for (addrinfo* a = found->get(); a != nullptr; a = a->ai_next) {
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
  listener->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  try {
    listener->poller_ = std::thread([l = listener.get()] { l->PollLoop(); });
    pthread_setname_np(listener->poller_.native_handle(), "etc-http");
    for (int i = 0; i < std::max(1, options.workers); ++i) {
      listener->workers_.emplace_back([l = listener.get()] { l->Work(); });
      pthread_setname_np(listener->workers_.back().native_handle(), "etc-http-work");
    }
  } catch (const std::system_error& e) {
    // Out of threads (a task limit): an error to report, not an abort. The
    // threads already started are stopped and joined by the listener's
    // destructor as it goes out of scope.
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the listener's threads on ", host_port, ": ", e.what()));
  }
  return listener;
}

Listener::~Listener() { Stop(); }

void Listener::Stop() {
  if (stopping_.exchange(true)) return;
  WakePoller();
  // The poller closes every connection as it leaves: each exchange not
  // over runs its OnClose there, and is a no-op from then on.
  if (poller_.joinable()) poller_.join();
  {
    // Taken so that no worker is between its check of stopping_ and its
    // wait when the notification comes.
    std::lock_guard<std::mutex> lock(mu_);
  }
  work_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  std::deque<Job> jobs;
  std::vector<std::shared_ptr<Conn>> returned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs.swap(jobs_);
    returned.swap(returned_);
  }
  jobs.clear();  // their exchanges' connections are closed: no answers
  for (int fd : {listen_fd_, epoll_fd_, wake_fd_, reserve_fd_}) {
    if (fd >= 0) close(fd);
  }
  listen_fd_ = epoll_fd_ = wake_fd_ = reserve_fd_ = -1;
}

void Listener::WakePoller() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void Listener::Return(std::shared_ptr<Conn> conn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    returned_.push_back(std::move(conn));
  }
  if (std::this_thread::get_id() != poller_id_) WakePoller();
}

void Listener::CountWaiting() { waiting_connections_.store(conns_.size() - answering_); }

void Listener::Close(const std::shared_ptr<Conn>& conn) {
  std::shared_ptr<Conn> keep = conn;  // `conn` may be the map's own entry
  Ending ending;  // runs last
  {
    absl::MutexLock lock(&keep->mu);
    if (keep->released) return;
    if (keep->exchange != nullptr) keep->exchange->End(/*answered=*/false, &ending);
    keep->closing = true;
    keep->released = true;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, keep->fd, nullptr);
    close(keep->fd);
  }
  if (keep->answering) --answering_;
  conns_.erase(keep->fd);
  open_connections_.fetch_sub(1);
  CountWaiting();
}

void Listener::Adopt(int fd) {
  if (open_connections_.load() >= options_.max_connections && !CloseSilentLongest()) {
    // At the limit with every connection being answered: closed at once,
    // before it costs anything.
    NoteRefused(absl::StrCat("at the connection limit (", options_.max_connections,
                             "), every connection waiting for its answer"));
    close(fd);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto conn = std::make_shared<Conn>(this, fd, options_);
  conn->deadline_ms = NowMs() + options_.idle_timeout_ms;
  conn->last_heard = ++heard_;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    NoteRefused(absl::StrCat("cannot watch it: ", std::strerror(errno)));
    close(fd);
    return;
  }
  {
    absl::MutexLock lock(&conn->mu);
    conn->events = event.events;
  }
  open_connections_.fetch_add(1);
  conns_[fd] = std::move(conn);
  CountWaiting();
}

bool Listener::CloseSilentLongest() {
  // A scan, only at the limit: cheaper than keeping the connections
  // ordered on every byte they send.
  std::shared_ptr<Conn> silent_longest;
  for (const auto& [fd, conn] : conns_) {
    if (conn->answering) continue;
    if (silent_longest == nullptr ||
        std::make_pair(!conn->sniffing, conn->last_heard) <
            std::make_pair(!silent_longest->sniffing, silent_longest->last_heard)) {
      silent_longest = conn;
    }
  }
  if (silent_longest == nullptr) return false;
  Close(silent_longest);
  return true;
}

bool Listener::OnReadable(const std::shared_ptr<Conn>& conn) {
  int fd = conn->fd;
  if (conn->sniffing) {
    // Peeked, not read: a gRPC connection is handed over whole, preface
    // included. HTTP/2's preface begins "PRI * HTTP/2.0", which no
    // HTTP/1.x request line does.
    char peek[3];
    ssize_t n = recv(fd, peek, sizeof(peek), MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      Close(conn);
      return false;
    }
    if (n < static_cast<ssize_t>(sizeof(peek))) {
      // The rest comes soon: stop watching it for a moment (epoll would
      // report it readable again at once).
      absl::MutexLock lock(&conn->mu);
      conn->Watch(0);
      conn->rearm_at_ms = NowMs() + kSniffRetryMs;
      return true;
    }
    conn->sniffing = false;
    bool grpc = std::memcmp(peek, "PRI", 3) == 0;
    bool raft_stream = options_.raft_stream && std::memcmp(peek, "ETC", 3) == 0;
    if (grpc || raft_stream) {
      {
        absl::MutexLock lock(&conn->mu);
        conn->released = true;
      }
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      conns_.erase(fd);
      open_connections_.fetch_sub(1);
      CountWaiting();
      if (raft_stream) {
        // Its reader blocks on it: back to blocking mode.
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        options_.raft_stream(fd);  // the raft stream server owns it now
        return false;
      }
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
      conn->buffer.append(chunk, static_cast<size_t>(n));
      if (conn->buffer.size() > kMaxHttpRequestBytes + kMaxHttpHeaderBytes) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    Close(conn);  // closed by the client, or broken
    return false;
  }
  conn->deadline_ms = NowMs() + options_.idle_timeout_ms;
  conn->last_heard = ++heard_;
  Dispatch(conn);
  return true;
}

void Listener::Dispatch(const std::shared_ptr<Conn>& conn) {
  HttpRequest request;
  absl::StatusOr<size_t> used = ParseHttpRequest(conn->buffer, &request);
  if (used.ok() && *used == 0) {  // not complete yet
    if (!conn->continued && ExpectsContinue(conn->buffer)) {
      conn->continued = true;
      // Best effort: a client that does not get it sends the body anyway.
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      (void)!send(conn->fd, kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL);
    }
    return;
  }
  conn->continued = false;
  bool keep_alive = false;
  if (used.ok()) {
    conn->buffer.erase(0, *used);
    if (conn->buffer.empty()) std::string().swap(conn->buffer);  // a long wait costs little
    keep_alive = KeepAlive(request);
  }
  bool room;
  {
    // Only the poller adds jobs: the room seen here is there when it does.
    std::lock_guard<std::mutex> lock(mu_);
    room = jobs_.size() < options_.max_queued_requests;
  }
  auto exchange = std::make_shared<Exchange>(conn, keep_alive && room);
  {
    // No more reads until it is answered (pipelined requests wait in the
    // socket), but a hang-up is still heard.
    absl::MutexLock lock(&conn->mu);
    conn->exchange = exchange.get();
    conn->over = false;
    conn->Watch(EPOLLRDHUP);
  }
  conn->answering = true;
  ++answering_;
  CountWaiting();
  if (!used.ok()) {
    int status = used.status().code() == absl::StatusCode::kResourceExhausted ? 413 : 400;
    exchange->Respond(PlainError(status, std::string(used.status().message()) + "\n"));
    return;
  }
  if (!room) {
    exchange->Respond(PlainError(503, "too many requests\n"));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(Job{std::move(exchange), std::move(request)});
  }
  work_.notify_one();
}

void Listener::OnAnswering(const std::shared_ptr<Conn>& conn, uint32_t events) {
  // A client that hangs up (or half-closes) while its answer is pending is
  // gone, as Go's server takes it to be: its long poll or watch is
  // cancelled.
  bool gone = (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;
  if (!gone && (events & EPOLLOUT) != 0) {
    absl::MutexLock lock(&conn->mu);
    if (conn->Flush()) {
      conn->Settle();
      return;
    }
    gone = true;
  }
  if (gone) Close(conn);
}

void Listener::TakeBack(const std::shared_ptr<Conn>& conn) {
  auto it = conns_.find(conn->fd);
  if (it == conns_.end() || it->second != conn || !conn->answering) return;  // closed already
  bool close = false;
  {
    absl::MutexLock lock(&conn->mu);
    if (conn->closing) {
      close = true;
    } else if (!conn->over || conn->queued() > 0) {
      return;  // returned more than once, or not over yet
    } else {
      conn->over = false;
      conn->Watch(EPOLLIN | EPOLLRDHUP);
    }
  }
  if (close) {
    Close(conn);
    return;
  }
  conn->answering = false;
  --answering_;
  CountWaiting();
  // Idle from now on, but silent since its client last sent a byte (what
  // the connection limit goes by).
  conn->deadline_ms = NowMs() + options_.idle_timeout_ms;
  // A request already buffered (pipelined) is dispatched at once.
  if (!conn->buffer.empty()) Dispatch(conn);
}

void Listener::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [this] { return !jobs_.empty() || stopping_.load(); });
      if (stopping_.load()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    handler_(job.request, std::move(job.exchange));
  }
}

int Listener::NextTimeoutMs() {
  int64_t now = NowMs();
  int64_t next_deadline = now + 1000;
  ResumeAccepting(now);
  if (accept_paused_until_ms_ != 0) next_deadline = std::min(next_deadline, accept_paused_until_ms_);
  for (const auto& [fd, conn] : conns_) {
    int64_t deadline = conn->answering ? conn->drain_deadline_ms.load() : conn->deadline_ms;
    if (deadline != 0) next_deadline = std::min(next_deadline, deadline);
    if (conn->rearm_at_ms == 0) continue;
    if (conn->rearm_at_ms <= now) {
      absl::MutexLock lock(&conn->mu);
      conn->Watch(EPOLLIN | EPOLLRDHUP);
      conn->rearm_at_ms = 0;
    } else {
      next_deadline = std::min(next_deadline, conn->rearm_at_ms);
    }
  }
  return static_cast<int>(std::clamp<int64_t>(next_deadline - now, 0, 1000));
}

void Listener::ExpireDeadlines() {
  int64_t now = NowMs();
  // Idle too long, or not reading its answer for as long.
  std::vector<std::shared_ptr<Conn>> expired;
  for (const auto& [fd, conn] : conns_) {
    int64_t deadline = conn->answering ? conn->drain_deadline_ms.load() : conn->deadline_ms;
    if (deadline != 0 && deadline <= now) expired.push_back(conn);
  }
  for (const std::shared_ptr<Conn>& conn : expired) Close(conn);
}

void Listener::OnEvent(int fd, uint32_t events) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  std::shared_ptr<Conn> conn = it->second;
  if (conn->answering) {
    OnAnswering(conn, events);
  } else {
    OnReadable(conn);
  }
}

void Listener::PollLoop() {
  poller_id_ = std::this_thread::get_id();
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), NextTimeoutMs());
    if (stopping_.load()) break;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        Accept();
      } else if (fd == wake_fd_) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
      } else {
        OnEvent(fd, events[i].events);
      }
    }
    std::vector<std::shared_ptr<Conn>> returned;
    {
      std::lock_guard<std::mutex> lock(mu_);
      returned.swap(returned_);
    }
    for (const std::shared_ptr<Conn>& conn : returned) TakeBack(conn);
    ExpireDeadlines();
    LogAcceptTroubleDue(NowMs());
  }
  while (!conns_.empty()) Close(conns_.begin()->second);
}

}  // namespace etc::server
