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
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

// Says why etc-bench stops; returns its exit code.
int Fail(const absl::Status& status, int exit_code) {
  std::fprintf(stderr, "etc-bench: %s\n", std::string(status.message()).c_str());
  return exit_code;
}

// The endpoints the workload goes to: every one, or (--target=leader) the
// leader's. Errors: kUnavailable if none says it leads.
absl::StatusOr<std::vector<std::string>> PickTargets(const Options& options) {
  if (options.target != "leader") return options.endpoints;
  std::string leader = FindLeader(options);
  if (leader.empty()) return absl::UnavailableError("no endpoint says it leads");
  return std::vector<std::string>{leader};
}

// Opens the idle connections to `target` and prints {"idle_opened":...}
// (flushed: tools/overload.sh waits for it while the workload runs).
std::unique_ptr<IdleConnections> OpenIdle(const Options& options, const std::string& target) {
  IdleConnections::Opened opened;
  std::unique_ptr<IdleConnections> idle =
      IdleConnections::Open(target, options.idle_silent, options.idle_http, &opened);
  std::string new_client = TryNewClient(target);
  std::printf(
      "{\"idle_opened\":\"%s\",\"silent\":%lld,\"http\":%lld,\"failed\":%lld,\"unanswered\":%lld,"
      "\"seconds\":%.2f,\"new_client\":\"%s\"}\n",
      target.c_str(), static_cast<long long>(opened.silent), static_cast<long long>(opened.http),
      static_cast<long long>(opened.failed), static_cast<long long>(opened.unanswered), opened.seconds,
      new_client.c_str());
  std::fflush(stdout);
  return idle;
}

// Holds the idle connections until options.idle_hold, then prints
// {"idle_held":...}.
void ReportIdleHeld(const Options& options, IdleConnections* idle, const std::string& target) {
  IdleConnections::Closed closed = idle->HoldUntil(options.idle_hold);
  std::string new_client = TryNewClient(target);
  std::printf(
      "{\"idle_held\":\"%s\",\"open\":%lld,\"closed\":%lld,\"first_closed_s\":%.1f,"
      "\"last_closed_s\":%.1f,\"new_client\":\"%s\"}\n",
      target.c_str(), static_cast<long long>(closed.open), static_cast<long long>(closed.closed),
      closed.first_s, closed.last_s, new_client.c_str());
  std::fflush(stdout);
}

// Ranges need something to read: one pass of puts over the key space
// (bounded), not measured.
void Fill(const Options& options, const std::string& value, const std::shared_ptr<grpc::Channel>& channel) {
  auto kv = etcdserverpb::KV::NewStub(channel);
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

// Hands out request numbers until options.total are issued, or, with
// --duration, until that long from now.
std::function<bool(int64_t*)> RequestBudget(const Options& options) {
  auto issued = std::make_shared<std::atomic<int64_t>>(0);
  if (options.duration > absl::ZeroDuration()) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(options.duration));
    return [issued, deadline](int64_t* n) {
      *n = issued->fetch_add(1);
      return std::chrono::steady_clock::now() < deadline;
    };
  }
  return [issued, total = options.total](int64_t* n) {
    *n = issued->fetch_add(1);
    return *n < total;
  };
}

// The workloads measured request by request (all but lease-expiry), with
// the idle connections to `first_target` held meanwhile if asked.
void RunMeasured(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                 const std::string& first_target) {
  std::string value(options.value_size, 'v');
  // Idle connections to the first target, opened once the workload's own
  // connections are up (so these are not refused for them).
  std::unique_ptr<IdleConnections> idle;
  if (options.idle) idle = OpenIdle(options, first_target);
  if (options.fill && (options.workload == "range" || options.workload == "mixed")) {
    Fill(options, value, channels[0]);
  }
  std::function<bool(int64_t*)> more = RequestBudget(options);
  std::unique_ptr<Watchers> watchers;
  if (options.workload == "watch") watchers = std::make_unique<Watchers>(options.watchers, channels);

  std::vector<Result> results(options.clients);
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
    // What the watch workload measures is delivery; its puts count only
    // when they fail.
    std::vector<Result> delivered;
    delivered.push_back(watchers->Stop());
    for (Result& r : results) delivered[0].errors += r.errors;
    results = std::move(delivered);
  }
  Report(options, results, seconds);
  if (idle) ReportIdleHeld(options, idle.get(), first_target);
}

int Run(int argc, char** argv) {
  absl::StatusOr<Options> options = Parse(argc, argv);
  if (!options.ok()) return Fail(options.status(), 2);
  absl::StatusOr<std::vector<std::string>> targets = PickTargets(*options);
  if (!targets.ok()) return Fail(targets.status(), 1);
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      Connect(*targets, options->connections);
  if (!channels.ok()) return Fail(channels.status(), 1);
  if (options->workload == "lease-expiry") return RunLeaseExpiry(*options, *channels, *targets);
  RunMeasured(*options, *channels, targets->front());
  return 0;
}

}  // namespace
}  // namespace etc::bench

int main(int argc, char** argv) { return etc::bench::Run(argc, argv); }
