// etc-bench: an etcd-style load generator for etc and etcd alike (it
// speaks etcd's v3 gRPC API). Each client sends one request at a time over
// one of --connections shared gRPC channels (as a chain of asynchronous
// calls, so thousands of clients cost no threads); latencies are measured
// per request.
//
//   etc-bench --endpoints=127.0.0.1:2379 --workload=put --clients=64 --total=100000
//   etc-bench --workload=range --consistency=s --duration=10s
//   etc-bench --workload=watch --watchers=100 --total=1000
//
// Output: a table (throughput, latency p50/p90/p99/p99.9/max, errors) and
// one machine-readable JSON line starting with {"workload":.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {
namespace {

struct Options {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  std::string workload = "put";  // put, range, txn, watch, lease-keepalive, mixed
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
};

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Key(const Options& options, int64_t n) {
  std::string key = absl::StrFormat("%0*d", options.key_size, n % options.key_space);
  if (static_cast<int>(key.size()) > options.key_size) key = key.substr(key.size() - options.key_size);
  return key;
}

struct Result {
  std::vector<int64_t> latencies_us;
  int64_t errors = 0;
  std::map<std::string, int64_t> error_kinds;
};

absl::StatusOr<Options> Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("expected --flag=value, got ", arg));
    }
    std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    auto integer = [&](auto* out) -> absl::Status {
      int64_t v = 0;
      if (!absl::SimpleAtoi(value, &v) || v < 0) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected a number"));
      }
      *out = static_cast<std::remove_reference_t<decltype(*out)>>(v);
      return absl::OkStatus();
    };
    absl::Status s;
    if (name == "endpoints") {
      o.endpoints = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (name == "workload") {
      o.workload = value;
    } else if (name == "clients") {
      s = integer(&o.clients);
    } else if (name == "connections") {
      s = integer(&o.connections);
    } else if (name == "total") {
      s = integer(&o.total);
    } else if (name == "duration") {
      if (!absl::ParseDuration(value, &o.duration)) s = absl::InvalidArgumentError("--duration: e.g. 10s");
    } else if (name == "key-size") {
      s = integer(&o.key_size);
    } else if (name == "value-size") {
      s = integer(&o.value_size);
    } else if (name == "key-space") {
      s = integer(&o.key_space);
    } else if (name == "sequential-keys") {
      o.sequential_keys = value == "true";
    } else if (name == "consistency") {
      o.consistency = value;
    } else if (name == "read-ratio") {
      if (!absl::SimpleAtod(value, &o.read_ratio)) s = absl::InvalidArgumentError("--read-ratio");
    } else if (name == "target") {
      o.target = value;
    } else if (name == "fill") {
      if (value != "true" && value != "false") s = absl::InvalidArgumentError("--fill: true or false");
      o.fill = value == "true";
    } else if (name == "watchers") {
      s = integer(&o.watchers);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!s.ok()) return s;
  }
  static const char* kWorkloads[] = {"put", "range", "txn", "watch", "lease-keepalive", "mixed"};
  if (std::find(std::begin(kWorkloads), std::end(kWorkloads), o.workload) == std::end(kWorkloads)) {
    return absl::InvalidArgumentError(
        "--workload: one of put, range, txn, watch, lease-keepalive, mixed");
  }
  if (o.clients < 1 || o.connections < 1 || o.key_space < 1 || o.key_size < 1) {
    return absl::InvalidArgumentError("--clients, --connections, --key-space and --key-size must be >= 1");
  }
  if (o.target != "all" && o.target != "leader") return absl::InvalidArgumentError("--target: all or leader");
  return o;
}

// The endpoint of the leader (by asking each member's status).
std::string FindLeader(const Options& options) {
  for (const std::string& endpoint : options.endpoints) {
    auto stub = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    etcdserverpb::StatusResponse status;
    if (stub->Status(&context, etcdserverpb::StatusRequest(), &status).ok() &&
        status.leader() == status.header().member_id()) {
      return endpoint;
    }
  }
  return "";
}

