// etc-bench: an etcd-style load generator for etc and etcd alike (it
// speaks etcd's v3 gRPC API). Each client sends one request at a time over
// one of --connections shared gRPC channels (as a chain of asynchronous
// calls, so thousands of clients cost no threads); latencies are measured
// per request.
//
//   etc-bench --endpoints=127.0.0.1:2379 --workload=put --clients=64 --total=100000
//   etc-bench --workload=range --consistency=s --duration=10s
//   etc-bench --workload=watch --watchers=100 --total=1000  (bench_watch.h)
//   etc-bench --workload=lease-expiry --leases=100000 --lease-ttl=45 --lease-keys=10000
//     (a mass lease expiry under a put load: bench_lease_expiry.h)
//   etc-bench --workload=put --target=leader --idle-silent=5000 --idle-http=5000 --idle-hold=70s
//     (the leader holding idle connections meanwhile: bench_idle.h)
//
// Output: a table (throughput, latency p50/p90/p99/p99.9/max, errors) and
// one machine-readable JSON line starting with {"workload":. With idle
// connections, also {"idle_opened":...} once they are open, before the
// workload starts, and {"idle_held":...} after the hold.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "client/bench_common.h"
#include "client/bench_idle.h"
#include "client/bench_lease_expiry.h"
#include "client/bench_lease_keepalive.h"
#include "client/bench_watch.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {
namespace {

void Report(const Options& options, std::vector<Result>& results, double seconds) {
  std::vector<int64_t> all;
  int64_t errors = 0;
  std::map<std::string, int64_t> kinds;
  for (Result& r : results) {
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    errors += r.errors;
    for (auto& [k, v] : r.error_kinds) kinds[k] += v;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return PercentileMs(all, p); };
  double throughput = seconds > 0 ? all.size() / seconds : 0;
  std::printf("workload     %s (%d clients, %d connections, target %s)\n", options.workload.c_str(),
              options.clients, options.connections, options.target.c_str());
  std::printf("requests     %zu ok, %lld errors in %.2f s\n", all.size(),
              static_cast<long long>(errors), seconds);
  std::printf("throughput   %.0f /s\n", throughput);
  std::printf("latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", pct(50), pct(90),
              pct(99), pct(99.9), all.empty() ? 0.0 : all.back() / 1000.0);
  for (auto& [k, v] : kinds) std::printf("error        %lld x %s\n", static_cast<long long>(v), k.c_str());
  std::printf(
      "{\"workload\":\"%s\",\"clients\":%d,\"connections\":%d,\"target\":\"%s\",\"consistency\":\"%s\","
      "\"value_size\":%d,\"ok\":%zu,\"errors\":%lld,\"seconds\":%.3f,\"throughput\":%.1f,"
      "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
      options.workload.c_str(), options.clients, options.connections, options.target.c_str(),
      options.consistency.c_str(), options.value_size, all.size(), static_cast<long long>(errors),
      seconds, throughput, pct(50), pct(90), pct(99), pct(99.9),
      all.empty() ? 0.0 : all.back() / 1000.0);
  std::fflush(stdout);
}

int Run(int argc, char** argv) {
  absl::StatusOr<Options> parsed = Parse(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "etc-bench: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  Options options = *parsed;
  std::vector<std::string> targets = options.endpoints;
  if (options.target == "leader") {
    std::string leader = FindLeader(options);
    if (leader.empty()) {
      std::fprintf(stderr, "etc-bench: no endpoint says it leads\n");
      return 1;
    }
    targets = {leader};
  }
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> connected =
      Connect(targets, options.connections);
  if (!connected.ok()) {
    std::fprintf(stderr, "etc-bench: %s\n", std::string(connected.status().message()).c_str());
    return 1;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels = std::move(*connected);
  if (options.workload == "lease-expiry") return RunLeaseExpiry(options, channels, targets);
  std::string value(options.value_size, 'v');
  // Idle connections to the first target, opened once the workload's own
  // connections are up (so these are not refused for them).
  std::unique_ptr<IdleConnections> idle;
  if (options.idle) {
    IdleConnections::Opened opened;
    idle = IdleConnections::Open(targets[0], options.idle_silent, options.idle_http, &opened);
    std::string new_client = TryNewClient(targets[0]);
    std::printf(
        "{\"idle_opened\":\"%s\",\"silent\":%lld,\"http\":%lld,\"failed\":%lld,\"unanswered\":%lld,"
        "\"seconds\":%.2f,\"new_client\":\"%s\"}\n",
        targets[0].c_str(), static_cast<long long>(opened.silent), static_cast<long long>(opened.http),
        static_cast<long long>(opened.failed), static_cast<long long>(opened.unanswered), opened.seconds,
        new_client.c_str());
    std::fflush(stdout);
  }

  // Ranges need something to read: one pass of puts over the key space
  // (bounded), not measured.
  if (options.fill && (options.workload == "range" || options.workload == "mixed")) {
    auto kv = etcdserverpb::KV::NewStub(channels[0]);
    int64_t fill = std::min<int64_t>(options.key_space, 10000);
    for (int64_t n = 0; n < fill; ++n) {
      grpc::ClientContext context;
      etcdserverpb::PutRequest put;
      put.set_key(Key(options, n));
      put.set_value(value);
      etcdserverpb::PutResponse response;
      (void)kv->Put(&context, put, &response);
    }
  }

  std::atomic<int64_t> issued{0};
  std::vector<Result> results(options.clients);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(options.duration));
  bool by_time = options.duration > absl::ZeroDuration();
  auto more = [&](int64_t* n) {
    if (by_time) {
      *n = issued.fetch_add(1);
      return std::chrono::steady_clock::now() < deadline;
    }
    *n = issued.fetch_add(1);
    return *n < options.total;
  };

  std::unique_ptr<Watchers> watchers;
  if (options.workload == "watch") watchers = std::make_unique<Watchers>(options.watchers, channels);

  auto started = std::chrono::steady_clock::now();
  // Unary workloads run on gRPC's callback API: a client is a chain of
  // requests (each sent from the previous one's completion), not a thread,
  // so the load generator's own CPU stays small beside the servers'.
  if (options.workload == "lease-keepalive") {
    RunKeepAlives(options, channels, more, &results);
  } else {
    RunChains(options, value, channels, more, &results);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (watchers) {
    std::vector<Result> delivered;
    delivered.push_back(watchers->Stop());
    for (Result& r : results) delivered[0].errors += r.errors;
    Report(options, delivered, seconds);
    return 0;
  }
  Report(options, results, seconds);
  if (idle) {
    IdleConnections::Closed closed = idle->HoldUntil(options.idle_hold);
    std::string new_client = TryNewClient(targets[0]);
    std::printf(
        "{\"idle_held\":\"%s\",\"open\":%lld,\"closed\":%lld,\"first_closed_s\":%.1f,"
        "\"last_closed_s\":%.1f,\"new_client\":\"%s\"}\n",
        targets[0].c_str(), static_cast<long long>(closed.open), static_cast<long long>(closed.closed),
        closed.first_s, closed.last_s, new_client.c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace etc::bench

int main(int argc, char** argv) { return etc::bench::Run(argc, argv); }
