#include "server/raft_stream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "base/little_endian.h"
#include "base/steady_clock.h"
#include "server/tcp_address.h"

namespace etc::server {
namespace {

using base::SteadyMs;

// A write the peer does not take within this long fails (the sender then
// reconnects): a peer that stopped reading must not hold the sender.
constexpr int64_t kWriteTimeoutMs = 5000;
// Connections read at once. A cluster needs one per other member (two
// while one reconnects); past this, the port is being flooded, and a new
// connection is closed rather than given a thread.
constexpr size_t kMaxConnections = 256;
constexpr int64_t kPrefaceTimeoutMs = 5000;

// Reads exactly `size` bytes; false on end of stream or error.
bool ReadFully(int fd, char* out, size_t size) {
  while (size > 0) {
    ssize_t n = recv(fd, out, size, 0);
    if (n > 0) {
      out += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

// Sends what the socket takes of `data`: all of it, or less once a send
// would block (with MSG_DONTWAIT in `flags` at once, else after the
// socket's send timeout); an error if the connection broke.
absl::StatusOr<size_t> SendSome(int fd, std::string_view data, int flags) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = send(fd, data.data() + written, data.size() - written, MSG_NOSIGNAL | flags);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
  }
  return written;
}

absl::Status WriteFully(int fd, std::string_view data) {
  absl::StatusOr<size_t> written = SendSome(fd, data, 0);
  if (!written.ok()) return written.status();
  if (*written < data.size()) return absl::DeadlineExceededError("the peer read nothing for 5 s");
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRaftFrame(const peerpb::Batch& batch) {
  std::string payload = batch.SerializeAsString();
  std::string frame(kRaftFrameHeaderBytes, '\0');
  base::PutLittleEndian32(static_cast<uint32_t>(payload.size()), frame.data());
  base::PutLittleEndian32(base::Crc32c(payload), frame.data() + 4);
  frame += payload;
  return frame;
}

std::vector<raftpb::Message> OwnMessages(peerpb::Batch* batch) {
  std::vector<raftpb::Message> messages;
  messages.reserve(batch->messages_size());
  for (raftpb::Message& message : *batch->mutable_messages()) {
    if (message.from() == batch->from()) messages.push_back(std::move(message));
  }
  return messages;
}

absl::StatusOr<RaftFrame> DecodeRaftFrame(std::string_view buffer) {
  RaftFrame frame;
  if (buffer.size() < kRaftFrameHeaderBytes) return frame;
  size_t length = base::GetLittleEndian32(buffer.data());
  if (length > kMaxRaftFrameBytes) {
    return absl::DataLossError(absl::StrCat("a raft stream frame of ", length,
                                            " bytes (at most ", kMaxRaftFrameBytes, ")"));
  }
  if (buffer.size() - kRaftFrameHeaderBytes < length) return frame;
  std::string_view payload = buffer.substr(kRaftFrameHeaderBytes, length);
  if (base::Crc32c(payload) != base::GetLittleEndian32(buffer.data() + 4)) {
    return absl::DataLossError("a raft stream frame whose checksum does not match");
  }
  if (!frame.batch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError("a raft stream frame that is not a batch of messages");
  }
  frame.consumed = kRaftFrameHeaderBytes + length;
  return frame;
}

RaftStreamServer::RaftStreamServer(uint64_t cluster_id,
                                   Deliver deliver)
    : cluster_id_(cluster_id), deliver_(std::move(deliver)) {}

RaftStreamServer::~RaftStreamServer() { Stop(); }

void RaftStreamServer::Serve(int fd) {
  std::vector<std::thread> ended;
  {
    absl::MutexLock lock(&mu_);
    ended.swap(ended_);
    if (stopped_) {
      close(fd);
    } else if (threads_.size() >= kMaxConnections) {
      close(fd);
      if (uint64_t events = refused_log_.Count(SteadyMs())) {
        LogJson("warn", absl::StrCat("closed a raft stream: ", kMaxConnections,
                                     " are open already (", events, " time(s))"));
      }
    } else {
      try {
        std::thread thread([this, fd] { Run(fd); });
        pthread_setname_np(thread.native_handle(), "etc-peer-recv");
        threads_.emplace(fd, std::move(thread));
      } catch (const std::system_error& e) {
        // Out of threads: the sender finds the connection closed and tries
        // again; Raft retries what was lost.
        close(fd);
      }
    }
  }
  for (std::thread& thread : ended) thread.join();
}

void RaftStreamServer::Stop() {
  std::map<int, std::thread> threads;
  std::vector<std::thread> ended;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    // Wakes each thread out of its read; it closes its descriptor itself.
    for (auto& [fd, thread] : threads_) shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
    ended.swap(ended_);
  }
  for (auto& [fd, thread] : threads) thread.join();
  for (std::thread& thread : ended) thread.join();
}

void RaftStreamServer::Run(int fd) {
  // A connection that never finishes its preface must not keep its thread:
  // the read waits at most this long (afterwards a stream may be quiet for
  // as long as its sender has nothing to say).
  timeval preface_timeout{kPrefaceTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &preface_timeout, sizeof(preface_timeout));
  char preface[kRaftStreamPreface.size()];
  if (!ReadFully(fd, preface, sizeof(preface)) ||
      std::string_view(preface, sizeof(preface)) != kRaftStreamPreface) {
    Finished(fd);
    return;
  }
  timeval no_timeout{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &no_timeout, sizeof(no_timeout));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!WriteFully(fd, std::string_view(&kRaftStreamAccepted, 1)).ok()) {
    Finished(fd);
    return;
  }
  absl::Status status = ReadFrames(fd);
  if (!status.ok()) {
    if (uint64_t events = refused_log_.Count(SteadyMs())) {
      LogJson("warn", absl::StrCat("closed a peer's raft stream: ", status.message(), " (",
                                   events, " time(s))"));
    }
  }
  Finished(fd);
}

absl::Status RaftStreamServer::ReadFrames(int fd) {
  std::string buffer;
  size_t start = 0;  // where the next frame begins in buffer
  char chunk[64 * 1024];
  for (;;) {
    absl::StatusOr<RaftFrame> frame = DecodeRaftFrame(std::string_view(buffer).substr(start));
    if (!frame.ok()) return frame.status();
    if (frame->consumed > 0) {
      start += frame->consumed;
      peerpb::Batch& batch = frame->batch;
      if (batch.cluster_id() != cluster_id_) {
        return absl::PermissionDeniedError(
            absl::StrCat("member ", absl::Hex(batch.from()), " belongs to another cluster (",
                         absl::Hex(batch.cluster_id()), ", this is ", absl::Hex(cluster_id_), ")"));
      }
      std::vector<raftpb::Message> messages = OwnMessages(&batch);
      if (!messages.empty()) deliver_(std::move(messages));
      continue;
    }
    // Incomplete: keep only its bytes, then read more.
    buffer.erase(0, start);
    start = 0;
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return absl::OkStatus();  // the sender closed it, or it broke
  }
}

void RaftStreamServer::Finished(int fd) {
  absl::MutexLock lock(&mu_);
  close(fd);
  auto it = threads_.find(fd);
  if (it == threads_.end()) return;  // Stop took it and joins it
  ended_.push_back(std::move(it->second));
  threads_.erase(it);
}

absl::StatusOr<std::unique_ptr<RaftStreamConnection>> RaftStreamConnection::Dial(
    const std::string& host_port, int64_t timeout_ms) {
  absl::StatusOr<TcpAddresses> found = ResolveTcp(host_port, /*passive=*/false);
  if (!found.ok()) return absl::UnavailableError(found.status().message());
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = found->get(); a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    // Without blocking, so that an unreachable peer costs at most the
    // timeout, not the kernel's minutes of SYN retries.
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int ready;
      do {
        ready = poll(&p, 1, static_cast<int>(timeout_ms));
      } while (ready < 0 && errno == EINTR);
      int so_error = ETIMEDOUT;
      socklen_t size = sizeof(so_error);
      if (ready > 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &size);
      rc = so_error == 0 ? 0 : -1;
      errno = so_error;
    }
    if (rc != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  }
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot connect to ", host_port, ": ", error));
  std::unique_ptr<RaftStreamConnection> connection(new RaftStreamConnection(fd));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval write_timeout{kWriteTimeoutMs / 1000, (kWriteTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &write_timeout, sizeof(write_timeout));
  if (absl::Status s = WriteFully(fd, kRaftStreamPreface); !s.ok()) return s;
  pollfd p{fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, static_cast<int>(timeout_ms));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) {
    return absl::UnimplementedError(
        absl::StrCat(host_port, " did not answer the raft stream's preface"));
  }
  char answer = 0;
  ssize_t n = recv(fd, &answer, 1, 0);
  if (n != 1 || answer != kRaftStreamAccepted) {
    return absl::UnimplementedError(
        absl::StrCat(host_port, " does not speak the raft stream (an older member?)"));
  }
  return connection;
}

RaftStreamConnection::~RaftStreamConnection() { close(fd_); }

absl::Status RaftStreamConnection::Write(const peerpb::Batch& batch) {
  return WriteFully(fd_, EncodeRaftFrame(batch));
}

absl::Status RaftStreamConnection::WriteBytes(std::string_view bytes) {
  return WriteFully(fd_, bytes);
}

absl::StatusOr<size_t> RaftStreamConnection::WriteNow(std::string_view bytes) {
  return SendSome(fd_, bytes, MSG_DONTWAIT);
}

void RaftStreamConnection::Shutdown() { shutdown(fd_, SHUT_RDWR); }

}  // namespace etc::server
