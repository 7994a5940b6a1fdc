#include "sim/testing.h"

#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sim/auth_workload.h"
#include "sim/client_history.h"
#include "sim/cooperative.h"
#include "sim/faults.h"
#include "sim/injector.h"
#include "sim/linearizability.h"
#include "sim/shrink.h"
#include "sim/sim_client.h"
#include "sim/simulation.h"
#include "sim/world.h"

namespace etc::sim::testing {
namespace {

Micros MicrosOf(milliseconds duration) { return duration.count() * 1000; }

// Client programs' random streams, apart from every stream of the
// simulator's own (sim/world.h).
constexpr uint64_t kProgramStream = 10'000;

}  // namespace

struct Cluster::Impl {
  struct Program {
    std::string name;
    std::function<void(ClientContext&)> body;
    Micros start_us = 0;
    std::unique_ptr<SimClient> client;
    ClientContext context;
    std::unique_ptr<CooperativeThread> thread;
  };

  Impl(Cluster* cluster, ClusterOptions options);
  Swarm DrawSwarm() const;
  void StartPrograms();
  void AfterEachStep();
  void CheckHistory();
  // Reports the keys a lease's revoke or expiry deleted to the history, at
  // the revoke's first apply on any member.
  void ObserveLeaseDeletes(Process& process, uint64_t index, const kvpb::Request& request);
  Result Finish();

