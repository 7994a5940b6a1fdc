#include "sim/simulation.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "raft/conf_state.h"
#include "raft/describe.h"
#include "sim/auth_workload.h"
#include "sim/injector.h"
#include "sim/kv_workload.h"
#include "sim/lease_workload.h"
#include "sim/watch_workload.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {
namespace {

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : options_(options),
        random_(options.seed),
        swarm_(DrawSwarm(options)),
        world_(options, swarm_, &random_, options.trace_to),
        auth_(&world_, random_.Fork(kAuthStream)),
        injector_(&world_, &auth_, random_.Fork(kFaultStream)),
        kv_(&world_, &auth_, random_.Fork(kClientStream), random_.Fork(kClientNetworkStream)),
        leases_(&world_, &auth_, random_.Fork(kLeaseStream), random_.Fork(kLeaseStream + 1000)),
        watches_(&world_, &auth_, random_.Fork(kWatchStream)) {}

  SimResult Run();

 private:
  static Swarm DrawSwarm(const SimOptions& options);
  SimResult Result();
  // A member of the cluster still repairing at the end fails the run.
  void CheckRepairsFinished();

  SimOptions options_;
  Random random_;
  Swarm swarm_;
  World world_;
  AuthWorkload auth_;
  FaultInjector injector_;
  KvWorkload kv_;
  LeaseWorkload leases_;
  WatchWorkload watches_;
};

Swarm Simulation::DrawSwarm(const SimOptions& options) {
  Random swarm_random = Random(options.seed).Fork(kSwarmStream);
  Swarm swarm = sim::DrawSwarm(swarm_random, options.safety_phase_us, options.voters);
  if (options.keep_faults.has_value()) {
    std::vector<Fault> kept;
    for (size_t index : *options.keep_faults) {
      if (index < swarm.faults.size()) kept.push_back(swarm.faults[index]);
    }
    swarm.faults = std::move(kept);
  }
  return swarm;
}

SimResult Simulation::Run() {
  world_.trace().Event("sim.start", options_.seed, swarm_.voters, [&] {
    return absl::StrCat("seed ", options_.seed, ": ", swarm_.Describe());
  });
  world_.set_bootstrap_key_tree(auth_.BootstrapKeyTree());
  world_.AddProcesses();
  auth_.Start(options_.safety_phase_us);
  injector_.Schedule(swarm_.faults, options_.safety_phase_us);
  kv_.set_liveness_deadline_us(options_.safety_phase_us + options_.liveness_grace_us);
  kv_.Start();
  leases_.Start(swarm_.lease_clients, options_.safety_phase_us + options_.liveness_grace_us);
  watches_.Start(swarm_.watch_clients, options_.safety_phase_us,
                 options_.safety_phase_us + options_.liveness_phase_us);
  EventQueue& queue = world_.queue();
  Micros end_us = options_.safety_phase_us + options_.liveness_phase_us;
  while (!world_.failed() && !queue.empty() && queue.next_time_us() <= end_us) queue.RunNext();
  return Result();
}

void Simulation::CheckRepairsFinished() {
  raftpb::ConfState conf = world_.process(world_.Leader()).kv->conf();
  for (auto& process : world_.processes()) {
    // Members of the cluster only: a spare never added, or a member
    // removed while it was down, has no leader to repair from.
    if (!process->up() ||
        (!raft::IsVoter(conf, process->id) && !raft::IsLearner(conf, process->id)) ||
        !process->member()->node().raft().repairing()) {
      continue;
    }
    world_.Fail("liveness", absl::StrCat("member ", process->id,
                                         " is still repairing its damaged storage at the end of "
                                         "the liveness phase"));
    return;
  }
}

SimResult Simulation::Result() {
  SimResult result;
  if (world_.quorum_lost_to_damage()) {
    // Down for the operator: nothing may have been elected since.
    if (NodeId leader = world_.Leader(); leader != 0) {
      world_.Fail("durability", absl::StrCat(leader, " leads after a damaged quorum stopped"));
    }
  } else if (!world_.failed() && world_.Leader() == 0) {
    world_.Fail("liveness", "no leader at the end of the liveness phase");
  }
  if (!world_.failed() && !world_.quorum_lost_to_damage()) CheckRepairsFinished();
  if (!world_.failed()) leases_.CheckEnd();
  if (!world_.failed()) watches_.CheckEnd();
  if (!world_.failed()) kv_.CheckHistory(&result.timeline_html);
  for (auto& process : world_.processes()) {
    if (!process->up()) {
      absl::StrAppend(&result.final_state, "  member ", process->id,
                      process->stopped ? ": removed, shut down\n" : ": crashed\n");
      continue;
    }
    raft::NodeStatus status = process->member()->Status();
    absl::StrAppend(&result.final_state, "  member ", process->id, ": ", raft::RoleName(status.role),
                    " term ", status.term, " leader ", status.leader, " commit ", status.commit,
                    " applied ", status.applied, " ", status.config,
                    process->paused ? " (paused)" : "", "\n");
  }
  result.violation = world_.checker().violation();
  result.events = world_.queue().events_run();
  result.sim_time_us = world_.queue().now_us();
  world_.trace().Mix(result.events);
  result.trace_hash = world_.trace().hash();
  result.swarm = swarm_;
  result.elections = world_.elections();
  result.crashes = world_.crashes();
  result.quorum_lost_to_damage = world_.quorum_lost_to_damage();
  if (auth_.enabled()) {
    const AuthWorkload::Stats& auth = auth_.stats();
    result.auth_summary = absl::StrCat(auth.logins, " logins, ", auth.permission_edits,
                                       " permission edits, ", auth.old_revision_refusals,
                                       " requests refused for an auth change, ",
                                       auth.intruder_refusals, " intruder writes refused");
  }
  KvWorkloadStats stats = kv_.stats();
  result.operations = stats.operations;
  result.operations_ok = stats.operations_ok;
  result.operations_unknown = stats.operations_unknown;
  return result;
}

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  Simulation simulation(options);
  return simulation.Run();
}

}  // namespace etc::sim
