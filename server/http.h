// The plaintext client port, shared by gRPC and HTTP/1.1 as etcd shares it:
// each accepted connection is sniffed (HTTP/2's preface starts with "PRI")
// and handed whole to the gRPC server, or served here as HTTP/1.1 (/health,
// /metrics, /version and the JSON gateway). A metrics-only port
// (--listen-metrics-urls) is the same listener without gRPC; a plaintext
// peer port is one with the peers' gRPC service and their raft streams
// (server/raft_stream.h).
//
// A request runs on a worker thread, which may answer it at once or keep
// its HttpExchange and answer later, from any thread, whole or as a
// chunked stream (a watch): a connection waiting for its answer holds no
// thread, only its buffers and an epoll entry.
//
//   auto port = Listener::Start("127.0.0.1:2379", grpc_server,
//       [](const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
//         exchange->OnClose([] { /* cancel what feeds it */ });
//         exchange->StartStream(HttpResponse{});
//         exchange->Send("{\"event\":1}\n");  // from any thread, later
//         exchange->Finish();
//       }).value();
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
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/json_log.h"

namespace etc::server {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', undecoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;   // de-chunked if it came with Transfer-Encoding: chunked
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  // Extra response headers, in order (e.g. {"X-Etcd-Index", "12"}).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// One request's answer, given later or streamed, from any thread. Exactly
// one of Respond or StartStream (+ Send* + Finish) is used; a call out of
// that order, or after the exchange is over, does nothing. Thread-safe;
// never blocks on the client (bytes are queued and written by the poller
// as the socket allows).
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // The whole answer; the exchange is over (keep-alive as for synchronous
  // answers).
  virtual void Respond(HttpResponse response) = 0;
  // Starts a chunked (Transfer-Encoding: chunked) response with head's
  // status, content type and headers (its body, if any, is the first chunk).
  virtual void StartStream(HttpResponse head) = 0;
  // Queues one chunk (an empty one is skipped: it would end the body).
  // False (and the connection is closed, OnClose runs) if the client is
  // gone or the bytes it has not read yet exceed the per-connection cap
  // (ListenerOptions::max_stream_buffered_bytes): a slow reader is cut
  // off, never buffered without bound.
  virtual bool Send(std::string chunk) = 0;
  // Ends the chunked body; the connection then serves its next request
  // (keep-alive).
  virtual void Finish() = 0;
  // Runs once, on some thread, when the exchange ends without its whole
  // answer: the client disconnected (e.g. a long-poll client went away) or
  // was cut off, the handler dropped the exchange, or the Listener stopped.
  // The place to cancel a watch. Runs at once if that already happened;
  // never after Respond or Finish (the callback is then only released). It
  // runs on the listener's poller, or inside the Send that cut the client
  // off: it must not block. A second callback runs after the first; each
  // is released once the exchange is over, so it may hold the exchange.
  virtual void OnClose(std::function<void()> on_close) = 0;
  // Bytes queued and not yet written to the socket.
  virtual size_t buffered_bytes() const = 0;
};

// Runs on a worker thread; may answer before returning or keep `exchange`
// and answer later from any thread. Must return promptly (never wait for
// the member). An exchange dropped without an answer is answered 500 and
// its connection closed.
using AsyncHttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpExchange>)>;

// A handler that answers before it returns, as an AsyncHttpHandler.
AsyncHttpHandler Synchronous(HttpHandler handler);

// Bigger requests are refused (the gRPC side has --max-request-bytes; the
// gateway's JSON is at most a few times larger), and bigger heads.
inline constexpr size_t kMaxHttpRequestBytes = 8 << 20;
inline constexpr size_t kMaxHttpHeaderBytes = 64 << 10;

