// etc-bench --workload=watch: watchers on one key (kWatchedKey, spread
// over the connections) while the clients' chains put to it (RunChains),
// each value starting with its put's send time (16 digits of NowMicros):
// a watcher's latency is an event's delivery, from the put's send to the
// watcher's read.
//
//   Watchers watchers(options.watchers, channels);  // every watch created
//   RunChains(options, value, channels, more, &results);
//   Result delivered = watchers.Stop();
#ifndef ETC_CLIENT_BENCH_WATCH_H_
#define ETC_CLIENT_BENCH_WATCH_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "client/bench_common.h"

namespace etc::bench {

class Watchers {
 public:
  // Opens `count` watches on kWatchedKey over `channels` in turn, a thread
  // each; returns once every one is created.
  Watchers(int count, const std::vector<std::shared_ptr<grpc::Channel>>& channels);
  Watchers(const Watchers&) = delete;
  Watchers& operator=(const Watchers&) = delete;
  // Cancels the watches (if Stop has not).
  ~Watchers();

  // Lets the last events arrive (500 ms), then cancels the watches.
  // Returns every delivery's latency (the errors are the puts' to count).
  Result Stop();

 private:
  // Until `context` is cancelled: notes each event's delivery latency.
  void Watch(grpc::ClientContext* context, const std::shared_ptr<grpc::Channel>& channel);
  void CancelAndJoin();

  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::thread> threads_;
  std::atomic<int> created_{0};
  std::mutex mu_;
  Result delivered_;  // guarded by mu_
};

}  // namespace etc::bench

#endif  // ETC_CLIENT_BENCH_WATCH_H_
