// How fast the key tree applies and answers requests, and what a key costs
// in memory. No Raft, no I/O: the state machine alone.
//
//   bazel run --config=opt //kv:kv_benchmark
//
//   BM_Put            puts of 32-byte keys and 256-byte values (random keys
//                     over a growing keyspace), applied through Store::Apply
//   BM_PointGet       single-key ranges on a store of 100,000 keys
//   BM_PrefixRange    a prefix range returning 1,000 keys
//   BM_WatchFanOut    one write delivered to 10,000 watchers on its prefix
//                     (Notify plus every watcher's Take)
//   BM_Snapshot       a snapshot of 100,000 and 1,000,000 keys
//   BM_Restore        restoring it
//   BM_MemoryPerKey   1,000,000 keys of 32 bytes with 256-byte values:
//                     resident bytes per key (from /proc/self/statm; the
//                     benchmark's only I/O, outside the library)
#include <cstdio>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "kv/store.h"

namespace etc::kv {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kValueBytes = 256;

std::string KeyFor(uint64_t n) {
  char buffer[kKeyBytes + 1];
  std::snprintf(buffer, sizeof(buffer), "/bench/key/%021llu", static_cast<unsigned long long>(n));
  return std::string(buffer, kKeyBytes);
}

kvpb::Request PutRequest(uint64_t n, const std::string& value) {
  kvpb::Request request;
  request.mutable_put()->set_key(KeyFor(n));
  request.mutable_put()->set_value(value);
  return request;
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

void Fill(Store& store, uint64_t keys) {
  std::string value(kValueBytes, 'v');
  for (uint64_t i = 0; i < keys; ++i) store.Apply(PutRequest(i, value));
}

// First, so that it measures a fresh heap (later benchmarks leave freed
// memory resident).
int64_t ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  if (std::fscanf(statm, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
  std::fclose(statm);
  return static_cast<int64_t>(pages_resident) * 4096;
}

void BM_MemoryPerKey(benchmark::State& state) {
  constexpr uint64_t kKeys = 1'000'000;
  for (auto _ : state) {
    int64_t before = ResidentBytes();
    auto store = std::make_unique<Store>();
    Fill(*store, kKeys);
    int64_t after = ResidentBytes();
    state.counters["bytes_per_key"] = static_cast<double>(after - before) / kKeys;
    state.counters["payload_bytes_per_key"] = kKeyBytes + kValueBytes;
    state.counters["quota_bytes_per_key"] =
        static_cast<double>(store->keyspace().size_bytes()) / kKeys;
  }
}
BENCHMARK(BM_MemoryPerKey)->Iterations(1)->Unit(benchmark::kMillisecond);

// A snapshot of a store of state.range(0) keys, and restoring it: the
// member's (and a follower's) pause at every --snapshot-count entries.
void BM_Snapshot(benchmark::State& state) {
  Store store;
  Fill(store, static_cast<uint64_t>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string snapshot = store.Snapshot();
    bytes = snapshot.size();
    benchmark::DoNotOptimize(snapshot);
  }
  state.counters["snapshot_bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}
BENCHMARK(BM_Snapshot)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_Restore(benchmark::State& state) {
  Store store;
  Fill(store, static_cast<uint64_t>(state.range(0)));
  std::string snapshot = store.Snapshot();
  for (auto _ : state) {
    Store restored;
    benchmark::DoNotOptimize(restored.Restore(snapshot));
  }
  state.SetBytesProcessed(static_cast<int64_t>(snapshot.size()) * state.iterations());
}
BENCHMARK(BM_Restore)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_Put(benchmark::State& state) {
  Store store;
  std::string value(kValueBytes, 'v');
  uint64_t n = 0;
  for (auto _ : state) {
    kvpb::Request request = PutRequest(Mix(n++) % 1'000'000, value);
    benchmark::DoNotOptimize(store.Apply(request));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Put);

void BM_PointGet(benchmark::State& state) {
  Store store;
  Fill(store, 100'000);
  uint64_t n = 0;
  kvpb::Request request;
  for (auto _ : state) {
    request.mutable_range()->set_key(KeyFor(Mix(n++) % 100'000));
    kvpb::Response response = store.Query(request);
    benchmark::DoNotOptimize(response);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PointGet);

void BM_PrefixRange(benchmark::State& state) {
  Store store;
  Fill(store, 100'000);
  // Keys 1000..1999 share the prefix "/bench/key/0...01".
  std::string prefix = KeyFor(1000).substr(0, kKeyBytes - 3);
  kvpb::Request request;
  request.mutable_range()->set_key(prefix);
  request.mutable_range()->set_range_end(PrefixEnd(prefix));
  int64_t returned = 0;
  for (auto _ : state) {
    kvpb::Response response = store.Query(request);
    returned = response.range().kvs_size();
    benchmark::DoNotOptimize(response);
  }
  state.counters["keys"] = static_cast<double>(returned);
  state.SetItemsProcessed(state.iterations() * returned);
}
BENCHMARK(BM_PrefixRange);

void BM_WatchFanOut(benchmark::State& state) {
  Store store;
  constexpr int kWatchers = 10'000;
  std::vector<WatcherId> ids;
  etcdserverpb::WatchCreateRequest watch;
  watch.set_key("/fan/");
  watch.set_range_end(PrefixEnd("/fan/"));
  for (int i = 0; i < kWatchers; ++i) ids.push_back(*store.CreateWatch({}, watch));
  for (WatcherId id : store.watches().TakeReady()) store.watches().Take(id, 16);
  kvpb::Request request;
  request.mutable_put()->set_key("/fan/out");
  request.mutable_put()->set_value(std::string(kValueBytes, 'v'));
  int64_t delivered = 0;
  for (auto _ : state) {
    store.Apply(request);
    for (WatcherId id : store.watches().TakeReady()) {
      delivered += static_cast<int64_t>(store.watches().Take(id, 16).size());
    }
  }
  state.counters["watchers"] = kWatchers;
  state.SetItemsProcessed(delivered);
}
BENCHMARK(BM_WatchFanOut)->Unit(benchmark::kMillisecond);


}  // namespace
}  // namespace etc::kv