// Reads one request from `data` (the bytes received so far). Returns the
// bytes it used, 0 if the request is not complete yet, or an error for a
// malformed one (the connection is then answered 400 and closed;
// kResourceExhausted, 413, for one too large).
absl::StatusOr<size_t> ParseHttpRequest(const std::string& data, HttpRequest* request);
std::string FormatHttpResponse(const HttpResponse& response, bool keep_alive);
// A chunked response's head, with head.body as its first chunk.
std::string FormatHttpStreamHead(const HttpResponse& head, bool keep_alive);
// One chunk of a chunked body ("" for empty data, which would end it).
std::string FormatHttpChunk(const std::string& data);
// A status's reason phrase ("Precondition Failed"), as Go's
// http.StatusText gives it ("Unknown" for one it does not know).
const char* HttpStatusText(int status);

// Limits of an HTTP/1.1 port: every connection, idle or not, costs a
// buffer and an epoll entry, not a thread; requests run on a few workers.
struct ListenerOptions {
  // Connections open at once (gRPC's, once handed over, no longer count),
  // those waiting for or streaming an answer included.
  // At the limit a new connection takes the place of the one silent
  // longest, preferring one that never said which protocol it speaks (as
  // nginx drains idle keep-alive connections when it runs out): refusing
  // new ones instead would let idle connections lock every new client,
  // gRPC's too, out of the port until the idle timeout. A connection
  // waiting for its answer or streaming one is never picked: a long-poll
  // watch is silent for as long as nothing changes, legitimately. Only if
  // none is waiting on its client is the new one closed.
  // A process out of descriptors (or kernel memory) before this limit
  // does the same: the connection silent longest makes room, else the
  // oldest pending connection is refused (closed at once, with a
  // descriptor kept in reserve for it), else the port is not watched for
  // 100 ms; never a busy loop, never an abort, each logged at most once
  // every 10 s.
  size_t max_connections = 10'000;
  // A connection that sends nothing this long is closed (also one that
  // never says which protocol it speaks), and so is one whose client reads
  // none of the answer queued for it this long. One waiting for its answer
  // with nothing queued has no deadline.
  int64_t idle_timeout_ms = 60'000;
  // Threads that run handlers, and requests waiting for one; a full queue
  // answers 503.
  int workers = 4;
  size_t max_queued_requests = 1024;
  // Bytes of a streamed answer queued for a client that does not read
  // them: past this, the client is cut off (HttpExchange::Send).
  size_t max_stream_buffered_bytes = 4 << 20;
  // The peer port: a connection that opens with "ETC" (RaftStream's
  // preface, unread) is handed whole to this, as gRPC's are to gRPC.
  // Unset: such a connection is served as HTTP/1.1 (and refused).
  std::function<void(int fd)> raft_stream;
};

class Listener {
 public:
  // Binds and listens on host:port. `grpc_server` (nullptr: HTTP only)
  // must outlive the listener and have been built without its own port.
  // Errors: kUnavailable if the address is taken.
  static absl::StatusOr<std::unique_ptr<Listener>> Start(const std::string& host_port,
                                                         grpc::Server* grpc_server,
                                                         AsyncHttpHandler handler,
                                                         ListenerOptions options = {});
  static absl::StatusOr<std::unique_ptr<Listener>> Start(const std::string& host_port,
                                                         grpc::Server* grpc_server,
                                                         HttpHandler handler,
                                                         ListenerOptions options = {}) {
    return Start(host_port, grpc_server, Synchronous(std::move(handler)), options);
  }
  ~Listener();
  // Stops accepting, closes HTTP connections (exchanges not over yet run
  // their OnClose, and are no-ops from then on; they may outlive the
  // listener) and waits for the workers. gRPC connections belong to the
  // gRPC server from hand-over on. Not to be called from a handler.
  void Stop();
  int port() const { return port_; }
  // HTTP connections open now (for tests and metrics).
  size_t connections() const { return open_connections_.load(); }
  // Of those, the ones waiting on their clients (idle, or sending a
  // request): not being answered. Only these can make room for a new one.
  size_t waiting_connections() const { return waiting_connections_.load(); }

