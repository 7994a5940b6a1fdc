// Simulation testing for programs that use etc: a user's GoogleTest starts
// a simulated cluster (the very member, Raft and key-tree code the server
// runs, on simulated network, disks and clocks, on virtual time), runs
// client programs written against client::ClientInterface (the same
// interface the real gRPC client implements, so the code under test is the
// production code), injects faults or lets the seed draw them, and checks
// what the clients saw: every member's safety checks after every step, the
// KV history for linearizability per key (unknown outcomes included), and
// the test's own invariants. A seed replays the identical run.
//
//   etc::sim::testing::ClusterOptions options;     // 3 members, drawn faults
//   auto run = [](const etc::sim::testing::ClusterOptions& o) {
//     etc::sim::testing::Cluster cluster(o);
//     cluster.AddClient("worker", [](etc::sim::testing::ClientContext& ctx) {
//       while (!ctx.done()) IncrementCounter(ctx.client());   // your code
//     });
//     cluster.AddFinalCheck("counter", [&] { return ...; });
//     return cluster.Run();
//   };
//   auto failures = etc::sim::testing::RunSeeds(options, 1, 100, run);
//   EXPECT_TRUE(failures.empty()) << etc::sim::testing::Describe(failures);
//
// A failure names its seed and the command that replays it:
//   bazel test //your:test --test_env=ETC_SIM_SEED=17
// With --test_env=ETC_SIM_SHRINK=1 a failing seed's drawn faults, then its
// drawn client pauses, are shrunk to a smallest set that still fails, and
// ETC_SIM_FAULTS=0,3 (ETC_SIM_CLIENT_PAUSES=2) replays just those.
//
// Client programs run one at a time on threads of their own, handed
// control by the simulation (sim/cooperative.h), so a run is deterministic
// as long as the program is: its time, sleeps and randomness must come
// from the context (ctx.client().SleepFor, ctx.client().now_ms(),
// ctx.Random), not from the machine. Virtual time passes only while
// programs wait in a call (SleepFor included): a program that loops
// without calling the client holds up the whole simulation.
#ifndef ETC_SIM_TESTING_H_
#define ETC_SIM_TESTING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client_interface.h"
#include "kv/mvccpb/kv.pb.h"
#include "sim/random.h"

namespace etc::sim::testing {

using std::chrono::milliseconds;

struct ClusterOptions {
  uint64_t seed = 1;
  int members = 3;
  // Faults the seed draws during the fault phase: the simulator's own mix
  // (partitions, crashes, pauses, disk stalls, clock drift, lossy links,
  // membership changes...). Off: only the faults the test injects.
  bool drawn_faults = true;
  // Faults happen in the fault phase; then everything heals (the heal
  // phase), and programs should see the cluster work again.
  milliseconds fault_phase{3000};
  milliseconds heal_phase{3000};
  // Before each call a client process may pause (a GC pause, a stopped
  // VM) with this probability, for up to max_client_pause: during the
  // fault phase only.
  double client_pause_probability = 0;
  milliseconds max_client_pause{2000};
  // Each call gives up after this long (outcome unknown).
  milliseconds request_timeout{1000};
  bool check_linearizability = true;
  // Replays only the drawn faults at these positions (set by RunSeeds
  // from ETC_SIM_FAULTS or while shrinking).
  std::optional<std::vector<size_t>> keep_faults;
  // The same for drawn client pauses, by their order in the run
  // (ETC_SIM_CLIENT_PAUSES).
  std::optional<std::vector<size_t>> keep_client_pauses;
};

struct Result {
  bool passed() const { return checker.empty(); }
  uint64_t seed = 0;
  // The check that failed ("" if none) and what it saw.
  std::string checker;
  std::string message;
  // The drawn faults, one line each, and how many there were.
  std::vector<std::string> faults;
  // The client pauses that took effect, one line each, and their positions
  // among those drawn.
  std::vector<std::string> client_pauses;
  std::vector<size_t> client_pause_positions;
  // A failing linearizability check's key timeline (HTML).
  std::string timeline_html;
  // The command that replays this run (set by RunSeeds).
  std::string replay;
  uint64_t events = 0;
  size_t calls = 0;
  size_t calls_unknown = 0;
};

class Cluster;

// What a client program is given.
class ClientContext {
 public:
  client::ClientInterface& client() { return *client_; }
  const std::string& name() const { return name_; }
  // Uniform in [0, bound): the program's own seeded stream.
  uint64_t Random(uint64_t bound);
  // The run is over for this program: it should return soon (any blocked
  // call also ends it).
  bool done() const;
  // The fault phase is over and every fault healed.
  bool healed() const;
  // Reports a violation the program saw; the run fails with it.
  void Fail(const std::string& message);