  Cluster* cluster;
  ClusterOptions options;
  SimOptions sim_options;
  Random root;
  Swarm swarm;
  World world;
  AuthWorkload auth;
  FaultInjector injector;
  ClientHistory history;
  ClientPauses client_pauses;
  std::vector<std::unique_ptr<Program>> programs;
  std::vector<std::pair<std::string, std::function<absl::Status()>>> invariants;
  std::vector<std::pair<std::string, std::function<absl::Status()>>> final_checks;
  Micros heal_at_us = 0;
  // The highest index any member applied, and the key tree's revision
  // after it (the same on every member).
  uint64_t first_applied_index = 0;
  kv::Revision revision_at_first_applied = 0;
  bool ran = false;
  bool done = false;
  std::string timeline_html;
};

Cluster::Impl::Impl(Cluster* cluster, ClusterOptions options_in)
    : cluster(cluster),
      options(std::move(options_in)),
      sim_options({.seed = options.seed,
                   .safety_phase_us = MicrosOf(options.fault_phase),
                   .liveness_phase_us = MicrosOf(options.heal_phase),
                   .voters = options.members,
                   .trace_to = nullptr,
                   .keep_faults = std::nullopt}),
      root(options.seed),
      swarm(DrawSwarm()),
      world(sim_options, swarm, &root, nullptr),
      auth(&world, root.Fork(kAuthStream)),
      injector(&world, &auth, root.Fork(kFaultStream)),
      heal_at_us(MicrosOf(options.fault_phase)) {
  world.add_apply_observer([this](Process& process, uint64_t index, const kvpb::Request& request,
                                  const kvpb::Response&) {
    ObserveLeaseDeletes(process, index, request);
  });
}

void Cluster::Impl::ObserveLeaseDeletes(Process& process, uint64_t index,
                                        const kvpb::Request& request) {
  // Later members applying the same index change nothing new.
  if (index <= first_applied_index) return;
  first_applied_index = index;
  kv::Revision before = revision_at_first_applied;
  const kv::Keyspace& keys = process.store().keyspace();
  revision_at_first_applied = keys.revision();
  if (!request.has_lease_revoke() && !request.has_lease_expire()) return;
  if (keys.revision() <= before) return;  // it deleted nothing
  std::vector<std::string> deleted;
  for (auto change = keys.ChangesFrom(before + 1); change != keys.changes_end(); ++change) {
    deleted.emplace_back(change->key());
  }
  history.LeaseDeleted(deleted);
}

Swarm Cluster::Impl::DrawSwarm() const {
  Random swarm_random = Random(options.seed).Fork(kSwarmStream);
  Swarm drawn = sim::DrawSwarm(swarm_random, MicrosOf(options.fault_phase), options.members);
  if (!options.drawn_faults) {
    // A calm cluster: only what the test injects happens to it.
    drawn = Swarm{};
    drawn.voters = options.members;
    drawn.spares = 0;
  }
  if (options.keep_faults.has_value()) {
    std::vector<Fault> kept;
    for (size_t index : *options.keep_faults) {
      if (index < drawn.faults.size()) kept.push_back(drawn.faults[index]);
    }
    drawn.faults = std::move(kept);
  }
  // The simulator's own workloads stay off: the programs are the clients.
  drawn.auth = false;
  drawn.lease_clients = 0;
  drawn.watch_clients = 0;
  drawn.client_timeout_us = MicrosOf(options.request_timeout);
  return drawn;
}

// ---------------------------------------------------------------- context --

uint64_t ClientContext::Random(uint64_t bound) {
  return bound == 0 ? random_.Next() : random_.Uniform(bound);
}

bool ClientContext::done() const { return cluster_->done(); }
bool ClientContext::healed() const { return cluster_->healed(); }
void ClientContext::Fail(const std::string& message) {
  cluster_->Fail(absl::StrCat("program ", name_), message);
}

// ---------------------------------------------------------------- cluster --

Cluster::Cluster(ClusterOptions options) : impl_(std::make_unique<Impl>(this, std::move(options))) {}

Cluster::~Cluster() {
  // Programs first: a cancelled program unwinds through its client.
  for (auto& program : impl_->programs) program->thread.reset();
}

void Cluster::AddClient(std::string name, std::function<void(ClientContext&)> program,
                        milliseconds start_at) {
  auto p = std::make_unique<Impl::Program>();
  p->name = std::move(name);
  p->body = std::move(program);
  p->start_us = MicrosOf(start_at);
  impl_->programs.push_back(std::move(p));
}

void Cluster::At(milliseconds when, std::function<void(Cluster&)> action) {
  impl_->world.queue().At(MicrosOf(when), [this, action = std::move(action)] {
    if (!impl_->done) action(*this);
  });
}

void Cluster::AddInvariant(std::string name, std::function<absl::Status()> check) {
  impl_->invariants.emplace_back(std::move(name), std::move(check));
}

void Cluster::AddFinalCheck(std::string name, std::function<absl::Status()> check) {
  impl_->final_checks.emplace_back(std::move(name), std::move(check));
}

void Cluster::Impl::StartPrograms() {
  SimClientOptions client_options;
  client_options.request_timeout_us = MicrosOf(options.request_timeout);
  client_options.pause_probability = options.client_pause_probability;
  client_options.max_pause_us = MicrosOf(options.max_client_pause);
  if (options.keep_client_pauses.has_value()) {
    client_pauses.keep.emplace(options.keep_client_pauses->begin(),
                               options.keep_client_pauses->end());
  }
  client_options.pauses = &client_pauses;
  for (size_t i = 0; i < programs.size(); ++i) {
    Program& program = *programs[i];
    int id = static_cast<int>(i) + 1;
    program.client = std::make_unique<SimClient>(
        &world, id, client_options, root.Fork(kProgramStream + 3 * i),
        root.Fork(kProgramStream + 3 * i + 1), &history);
    program.context.cluster_ = cluster;
    program.context.client_ = program.client.get();
    program.context.name_ = program.name;
    program.context.random_ = root.Fork(kProgramStream + 3 * i + 2);
    program.thread = std::make_unique<CooperativeThread>(
        [&program] { program.body(program.context); });
    program.client->set_program(program.thread.get());
    world.queue().At(program.start_us, [&program] { program.thread->Resume(); });
  }
  // Clients stop pausing once the faults heal.
  world.queue().At(heal_at_us, [this] {
    for (auto& program : programs) program->client->set_pause_probability(0);
  });
}

void Cluster::Impl::AfterEachStep() {
  for (auto& [name, check] : invariants) {
    if (absl::Status status = check(); !status.ok()) {
      world.Fail(absl::StrCat("invariant ", name), std::string(status.message()));
      return;
    }
  }
  for (auto& program : programs) {
    if (program->thread != nullptr && !program->thread->uncaught().empty()) {
      world.Fail(absl::StrCat("program ", program->name),
                 absl::StrCat("threw: ", program->thread->uncaught()));
      return;
    }
  }
}

Result Cluster::Run() {
  Impl& impl = *impl_;
  if (impl.ran) {
    Result again;
    again.checker = "usage";
    again.message = "a Cluster runs once: make a new one per run";
    return again;
  }
  impl.ran = true;
  World& world = impl.world;
  world.trace().Event("sim.start", impl.options.seed, impl.swarm.voters, [&] {
    return absl::StrCat("seed ", impl.options.seed, ": ", impl.swarm.Describe());
  });
  world.AddProcesses();
  impl.injector.Schedule(impl.swarm.faults, impl.heal_at_us);
  impl.StartPrograms();
  EventQueue& queue = world.queue();
  Micros end_us = impl.heal_at_us + MicrosOf(impl.options.heal_phase);
  while (!world.failed() && !queue.empty() && queue.next_time_us() <= end_us) {
    queue.RunNext();
    impl.AfterEachStep();
  }
  impl.done = true;
  // Programs still running end here (a blocked call unwinds them).
  for (auto& program : impl.programs) program->thread.reset();
  return impl.Finish();
}

Result Cluster::Impl::Finish() {
  if (!world.failed()) {
    for (auto& [name, check] : final_checks) {
      if (absl::Status status = check(); !status.ok()) {
        world.Fail(absl::StrCat("final check ", name), std::string(status.message()));
        break;
      }
    }
  }
  if (!world.failed() && options.check_linearizability) CheckHistory();
  Result result;
  result.seed = options.seed;
  if (world.failed()) {
    result.checker = world.checker().violation()->checker;
    result.message = world.checker().violation()->message;
  }
  for (const Fault& fault : swarm.faults) result.faults.push_back(fault.Describe());
  for (size_t index : client_pauses.taken) {
    result.client_pauses.push_back(client_pauses.drawn[index]);
    result.client_pause_positions.push_back(index);
  }
  result.timeline_html = timeline_html;
  result.events = world.queue().events_run();
  result.calls = history.calls();
  result.calls_unknown = history.unknown();
  return result;
}

void Cluster::Impl::CheckHistory() {
  std::vector<lincheck::Operation> operations = history.Operations();
  lincheck::CheckResult checked = lincheck::Check(operations);
  for (const lincheck::KeyResult& key : checked.keys) {
    if (key.verdict == lincheck::Verdict::kLinearizable) continue;
    std::string message = absl::StrCat(
        "key ", key.key, ": ", key.operations, " operations, ",
        key.verdict == lincheck::Verdict::kViolation ? "no linearization exists"
                                                     : "the search gave up (undecided)");
    if (key.verdict == lincheck::Verdict::kViolation) {
      timeline_html = lincheck::RenderHtml(operations, key);
      std::vector<bool> placed(operations.size(), false);
      for (size_t index : key.longest_linearized) placed[index] = true;
      absl::StrAppend(&message, "; not placed:");
      for (size_t i = 0; i < operations.size(); ++i) {
        if (operations[i].key == key.key && !placed[i]) {
          absl::StrAppend(&message, " [client ", operations[i].client, " ",
                          lincheck::Describe(operations[i]), "]");
        }
      }
    }
    world.Fail("linearizability", message);
    return;
  }
}

// ---------------------------------------------------------------- faults --

void Cluster::Partition(const std::vector<int>& side) {
  World& world = impl_->world;
  std::set<NodeId> inside(side.begin(), side.end());
  for (auto& process : world.processes()) {
    if (!inside.contains(process->id)) continue;
    for (auto& other : world.processes()) {
      if (!inside.contains(other->id)) world.network().BlockBothWays(process->id, other->id);
    }
  }
  world.trace().Event("test.partition", inside.size(), 0, [&] {
    return absl::StrCat("the test cuts off members ", absl::StrJoin(side, ","));
  });
}

void Cluster::HealNetwork() { impl_->world.network().Heal(); }

void Cluster::Crash(int member) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  if (process.up()) impl_->world.Crash(process);
}