 private:
  struct Conn;
  class Exchange;
  struct Job {
    std::shared_ptr<Exchange> exchange;
    HttpRequest request;
  };

  Listener() = default;
  void PollLoop();
  // How long epoll may wait: until the next deadline or sniff retry (and
  // re-arms the connections whose retry is due).
  int NextTimeoutMs();
  void OnEvent(int fd, uint32_t events);
  // Takes every pending connection (http_accept.cc).
  void Accept();
  // Serves an accepted connection, or closes it at max_connections.
  void Adopt(int fd);
  // accept(2) failed with `error` for want of descriptors or memory, or
  // for a reason that is not the pending connection's. Makes room (closes
  // the connection waiting on its client silent longest) if `may_make_room`,
  // else refuses the oldest pending connection (accepted with the reserved
  // descriptor and closed), else stops watching the port for a moment.
  // True if Accept may go on.
  bool OnAcceptFailed(int error, bool may_make_room);
  // Refused: a connection accepted and closed at once (why: for the log).
  void NoteRefused(std::string reason);
  // The port watched again once a pause is over; the reserve taken again.
  void ResumeAccepting(int64_t now_ms);
  // The accept troubles held back by the rate limit, once it allows.
  void LogAcceptTroubleDue(int64_t now_ms);
  // Reads what arrived on a connection waiting on its client; returns
  // false once the connection is gone (closed or handed to gRPC).
  bool OnReadable(const std::shared_ptr<Conn>& conn);
  // Gives the request the buffer holds to a worker, or answers a
  // malformed one.
  void Dispatch(const std::shared_ptr<Conn>& conn);
  // A connection being answered: its client hung up, or it can take more
  // of the answer.
  void OnAnswering(const std::shared_ptr<Conn>& conn, uint32_t events);
  // Back from an exchange (over, every byte written, or to be closed):
  // reads the next request, or closes it.
  void TakeBack(const std::shared_ptr<Conn>& conn);
  // From any thread, under conn->mu: TakeBack on the poller.
  void Return(std::shared_ptr<Conn> conn);
  void ExpireDeadlines();
  // Closes the connection waiting on its client silent longest (see
  // max_connections); false if there is none.
  bool CloseSilentLongest();
  // Poller only: closes the socket; an exchange not over runs its OnClose.
  void Close(const std::shared_ptr<Conn>& conn);
  void Forget(int fd);
  void CountWaiting();
  void Work();
  void WakePoller();

  int listen_fd_ = -1;
  // A descriptor held in reserve (/dev/null): out of descriptors, the
  // poller closes it to accept the oldest pending connection only to close
  // it, so that the client is told at once instead of waiting in the
  // backlog, and the poller does not spin on a port that stays readable.
  int reserve_fd_ = -1;
  // Poller only: while accept(2) can do nothing, the port is not watched
  // until this time (0: watched).
  int64_t accept_paused_until_ms_ = 0;
  // Poller only: what the last accept failure was, for the log lines.
  int accept_errno_ = 0;
  std::string refusal_reason_;
  // At most one line per kind every 10 s (json_log.h).
  RateLimitedLog room_made_log_{10'000};
  RateLimitedLog refused_log_{10'000};
  RateLimitedLog paused_log_{10'000};
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  grpc::Server* grpc_server_ = nullptr;
  AsyncHttpHandler handler_;
  ListenerOptions options_;
  std::thread poller_;
  std::thread::id poller_id_;  // set by the poller before any connection exists
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
  std::atomic<size_t> waiting_connections_{0};  // for other threads
  // Poller thread only: every open HTTP connection, by fd; how many of them
  // are being answered; the count their last_heard comes from.
  std::map<int, std::shared_ptr<Conn>> conns_;
  size_t answering_ = 0;
  uint64_t heard_ = 0;
  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job> jobs_;                           // guarded by mu_
  std::vector<std::shared_ptr<Conn>> returned_;    // guarded by mu_: for TakeBack
};

}  // namespace etc::server

#endif  // ETC_SERVER_HTTP_H_
