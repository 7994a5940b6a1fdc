#include "client/bench_common.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace etc::bench {

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

namespace {

// How one flag's value lands in Options; `name` is the flag's, for errors.
using Setter = absl::Status (*)(absl::string_view name, absl::string_view value, Options* o);

// A count (a number >= 0) into an integer field.
template <auto field>
absl::Status Count(absl::string_view name, absl::string_view value, Options* o) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": expected a number"));
  }
  o->*field = static_cast<std::remove_reference_t<decltype(o->*field)>>(v);
  return absl::OkStatus();
}

// A duration (e.g. 10s); `example_s` is the example the error gives.
template <auto field, int example_s>
absl::Status Span(absl::string_view name, absl::string_view value, Options* o) {
  if (absl::ParseDuration(value, &(o->*field))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": e.g. ", example_s, "s"));
}

template <auto field>
absl::Status Text(absl::string_view name, absl::string_view value, Options* o) {
  o->*field = std::string(value);
  return absl::OkStatus();
}

// One of the idle connection flags: any of them turns the idle report on.
template <Setter set>
absl::Status Idle(absl::string_view name, absl::string_view value, Options* o) {
  o->idle = true;
  return set(name, value, o);
}

struct Flag {
  absl::string_view name;
  Setter set;
};

constexpr Flag kFlags[] = {
    {"endpoints",
     [](absl::string_view, absl::string_view value, Options* o) {
       o->endpoints = absl::StrSplit(value, ',', absl::SkipEmpty());
       return absl::OkStatus();
     }},
    {"workload", Text<&Options::workload>},
    {"clients", Count<&Options::clients>},
    {"connections", Count<&Options::connections>},
    {"total", Count<&Options::total>},
    {"duration", Span<&Options::duration, 10>},
    {"key-size", Count<&Options::key_size>},
    {"value-size", Count<&Options::value_size>},
    {"key-space", Count<&Options::key_space>},
    {"sequential-keys",
     [](absl::string_view, absl::string_view value, Options* o) {
       o->sequential_keys = value == "true";
       return absl::OkStatus();
     }},
    {"consistency", Text<&Options::consistency>},
    {"read-ratio",
     [](absl::string_view, absl::string_view value, Options* o) {
       if (absl::SimpleAtod(value, &o->read_ratio)) return absl::OkStatus();
       return absl::InvalidArgumentError("--read-ratio");
     }},
    {"target", Text<&Options::target>},
    {"fill",
     [](absl::string_view, absl::string_view value, Options* o) {
       if (value != "true" && value != "false") return absl::InvalidArgumentError("--fill: true or false");
       o->fill = value == "true";
       return absl::OkStatus();
     }},
    {"watchers", Count<&Options::watchers>},
    {"leases", Count<&Options::leases>},
    {"lease-ttl", Count<&Options::lease_ttl_s>},
    {"lease-keys", Count<&Options::lease_keys>},
    {"after", Span<&Options::after, 10>},
    {"idle-silent", Idle<Count<&Options::idle_silent>>},
    {"idle-http", Idle<Count<&Options::idle_http>>},
    {"idle-hold", Idle<Span<&Options::idle_hold, 70>>},
};

// Sets the Options field of one --flag=value argument.
absl::Status ParseFlag(absl::string_view arg, Options* o) {
  size_t eq = arg.find('=');
  if (!absl::StartsWith(arg, "--") || eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("expected --flag=value, got ", arg));
  }
  absl::string_view name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
  for (const Flag& flag : kFlags) {
    if (flag.name == name) return flag.set(name, value, o);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
}

// The combinations of flags that make no run.
absl::Status Validate(const Options& o) {
  static const char* kWorkloads[] = {"put", "range", "txn", "watch", "lease-keepalive", "mixed",
                                     "lease-expiry"};
  if (std::find(std::begin(kWorkloads), std::end(kWorkloads), o.workload) == std::end(kWorkloads)) {
    return absl::InvalidArgumentError(
        "--workload: one of put, range, txn, watch, lease-keepalive, mixed, lease-expiry");
  }
  if (o.idle && (o.workload == "watch" || o.workload == "lease-keepalive" || o.workload == "lease-expiry")) {
    return absl::InvalidArgumentError("--idle-*: with put, range, txn or mixed");
  }
  if (o.workload == "lease-expiry" && (o.leases < 1 || o.lease_ttl_s < 1 || o.lease_keys > o.leases)) {
    return absl::InvalidArgumentError("--leases and --lease-ttl must be >= 1, --lease-keys <= --leases");
  }
  if (o.clients < 1 || o.connections < 1 || o.key_space < 1 || o.key_size < 1) {
    return absl::InvalidArgumentError("--clients, --connections, --key-space and --key-size must be >= 1");
  }
  if (o.target != "all" && o.target != "leader") return absl::InvalidArgumentError("--target: all or leader");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (absl::Status s = ParseFlag(argv[i], &options); !s.ok()) return s;
  }
  if (absl::Status s = Validate(options); !s.ok()) return s;
  return options;
}

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
  int64_t now_us = NowMicros();
  if (status.ok()) {
    result->latencies_us.push_back(now_us - start_us);
    result->completed_us.push_back(now_us);
  } else {
    ++result->errors;
    result->errors_at_us.push_back(now_us);
    ++result->error_kinds[absl::StrCat(status.error_code(), " ", status.error_message())];
  }
}

double PercentileMs(const std::vector<int64_t>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  size_t i = std::min(sorted_us.size() - 1, static_cast<size_t>(p / 100.0 * sorted_us.size()));
  return sorted_us[i] / 1000.0;
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> Connect(
    const std::vector<std::string>& targets, int connections) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("etc.bench.connection", i);  // distinct connections
    args.SetMaxReceiveMessageSize(64 << 20);
    channels.push_back(grpc::CreateCustomChannel(targets[i % targets.size()],
                                                 grpc::InsecureChannelCredentials(), args));
  }
  for (auto& channel : channels) {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      return absl::UnavailableError("cannot connect");
    }
  }
  return channels;
}

namespace {

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
      put.set_key(kWatchedKey);
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

}  // namespace

void RunChains(const Options& options, const std::string& value,
               const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               std::function<bool(int64_t*)> more, std::vector<Result>* results) {
  std::mutex finished_mu;
  std::condition_variable finished_cv;
  int finished = 0;
  std::vector<std::unique_ptr<Chain>> chains;
  for (int c = 0; c < options.clients; ++c) {
    auto chain = std::make_unique<Chain>();
    chain->options = &options;
    chain->value = &value;
    chain->result = &(*results)[c];
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

}  // namespace etc::bench
