// etc-sim: runs the deterministic cluster simulator.
//
//   bazel run -c opt //sim:etc-sim -- --seed=42           # one seed
//   bazel run -c opt //sim:etc-sim -- --seeds=1:1000      # a range, with a progress bar
//   bazel run -c opt //sim:etc-sim -- --seed=42 --trace   # print every event
//   bazel run -c opt //sim:etc-sim -- --seed=42 --shrink  # smallest fault set that still fails
//   bazel run -c opt //sim:etc-sim -- --seeds=1:200 --jobs=2  # seeds on two threads
//
// Exit status 0 only if every seed passed. A failure prints the seed, the
// checker that fired and the command that replays it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sim/shrink.h"
#include "sim/simulation.h"

ABSL_FLAG(uint64_t, seed, 0, "run this one seed");
ABSL_FLAG(std::string, seeds, "", "run the seeds A:B (inclusive)");
ABSL_FLAG(bool, trace, false, "print every event of the run");
ABSL_FLAG(int, voters, 0, "cluster size; 0 lets each seed draw 1, 3, 5 or 7");
ABSL_FLAG(int64_t, safety_ms, 3000, "virtual milliseconds of faults");
ABSL_FLAG(int64_t, liveness_ms, 4000, "virtual milliseconds after every fault healed");
ABSL_FLAG(int64_t, liveness_grace_ms, 2000,
          "after healing, operations invoked this much later must complete within their timeout");
ABSL_FLAG(std::string, faults, "", "replay only these fault positions (from --shrink), e.g. 0,3,7");
ABSL_FLAG(bool, shrink, false, "on failure, look for the smallest set of faults that still fails");
ABSL_FLAG(std::string, html_dir, "", "write the timeline of a linearizability violation here");
ABSL_FLAG(bool, stop_at_first_failure, false, "stop a seed range at the first failure");
ABSL_FLAG(bool, progress, true, "show a progress bar for seed ranges");
ABSL_FLAG(int, jobs, 1,
          "run this many seeds at once, on threads; the output is the same as with 1 (seed order)");
ABSL_FLAG(bool, summaries, false,
          "print every seed's summary line (events, operations, trace hash), not only one seed's");

