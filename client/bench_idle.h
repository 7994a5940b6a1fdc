// Idle TCP connections held open to one member while a workload runs
// (etc-bench's --idle-silent and --idle-http), to show what they cost the
// member and its other clients. Silent connections connect and never send
// a byte (not even HTTP/2's preface); HTTP ones send one HTTP/1.1 request
// (GET /version), read its answer and stay open (keep-alive). A thread
// notes when the server closes any of them.
//
//   IdleConnections::Opened opened;
//   std::unique_ptr<IdleConnections> idle = IdleConnections::Open("127.0.0.1:2379", 5000, 5000, &opened);
//   ... run the workload ...
//   TryNewClient("127.0.0.1:2379");  // "ok", or why not
//   IdleConnections::Closed closed = idle->HoldUntil(absl::Seconds(70));
//
// Each connection is a file descriptor: the caller's limit (ulimit -n)
// must allow them all; Open raises the soft limit to the hard one.
#ifndef ETC_CLIENT_BENCH_IDLE_H_
#define ETC_CLIENT_BENCH_IDLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace etc::bench {

// Whether a new client gets through to `endpoint` now: a fresh connection
// and one put (of /overload/fresh), each given 3 s. "ok", or what failed.
std::string TryNewClient(const std::string& endpoint);

class IdleConnections {
 public:
  struct Opened {
    int64_t silent = 0;      // connected, never sent a byte
    int64_t http = 0;        // answered once, kept open
    int64_t failed = 0;      // could not connect within 5 s (or out of descriptors)
    int64_t unanswered = 0;  // HTTP: closed or silent instead of an answer within 5 s
    double seconds = 0;      // to open them all
  };
  struct Closed {
    int64_t open = 0;      // still open at the end of the hold
    int64_t closed = 0;    // closed by the server meanwhile
    double first_s = 0;    // when the first and the last of those closed,
    double last_s = 0;     // in seconds since all were open (0: none)
  };

  // Opens `silent` and `http` connections to host:port, one after another.
  static std::unique_ptr<IdleConnections> Open(const std::string& host_port, int silent, int http,
                                               Opened* opened);
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;
  // Closes every connection.
  ~IdleConnections();

  // Waits until `hold` has passed since all were open (returns at once if
  // it has), then says how many the server closed, and when.
  Closed HoldUntil(absl::Duration hold);

 private:
  IdleConnections() = default;
  // Until stopping_: notes each connection the server closes.
  void Watch();

  int epoll_fd_ = -1;
  std::vector<int> fds_;   // every connection open at the end of Open
  absl::Time opened_at_;
  std::thread watcher_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<double> closed_after_s_;  // guarded by mu_
};

}  // namespace etc::bench

#endif  // ETC_CLIENT_BENCH_IDLE_H_
