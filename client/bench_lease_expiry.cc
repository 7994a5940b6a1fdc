#include "client/bench_lease_expiry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {
namespace {

constexpr char kLeaseKeyPrefix[] = "/overload/lease/";
constexpr char kLeaseKeyEnd[] = "/overload/lease0";  // '/' + 1: the prefix's range end
// Grants and key puts outstanding at once.
constexpr int kCallsInFlight = 256;
// Keep-alive streams the renewal burst is spread over.
constexpr int kRenewStreams = 8;
// What the renewal burst may take at most (100,000 leases took 2 s on 2 cores).
constexpr double kRenewMarginS = 5;
constexpr int64_t kSecondUs = 1'000'000;

std::chrono::system_clock::time_point In(std::chrono::milliseconds ms) {
  return std::chrono::system_clock::now() + ms;
}

// Calls start(i, done) for every i in [0, n), at most `in_flight` at once;
// a call runs `done` once it has completed. Blocks until every one has.
void ForEachAsync(int64_t n, int in_flight,
                  const std::function<void(int64_t, std::function<void()>)>& start) {
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  int64_t completed = 0;
  std::function<void()> launch = [&] {
    int64_t i = next.fetch_add(1);
    if (i >= n) return;
    start(i, [&] {
      // The next call starts before this one counts: once the count is
      // complete, nothing touches this frame's locals any more.
      launch();
      std::lock_guard<std::mutex> lock(mu);
      ++completed;
      cv.notify_all();
    });
  };
  for (int k = 0; k < in_flight; ++k) launch();
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return completed == n; });
}

// Failed calls of one step: how many, and what the first one said.
class Failures {
 public:
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (count_++ == 0) first_ = what;
  }
  int64_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::string first() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  mutable std::mutex mu_;
  int64_t count_ = 0;
  std::string first_;
};