namespace etc::sim {
namespace {

// The seed this thread is running, for the crash report below (per thread:
// with --jobs, the thread that aborts names its own seed).
thread_local volatile uint64_t g_running_seed = 0;

// A broken invariant aborts (base/check.h has already printed which); name
// the seed so the failure can be replayed, then die as before.
void OnAbort(int signal_number) {
  char line[160];
  int length = std::snprintf(line, sizeof(line),
                             "seed %llu FAILED: invariant: a check failed (above)\n"
                             "  replay: bazel run -c opt //sim:etc-sim -- --seed=%llu\n",
                             static_cast<unsigned long long>(g_running_seed),
                             static_cast<unsigned long long>(g_running_seed));
  if (length > 0) (void)!write(STDOUT_FILENO, line, static_cast<size_t>(length));
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

SimOptions BaseOptions() {
  SimOptions options;
  options.voters = absl::GetFlag(FLAGS_voters);
  options.safety_phase_us = absl::GetFlag(FLAGS_safety_ms) * 1000;
  options.liveness_phase_us = absl::GetFlag(FLAGS_liveness_ms) * 1000;
  options.liveness_grace_us = absl::GetFlag(FLAGS_liveness_grace_ms) * 1000;
  std::string faults = absl::GetFlag(FLAGS_faults);
  if (!faults.empty()) {
    std::vector<size_t> keep;
    for (absl::string_view part : absl::StrSplit(faults, ',', absl::SkipEmpty())) {
      size_t index = 0;
      if (absl::SimpleAtoi(part, &index)) keep.push_back(index);
    }
    options.keep_faults = keep;
  }
  return options;
}

std::string ReplayCommand(uint64_t seed, const std::optional<std::vector<size_t>>& faults) {
  std::string command = absl::StrCat("bazel run -c opt //sim:etc-sim -- --seed=", seed);
  if (absl::GetFlag(FLAGS_voters) != 0) absl::StrAppend(&command, " --voters=", absl::GetFlag(FLAGS_voters));
  if (absl::GetFlag(FLAGS_safety_ms) != 3000) absl::StrAppend(&command, " --safety_ms=", absl::GetFlag(FLAGS_safety_ms));
  if (absl::GetFlag(FLAGS_liveness_ms) != 4000) absl::StrAppend(&command, " --liveness_ms=", absl::GetFlag(FLAGS_liveness_ms));
  if (absl::GetFlag(FLAGS_liveness_grace_ms) != 2000) {
    absl::StrAppend(&command, " --liveness_grace_ms=", absl::GetFlag(FLAGS_liveness_grace_ms));
  }
  if (faults.has_value()) absl::StrAppend(&command, " --faults=", absl::StrJoin(*faults, ","));
  return command;
}

void ReportFailure(uint64_t seed, const SimOptions& options, const SimResult& result) {
  std::printf("seed %llu FAILED: %s: %s\n", static_cast<unsigned long long>(seed),
              result.violation->checker.c_str(), result.violation->message.c_str());
  std::printf("  run: %s\n", result.swarm.Describe().c_str());
  std::printf("  members at the end:\n%s", result.final_state.c_str());
  std::printf("  replay: %s\n", ReplayCommand(seed, options.keep_faults).c_str());
  std::string html_dir = absl::GetFlag(FLAGS_html_dir);
  if (!result.timeline_html.empty() && !html_dir.empty()) {
    std::string path = absl::StrCat(html_dir, "/etc-sim-seed-", seed, ".html");
    std::ofstream(path) << result.timeline_html;
    std::printf("  timeline: %s\n", path.c_str());
  }
}

// Drops faults one at a time while the run still fails the same checker.
void Shrink(uint64_t seed, const SimResult& failing) {
  SimOptions options = BaseOptions();
  options.seed = seed;
  std::vector<size_t> kept;
  if (options.keep_faults.has_value()) {
    kept = *options.keep_faults;
  } else {
    for (size_t i = 0; i < failing.swarm.faults.size(); ++i) kept.push_back(i);
  }
  std::printf("shrinking %zu faults...\n", kept.size());
  kept = ShrinkFaults(kept, [&](const std::vector<size_t>& candidate) {
    options.keep_faults = candidate;
    SimResult result = RunSimulation(options);
    return !result.passed() && result.violation->checker == failing.violation->checker;
  });
  options.keep_faults = kept;
  SimResult result = RunSimulation(options);
  std::printf("smallest failing fault set: %zu faults\n", kept.size());
  for (const Fault& fault : result.swarm.faults) std::printf("  %s\n", fault.Describe().c_str());
  if (!result.passed()) {
    std::printf("  %s: %s\n", result.violation->checker.c_str(), result.violation->message.c_str());
  }
  std::printf("  replay: %s\n", ReplayCommand(seed, kept).c_str());
}

void DrawProgress(uint64_t done, uint64_t total, uint64_t failures) {
  constexpr int kWidth = 40;
  int filled = static_cast<int>(kWidth * done / std::max<uint64_t>(total, 1));
  std::fprintf(stderr, "\r[%s%s] %llu/%llu seeds, %llu failed", std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total), static_cast<unsigned long long>(failures));
  std::fflush(stderr);
}

// One seed's run with the flags' options.
SimResult RunSeed(uint64_t seed) {
  g_running_seed = seed;
  SimOptions options = BaseOptions();
  options.seed = seed;
  if (absl::GetFlag(FLAGS_trace)) options.trace_to = stdout;
  return RunSimulation(options);
}

// Takes each seed's result in seed order; false stops the range.
using ResultConsumer = std::function<bool(uint64_t seed, SimResult result)>;

// Runs seeds on `jobs` threads and hands their results to the consumer in
// seed order on the calling thread, so the output is the same as one job's.
// Threads suffice: a run touches no mutable global (everything it uses hangs
// off its own Simulation). Workers stay within a window of seeds past the
// oldest unconsumed one, which bounds the results held behind a slow seed.
// One difference remains: a broken invariant aborts the process, so a seed
// that aborts ends the run before the results of earlier seeds still
// running are printed (with one job, an earlier failure would print first).
class ParallelSeeds {
 public:
  ParallelSeeds(uint64_t first, uint64_t last, int jobs)
      : last_(last), jobs_(jobs), window_seeds_(4 * static_cast<uint64_t>(jobs)),
        next_seed_(first), next_to_consume_(first) {}

