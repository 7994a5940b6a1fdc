// The plaintext client port, shared by gRPC and HTTP/1.1 as etcd shares it:
// each accepted connection is sniffed (HTTP/2's preface starts with "PRI")
// and handed whole to the gRPC server, or served here as HTTP/1.1 (/health,
// /metrics, /version and the JSON gateway). A metrics-only port
// (--listen-metrics-urls) is the same listener without gRPC.
//
//   auto port = Listener::Start("127.0.0.1:2379", grpc_server, handler).value();
//   ...
//   port->Stop();
#ifndef ETC_SERVER_HTTP_H_
#define ETC_SERVER_HTTP_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace etc::server {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', undecoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  // Extra response headers, in order (e.g. {"X-Etcd-Index", "12"}).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Reads one request from `data` (the bytes received so far). Returns the
// bytes it used, 0 if the request is not complete yet, or an error for a
// malformed one (the connection is then answered 400 and closed).
absl::StatusOr<size_t> ParseHttpRequest(const std::string& data, HttpRequest* request);
std::string FormatHttpResponse(const HttpResponse& response, bool keep_alive);

// Limits of an HTTP/1.1 port: every connection, idle or not, costs a
// buffer and an epoll entry, not a thread; requests run on a few workers.
struct ListenerOptions {
  // Connections open at once (gRPC's, once handed over, no longer count).
  // At the limit a new connection takes the place of the one silent
  // longest, preferring one that never said which protocol it speaks (as
  // nginx drains idle keep-alive connections when it runs out): refusing
  // new ones instead would let idle connections lock every new client,
  // gRPC's too, out of the port until the idle timeout. Only if none is
  // waiting on its client (all are being answered) is the new one closed.
  size_t max_connections = 10'000;
  // A connection that sends nothing this long is closed (also one that
  // never says which protocol it speaks).
  int64_t idle_timeout_ms = 60'000;
  // Threads that run requests (the gateway's calls block until the member
  // answers), and requests waiting for one; a full queue answers 503.
  int workers = 4;
  size_t max_queued_requests = 1024;
};

class Listener {
 public:
  // Binds and listens on host:port. `grpc_server` (nullptr: HTTP only)
  // must outlive the listener and have been built without its own port.
  // Errors: kUnavailable if the address is taken.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(const std::string& host_port,
                                                         grpc::Server* grpc_server,
                                                         HttpHandler handler,
                                                         ListenerOptions options = {});
  ~Listener();
  // Stops accepting, closes HTTP connections and waits for the workers.
  // gRPC connections belong to the gRPC server from hand-over on.
  void Stop();
  int port() const { return port_; }
  // HTTP connections open now (for tests and metrics).
  size_t connections() const { return open_connections_.load(); }
  // Of those, the ones waiting on their clients (idle, or sending a
  // request): not being answered. Only these can make room for a new one.
  size_t waiting_connections() const { return waiting_connections_.load(); }

 private:
  struct Connection {
    int fd = -1;
    std::string buffer;
    int64_t deadline_ms = 0;
    // Which protocol is not known yet (HTTP/2's preface starts "PRI").
    bool sniffing = true;
    // When it was accepted or last sent bytes, in the poller's order
    // (heard_): the smallest has been silent longest.
    uint64_t last_heard = 0;
    // Watched again from then (0: watched now).
    int64_t rearm_at_ms = 0;
    bool close_after = false;
  };
  struct Job {
    Connection connection;
    HttpRequest request;
  };

  Listener() = default;
  void PollLoop();
  void Accept();
  // Reads what arrived; returns false once the connection is gone (closed
  // or handed to gRPC or a worker).
  bool OnReadable(Connection& connection);
  // Parses what the buffer holds: dispatches a complete request, answers a
  // malformed one. Returns false once the connection left the poller.
  bool Dispatch(Connection& connection);
  void Watch(Connection connection);
  // Closes the watched connection silent longest (see max_connections);
  // false if none is watched.
  bool CloseSilentLongest();
  void Forget(int fd);
  void Close(int fd);
  void Work();
  void WakePoller();

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  grpc::Server* grpc_server_ = nullptr;
  HttpHandler handler_;
  ListenerOptions options_;
  std::thread poller_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
  std::atomic<size_t> waiting_connections_{0};  // watched_.size(), for other threads
  // Poller thread only: connections it watches, by fd, and the count
  // their last_heard comes from.
  std::map<int, Connection> watched_;
  uint64_t heard_ = 0;
  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job> jobs_;                // guarded by mu_
  std::deque<Connection> returned_;     // guarded by mu_: back from workers
};

}  // namespace etc::server

#endif  // ETC_SERVER_HTTP_H_
