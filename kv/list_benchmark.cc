// What a directory listing costs against a range over the same subtree:
// 1,000,000 keys under 100 children of one directory (/bench/c00/k000000
// ...), listed with Keyspace::List (100 entries: each subtree is skipped
// after its first live key) and read with Keyspace::Range over
// [/bench/, PrefixEnd(/bench/)) (what `etcdctl get --prefix` walks).
// Not a test: run with
//   bazel run -c opt //kv:list_benchmark
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>

#include "kv/keyspace.h"

namespace etc::kv {
namespace {

constexpr int kChildren = 100;
constexpr int kKeysPerChild = 10'000;
// Keys per revision while loading (as big txns would write them).
constexpr int kKeysPerRevision = 128;

const Keyspace& Loaded() {
  static const Keyspace* keys = [] {
    auto* keyspace = new Keyspace();
    char key[64];
    int in_revision = 0;
    for (int c = 0; c < kChildren; ++c) {
      for (int k = 0; k < kKeysPerChild; ++k) {
        if (in_revision == 0) keyspace->BeginRevision();
        std::snprintf(key, sizeof(key), "/bench/c%02d/k%06d", c, c * kKeysPerChild + k);
        keyspace->Put(key, "v", 0);
        if (++in_revision == kKeysPerRevision) {
          keyspace->EndRevision();
          in_revision = 0;
        }
      }
    }
    if (in_revision > 0) keyspace->EndRevision();
    return keyspace;
  }();
  return *keys;
}

void BM_ListOf100ChildrenOver1MKeys(benchmark::State& state) {
  const Keyspace& keys = Loaded();
  for (auto _ : state) {
    auto listing = keys.List("/bench", 0, 0);
    if (!listing.ok() || listing->entries.size() != kChildren) state.SkipWithError("bad listing");
    benchmark::DoNotOptimize(listing);
  }
  state.counters["children"] = kChildren;
}
BENCHMARK(BM_ListOf100ChildrenOver1MKeys)->Unit(benchmark::kMicrosecond);

void BM_RangeOfTheSubtree(benchmark::State& state) {
  const Keyspace& keys = Loaded();
  std::string end = PrefixEnd("/bench/");
  for (auto _ : state) {
    auto range = keys.Range({"/bench/", end}, RangeOptions{.count_only = state.range(0) != 0});
    if (!range.ok() || range->count != kChildren * kKeysPerChild) state.SkipWithError("bad range");
    benchmark::DoNotOptimize(range);
  }
  state.counters["keys"] = kChildren * kKeysPerChild;
}
BENCHMARK(BM_RangeOfTheSubtree)->Arg(0)->Arg(1)->ArgName("count_only")->Unit(
    benchmark::kMillisecond);

}  // namespace
}  // namespace etc::kv