void Cluster::Restart(int member) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  if (process.crashed && !process.stopped) impl_->world.Restart(process);
}

void Cluster::Pause(int member, milliseconds duration) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  if (process.up() && !process.paused) impl_->world.Pause(process, MicrosOf(duration));
}

void Cluster::SkewClock(int member, double rate) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  process.clock->set_rate(rate);
  process.tick_period_us = static_cast<Micros>(static_cast<double>(kTickPeriodUs) / rate);
}

void Cluster::StallDisk(int member, milliseconds duration) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  process.disk->StallUntil(impl_->world.queue().now_us() + MicrosOf(duration));
}

void Cluster::FillDisk(int member, milliseconds duration) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  process.disk->FillUntil(impl_->world.queue().now_us() + MicrosOf(duration));
}

void Cluster::FailDiskSync(int member) {
  impl_->world.process(static_cast<NodeId>(member)).disk->FailNextSync();
}

void Cluster::DamageLog(int member, bool recent) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  impl_->world.Crash(process);
  if (!process.disk->FlipBitInLog(recent).empty()) process.damaged = true;
}

bool Cluster::Running(int member) {
  return impl_->world.process(static_cast<NodeId>(member)).up();
}

bool Cluster::Repairing(int member) {
  Process& process = impl_->world.process(static_cast<NodeId>(member));
  return process.up() && process.member()->node().raft().repairing();
}

