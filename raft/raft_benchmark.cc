// Throughput of the Raft core: a three-member cluster in one process with
// in-memory storage and network (no I/O, no serialization). Each iteration
// proposes `batch` entries of `bytes` bytes to the leader and runs the
// cluster until it is quiet again, so every entry is committed and applied
// on all three members. Every 1,024 entries each member snapshots and
// compacts its log, as a server would, so memory stays bounded.
//
//   bazel run --config=opt //raft:raft_benchmark
//
// Reported per benchmark:
//   entries/s     entries committed (on the leader) per second of CPU time
//   allocs/entry  heap allocations per committed entry, counted across the
//                 whole cluster: three nodes, their in-memory storage and the
//                 message queue (global operator new is counted in this
//                 binary only).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "raft/rafttest/local_cluster.h"

namespace {

std::atomic<uint64_t> g_allocations{0};

}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace etc::raft {
namespace {

void BM_CommitThreeMembers(benchmark::State& state) {
  const size_t entry_bytes = static_cast<size_t>(state.range(0));
  const int batch = static_cast<int>(state.range(1));
  rafttest::LocalCluster cluster({.size = 3, .voters = 3, .seed = 1});
  const NodeId leader = cluster.ElectLeader();
  if (leader == kNoNode) {
    state.SkipWithError("no leader elected");
    return;
  }
  uint64_t committed = 0;
  cluster.on_apply = [&](NodeId id, const raftpb::Entry& entry) {
    if (id == leader && !entry.data().empty()) ++committed;
  };
  const std::string payload(entry_bytes, 'x');
  const uint64_t allocations_before = g_allocations.load();
  uint64_t compacted_at = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!cluster.node(leader).Propose(payload).ok()) state.SkipWithError("proposal refused");
    }
    if (!cluster.Settle().ok()) state.SkipWithError("a step failed");
    if (committed - compacted_at >= 1024) {
      compacted_at = committed;
      for (NodeId id = 1; id <= 3; ++id) {
        if (!cluster.SnapshotAndCompact(id).ok()) state.SkipWithError("compaction failed");
      }
    }
  }
  const uint64_t allocations = g_allocations.load() - allocations_before;
  if (committed != static_cast<uint64_t>(state.iterations()) * batch) {
    state.SkipWithError("not every proposal was committed");
    return;
  }
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(committed),
                                                   benchmark::Counter::kIsRate);
  state.counters["allocs/entry"] =
      static_cast<double>(allocations) / static_cast<double>(committed);
}

BENCHMARK(BM_CommitThreeMembers)
    ->ArgNames({"bytes", "batch"})
    ->ArgsProduct({{16, 256}, {1, 64}});

}  // namespace
}  // namespace etc::raft
