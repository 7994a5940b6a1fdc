// How fast the simulator and its linearizability checker are.
//
//   bazel run --config=opt //sim:sim_benchmark
//
// Reported per benchmark:
//   BM_CheckHistory/<keys>/<unknown>   a 10,000-operation history of 16
//       clients (reads, writes, compare-and-sets; with 10% of writes left
//       without an answer when <unknown> is 1) on <keys> keys: the time to
//       prove it linearizable. The target is under a second.
//   BM_EventQueue   events scheduled and run per second by the bare queue.
//   BM_Simulate5x16 one full seed (3 s of faults, 4 s of healing) of a
//       5-member cluster under 16 clients: sim_s_per_s is virtual seconds
//       simulated per wall-clock second, events/s the event rate.
//   BM_Short10kEventRuns  short seeds of about 10,000 events each (a
//       3-member cluster, 0.8 s of faults then 1 s of healing):
//       seeds_per_min is how many such seeds one core runs per minute.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "sim/event_queue.h"
#include "sim/history_generator.h"
#include "sim/linearizability.h"
#include "sim/random.h"
#include "sim/simulation.h"

namespace etc::sim {
namespace {

void BM_CheckHistory(benchmark::State& state) {
  int keys = static_cast<int>(state.range(0));
  bool with_unknown = state.range(1) != 0;
  Random random(7);
  auto draw = [&random](int64_t lo, int64_t hi) { return random.Range(lo, hi - 1); };
  std::vector<lincheck::Operation> history =
      lincheck::GenerateLinearizableHistory(draw, 16, 10'000, keys, with_unknown);
  uint64_t states = 0;
  for (auto _ : state) {
    lincheck::CheckResult result = lincheck::Check(history);
    if (result.verdict != lincheck::Verdict::kLinearizable) {
      state.SkipWithError("a linearizable history was not recognized as such");
      return;
    }
    states = 0;
    for (const lincheck::KeyResult& key : result.keys) states += key.states_explored;
  }
  state.counters["ops"] = static_cast<double>(history.size());
  state.counters["states"] = static_cast<double>(states);
}
BENCHMARK(BM_CheckHistory)
    ->ArgNames({"keys", "unknown"})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({8, 0})
    ->Args({8, 1})
    ->Unit(benchmark::kMillisecond);

void BM_EventQueue(benchmark::State& state) {
  constexpr int kEventsPerIteration = 100'000;
  for (auto _ : state) {
    EventQueue queue;
    Random random(3);
    uint64_t fired = 0;
    // A steady population of 1,000 pending events, each scheduling the next
    // one a random delay ahead, as ticks and messages do.
    std::function<void()> event = [&] {
      ++fired;
      if (fired < kEventsPerIteration) {
        queue.After(static_cast<Micros>(random.Uniform(10'000)), event);
      }
    };
    for (int i = 0; i < 1'000; ++i) queue.After(static_cast<Micros>(random.Uniform(10'000)), event);
    while (queue.RunNext()) {
    }
    benchmark::DoNotOptimize(fired);
  }
  state.SetItemsProcessed(state.iterations() * kEventsPerIteration);
}
BENCHMARK(BM_EventQueue)->Unit(benchmark::kMillisecond);

// Runs seeds from 1 on, one per iteration, and reports rates.
void RunSeeds(benchmark::State& state, SimOptions options) {
  uint64_t seed = 1;
  double sim_seconds = 0;
  double events = 0;
  for (auto _ : state) {
    options.seed = seed++;
    SimResult result = RunSimulation(options);
    if (!result.passed()) {
      state.SkipWithError("a seed failed; replay it with etc-sim");
      return;
    }
    sim_seconds += static_cast<double>(result.sim_time_us) / 1e6;
    events += static_cast<double>(result.events);
  }
  state.counters["sim_s_per_s"] = benchmark::Counter(sim_seconds, benchmark::Counter::kIsRate);
  state.counters["events/s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  state.counters["events/seed"] =
      benchmark::Counter(events, benchmark::Counter::kAvgIterations);
  state.counters["seeds_per_min"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 60, benchmark::Counter::kIsRate);
}

void BM_Simulate5x16(benchmark::State& state) {
  SimOptions options;
  options.voters = 5;
  RunSeeds(state, options);
}
BENCHMARK(BM_Simulate5x16)->Unit(benchmark::kMillisecond)->MinTime(10);

void BM_Short10kEventRuns(benchmark::State& state) {
  SimOptions options;
  options.voters = 3;
  options.safety_phase_us = 800'000;
  options.liveness_phase_us = 1'000'000;
  options.liveness_grace_us = 500'000;
  RunSeeds(state, options);
}
BENCHMARK(BM_Short10kEventRuns)->Unit(benchmark::kMillisecond)->MinTime(10);

}  // namespace
}  // namespace etc::sim
