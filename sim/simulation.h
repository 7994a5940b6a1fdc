// One simulated run: N members (the real member glue, Raft core and a
// register-map state machine) on virtual time with a simulated network,
// disks and clocks, 16 concurrent clients, and the faults the seed drew.
// A safety phase with faults is followed by a liveness phase in which every
// fault heals; checkers run after every event, and the client history is
// checked for linearizability at the end. A seed replays the identical run.
//
//   SimResult result = RunSimulation({.seed = 42});
//   if (!result.passed()) std::puts(result.violation->message.c_str());
#ifndef ETC_SIM_SIMULATION_H_
#define ETC_SIM_SIMULATION_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "sim/checkers.h"
#include "sim/event_queue.h"
#include "sim/faults.h"

namespace etc::sim {

struct SimOptions {
  uint64_t seed = 1;
  // Faults start within the safety phase; then everything heals.
  Micros safety_phase_us = 3'000'000;
  // After healing: elections settle within the grace period, after which
  // every client operation must complete within its timeout.
  Micros liveness_phase_us = 4'000'000;
  Micros liveness_grace_us = 2'000'000;
  // Cluster size; 0 lets the seed draw it (1, 3, 5 or 7).
  int voters = 0;
  // Prints a readable line per event here (nullptr: only hash the trace).
  FILE* trace_to = nullptr;
  // Replays only the faults at these positions of the drawn schedule.
  std::optional<std::vector<size_t>> keep_faults;
};

struct SimResult {
  bool passed() const { return !violation.has_value(); }

  std::optional<Violation> violation;
  uint64_t events = 0;
  Micros sim_time_us = 0;
  uint64_t trace_hash = 0;
  size_t operations = 0;
  size_t operations_ok = 0;
  size_t operations_unknown = 0;
  uint64_t elections = 0;
  uint64_t crashes = 0;
  // A quorum of voters was damaged at once and stopped: the cluster was
  // down for the operator from then on (liveness not checked).
  bool quorum_lost_to_damage = false;
  // With auth on: what the auth workload did ("" with auth off).
  std::string auth_summary;
  Swarm swarm;
  // A self-contained HTML timeline of the offending key, for a
  // linearizability violation.
  std::string timeline_html;
  // One line per member as the run ended.
  std::string final_state;
};

SimResult RunSimulation(const SimOptions& options);

}  // namespace etc::sim

#endif  // ETC_SIM_SIMULATION_H_