void Cluster::PauseClient(const std::string& name, milliseconds duration) {
  for (auto& program : impl_->programs) {
    if (program->name == name && program->client != nullptr) {
      program->client->PauseUntil(impl_->world.queue().now_us() + MicrosOf(duration));
    }
  }
}

int Cluster::Leader() { return static_cast<int>(impl_->world.Leader()); }
milliseconds Cluster::now() const { return milliseconds(impl_->world.queue().now_us() / 1000); }
bool Cluster::healed() const { return impl_->world.healed(); }
bool Cluster::done() const { return impl_->done; }

void Cluster::Fail(const std::string& checker, const std::string& message) {
  if (!impl_->world.failed()) impl_->world.Fail(checker, message);
}

std::vector<mvccpb::KeyValue> Cluster::Read(const std::string& prefix) {
  Process* best = nullptr;
  for (auto& process : impl_->world.processes()) {
    if (!process->up()) continue;
    if (best == nullptr ||
        process->member()->Status().applied > best->member()->Status().applied) {
      best = process.get();
    }
  }
  if (best == nullptr) return {};
  kvpb::Request request;
  request.mutable_range()->set_key(prefix);
  request.mutable_range()->set_range_end(client::PrefixEnd(prefix));
  kvpb::Response got = best->store().Query(request);
  if (got.error_code() != 0) return {};
  return {got.range().kvs().begin(), got.range().kvs().end()};
}

// ------------------------------------------------------------------ seeds --

namespace {

std::optional<uint64_t> EnvNumber(const char* name) {
  const char* text = std::getenv(name);
  uint64_t value = 0;
  if (text == nullptr || !absl::SimpleAtoi(text, &value)) return std::nullopt;
  return value;
}

std::optional<std::vector<size_t>> EnvPositions(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  std::vector<size_t> faults;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    size_t index = 0;
    if (absl::SimpleAtoi(part, &index)) faults.push_back(index);
  }
  return faults;
}

}  // namespace

