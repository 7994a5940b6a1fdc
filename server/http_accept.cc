// The client port's accept loop, and what it does when accept(2) fails for
// want of a resource. A process out of descriptors (EMFILE, ENFILE) or
// kernel memory (ENOBUFS, ENOMEM) cannot take the pending connections, and
// the listening socket stays readable: a level-triggered poller that only
// returned spun at 100% of a core while every new client, gRPC's too, hung
// in the backlog (400 silent connections under a 200-descriptor limit: 2.0
// CPU-seconds in 2 s, and a new client's put timed out). Here the poller
// makes room as at max_connections (the connection waiting on its client
// silent longest is closed), or refuses the oldest pending connection with
// a descriptor kept in reserve, or, with neither possible, stops watching
// the port for a moment; each is logged at most once every 10 s.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/http.h"

namespace etc::server {
namespace {

// While accept(2) can do nothing, the port is looked at again after this.
constexpr int64_t kAcceptPauseMs = 100;

int64_t AcceptClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Out of something the process or the kernel may get back (a connection
// closing frees a descriptor and its buffers).
bool OutOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// The pending connection failed, and accept(2) took it off the queue:
// Linux's manual says to retry as for EAGAIN.
bool PendingConnectionFailed(int error) {
  switch (error) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case EPERM:  // a firewall rule refused it
      return true;
    default:
      return false;
  }
}

}  // namespace

void Listener::Accept() {
  // Made room once for the pending connections and still failed: refuse
  // rather than close one waiting connection after another for nothing
  // (the descriptor freed went elsewhere, or it was not descriptors).
  bool may_make_room = true;
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      int error = errno;
      if (error == EINTR || PendingConnectionFailed(error)) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (!OnAcceptFailed(error, may_make_room)) return;
      may_make_room = false;
      continue;
    }
    may_make_room = true;
    Adopt(fd);
  }
}

bool Listener::OnAcceptFailed(int error, bool may_make_room) {
  // Linux looks for a free descriptor before it looks at the queue: with
  // none free, accept(2) fails even when no connection is pending (after
  // the last one was taken), and making room then would close a silent
  // connection for nobody.
  pollfd pending{listen_fd_, POLLIN, 0};
  if (poll(&pending, 1, 0) <= 0 || (pending.revents & POLLIN) == 0) return false;
  int64_t now_ms = AcceptClockMs();
  accept_errno_ = error;
  if (OutOfResources(error)) {
    // As at max_connections, and for the same reason: refusing every new
    // connection would let silent ones lock every new client out until
    // the idle timeout.
    if (may_make_room && CloseSilentLongest()) {
      if (uint64_t closed = room_made_log_.Count(now_ms)) {
        LogJson("warn", absl::StrCat("client port ", port_, ": accept failed (",
                                     std::strerror(error), "): closed ", closed,
                                     " connection(s) waiting on silent clients to make room"));
      }
      return true;
    }
    if (reserve_fd_ >= 0) {
      close(reserve_fd_);
      reserve_fd_ = -1;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        // Logged before the client can see it.
        NoteRefused(absl::StrCat("accept failed: ", std::strerror(error)));
        close(fd);  // before the reserve is taken again: it takes its place
      }
      reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd >= 0) return reserve_fd_ >= 0;
    }
  }
  // Nothing to make room with, or a failure that is not the pending
  // connection's (it stays queued): the port is not watched for a moment
  // instead of being spun on.
  accept_paused_until_ms_ = now_ms + kAcceptPauseMs;
  epoll_event event{};
  event.data.fd = listen_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &event);
  if (uint64_t pauses = paused_log_.Count(now_ms)) {
    LogJson("warn", absl::StrCat("client port ", port_, ": accept failed (", std::strerror(error),
                                 ") with no descriptor to spare: stopped accepting for ",
                                 kAcceptPauseMs, " ms (", pauses, " time(s))"));
  }
  return false;
}

void Listener::NoteRefused(std::string reason) {
  refusal_reason_ = std::move(reason);
  if (uint64_t refused = refused_log_.Count(AcceptClockMs())) {
    LogJson("warn", absl::StrCat("client port ", port_, ": refused ", refused,
                                 " new connection(s) (closed at once): ", refusal_reason_));
  }
}

void Listener::ResumeAccepting(int64_t now_ms) {
  if (reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (accept_paused_until_ms_ == 0 || now_ms < accept_paused_until_ms_) return;
  accept_paused_until_ms_ = 0;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listen_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &event);
}

void Listener::LogAcceptTroubleDue(int64_t now_ms) {
  if (uint64_t closed = room_made_log_.Due(now_ms)) {
    LogJson("warn", absl::StrCat("client port ", port_, ": accept failed (",
                                 std::strerror(accept_errno_), "): closed ", closed,
                                 " more connection(s) waiting on silent clients to make room"));
  }
  if (uint64_t refused = refused_log_.Due(now_ms)) {
    LogJson("warn", absl::StrCat("client port ", port_, ": refused ", refused,
                                 " more new connection(s) (closed at once): ", refusal_reason_));
  }
  if (uint64_t pauses = paused_log_.Due(now_ms)) {
    LogJson("warn", absl::StrCat("client port ", port_, ": accept failed (",
                                 std::strerror(accept_errno_),
                                 ") with no descriptor to spare: stopped accepting for ",
                                 kAcceptPauseMs, " ms ", pauses, " more time(s)"));
  }
}

}  // namespace etc::server