void Record(Result* result, int64_t start_us, const grpc::Status& status) {
  if (status.ok()) {
    result->latencies_us.push_back(NowMicros() - start_us);
  } else {
    ++result->errors;
    ++result->error_kinds[absl::StrCat(status.error_code(), " ", status.error_message())];
  }
}

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
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    size_t i = std::min(all.size() - 1, static_cast<size_t>(p / 100.0 * all.size()));
    return all[i] / 1000.0;
  };
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

// One client of a unary workload: sends a request, and from its
// completion (on a gRPC thread) records it and sends the next, until the
// run is over. One request in flight per chain.
struct Chain {
  const Options* options = nullptr;
  const std::string* value = nullptr;
  Result* result = nullptr;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::mt19937_64 random;
  std::function<bool(int64_t*)> more;
  std::function<void()> on_finished;

  std::unique_ptr<grpc::ClientContext> context;
  etcdserverpb::PutRequest put;
  etcdserverpb::PutResponse put_response;
  etcdserverpb::RangeRequest range;
  etcdserverpb::RangeResponse range_response;
  etcdserverpb::TxnRequest txn;
  etcdserverpb::TxnResponse txn_response;
  int64_t start_us = 0;

  void Next() {
    int64_t n = 0;
    if (!more(&n)) {
      on_finished();
      return;
    }
    const Options& o = *options;
    int64_t key_number = o.sequential_keys ? n : static_cast<int64_t>(random() % o.key_space);
    std::string key = Key(o, key_number);
    context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    start_us = NowMicros();
    bool read = o.workload == "range" ||
                (o.workload == "mixed" &&
                 std::uniform_real_distribution<double>(0, 1)(random) < o.read_ratio);
    if (o.workload == "watch") {
      // The write's send time travels in the value: the watchers measure
      // delivery; the write itself is recorded only if it fails.
      put.set_key("/bench/watched");
      put.set_value(absl::StrFormat("%016d", start_us) + *value);
      kv->async()->Put(context.get(), &put, &put_response, [this](grpc::Status s) {
        if (!s.ok()) Record(result, start_us, s);
        Next();
      });
    } else if (read) {
      range.set_key(key);
      range.set_serializable(o.consistency == "s");
      kv->async()->Range(context.get(), &range, &range_response, [this](grpc::Status s) {
        Record(result, start_us, s);
        Next();
      });
    } else if (o.workload == "txn") {
      // Compare-and-put: succeeds or not, either way one round trip.
      txn.Clear();
      etcdserverpb::Compare* compare = txn.add_compare();
      compare->set_key(key);
      compare->set_target(etcdserverpb::Compare::MOD);
      compare->set_result(etcdserverpb::Compare::GREATER);
      compare->set_mod_revision(-1);
      etcdserverpb::PutRequest* success = txn.add_success()->mutable_request_put();
      success->set_key(key);
      success->set_value(*value);
      etcdserverpb::PutRequest* failure = txn.add_failure()->mutable_request_put();
      failure->set_key(key);
      failure->set_value(*value);
      kv->async()->Txn(context.get(), &txn, &txn_response, [this](grpc::Status s) {
        Record(result, start_us, s);
        Next();
      });
    } else {
      put.set_key(key);
      put.set_value(*value);
      kv->async()->Put(context.get(), &put, &put_response, [this](grpc::Status s) {
        Record(result, start_us, s);
        Next();
      });
    }
  }
};

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
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("etc.bench.connection", i);  // distinct connections
    args.SetMaxReceiveMessageSize(64 << 20);
    channels.push_back(grpc::CreateCustomChannel(targets[i % targets.size()],
                                                 grpc::InsecureChannelCredentials(), args));
  }
  for (auto& channel : channels) {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "etc-bench: cannot connect\n");
      return 1;
    }
  }
  std::string value(options.value_size, 'v');

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

  // The watch workload: watchers on one key (spread over the
  // connections), writes carrying their send time; latency is delivery.
  std::vector<std::thread> watch_threads;
  std::vector<std::unique_ptr<grpc::ClientContext>> watch_contexts;
  std::mutex watch_mu;
  Result watch_result;
  std::atomic<int> watchers_ready{0};
  if (options.workload == "watch") {
    for (int w = 0; w < options.watchers; ++w) {
      watch_contexts.push_back(std::make_unique<grpc::ClientContext>());
    }
    for (int w = 0; w < options.watchers; ++w) {
      watch_threads.emplace_back([&, w] {
        auto stub = etcdserverpb::Watch::NewStub(channels[w % channels.size()]);
        auto stream = stub->Watch(watch_contexts[w].get());
        etcdserverpb::WatchRequest request;
        request.mutable_create_request()->set_key("/bench/watched");
        stream->Write(request);
        etcdserverpb::WatchResponse response;
        bool counted = false;
        while (stream->Read(&response)) {
          if (response.created() && !counted) {
            counted = true;
            watchers_ready.fetch_add(1);
          }
          int64_t now = NowMicros();
          std::lock_guard<std::mutex> lock(watch_mu);
          for (const mvccpb::Event& event : response.events()) {
            int64_t sent = 0;
            if (absl::SimpleAtoi(event.kv().value().substr(0, 16), &sent)) {
              watch_result.latencies_us.push_back(now - sent);
            }
          }
        }
      });
    }
    while (watchers_ready.load() < options.watchers) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  // Unary workloads run on gRPC's callback API: a client is a chain of
  // requests (each sent from the previous one's completion), not a thread,
  // so the load generator's own CPU stays small beside the servers'.
  std::mutex finished_mu;
  std::condition_variable finished_cv;
  int finished = 0;
  std::vector<std::unique_ptr<Chain>> chains;
  if (options.workload != "lease-keepalive") {
    for (int c = 0; c < options.clients; ++c) {
      auto chain = std::make_unique<Chain>();
      chain->options = &options;
      chain->value = &value;
      chain->result = &results[c];
      chain->kv = etcdserverpb::KV::NewStub(channels[c % channels.size()]);
      chain->random.seed(c + 1);
      chain->more = more;
      chain->on_finished = [&] {
        std::lock_guard<std::mutex> lock(finished_mu);
        ++finished;
        finished_cv.notify_all();
      };
      chains.push_back(std::move(chain));
    }
    for (auto& chain : chains) chain->Next();
    std::unique_lock<std::mutex> lock(finished_mu);
    finished_cv.wait(lock, [&] { return finished == options.clients; });
  }
  for (int c = 0; c < options.clients && options.workload == "lease-keepalive"; ++c) {
    threads.emplace_back([&, c] {
      Result& result = results[c];
      auto channel = channels[c % channels.size()];
      int64_t n = 0;
      auto lease = etcdserverpb::Lease::NewStub(channel);
      grpc::ClientContext grant_context;
      etcdserverpb::LeaseGrantRequest grant;
      grant.set_ttl(60);
      etcdserverpb::LeaseGrantResponse granted;
      grpc::Status s = lease->LeaseGrant(&grant_context, grant, &granted);
      if (!s.ok()) {
        Record(&result, 0, s);
        return;
      }
      grpc::ClientContext context;
      auto stream = lease->LeaseKeepAlive(&context);
      etcdserverpb::LeaseKeepAliveRequest request;
      request.set_id(granted.id());
      etcdserverpb::LeaseKeepAliveResponse response;
      while (more(&n)) {
        int64_t start = NowMicros();
        if (!stream->Write(request) || !stream->Read(&response)) {
          Record(&result, start, grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broke"));
          return;
        }
        Record(&result, start, grpc::Status::OK);
      }
      stream->WritesDone();
      (void)stream->Finish();
    });
  }
  for (std::thread& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (options.workload == "watch") {
    // Let the last events arrive, then stop the watchers.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (auto& context : watch_contexts) context->TryCancel();
    for (std::thread& t : watch_threads) t.join();
    std::vector<Result> delivered;
    delivered.push_back(std::move(watch_result));
    for (Result& r : results) delivered[0].errors += r.errors;
    Report(options, delivered, seconds);
    return 0;
  }
  Report(options, results, seconds);
  return 0;
}

}  // namespace
}  // namespace etc::bench

int main(int argc, char** argv) { return etc::bench::Run(argc, argv); }