 private:
  friend class Cluster;
  ClientContext() = default;
  Cluster* cluster_ = nullptr;
  client::ClientInterface* client_ = nullptr;
  std::string name_;
  sim::Random random_{0};
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // ---- before Run ----
  // A client process running `program` from `start_at` on, until it
  // returns or the run ends.
  void AddClient(std::string name, std::function<void(ClientContext&)> program,
                 milliseconds start_at = milliseconds(0));
  // Runs `action` (faults, usually) at a time of the run.
  void At(milliseconds when, std::function<void(Cluster&)> action);
  // Checked after every step of the simulation (every message, tick,
  // disk completion and client call): an error fails the run there.
  void AddInvariant(std::string name, std::function<absl::Status()> check);
  // Checked once, after the heal phase.
  void AddFinalCheck(std::string name, std::function<absl::Status()> check);

  // Runs the whole simulation once and returns what the checks found.
  Result Run();

  // ---- faults, from At actions, invariants or programs ----
  // Members are numbered 1..members.
  void Partition(const std::vector<int>& side);  // cut `side` off from the rest
  void Isolate(int member) { Partition({member}); }
  void HealNetwork();
  void Crash(int member);
  void Restart(int member);
  void Pause(int member, milliseconds duration);
  // The member's clock (and its ticks) run at `rate` times real time.
  void SkewClock(int member, double rate);
  void StallDisk(int member, milliseconds duration);
  // The member's disk is full for `duration`: its log cannot grow past the
  // segment it is writing, nor can snapshot files be made. The member
  // raises NOSPACE (writes then fail with "etcdserver: mvcc: database space
  // exceeded" on every member) and clears it once the disk has space again.
  void FillDisk(int member, milliseconds duration);
  // The member's next fsync fails and drops the writes it covered (Linux
  // reports a failed writeback once: a retried fsync would "succeed"). The
  // member stops at once, as the server exits; Restart brings it back from
  // what is durable.
  void FailDiskSync(int member);
  // The member crashes and a bit flips in its log: in its oldest records,
  // or with `recent` in its newest. Restart then finds the damage: the
  // member keeps what is intact and repairs the rest from the leader (it
  // stops, naming the file, if a quorum of voters is damaged).
  void DamageLog(int member, bool recent = false);
  // The member's process runs (not crashed, stopped, or exited).
  bool Running(int member);
  // It runs and is repairing damaged storage from the leader.
  bool Repairing(int member);
  void PauseClient(const std::string& name, milliseconds duration);
  // The member leading now (0: none).
  int Leader();
  // The current time of the run.
  milliseconds now() const;
  bool healed() const;
  bool done() const;
  void Fail(const std::string& checker, const std::string& message);

  // ---- for final checks ----
  // The keys under `prefix` as the cluster holds them: read on the member
  // that applied the most.
  std::vector<mvccpb::KeyValue> Read(const std::string& prefix);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs `run` for seeds [first, first + count) (or just ETC_SIM_SEED's, with
// ETC_SIM_FAULTS' faults) and returns the failures; with ETC_SIM_SHRINK=1
// a failure's faults are shrunk first. Prints each failure with its replay
// command.
std::vector<Result> RunSeeds(const ClusterOptions& base, uint64_t first, uint64_t count,
                             const std::function<Result(const ClusterOptions&)>& run);
// The failures, one paragraph each, with their replay commands.
std::string Describe(const std::vector<Result>& failures);
// The command that replays `result`.
std::string ReplayCommand(const Result& result, const std::optional<std::vector<size_t>>& faults,
                          const std::optional<std::vector<size_t>>& client_pauses = std::nullopt);

}  // namespace etc::sim::testing

#endif  // ETC_SIM_TESTING_H_
