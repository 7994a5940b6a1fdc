// What every etc-bench workload shares: the flags, the clock, the gRPC
// connections, and a client as a chain of asynchronous calls whose
// latencies (and completion times) are recorded per request.
//
//   absl::StatusOr<Options> options = Parse(argc, argv);
//   auto channels = Connect(targets, options->connections);
//   std::vector<Result> results(options->clients);
//   RunChains(*options, value, *channels, more, &results);  // blocks until `more` says stop
#ifndef ETC_CLIENT_BENCH_COMMON_H_
#define ETC_CLIENT_BENCH_COMMON_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {

struct Options {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  // put, range, txn, watch, lease-keepalive, mixed, lease-expiry
  std::string workload = "put";
  int clients = 16;
  int connections = 4;
  int64_t total = 10000;
  absl::Duration duration = absl::ZeroDuration();  // instead of total
  int key_size = 8;
  int value_size = 256;
  int64_t key_space = 100000;
  bool sequential_keys = false;
  std::string consistency = "l";  // l (linearizable) or s (serializable)
  double read_ratio = 0.9;        // mixed
  std::string target = "all";     // all, or leader
  int watchers = 100;             // watch
  // range and mixed: first put a value under each key read (up to 10,000;
  // not measured). false when an earlier run already did.
  bool fill = true;
  // lease-expiry: leases granted, their TTL, how many get a key, and how
  // long the put load goes on after the last lease is gone (--duration
  // bounds the whole run).
  int64_t leases = 100000;
  int64_t lease_ttl_s = 45;
  int64_t lease_keys = 10000;
  absl::Duration after = absl::Seconds(10);
  // Any unary workload: idle TCP connections held open to the first
  // target while it runs (bench_idle.h), and until how long after they
  // were opened to watch whether the server closes them. `idle`: one of
  // these flags was given, so the run reports on them (also on none).
  int idle_silent = 0;
  int idle_http = 0;
  absl::Duration idle_hold = absl::ZeroDuration();
  bool idle = false;
};

absl::StatusOr<Options> Parse(int argc, char** argv);

// The key the watch workload's puts write and its watchers watch.
inline constexpr char kWatchedKey[] = "/bench/watched";

int64_t NowMicros();

// Key number `n` as options.key_size digits (wrapped to the key space).
std::string Key(const Options& options, int64_t n);

struct Result {
  std::vector<int64_t> latencies_us;
  // When each request in latencies_us completed (NowMicros), and when each
  // error did: for workloads that report over time.
  std::vector<int64_t> completed_us;
  std::vector<int64_t> errors_at_us;
  int64_t errors = 0;
  std::map<std::string, int64_t> error_kinds;
};

void Record(Result* result, int64_t start_us, const grpc::Status& status);

// The p-th percentile (0-100) of sorted latencies, in milliseconds (0 if none).
double PercentileMs(const std::vector<int64_t>& sorted_us, double p);

// The endpoint of the leader (by asking each member's status); empty if
// none says it leads.
std::string FindLeader(const Options& options);

// `connections` distinct channels, spread over `targets`, each connected.
// Errors: kUnavailable if one does not connect within 5 s.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> Connect(
    const std::vector<std::string>& targets, int connections);

// Runs options.clients chains of unary requests of options.workload (put,
// range, txn, mixed, or the writes of watch; anything else puts) over
// `channels`, client c recording into (*results)[c]. `more` hands out the
// next request number, or says the run is over. Blocks until every chain
// has finished.
void RunChains(const Options& options, const std::string& value,
               const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               std::function<bool(int64_t*)> more, std::vector<Result>* results);

}  // namespace etc::bench

#endif  // ETC_CLIENT_BENCH_COMMON_H_