std::string ReplayCommand(const Result& result, const std::optional<std::vector<size_t>>& faults,
                          const std::optional<std::vector<size_t>>& client_pauses) {
  const char* target = std::getenv("TEST_TARGET");
  std::string command = absl::StrCat("bazel test ", target != nullptr ? target : "<this test>",
                                     " --test_env=ETC_SIM_SEED=", result.seed);
  if (faults.has_value()) {
    absl::StrAppend(&command, " --test_env=ETC_SIM_FAULTS=", absl::StrJoin(*faults, ","));
  }
  if (client_pauses.has_value()) {
    absl::StrAppend(&command, " --test_env=ETC_SIM_CLIENT_PAUSES=",
                    absl::StrJoin(*client_pauses, ","));
  }
  absl::StrAppend(&command, " --test_output=all");
  return command;
}

std::vector<Result> RunSeeds(const ClusterOptions& base, uint64_t first, uint64_t count,
                             const std::function<Result(const ClusterOptions&)>& run) {
  std::optional<uint64_t> only = EnvNumber("ETC_SIM_SEED");
  bool shrink = EnvNumber("ETC_SIM_SHRINK").value_or(0) != 0;
  std::vector<Result> failures;
  uint64_t begin = only.value_or(first);
  uint64_t end = only.has_value() ? *only + 1 : first + count;
  for (uint64_t seed = begin; seed < end; ++seed) {
    ClusterOptions options = base;
    options.seed = seed;
    if (only.has_value()) {
      options.keep_faults = EnvPositions("ETC_SIM_FAULTS");
      options.keep_client_pauses = EnvPositions("ETC_SIM_CLIENT_PAUSES");
    }
    Result result = run(options);
    if (result.passed()) continue;
    if (shrink) {
      auto still_fails = [&](const ClusterOptions& trial) {
        Result tried = run(trial);
        return !tried.passed() && tried.checker == result.checker;
      };
      // The faults first (the pauses a run draws depend on them), then the
      // client pauses of the run with those faults.
      std::vector<size_t> all;
      for (size_t i = 0; i < result.faults.size(); ++i) {
        all.push_back(options.keep_faults.has_value() ? (*options.keep_faults)[i] : i);
      }
      options.keep_faults = ShrinkFaults(all, [&](const std::vector<size_t>& candidate) {
        ClusterOptions trial = options;
        trial.keep_faults = candidate;
        return still_fails(trial);
      });
      Result with_faults = run(options);
      if (!with_faults.client_pause_positions.empty()) {
        options.keep_client_pauses = ShrinkFaults(
            with_faults.client_pause_positions, [&](const std::vector<size_t>& candidate) {
              ClusterOptions trial = options;
              trial.keep_client_pauses = candidate;
              return still_fails(trial);
            });
      }
      result = run(options);
    }
    result.replay = ReplayCommand(result, options.keep_faults, options.keep_client_pauses);
    std::fprintf(stderr, "seed %llu failed: %s: %s\n  replay: %s\n",
                 static_cast<unsigned long long>(seed), result.checker.c_str(),
                 result.message.c_str(), result.replay.c_str());
    failures.push_back(std::move(result));
  }
  return failures;
}

std::string Describe(const std::vector<Result>& failures) {
  std::string text;
  for (const Result& result : failures) {
    absl::StrAppend(&text, "seed ", result.seed, ": ", result.checker, ": ", result.message, "\n");
    for (const std::string& fault : result.faults) absl::StrAppend(&text, "  fault: ", fault, "\n");
    for (const std::string& pause : result.client_pauses) {
      absl::StrAppend(&text, "  client pause: ", pause, "\n");
    }
    absl::StrAppend(&text, "  replay: ",
                    result.replay.empty() ? ReplayCommand(result, std::nullopt, std::nullopt)
                                         : result.replay, "\n");
  }
  return text;
}

}  // namespace etc::sim::testing