  void Run(const ResultConsumer& consume) {
    std::vector<std::thread> workers;
    for (int i = 0; i < jobs_; ++i) workers.emplace_back([this] { Work(); });
    for (uint64_t seed = next_to_consume_; seed <= last_; ++seed) {
      SimResult result;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return done_.count(seed) != 0; });
        result = std::move(done_.extract(seed).mapped());
        next_to_consume_ = seed + 1;
      }
      changed_.notify_all();
      if (!consume(seed, std::move(result))) break;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& worker : workers) worker.join();
  }

 private:
  void Work() {
    for (;;) {
      uint64_t seed = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] {
          return stopping_ || next_seed_ > last_ || next_seed_ < next_to_consume_ + window_seeds_;
        });
        if (stopping_ || next_seed_ > last_) return;
        seed = next_seed_++;
      }
      SimResult result = RunSeed(seed);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.emplace(seed, std::move(result));
      }
      changed_.notify_all();
    }
  }

  const uint64_t last_;
  const int jobs_;
  const uint64_t window_seeds_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t next_seed_;        // guarded by mutex_: the next seed a worker takes
  uint64_t next_to_consume_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::map<uint64_t, SimResult> done_;  // guarded by mutex_: finished, not yet consumed
};

void PrintSummary(uint64_t seed, const SimResult& result) {
  std::printf("seed %llu: %s; %llu events, %.1f virtual seconds, %zu operations (%zu unknown), "
              "%llu elections won, %llu crashes, trace %016llx\n",
              static_cast<unsigned long long>(seed), result.swarm.Describe().c_str(),
              static_cast<unsigned long long>(result.events), result.sim_time_us / 1e6,
              result.operations, result.operations_unknown,
              static_cast<unsigned long long>(result.elections),
              static_cast<unsigned long long>(result.crashes),
              static_cast<unsigned long long>(result.trace_hash));
  if (!result.auth_summary.empty()) std::printf("  auth: %s\n", result.auth_summary.c_str());
}

// Parses --seed or --seeds into [first, last]; false (after saying why) if
// neither is usable.
bool ParseSeeds(uint64_t* first, uint64_t* last) {
  *first = absl::GetFlag(FLAGS_seed);
  *last = *first;
  std::string range = absl::GetFlag(FLAGS_seeds);
  if (!range.empty()) {
    std::vector<std::string> parts = absl::StrSplit(range, ':');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], first) ||
        !absl::SimpleAtoi(parts[1], last) || *last < *first) {
      std::fprintf(stderr, "--seeds wants A:B with A <= B, got '%s'\n", range.c_str());
      return false;
    }
  } else if (*first == 0) {
    std::fprintf(stderr, "give --seed=N or --seeds=A:B\n");
    return false;
  }
  return true;
}

int Main() {
  uint64_t first = 0, last = 0;
  if (!ParseSeeds(&first, &last)) return 2;
  int jobs = absl::GetFlag(FLAGS_jobs);
  if (jobs < 1 || (jobs > 1 && absl::GetFlag(FLAGS_trace))) {
    std::fprintf(stderr, "--jobs wants N >= 1, and 1 with --trace (one stream of events)\n");
    return 2;
  }
  bool single = first == last;
  bool show_progress = !single && absl::GetFlag(FLAGS_progress);
  bool summaries = single || absl::GetFlag(FLAGS_summaries);
  uint64_t total = last - first + 1;
  uint64_t failures = 0;
  uint64_t done = 0;
  double sim_seconds = 0;
  auto started = std::chrono::steady_clock::now();
  std::signal(SIGABRT, OnAbort);
  ResultConsumer consume = [&](uint64_t seed, SimResult result) {
    ++done;
    sim_seconds += static_cast<double>(result.sim_time_us) / 1e6;
    if (summaries) PrintSummary(seed, result);
    if (!result.passed()) {
      ++failures;
      if (show_progress) std::fprintf(stderr, "\n");
      SimOptions options = BaseOptions();
      options.seed = seed;
      ReportFailure(seed, options, result);
      if (absl::GetFlag(FLAGS_shrink)) Shrink(seed, result);
      if (absl::GetFlag(FLAGS_stop_at_first_failure)) return false;
    }
    if (show_progress) DrawProgress(done, total, failures);
    return true;
  };
  if (jobs == 1) {
    for (uint64_t seed = first; seed <= last; ++seed) {
      if (!consume(seed, RunSeed(seed))) break;
    }
  } else {
    ParallelSeeds(first, last, jobs).Run(consume);
  }
  if (show_progress) std::fprintf(stderr, "\n");
  double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("seeds=%llu failures=%llu sim_seconds=%.1f wall_seconds=%.1f speedup=%.1f\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(failures),
              sim_seconds, wall_seconds, wall_seconds > 0 ? sim_seconds / wall_seconds : 0.0);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace etc::sim

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Runs the deterministic cluster simulator: --seed=N or --seeds=A:B. See sim/main.cc.");
  absl::ParseCommandLine(argc, argv);
  return etc::sim::Main();
}
