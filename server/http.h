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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

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
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Reads one request from `data` (the bytes received so far). Returns the
// bytes it used, 0 if the request is not complete yet, or an error for a
// malformed one (the connection is then answered 400 and closed).
absl::StatusOr<size_t> ParseHttpRequest(const std::string& data, HttpRequest* request);
std::string FormatHttpResponse(const HttpResponse& response, bool keep_alive);

class Listener {
 public:
  // Binds and listens on host:port. `grpc_server` (nullptr: HTTP only)
  // must outlive the listener and have been built without its own port.
  // Errors: kUnavailable if the address is taken.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(const std::string& host_port,
                                                         grpc::Server* grpc_server,
                                                         HttpHandler handler);
  ~Listener();
  // Stops accepting, closes HTTP connections and waits for their threads.
  // gRPC connections belong to the gRPC server from hand-over on.
  void Stop();
  int port() const { return port_; }

 private:
  Listener() = default;
  void AcceptLoop();
  void Serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  grpc::Server* grpc_server_ = nullptr;
  HttpHandler handler_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  std::set<int> open_fds_;  // HTTP connections being served
  int serving_ = 0;         // threads in Serve
};

}  // namespace etc::server

#endif  // ETC_SERVER_HTTP_H_