// `text` with what would break a JSON string replaced.
std::string JsonSafe(std::string text) {
  for (char& c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '\'';
  }
  return text;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

// Grants options.leases leases; ids[i] is 0 where the grant failed.
std::vector<int64_t> GrantLeases(const Options& options,
                                 const std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>>& stubs,
                                 Failures* failures) {
  std::vector<int64_t> ids(options.leases, 0);
  struct Call {
    grpc::ClientContext context;
    etcdserverpb::LeaseGrantRequest request;
    etcdserverpb::LeaseGrantResponse response;
  };
  ForEachAsync(options.leases, kCallsInFlight, [&](int64_t i, std::function<void()> done) {
    auto* call = new Call;
    call->context.set_deadline(In(std::chrono::milliseconds(10'000)));
    call->request.set_ttl(options.lease_ttl_s);
    stubs[i % stubs.size()]->async()->LeaseGrant(
        &call->context, &call->request, &call->response,
        [&ids, failures, call, i, done = std::move(done)](grpc::Status s) {
          if (s.ok() && call->response.error().empty()) {
            ids[i] = call->response.id();
          } else {
            failures->Add(s.ok() ? call->response.error() : Describe(s));
          }
          delete call;
          done();
        });
  });
  return ids;
}

// Puts a key under kLeaseKeyPrefix on options.lease_keys of the leases,
// spread evenly over them. Returns how many were put.
int64_t AttachKeys(const Options& options, const std::vector<int64_t>& ids,
                   const std::vector<std::unique_ptr<etcdserverpb::KV::Stub>>& stubs,
                   Failures* failures) {
  std::atomic<int64_t> attached{0};
  struct Call {
    grpc::ClientContext context;
    etcdserverpb::PutRequest request;
    etcdserverpb::PutResponse response;
  };
  ForEachAsync(options.lease_keys, kCallsInFlight, [&](int64_t i, std::function<void()> done) {
    int64_t lease = ids[i * options.leases / options.lease_keys];
    if (lease == 0) {  // its grant failed
      done();
      return;
    }
    auto* call = new Call;
    call->context.set_deadline(In(std::chrono::milliseconds(10'000)));
    call->request.set_key(absl::StrFormat("%s%07d", kLeaseKeyPrefix, i));
    call->request.set_value("held by a lease");
    call->request.set_lease(lease);
    stubs[i % stubs.size()]->async()->Put(
        &call->context, &call->request, &call->response,
        [&attached, failures, call, done = std::move(done)](grpc::Status s) {
          if (s.ok()) {
            attached.fetch_add(1);
          } else {
            failures->Add(Describe(s));
          }
          delete call;
          done();
        });
  });
  return attached.load();
}

struct Renewal {
  int64_t renewed = 0;    // answered with a TTL
  int64_t gone = 0;       // answered "no such lease" (expired before its renewal)
  int64_t unanswered = 0; // the stream broke first
  int64_t start_us = 0;
  int64_t end_us = 0;
};

// Renews every granted lease once, over kRenewStreams keep-alive streams
// (each written by one thread and read by another, so the renewals are
// pipelined, not one round trip each).
Renewal RenewOnce(const std::vector<int64_t>& ids,
                  const std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>>& stubs) {
  Renewal renewal;
  std::mutex mu;
  renewal.start_us = NowMicros();
  std::vector<std::thread> streams;
  for (int s = 0; s < kRenewStreams; ++s) {
    streams.emplace_back([&, s] {
      std::vector<int64_t> mine;
      for (size_t i = s; i < ids.size(); i += kRenewStreams) {
        if (ids[i] != 0) mine.push_back(ids[i]);
      }
      grpc::ClientContext context;
      context.set_deadline(In(std::chrono::milliseconds(120'000)));
      auto stream = stubs[s % stubs.size()]->LeaseKeepAlive(&context);
      std::thread writer([&] {
        etcdserverpb::LeaseKeepAliveRequest request;
        for (int64_t id : mine) {
          request.set_id(id);
          if (!stream->Write(request)) break;
        }
        stream->WritesDone();
      });
      int64_t renewed = 0, gone = 0, read = 0;
      etcdserverpb::LeaseKeepAliveResponse response;
      while (read < static_cast<int64_t>(mine.size()) && stream->Read(&response)) {
        ++read;
        ++(response.ttl() > 0 ? renewed : gone);
      }
      writer.join();
      if (read < static_cast<int64_t>(mine.size())) context.TryCancel();
      (void)stream->Finish();
      std::lock_guard<std::mutex> lock(mu);
      renewal.renewed += renewed;
      renewal.gone += gone;
      renewal.unanswered += static_cast<int64_t>(mine.size()) - read;
    });
  }
  for (std::thread& t : streams) t.join();
  renewal.end_us = NowMicros();
  return renewal;
}

// What the cluster looked like at one moment.
struct Sample {
  int64_t at_us = 0;
  int64_t leases = -1;  // -1: the count failed
  uint64_t term = 0;    // the highest Raft term a member reports
  uint64_t leader = 0;  // the leader the first member to answer names (0: none)
};

// Once a second (on the second since t0): how many of the run's leases are
// left, and every member's leader and term.
class Sampler {
 public:
  // Counts the leases of `ids` (and no other lease the cluster holds).
  Sampler(std::shared_ptr<grpc::Channel> lease_channel,
          const std::vector<std::shared_ptr<grpc::Channel>>& members, const std::vector<int64_t>& ids,
          int64_t t0_us)
      : lease_(etcdserverpb::Lease::NewStub(lease_channel)), ids_(ids.begin(), ids.end()), t0_us_(t0_us) {
    for (const auto& channel : members) members_.push_back(etcdserverpb::Maintenance::NewStub(channel));
    thread_ = std::thread([this] { Loop(); });
  }
  ~Sampler() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::optional<Sample> Latest() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (samples_.empty()) return std::nullopt;
    return samples_.back();
  }
  std::vector<Sample> samples() const {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  void Loop() {
    for (int64_t k = 1;; ++k) {
      // The next whole second since t0 not yet passed (a slow sample skips one).
      k = std::max(k, (NowMicros() - t0_us_) / kSecondUs + 1);
      {
        std::unique_lock<std::mutex> lock(mu_);
        auto at = std::chrono::system_clock::time_point(std::chrono::microseconds(t0_us_ + k * kSecondUs));
        if (wake_.wait_until(lock, at, [this] { return stopping_; })) return;
      }
      Sample sample = TakeOne();
      std::lock_guard<std::mutex> lock(mu_);
      samples_.push_back(sample);
    }
  }

  Sample TakeOne() {
    Sample sample;
    sample.at_us = NowMicros();
    {
      grpc::ClientContext context;
      context.set_deadline(In(std::chrono::milliseconds(2'000)));
      etcdserverpb::LeaseLeasesResponse response;
      if (lease_->LeaseLeases(&context, etcdserverpb::LeaseLeasesRequest(), &response).ok()) {
        sample.leases = std::count_if(response.leases().begin(), response.leases().end(),
                                      [this](const etcdserverpb::LeaseStatus& lease) {
                                        return ids_.count(lease.id()) > 0;
                                      });
      }
    }
    for (auto& member : members_) {
      grpc::ClientContext context;
      context.set_deadline(In(std::chrono::milliseconds(500)));
      etcdserverpb::StatusResponse status;
      if (!member->Status(&context, etcdserverpb::StatusRequest(), &status).ok()) continue;
      sample.term = std::max<uint64_t>(sample.term, status.raftterm());
      if (sample.leader == 0) sample.leader = status.leader();
    }
    return sample;
  }

  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::vector<std::unique_ptr<etcdserverpb::Maintenance::Stub>> members_;
  const std::unordered_set<int64_t> ids_;
  const int64_t t0_us_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;        // guarded by mu_
  std::vector<Sample> samples_;  // guarded by mu_
};

// A watch on the leases' keys that notes when each deletion arrives.
class DeletionCounter {
 public:
  explicit DeletionCounter(std::shared_ptr<grpc::Channel> channel)
      : stub_(etcdserverpb::Watch::NewStub(channel)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~DeletionCounter() { Stop(); }

  void Stop() {
    context_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int64_t> deleted_at_us() const {
    std::lock_guard<std::mutex> lock(mu_);
    return deleted_at_us_;
  }

 private:
  void Loop() {
    auto stream = stub_->Watch(&context_);
    etcdserverpb::WatchRequest request;
    request.mutable_create_request()->set_key(kLeaseKeyPrefix);
    request.mutable_create_request()->set_range_end(kLeaseKeyEnd);
    request.mutable_create_request()->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    if (!stream->Write(request)) return;
    etcdserverpb::WatchResponse response;
    while (stream->Read(&response)) {
      int64_t now = NowMicros();
      std::lock_guard<std::mutex> lock(mu_);
      for (const mvccpb::Event& event : response.events()) {
        if (event.type() == mvccpb::Event::DELETE) deleted_at_us_.push_back(now);
      }
    }
  }

  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  grpc::ClientContext context_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<int64_t> deleted_at_us_;  // guarded by mu_
};

// Put latencies and errors by the second (since t0) they completed in.
struct Bucket {
  std::vector<int64_t> latencies_us;
  int64_t errors = 0;
  int64_t deleted = 0;
  std::optional<Sample> at_end;  // the sample taken as the second ended
  std::string phase;
};

struct Timeline {
  int64_t t0_us = 0;           // the renewal burst ended: the put load starts
  int64_t expiry_start_us = 0; // the first renewed lease's TTL is up
  int64_t all_gone_us = 0;     // the first sample with no lease left (0: never)
  int64_t end_us = 0;
};

std::vector<Bucket> Buckets(const Timeline& timeline, const std::vector<Result>& results,
                            const std::vector<Sample>& samples, const std::vector<int64_t>& deleted_at_us) {
  std::vector<Bucket> buckets((timeline.end_us - timeline.t0_us) / kSecondUs);
  auto index = [&](int64_t at_us) -> int64_t {
    int64_t k = (at_us - timeline.t0_us) / kSecondUs;
    return k >= 0 && k < static_cast<int64_t>(buckets.size()) ? k : -1;
  };
  for (const Result& result : results) {
    for (size_t i = 0; i < result.latencies_us.size(); ++i) {
      if (int64_t k = index(result.completed_us[i]); k >= 0) buckets[k].latencies_us.push_back(result.latencies_us[i]);
    }
    for (int64_t at : result.errors_at_us) {
      if (int64_t k = index(at); k >= 0) ++buckets[k].errors;
    }
  }
  for (int64_t at : deleted_at_us) {
    if (int64_t k = index(at); k >= 0) ++buckets[k].deleted;
  }
  for (const Sample& sample : samples) {
    // Taken at (about) t0 + j seconds: the end of second j - 1.
    int64_t j = (sample.at_us - timeline.t0_us + kSecondUs / 2) / kSecondUs;
    if (j >= 1 && j <= static_cast<int64_t>(buckets.size())) buckets[j - 1].at_end = sample;
  }
  for (size_t k = 0; k < buckets.size(); ++k) {
    int64_t start = timeline.t0_us + static_cast<int64_t>(k) * kSecondUs;
    buckets[k].phase = start < timeline.expiry_start_us                                ? "before"
                       : timeline.all_gone_us == 0 || start < timeline.all_gone_us ? "expiry"
                                                                                    : "after";
    std::sort(buckets[k].latencies_us.begin(), buckets[k].latencies_us.end());
  }
  return buckets;
}

void PrintBuckets(const std::vector<Bucket>& buckets) {
  for (size_t k = 0; k < buckets.size(); ++k) {
    const Bucket& b = buckets[k];
    std::printf(
        "{\"second\":%zu,\"phase\":\"%s\",\"puts\":%zu,\"errors\":%lld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"leases\":%lld,\"keys_deleted\":%lld,\"term\":%llu,\"leader\":\"%llx\"}\n",
        k, b.phase.c_str(), b.latencies_us.size(), static_cast<long long>(b.errors),
        PercentileMs(b.latencies_us, 50), PercentileMs(b.latencies_us, 99),
        static_cast<long long>(b.at_end ? b.at_end->leases : -1), static_cast<long long>(b.deleted),
        static_cast<unsigned long long>(b.at_end ? b.at_end->term : 0),
        static_cast<unsigned long long>(b.at_end ? b.at_end->leader : 0));
  }
}

// One phase's puts, pooled, as JSON fields prefixed with the phase's name.
std::string PhaseFields(const std::vector<Bucket>& buckets, const std::string& phase) {
  std::vector<int64_t> all;
  int64_t seconds = 0, errors = 0;
  double worst_p99_ms = 0;
  for (const Bucket& b : buckets) {
    if (b.phase != phase) continue;
    ++seconds;
    errors += b.errors;
    all.insert(all.end(), b.latencies_us.begin(), b.latencies_us.end());
    worst_p99_ms = std::max(worst_p99_ms, PercentileMs(b.latencies_us, 99));
  }
  std::sort(all.begin(), all.end());
  return absl::StrFormat(
      ",\"%s_seconds\":%d,\"%s_puts_per_s\":%.0f,\"%s_p50_ms\":%.3f,\"%s_p99_ms\":%.3f,"
      "\"%s_worst_p99_ms\":%.3f,\"%s_errors\":%d",
      phase, seconds, phase, seconds > 0 ? static_cast<double>(all.size()) / seconds : 0.0, phase,
      PercentileMs(all, 50), phase, PercentileMs(all, 99), phase, worst_p99_ms, phase, errors);
}

// Leases gone per second between successive samples during the expiry:
// the highest such rate.
double PeakRevocationRate(const Timeline& timeline, const std::vector<Sample>& samples) {
  double peak = 0;
  const Sample* previous = nullptr;
  for (const Sample& sample : samples) {
    if (sample.leases < 0) continue;
    if (previous != nullptr && sample.at_us > timeline.expiry_start_us) {
      double seconds = (sample.at_us - previous->at_us) / 1e6;
      peak = std::max(peak, (previous->leases - sample.leases) / seconds);
    }
    previous = &sample;
  }
  return peak;
}

// Changes of leader between successive samples that name one.
int LeaderChanges(const std::vector<Sample>& samples) {
  int changes = 0;
  uint64_t leader = 0;
  for (const Sample& sample : samples) {
    if (sample.leader == 0) continue;
    if (leader != 0 && sample.leader != leader) ++changes;
    leader = sample.leader;
  }
  return changes;
}

void Progress(const Timeline& timeline, const std::string& what) {
  std::fprintf(stderr, "[%6.1f s] %s\n", (NowMicros() - timeline.t0_us) / 1e6, what.c_str());
}

// The sampler's and the watch's channels: one to each member; leases
// are counted on the first member that is not the target (the leader).
struct Monitors {
  std::vector<std::shared_ptr<grpc::Channel>> members;
  size_t counting = 0;  // in members
};

Monitors ConnectMonitors(const Options& options, const std::string& target) {
  Monitors monitors;
  monitors.counting = options.endpoints.size();
  for (size_t i = 0; i < options.endpoints.size(); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("etc.bench.monitor", static_cast<int>(i));
    args.SetMaxReceiveMessageSize(64 << 20);
    monitors.members.push_back(grpc::CreateCustomChannel(options.endpoints[i],
                                                         grpc::InsecureChannelCredentials(), args));
    if (options.endpoints[i] != target && monitors.counting == options.endpoints.size()) monitors.counting = i;
  }
  if (monitors.counting == options.endpoints.size()) monitors.counting = 0;  // one member: it counts
  return monitors;
}

// What the setup did: the leases granted (0 where a grant failed), the
// keys put on them, and the one renewal of them all.
struct Setup {
  std::vector<int64_t> ids;
  double grant_s = 0;
  int64_t attached = 0;
  double attach_s = 0;
  Failures grant_failures, attach_failures;
  Renewal renewal;
};

// Setup, unloaded: the grants are proposals and would compete with the
// puts (and take longer than the TTL allows). Errors: kFailedPrecondition
// if the grants and keys leave no time to renew every lease before the
// first one expires.
absl::Status SetUp(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   Setup* setup) {
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> lease_stubs;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_stubs;
  for (const auto& channel : channels) {
    lease_stubs.push_back(etcdserverpb::Lease::NewStub(channel));
    kv_stubs.push_back(etcdserverpb::KV::NewStub(channel));
  }
  int64_t setup_us = NowMicros();
  auto since_setup = [&] { return (NowMicros() - setup_us) / 1e6; };
  std::fprintf(stderr, "granting %lld leases, TTL %lld s\n", static_cast<long long>(options.leases),
               static_cast<long long>(options.lease_ttl_s));
  setup->ids = GrantLeases(options, lease_stubs, &setup->grant_failures);
  setup->grant_s = since_setup();
  std::fprintf(stderr, "[%.1f s] putting %lld keys on leases\n", setup->grant_s,
               static_cast<long long>(options.lease_keys));
  setup->attached = AttachKeys(options, setup->ids, kv_stubs, &setup->attach_failures);
  setup->attach_s = since_setup() - setup->grant_s;
  // The renewal must start (and end: it takes seconds) before the first
  // lease granted runs out. Renewing an expired lease would fail, and on
  // etcd waits until the lease is revoked, at the bounded revocation rate.
  if (since_setup() + kRenewMarginS > options.lease_ttl_s) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the grants and keys took %.1f s, too close to the TTL (%d s) to renew every lease before the "
        "first expires: raise --lease-ttl above %.0f",
        since_setup(), options.lease_ttl_s, since_setup() + kRenewMarginS));
  }
  std::fprintf(stderr, "[%.1f s] renewing every lease once\n", since_setup());
  setup->renewal = RenewOnce(setup->ids, lease_stubs);
  return absl::OkStatus();
}

// Until the last lease is gone (noted in timeline->all_gone_us) or the
// run's time is up; then --after more.
void WaitForExpiry(const Options& options, const Sampler& sampler, Timeline* timeline) {
  absl::Duration duration = options.duration > absl::ZeroDuration() ? options.duration : absl::Seconds(600);
  int64_t deadline_us = timeline->t0_us + absl::ToInt64Microseconds(duration);
  int64_t reported_us = 0;
  while (NowMicros() < deadline_us) {
    std::optional<Sample> latest = sampler.Latest();
    if (latest && latest->at_us >= timeline->expiry_start_us && latest->leases == 0) {
      timeline->all_gone_us = latest->at_us;
      break;
    }
    if (latest && latest->at_us - reported_us >= 10 * kSecondUs) {
      reported_us = latest->at_us;
      Progress(*timeline, absl::StrCat(latest->leases, " leases left, term ", latest->term));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (timeline->all_gone_us != 0) {
    Progress(*timeline, "no lease left");
    int64_t until = std::min(deadline_us, NowMicros() + absl::ToInt64Microseconds(options.after));
    std::this_thread::sleep_for(std::chrono::microseconds(std::max<int64_t>(0, until - NowMicros())));
  } else {
    Progress(*timeline, "out of time with leases left");
  }
}

// What the put load saw, and the cluster meanwhile.
struct Load {
  std::vector<Result> results;
  std::vector<Sample> samples;
  std::vector<int64_t> deleted_at_us;
};

// Puts from timeline->t0_us on, sampling the cluster and counting the
// keys' deletions, until WaitForExpiry is done (timeline->end_us).
Load RunLoad(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             const Monitors& monitors, const std::vector<int64_t>& ids, Timeline* timeline) {
  Load load;
  load.results.resize(options.clients);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> issued{0};
  std::string value(options.value_size, 'v');
  std::thread puts([&] {
    RunChains(options, value, channels,
              [&](int64_t* n) {
                *n = issued.fetch_add(1);
                return !stop.load();
              },
              &load.results);
  });
  Sampler sampler(monitors.members[monitors.counting], monitors.members, ids, timeline->t0_us);
  DeletionCounter deletions(monitors.members[monitors.counting]);
  WaitForExpiry(options, sampler, timeline);
  timeline->end_us = NowMicros();
  stop.store(true);
  puts.join();
  sampler.Stop();
  deletions.Stop();
  load.samples = sampler.samples();
  load.deleted_at_us = deletions.deleted_at_us();
  return load;
}

// The line {"workload":"lease-expiry",...}.
void PrintSummary(const Options& options, const Setup& setup, const Timeline& timeline, const Load& load,
                  const std::vector<Bucket>& buckets) {
  uint64_t first_term = 0, last_term = 0;
  for (const Sample& sample : load.samples) {
    if (sample.term == 0) continue;
    if (first_term == 0) first_term = sample.term;
    last_term = sample.term;
  }
  const std::vector<int64_t>& ids = setup.ids;
  const Renewal& renewal = setup.renewal;
  int64_t granted = std::count_if(ids.begin(), ids.end(), [](int64_t id) { return id != 0; });
  double all_gone_s = timeline.all_gone_us != 0 ? (timeline.all_gone_us - timeline.expiry_start_us) / 1e6 : -1;
  std::string summary = absl::StrFormat(
      "{\"workload\":\"lease-expiry\",\"clients\":%d,\"leases\":%d,\"granted\":%d,\"grant_s\":%.1f,"
      "\"grant_errors\":%d,\"grant_error\":\"%s\",\"lease_keys\":%d,\"attached\":%d,\"attach_s\":%.1f,"
      "\"attach_errors\":%d,\"renewed\":%d,\"renew_gone\":%d,\"renew_unanswered\":%d,\"renew_s\":%.1f,"
      "\"ttl_s\":%d,\"expiry_start_s\":%.1f,\"all_gone_s\":%.1f,\"revoked_per_s_mean\":%.0f,"
      "\"revoked_per_s_peak\":%.0f,\"keys_deleted\":%d,\"term_first\":%d,\"term_last\":%d,"
      "\"leader_changes\":%d,\"seconds\":%.1f",
      options.clients, options.leases, granted, setup.grant_s,
      setup.grant_failures.count(), JsonSafe(setup.grant_failures.first()), options.lease_keys,
      setup.attached, setup.attach_s, setup.attach_failures.count(), renewal.renewed, renewal.gone,
      renewal.unanswered, (renewal.end_us - renewal.start_us) / 1e6, options.lease_ttl_s,
      (timeline.expiry_start_us - timeline.t0_us) / 1e6, all_gone_s,
      all_gone_s > 0 ? renewal.renewed / all_gone_s : 0.0, PeakRevocationRate(timeline, load.samples),
      static_cast<int64_t>(load.deleted_at_us.size()), first_term, last_term,
      LeaderChanges(load.samples), (timeline.end_us - timeline.t0_us) / 1e6);
  for (const char* phase : {"before", "expiry", "after"}) summary += PhaseFields(buckets, phase);
  std::printf("%s}\n", summary.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunLeaseExpiry(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const std::vector<std::string>& targets) {
  Monitors monitors = ConnectMonitors(options, targets[0]);
  Setup setup;
  if (absl::Status s = SetUp(options, channels, &setup); !s.ok()) {
    std::fprintf(stderr, "etc-bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // From here on the clock of the report: the put load, the samples and
  // the deletions.
  const Renewal& renewal = setup.renewal;
  Timeline timeline;
  timeline.t0_us = renewal.end_us;
  timeline.expiry_start_us = renewal.start_us + options.lease_ttl_s * kSecondUs;
  Progress(timeline, absl::StrFormat("renewed %d (%d had expired, %d unanswered) in %.1f s; TTLs end at %.1f s",
                                     renewal.renewed, renewal.gone, renewal.unanswered,
                                     (renewal.end_us - renewal.start_us) / 1e6,
                                     (timeline.expiry_start_us - timeline.t0_us) / 1e6));
  Load load = RunLoad(options, channels, monitors, setup.ids, &timeline);
  std::vector<Bucket> buckets = Buckets(timeline, load.results, load.samples, load.deleted_at_us);
  PrintBuckets(buckets);
  PrintSummary(options, setup, timeline, load, buckets);
  return 0;
}

}  // namespace etc::bench
