#include "sim/simulation.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "member/kv_machine.h"
#include "member/member.h"
#include "raft/describe.h"
#include "raft/memory_storage.h"
#include "sim/disk.h"
#include "sim/linearizability.h"
#include "sim/network.h"
#include "sim/random.h"
#include "sim/trace.h"

namespace etc::sim {

namespace {

// Nominal tick period: heartbeats every tick, elections after 10-20 ticks.
constexpr Micros kTickPeriodUs = 10'000;
constexpr int64_t kElectionTicks = 10;
// The leader proposes compacting all but the last few revisions this often.
constexpr Micros kCompactionPeriodUs = 250'000;
constexpr kv::Revision kCompactionLagRevisions = 20;
// How often the "operator" retires members that refuse to start.
constexpr Micros kRetirePeriodUs = 100'000;

// Independent random streams, so that adding draws to one component does
// not change the others' choices.
enum Stream : uint64_t {
  kSwarmStream = 1,
  kNetworkStream,
  kClientNetworkStream,
  kClientStream,
  kFaultStream,
  kSnapshotStream,
  kDiskStream = 100,
  kClockStream = 200,
  kRaftSeedStream = 300,
};

class Simulation;

// The key tree with snapshots taken in the background, as the server takes
// them (in a child process): the data is the state at the call, handed to
// the member after a drawn delay (sometimes at once), so that snapshots
// interleave with applies, configuration changes, snapshots from the
// leader, restarts and crashes.
class BackgroundSnapshotMachine : public member::KvMachine {
 public:
  // Runs `deliver` on the member after `delay_us`, unless the member is
  // gone by then.
  using Schedule = std::function<void(Micros delay_us, std::function<void()> deliver)>;
  BackgroundSnapshotMachine(Schedule schedule, Random* random)
      : schedule_(std::move(schedule)), random_(random) {}

  void SnapshotAsync(SnapshotDone done) override {
    std::string data = Snapshot();
    Micros delay_us = random_->Range(0, 3) == 0 ? 0 : random_->Range(1, kMaxSnapshotDelayUs);
    if (delay_us == 0) {
      done(std::move(data));
      return;
    }
    schedule_(delay_us, [done = std::move(done), data = std::move(data)]() mutable {
      done(std::move(data));
    });
  }

 private:
  static constexpr Micros kMaxSnapshotDelayUs = 400'000;
  Schedule schedule_;
  Random* random_;
};

class SimTransport : public member::Transport {
 public:
  using OnSend = std::function<void(const raftpb::Message&)>;
  SimTransport(Network* network, Disk* disk, Trace* trace, OnSend on_send)
      : network_(network), disk_(disk), trace_(trace), on_send_(std::move(on_send)) {}
  void Send(raftpb::Message message) override {
    on_send_(message);
    if (message.type() == raftpb::MSG_SNAP) {
      // Raft keeps only the metadata; the data comes from the snapshot
      // file, read back with the real storage code, as the server does.
      ETC_CHECK(message.snapshot().data().empty()) << "Raft kept snapshot data";
      absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> snapshot =
          disk_->LoadSnapshot(message.snapshot().metadata());
      if (!snapshot.ok()) {
        trace_->Event("snapshot.unreadable", message.from(), 0, [&] {
          return absl::StrCat(message.from(), " cannot send its snapshot at ",
                              message.snapshot().metadata().index(), ": ",
                              snapshot.status().ToString());
        });
        return;
      }
      message.mutable_snapshot()->set_data((*snapshot)->data());
    }
    network_->Send(std::move(message));
  }

 private:
  Network* network_;
  Disk* disk_;
  Trace* trace_;
  OnSend on_send_;
};

struct Process {
  NodeId id = 0;
  // Removed from the configuration and shut down for good, as etcd does.
  bool stopped = false;
  std::unique_ptr<Disk> disk;
  std::unique_ptr<member::KvMachine> machine;
  std::unique_ptr<member::Member> member;
  std::unique_ptr<SimTransport> transport;
  bool crashed = false;
  // A bit was flipped in its stored data: it may rightly refuse to start.
  bool damaged = false;
  uint64_t incarnation = 0;
  // Bumped at every crash, so events scheduled for the dead process stop.
  uint64_t generation = 0;
  Micros tick_period_us = kTickPeriodUs;
  bool paused = false;
  // Ticks the process missed while frozen; it catches up when it wakes, as
  // a host whose timer fires late would (a lease must not outlive a pause).
  int64_t missed_ticks = 0;
  std::deque<std::function<void()>> inbox;
};

struct Client {
  int id = 0;
  Random random{0};
  bool waiting = false;
  // The history entry of the operation in flight and its attempt number
  // (retries after a certain failure reuse the entry).
  size_t op = 0;
  uint64_t attempt = 0;
  Micros deadline_us = 0;
  uint64_t writes = 0;
  std::map<std::string, std::optional<std::string>> last_seen;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : options_(options),
        random_(options.seed),
        trace_(&queue_, options.trace_to),
        network_(&queue_, &trace_, random_.Fork(kNetworkStream), NetworkOptions(),
                 [this](raftpb::Message m) { DeliverMessage(std::move(m)); }),
        client_network_(random_.Fork(kClientNetworkStream)),
        fault_random_(random_.Fork(kFaultStream)),
        snapshot_random_(random_.Fork(kSnapshotStream)) {}

  SimResult Run();

 private:
  // ---- setup ----
  void Setup();
  member::MemberConfig ConfigFor(const Process& process) const;
  // Recovers the member's state from its disk (the real recovery code) and
  // starts it.
  void StartMember(Process& process);
  void ScheduleTick(Process& process, Micros delay_us);

  // ---- members ----
  Process& process(NodeId id) { return *processes_[id - 1]; }
  // Runs `input` now, or queues it if the process is frozen; drops it if dead.
  void RunOn(Process& process, std::function<void()> input);
  void DeliverMessage(raftpb::Message message);
  void AfterInput(Process& process);
  void Crash(Process& process);
  void Restart(Process& process);
  void Pause(Process& process, Micros duration_us);
  void Wake(Process& process, uint64_t generation);
  NodeId Leader();
  void Compact();
  void RetireDamaged();
  // The member leading `term`, if it still does (its log is then that
  // term's leader's log).
  const member::Member* LeaderOfTerm(raft::Term term);
  static uint64_t AttemptTag(size_t op, uint64_t attempt);
  static kvpb::Request KvRequestFor(const lincheck::Operation& op, uint64_t tag);
  void FailCertainFailure(uint64_t tag, NodeId member);

  // ---- faults ----
  void ApplyFault(const Fault& fault);
  void ChangeMembership(raftpb::ConfChange change, const std::string& what);
  void Heal();

  // ---- clients ----
  Micros ClientLatency() {
    return 100 + static_cast<Micros>(client_network_.Exponential(300));
  }
  void IssueNext(Client& client);
  void SendAttempt(Client& client);
  void OnResponse(Client& client, uint64_t attempt, absl::StatusOr<std::string> result);
  void OnTimeout(Client& client, uint64_t attempt);
  void Finish(Client& client);

  void Fail(const std::string& checker, const std::string& message) {
    checker_.Fail(checker, message);
  }
  bool failed() const { return checker_.violation().has_value(); }

  SimOptions options_;
  Random random_;
  EventQueue queue_;
  Trace trace_;
  Network network_;
  Random client_network_;
  Random fault_random_;
  Random snapshot_random_;
  Swarm swarm_;
  std::vector<std::unique_ptr<Process>> processes_;
  std::vector<Client> clients_;
  std::vector<lincheck::Operation> history_;
  // Which history entries are real operations (certain failures are not).
  std::vector<bool> recorded_;
  // Client attempts (see AttemptTag) answered Unavailable, which promises
  // they never take effect, and attempts that did take effect somewhere.
  std::set<uint64_t> certainly_failed_;
  std::set<uint64_t> took_effect_;
  int64_t logical_time_ = 0;
  SafetyChecker checker_;
  bool healed_ = false;
  Micros liveness_deadline_us_ = 0;
  NodeId last_leader_ = 0;
  raft::Term last_leader_term_ = 0;
  // Members removed from the configuration: never re-added under their id.
  std::set<NodeId> removed_;
  uint64_t elections_ = 0;
  uint64_t crashes_ = 0;
};

// ------------------------------------------------------------------ setup --

member::MemberConfig Simulation::ConfigFor(const Process& process) const {
  member::MemberConfig config;
  config.raft.id = process.id;
  config.raft.election_timeout_ticks = kElectionTicks;
  config.raft.heartbeat_interval_ticks = 1;
  config.raft.max_append_payload_bytes = swarm_.max_append_bytes;
  config.raft.random_seed = random_.Fork(kRaftSeedStream + process.id).Next() + process.incarnation;
  config.raft.pre_vote = swarm_.pre_vote;
  config.raft.check_quorum = swarm_.check_quorum;
  config.raft.read_only =
      swarm_.lease_reads ? raft::ReadOnlyOption::kLeaseBased : raft::ReadOnlyOption::kSafe;
  config.raft.max_inflight_msgs = 64;
  config.incarnation = process.incarnation;
  config.snapshot_every_entries = swarm_.snapshot_every_entries;
  config.catch_up_entries = swarm_.catch_up_entries;
  return config;
}

void Simulation::StartMember(Process& process) {
  absl::StatusOr<raft::DurableState> durable = process.disk->Recover();
  if (!durable.ok()) {
    if (process.damaged && durable.status().code() == absl::StatusCode::kDataLoss) {
      // A bit flipped on its disk: refusing to start is the right answer
      // (it must not serve from data it cannot trust). It stays down, and
      // the cluster goes on without it.
      trace_.Event("damaged", process.id, 0, [&] {
        return absl::StrCat(process.id, " refuses to start: ", durable.status().ToString());
      });
      process.crashed = true;
      return;
    }
    Fail("durability", absl::StrCat("member ", process.id, " cannot recover its disk: ",
                                    durable.status().ToString()));
    process.crashed = true;
    return;
  }
  process.machine = std::make_unique<BackgroundSnapshotMachine>(
      [this, &process, generation = process.generation](Micros delay_us,
                                                        std::function<void()> deliver) {
        queue_.After(delay_us, [this, &process, generation, deliver = std::move(deliver)] {
          if (process.generation != generation || process.crashed) return;
          RunOn(process, [this, &process, deliver] {
            deliver();
            AfterInput(process);
          });
        });
      },
      &snapshot_random_);
  process.machine->set_apply_observer(
      [this, id = process.id, machine = process.machine.get()](
          uint64_t, const kvpb::Request& request, const kvpb::Response& response) {
        // The key tree's own invariants (revisions, compaction, lease
        // attachments, watchers), after every request it applies.
        machine->store().CheckInvariants();
        // Did the request change the state? (A failed compare-and-set or an
        // error changes nothing.)
        bool changed = response.error_code() == 0 &&
                       (request.has_put() || (request.has_txn() && response.txn().succeeded()));
        uint64_t tag = request.header().id();
        if (!changed || tag == 0 || !took_effect_.insert(tag).second) return;
        if (certainly_failed_.contains(tag)) FailCertainFailure(tag, id);
      });
  absl::StatusOr<std::unique_ptr<member::Member>> member = member::Member::Start(
      ConfigFor(process), *durable, process.transport.get(), process.disk.get(),
      process.machine.get());
  if (!member.ok()) {
    // What a member persisted must always be enough to restart it.
    Fail("durability", absl::StrCat("member ", process.id, " cannot restart: ",
                                    member.status().ToString()));
    process.crashed = true;
    return;
  }
  process.member = std::move(*member);
  // It recovered (the flipped bit was in data recovery may drop, such as a
  // torn-looking tail that held only a commit index).
  process.damaged = false;
  NodeId id = process.id;
  process.member->set_apply_observer(
      [this, id](const raftpb::Entry& entry) { checker_.OnApply(id, entry); });
  process.disk->set_on_persisted([this, &process, generation = process.generation](uint64_t token) {
    if (process.generation != generation) return;
    RunOn(process, [this, &process, token] {
      process.member->OnPersisted(token);
      AfterInput(process);
    });
  });
  process.crashed = false;
}

void Simulation::ScheduleTick(Process& process, Micros delay_us) {
  queue_.After(delay_us, [this, &process, generation = process.generation] {
    if (process.generation != generation || process.crashed) return;
    if (process.paused) {
      ++process.missed_ticks;
    } else {
      trace_.Mix(process.id);
      process.member->Tick();
      AfterInput(process);
    }
    ScheduleTick(process, process.tick_period_us);
  });
}

void Simulation::Setup() {
  Random swarm_random = random_.Fork(kSwarmStream);
  swarm_ = DrawSwarm(swarm_random, options_.safety_phase_us, options_.voters);
  if (options_.keep_faults.has_value()) {
    std::vector<Fault> kept;
    for (size_t index : *options_.keep_faults) {
      if (index < swarm_.faults.size()) kept.push_back(swarm_.faults[index]);
    }
    swarm_.faults = std::move(kept);
  }
  network_.set_options(swarm_.network);
  trace_.Event("sim.start", options_.seed, swarm_.voters,
               [&] { return absl::StrCat("seed ", options_.seed, ": ", swarm_.Describe()); });

  std::vector<raft::NodeId> voters;
  for (int i = 1; i <= swarm_.voters; ++i) voters.push_back(static_cast<raft::NodeId>(i));
  Random clock_random = random_.Fork(kClockStream);
  int members = swarm_.voters + swarm_.spares;
  for (int i = 1; i <= members; ++i) {
    auto process = std::make_unique<Process>();
    process->id = static_cast<NodeId>(i);
    process->disk = std::make_unique<Disk>(process->id, &queue_, &trace_,
                                           random_.Fork(kDiskStream + i), swarm_.disk);
    process->disk->set_on_durable(
        [this, id = process->id](const std::vector<raftpb::Entry>& entries,
                                 const raft::MemoryStorage& durable) {
          checker_.OnDurable(id, entries, durable);
        });
    process->transport = std::make_unique<SimTransport>(
        &network_, process->disk.get(), &trace_,
        [this, disk = process->disk.get()](const raftpb::Message& message) {
          checker_.CheckPromise(message, disk->durable(), LeaderOfTerm(message.term()));
        });
    double drift = (clock_random.Unit() * 2 - 1) * swarm_.clock_drift_fraction;
    process->tick_period_us = static_cast<Micros>(static_cast<double>(kTickPeriodUs) * (1 + drift));
    // Voters share the bootstrap snapshot; spares start empty and are sent
    // one when they are added.
    raft::MemoryStorage initial =
        i <= swarm_.voters ? raft::MemoryStorage::Bootstrap(voters) : raft::MemoryStorage();
    process->disk->Bootstrap(std::move(initial));
    processes_.push_back(std::move(process));
  }
  for (auto& process : processes_) {
    StartMember(*process);
    // A random phase, so members do not tick in lockstep.
    ScheduleTick(*process, clock_random.Range(1, kTickPeriodUs));
  }
  for (const Fault& fault : swarm_.faults) {
    queue_.At(fault.at_us, [this, fault] {
      if (!healed_) ApplyFault(fault);
    });
  }
  queue_.At(options_.safety_phase_us, [this] { Heal(); });
  queue_.At(kCompactionPeriodUs, [this] { Compact(); });
  queue_.At(kRetirePeriodUs, [this] { RetireDamaged(); });
  Random client_random = random_.Fork(kClientStream);
  clients_.resize(static_cast<size_t>(swarm_.clients));
  for (int i = 0; i < swarm_.clients; ++i) {
    Client& client = clients_[i];
    client.id = i;
    client.random = client_random.Fork(i);
    queue_.At(client.random.Range(0, 20'000), [this, &client] { IssueNext(client); });
  }
}

// ---------------------------------------------------------------- members --

void Simulation::RunOn(Process& process, std::function<void()> input) {
  if (process.crashed || process.member == nullptr) return;
  if (process.paused) {
    process.inbox.push_back(std::move(input));
    return;
  }
  input();
}

void Simulation::DeliverMessage(raftpb::Message message) {
  if (message.to() == 0 || message.to() > processes_.size()) return;
  Process& target = process(message.to());
  trace_.Event("net.deliver", message.from(), message.to(),
               [&] { return raft::DescribeMessage(message); });
  RunOn(target, [this, &target, message = std::move(message)] {
    // Members never send malformed messages; an error here is a bug.
    absl::Status status = target.member->Receive(message);
    if (!status.ok()) {
      Fail("message", absl::StrCat("member ", target.id, " rejected ",
                                   raft::DescribeMessage(message), ": ", status.ToString()));
    }
    AfterInput(target);
  });
}

void Simulation::AfterInput(Process& process) {
  if (process.member == nullptr) return;
  checker_.CheckMember(*process.member);
  // Read straight from the core: this runs after every event, and
  // Member::Status() formats descriptions the hot path does not need.
  const raft::Raft& raft = process.member->node().raft();
  if (process.member->ShouldShutDown()) {
    // It applied its own removal or a peer told it, and its grace period is
    // over: shut down for good.
    trace_.Event("removed", process.id, 0,
                 [&] { return absl::StrCat(process.id, " was removed and shuts down"); });
    Crash(process);
    process.stopped = true;
    return;
  }
  if (raft.role() == raft::Role::kLeader &&
      (raft.id() != last_leader_ || raft.term() != last_leader_term_)) {
    last_leader_ = raft.id();
    last_leader_term_ = raft.term();
    ++elections_;
    trace_.Event("leader", raft.id(), raft.term(), [&] {
      return absl::StrCat(raft.id(), " leads term ", raft.term(), " with ",
                          raft.tracker().config.Describe());
    });
  }
}

void Simulation::Crash(Process& process) {
  if (process.crashed) return;
  trace_.Event("crash", process.id, process.incarnation,
               [&] { return absl::StrCat(process.id, " crashes"); });
  ++crashes_;
  process.member.reset();
  process.machine.reset();
  process.disk->Crash();
  process.crashed = true;
  process.paused = false;
  process.missed_ticks = 0;
  process.inbox.clear();
  ++process.generation;
}

void Simulation::Restart(Process& process) {
  if (!process.crashed || process.stopped) return;
  ++process.incarnation;
  trace_.Event("restart", process.id, process.incarnation,
               [&] { return absl::StrCat(process.id, " restarts from its disk"); });
  StartMember(process);
  if (process.crashed) return;
  ScheduleTick(process, process.tick_period_us);
  AfterInput(process);
}

void Simulation::Pause(Process& process, Micros duration_us) {
  if (process.crashed || process.paused) return;
  trace_.Event("pause", process.id, duration_us,
               [&] { return absl::StrCat(process.id, " freezes for ", duration_us / 1000, "ms"); });
  process.paused = true;
  queue_.After(duration_us, [this, &process, generation = process.generation] {
    Wake(process, generation);
  });
}

void Simulation::Wake(Process& process, uint64_t generation) {
  if (process.generation != generation || !process.paused) return;
  trace_.Event("wake", process.id, process.missed_ticks, [&] {
    return absl::StrCat(process.id, " wakes, ", process.missed_ticks, " ticks late");
  });
  process.paused = false;
  // Time went on while it was frozen: the timer catches up first.
  for (; process.missed_ticks > 0 && !process.crashed; --process.missed_ticks) {
    process.member->Tick();
    AfterInput(process);
  }
  std::deque<std::function<void()>> inbox = std::move(process.inbox);
  process.inbox.clear();
  for (auto& input : inbox) {
    if (process.crashed || process.paused) break;
    input();
  }
}

void Simulation::RetireDamaged() {
  // What an operator does with a member whose disk failed: remove it from
  // the cluster (it never comes back under the same id).
  queue_.After(kRetirePeriodUs, [this] { RetireDamaged(); });
  NodeId leader = Leader();
  if (leader == 0) return;
  raftpb::ConfState conf = process(leader).member->Status().conf_state;
  for (const auto& p : processes_) {
    if (!p->damaged || !p->crashed) continue;
    bool member = std::find(conf.voters().begin(), conf.voters().end(), p->id) != conf.voters().end() ||
                  std::find(conf.learners().begin(), conf.learners().end(), p->id) != conf.learners().end();
    if (!member) continue;
    raftpb::ConfChange change;
    raftpb::ConfChangeSingle* single = change.add_changes();
    single->set_type(raftpb::REMOVE_NODE);
    single->set_node_id(p->id);
    removed_.insert(p->id);
    ChangeMembership(std::move(change), "retire-damaged");
    return;
  }
}

void Simulation::Compact() {
  // As etcd's periodic auto-compaction would: the leader proposes a
  // compaction a little behind its revision, through the log, under
  // whatever faults are running. The outcome is not checked here (the
  // store's invariants and the clients' reads are).
  queue_.After(kCompactionPeriodUs, [this] { Compact(); });
  NodeId leader = Leader();
  if (leader == 0) return;
  Process& process = this->process(leader);
  if (process.crashed || process.paused || process.member == nullptr) return;
  kv::Revision revision = process.machine->store().revision();
  if (revision <= kCompactionLagRevisions) return;
  kvpb::Request request;
  request.mutable_compaction()->set_revision(revision - kCompactionLagRevisions);
  trace_.Event("compact", leader, static_cast<uint64_t>(revision - kCompactionLagRevisions),
               [&] { return absl::StrCat("member ", leader, " proposes compaction to ",
                                         revision - kCompactionLagRevisions); });
  process.member->Write(request.SerializeAsString(), [](absl::StatusOr<std::string>) {});
  AfterInput(process);
}

NodeId Simulation::Leader() {
  NodeId leader = 0;
  raft::Term term = 0;
  for (auto& process : processes_) {
    if (process->crashed || process->member == nullptr) continue;
    const raft::Raft& raft = process->member->node().raft();
    if (raft.role() == raft::Role::kLeader && raft.term() >= term) {
      leader = raft.id();
      term = raft.term();
    }
  }
  return leader;
}

const member::Member* Simulation::LeaderOfTerm(raft::Term term) {
  NodeId id = checker_.LeaderOfTerm(term);
  if (id == 0) return nullptr;
  Process& leader = process(id);
  if (leader.crashed || leader.member == nullptr) return nullptr;
  const raft::Raft& raft = leader.member->node().raft();
  if (raft.role() != raft::Role::kLeader || raft.term() != term) return nullptr;
  return leader.member.get();
}

// ----------------------------------------------------------------- faults --

void Simulation::ApplyFault(const Fault& fault) {
  trace_.Event("fault", static_cast<uint64_t>(fault.kind), fault.a,
               [&] { return fault.Describe(); });
  int members = static_cast<int>(processes_.size());
  auto unblock_later = [this](std::vector<std::pair<NodeId, NodeId>> links, Micros after_us) {
    queue_.After(after_us, [this, links] {
      if (healed_) return;
      for (auto [from, to] : links) network_.Unblock(from, to);
    });
  };
  auto isolate = [&](NodeId node) {
    std::vector<std::pair<NodeId, NodeId>> links;
    for (NodeId other = 1; other <= static_cast<NodeId>(members); ++other) {
      if (other == node) continue;
      network_.BlockBothWays(node, other);
      links.push_back({node, other});
      links.push_back({other, node});
    }
    unblock_later(links, fault.duration_us);
  };
  switch (fault.kind) {
    case FaultKind::kPartition: {
      std::vector<std::pair<NodeId, NodeId>> links;
      for (NodeId a = 1; a <= static_cast<NodeId>(members); ++a) {
        for (NodeId b = 1; b <= static_cast<NodeId>(members); ++b) {
          bool a_side = (fault.mask >> (a - 1)) & 1;
          bool b_side = (fault.mask >> (b - 1)) & 1;
          if (a_side && !b_side) {
            network_.BlockBothWays(a, b);
            links.push_back({a, b});
            links.push_back({b, a});
          }
        }
      }
      unblock_later(links, fault.duration_us);
      break;
    }
    case FaultKind::kIsolate:
      isolate(fault.a);
      break;
    case FaultKind::kIsolateLeader:
      if (NodeId leader = Leader(); leader != 0) isolate(leader);
      break;
    case FaultKind::kOneWay:
      network_.Block(fault.a, fault.b);
      unblock_later({{fault.a, fault.b}}, fault.duration_us);
      break;
    case FaultKind::kFlap: {
      // Down and up every 5-50ms for the fault's duration.
      Micros period_us = fault_random_.Range(5'000, 50'000);
      for (Micros t = 0; t < fault.duration_us; t += 2 * period_us) {
        queue_.After(t, [this, fault] {
          if (!healed_) network_.BlockBothWays(fault.a, fault.b);
        });
        queue_.After(t + period_us, [this, fault] {
          if (!healed_) network_.UnblockBothWays(fault.a, fault.b);
        });
      }
      break;
    }
    case FaultKind::kClog:
      network_.Clog(fault.a, queue_.now_us() + fault.duration_us);
      break;
    case FaultKind::kCrash:
    case FaultKind::kCrashLeader: {
      NodeId victim = fault.kind == FaultKind::kCrash ? fault.a : Leader();
      if (victim == 0) break;
      Process& target = process(victim);
      Crash(target);
      queue_.After(fault.duration_us, [this, &target] {
        if (!healed_) Restart(target);
      });
      break;
    }
    case FaultKind::kPause:
      Pause(process(fault.a), fault.duration_us);
      break;
    case FaultKind::kDiskStall: {
      // Up to a second: long enough for a new leader to overwrite what the
      // member is still writing, short enough to end within the liveness
      // phase's grace.
      Process& target = process(fault.a);
      target.disk->StallUntil(queue_.now_us() + std::min<Micros>(fault.duration_us, 1'000'000));
      trace_.Event("disk.stall", fault.a, fault.duration_us, [&] {
        return absl::StrCat(fault.a, "'s disk hangs for ",
                            std::min<Micros>(fault.duration_us, 1'000'000) / 1000, "ms");
      });
      break;
    }
    case FaultKind::kBitFlip: {
      // At most one damaged member, and only where the others keep a
      // majority without it.
      NodeId leader = Leader();
      if (leader == 0 || fault.a == leader) break;
      for (const auto& p : processes_) {
        if (p->damaged) return;
      }
      raftpb::ConfState conf = process(leader).member->Status().conf_state;
      // A voter only where, even after the one change that may be pending,
      // the others keep a majority without it (later removals take it first).
      bool voter = std::find(conf.voters().begin(), conf.voters().end(), fault.a) !=
                   conf.voters().end();
      if (conf.voters_outgoing_size() > 0 || (voter && conf.voters_size() < 4)) break;
      Process& target = process(fault.a);
      if (target.stopped || removed_.contains(target.id)) break;
      Crash(target);
      std::string file = target.disk->FlipBitInLog();
      if (file.empty()) break;
      target.damaged = true;
      trace_.Event("disk.flip", target.id, 0,
                   [&] { return absl::StrCat("a bit flips in ", target.id, "'s ", file); });
      queue_.After(fault.duration_us, [this, &target] { Restart(target); });
      break;
    }
    case FaultKind::kStallAndSplit: {
      // Raft-traps #19 on purpose: the follower keeps appending (and
      // acknowledging, in memory) what the old leader sends while its disk
      // hangs; the majority side elects a leader without those entries,
      // and once the split heals that leader overwrites them while the
      // follower's old write is still in flight.
      NodeId leader = Leader();
      if (leader == 0) break;
      NodeId follower = fault.a;
      if (follower == leader || process(follower).crashed || process(follower).member == nullptr) {
        break;
      }
      Micros stall_us = std::clamp<Micros>(fault.duration_us, 200'000, 1'000'000);
      process(follower).disk->StallUntil(queue_.now_us() + stall_us);
      std::vector<std::pair<NodeId, NodeId>> links;
      for (NodeId a : {leader, follower}) {
        for (NodeId b = 1; b <= static_cast<NodeId>(members); ++b) {
          if (b == leader || b == follower) continue;
          network_.BlockBothWays(a, b);
          links.push_back({a, b});
          links.push_back({b, a});
        }
      }
      unblock_later(links, stall_us / 2);
      break;
    }
    case FaultKind::kSlow: {
      Micros extra_us = fault_random_.Range(2'000, 20'000);
      for (NodeId other = 1; other <= static_cast<NodeId>(members); ++other) {
        if (other == fault.a) continue;
        network_.SlowLink(fault.a, other, extra_us);
        network_.SlowLink(other, fault.a, extra_us);
      }
      process(fault.a).disk->set_options(
          DiskOptions{swarm_.disk.fsync_min_us + extra_us, swarm_.disk.fsync_tail_mean_us * 4,
                      swarm_.disk.torn_write_probability});
      queue_.After(fault.duration_us, [this, fault] {
        for (NodeId other = 1; other <= processes_.size(); ++other) {
          network_.SlowLink(fault.a, other, 0);
          network_.SlowLink(other, fault.a, 0);
        }
        process(fault.a).disk->set_options(swarm_.disk);
      });
      break;
    }
    case FaultKind::kAddLearner:
    case FaultKind::kPromote:
    case FaultKind::kRemoveVoter:
    case FaultKind::kReplaceVoter: {
      NodeId leader = Leader();
      if (leader == 0) break;
      raftpb::ConfState conf = process(leader).member->Status().conf_state;
      auto contains = [](const auto& list, NodeId id) {
        return std::find(list.begin(), list.end(), id) != list.end();
      };
      raftpb::ConfChange change;
      auto add = [&](raftpb::ConfChangeType type, NodeId id) {
        raftpb::ConfChangeSingle* single = change.add_changes();
        single->set_type(type);
        single->set_node_id(id);
      };
      NodeId spare = 0;
      for (NodeId id = 1; id <= static_cast<NodeId>(members); ++id) {
        if (!contains(conf.voters(), id) && !contains(conf.learners(), id) &&
            !contains(conf.voters_outgoing(), id) && !removed_.contains(id) &&
            !process(id).damaged) {
          spare = id;
          break;
        }
      }
      if (fault.kind == FaultKind::kAddLearner) {
        if (spare == 0) break;
        add(raftpb::ADD_LEARNER_NODE, spare);
      } else if (fault.kind == FaultKind::kPromote) {
        if (conf.learners_size() == 0) break;
        NodeId learner = conf.learners(static_cast<int>(fault_random_.Uniform(conf.learners_size())));
        // Never promote a member that refuses to start.
        if (process(learner).damaged) break;
        add(raftpb::ADD_NODE, learner);
      } else {
        if (conf.voters_size() < 2) break;
        NodeId victim = conf.voters(static_cast<int>(fault_random_.Uniform(conf.voters_size())));
        // A member that refuses to start for damaged data is the one to go
        // (removing another could leave a majority that needs it).
        for (NodeId id : conf.voters()) {
          if (process(id).damaged) victim = id;
        }
        add(raftpb::REMOVE_NODE, victim);
        if (fault.kind == FaultKind::kReplaceVoter) {
          if (spare == 0) break;
          add(raftpb::ADD_NODE, spare);
        }
        // A removed member never comes back under the same id: messages of
        // its earlier life could be taken for the new one's.
        removed_.insert(victim);
      }
      ChangeMembership(std::move(change), FaultKindName(fault.kind));
      break;
    }
    case FaultKind::kTransferLeader: {
      NodeId leader = Leader();
      if (leader == 0) break;
      raftpb::ConfState conf = process(leader).member->Status().conf_state;
      if (conf.voters_size() < 2) break;
      NodeId to = conf.voters(static_cast<int>(fault_random_.Uniform(conf.voters_size())));
      Process& from = process(leader);
      RunOn(from, [this, &from, to] {
        (void)from.member->TransferLeadership(to);
        AfterInput(from);
      });
      break;
    }
    case FaultKind::kSnapshotNow: {
      Process& target = process(fault.a);
      RunOn(target, [this, &target] {
        target.member->SnapshotNow();
        AfterInput(target);
      });
      break;
    }
  }
}

void Simulation::ChangeMembership(raftpb::ConfChange change, const std::string& what) {
  NodeId leader = Leader();
  if (leader == 0) return;
  std::string description = raft::DescribeEntry([&] {
    raftpb::Entry entry;
    entry.set_type(raftpb::ENTRY_CONF_CHANGE);
    entry.set_data(change.SerializeAsString());
    return entry;
  }());
  Process& target = process(leader);
  RunOn(target, [this, &target, what, description, change = std::move(change)]() mutable {
    target.member->ChangeMembership(
        std::move(change), [this, what, description](absl::StatusOr<std::string> result) {
          trace_.Event("membership", result.ok(), 0, [&] {
            return absl::StrCat(what, " ", description, ": ",
                                result.ok() ? *result : result.status().ToString());
          });
        });
    AfterInput(target);
  });
}

void Simulation::Heal() {
  trace_.Event("heal", 0, 0, [] { return std::string("every fault heals"); });
  healed_ = true;
  network_.Heal();
  NetworkOptions calm = network_.options();
  calm.loss_probability = 0;
  calm.duplicate_probability = 0;
  calm.reorder = false;
  network_.set_options(calm);
  for (auto& process : processes_) {
    process->disk->set_options(swarm_.disk);
    process->disk->StallUntil(0);
    if (process->paused) Wake(*process, process->generation);
    if (process->crashed && !failed()) Restart(*process);
  }
  liveness_deadline_us_ = queue_.now_us() + options_.liveness_grace_us;
}

// ---------------------------------------------------------------- clients --

void Simulation::IssueNext(Client& client) {
  if (failed()) return;
  lincheck::Operation op;
  op.client = client.id;
  op.key = absl::StrCat("k", client.random.Uniform(static_cast<uint64_t>(swarm_.keys)));
  uint64_t roll = client.random.Uniform(100);
  if (roll < 50) {
    op.kind = lincheck::OpKind::kRead;
  } else if (roll < 85) {
    op.kind = lincheck::OpKind::kWrite;
    op.value = absl::StrCat("c", client.id, ".", ++client.writes);
  } else {
    op.kind = lincheck::OpKind::kCas;
    op.value = absl::StrCat("c", client.id, ".", ++client.writes);
    // Expect what this client last saw, so some CASes succeed.
    auto seen = client.last_seen.find(op.key);
    if (seen != client.last_seen.end()) op.expected = seen->second;
  }
  op.outcome = lincheck::Outcome::kUnknown;
  op.invoke_time = ++logical_time_;
  client.op = history_.size();
  history_.push_back(std::move(op));
  recorded_.push_back(true);
  client.waiting = true;
  client.deadline_us = queue_.now_us() + swarm_.client_timeout_us;
  trace_.Event("client.invoke", static_cast<uint64_t>(client.id), client.op,
               [&] {
                 return absl::StrCat("client ", client.id, " invokes op ", client.op, ": ",
                                     history_[client.op].key, " ",
                                     lincheck::Describe(history_[client.op]));
               });
  queue_.At(client.deadline_us, [this, &client, op = client.op] {
    if (client.waiting && client.op == op) OnTimeout(client, client.attempt);
  });
  SendAttempt(client);
}

void Simulation::SendAttempt(Client& client) {
  uint64_t attempt = ++client.attempt;
  // Like etcd's client syncing its endpoints from the member list, clients
  // address the members of the current configuration.
  std::vector<NodeId> members;
  if (NodeId leader = Leader(); leader != 0) {
    // Every voter and learner has a progress entry at the leader.
    for (const auto& [id, progress] : process(leader).member->node().raft().tracker().progress) {
      members.push_back(id);
    }
  }
  NodeId target = members.empty() ? 1 + client.random.Uniform(processes_.size())
                                   : members[client.random.Uniform(members.size())];
  const lincheck::Operation op = history_[client.op];
  uint64_t tag = AttemptTag(client.op, attempt);
  queue_.After(ClientLatency(), [this, &client, attempt, target, op, tag] {
    Process& process = this->process(target);
    auto reply = [this, &client, attempt, tag, target](absl::StatusOr<std::string> result) {
      if (result.status().code() == absl::StatusCode::kUnavailable) {
        certainly_failed_.insert(tag);
        if (took_effect_.contains(tag)) FailCertainFailure(tag, target);
      }
      queue_.After(ClientLatency(), [this, &client, attempt, result = std::move(result)] {
        OnResponse(client, attempt, result);
      });
    };
    trace_.Event("client.send", static_cast<uint64_t>(client.id), target, [&] {
      return absl::StrCat("client ", client.id, " attempt ", attempt, " of op ", client.op,
                          " reaches member ", target);
    });
    if (process.crashed || process.member == nullptr) {
      // Nothing listens there: the connection is refused at once.
      reply(absl::UnavailableError("connection refused"));
      return;
    }
    RunOn(process, [this, &process, op, reply, tag] {
      kvpb::Request request = KvRequestFor(op, tag);
      if (op.kind == lincheck::OpKind::kRead) {
        process.member->Read(request.SerializeAsString(), reply);
      } else {
        process.member->Write(request.SerializeAsString(), reply);
      }
      AfterInput(process);
    });
  });
}

kvpb::Request Simulation::KvRequestFor(const lincheck::Operation& op, uint64_t tag) {
  kvpb::Request request;
  request.mutable_header()->set_id(tag);
  switch (op.kind) {
    case lincheck::OpKind::kRead:
      request.mutable_range()->set_key(op.key);
      break;
    case lincheck::OpKind::kWrite:
      request.mutable_put()->set_key(op.key);
      request.mutable_put()->set_value(op.value);
      break;
    case lincheck::OpKind::kCas: {
      // Compare-and-set as etcd clients write it: a txn comparing the value
      // (or, for "absent", the version with 0), then a put.
      etcdserverpb::TxnRequest* txn = request.mutable_txn();
      etcdserverpb::Compare* compare = txn->add_compare();
      compare->set_key(op.key);
      compare->set_result(etcdserverpb::Compare::EQUAL);
      if (op.expected.has_value()) {
        compare->set_target(etcdserverpb::Compare::VALUE);
        compare->set_value(*op.expected);
      } else {
        compare->set_target(etcdserverpb::Compare::VERSION);
        compare->set_version(0);
      }
      etcdserverpb::PutRequest* put = txn->add_success()->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      break;
    }
  }
  return request;
}

uint64_t Simulation::AttemptTag(size_t op, uint64_t attempt) {
  // Unique per attempt (attempts per operation stay far below 2^20); 0 is
  // "no tag".
  return (static_cast<uint64_t>(op) + 1) << 20 | (attempt & 0xFFFFF);
}

void Simulation::FailCertainFailure(uint64_t tag, NodeId member) {
  size_t op = (tag >> 20) - 1;
  Fail("certain-failure",
       absl::StrCat("attempt ", tag & 0xFFFFF, " of client ", history_[op].client, "'s op ", op,
                    " (", history_[op].key, " ", lincheck::Describe(history_[op]),
                    ") was answered Unavailable, which promises it never takes effect, but it "
                    "did (seen at member ",
                    member, ")"));
}

void Simulation::OnResponse(Client& client, uint64_t attempt, absl::StatusOr<std::string> result) {
  if (!client.waiting || attempt != client.attempt || failed()) return;
  lincheck::Operation& op = history_[client.op];
  if (!result.ok()) {
    trace_.Event("client.error", static_cast<uint64_t>(client.id), client.op, [&] {
      return absl::StrCat("client ", client.id, " op ", client.op, ": ",
                          result.status().ToString());
    });
    if (result.status().code() == absl::StatusCode::kUnavailable) {
      // It certainly did not happen: retry elsewhere, after a short backoff,
      // until the deadline.
      queue_.After(client.random.Range(2'000, 10'000), [this, &client, attempt] {
        if (client.waiting && client.attempt == attempt && !failed()) SendAttempt(client);
      });
    }
    // Anything else leaves the outcome unknown; the timeout records it.
    return;
  }
  kvpb::Response response;
  if (!response.ParseFromString(*result) || response.error_code() != 0) {
    // The key tree refused a well-formed request: a bug, not a fault.
    Fail("client", absl::StrCat("op ", client.op, " got an error from the key tree: ",
                                response.error_message()));
    return;
  }
  switch (op.kind) {
    case lincheck::OpKind::kRead: {
      if (!response.has_range() || response.range().kvs_size() > 1) {
        Fail("client", "malformed read answer");
        return;
      }
      if (response.range().kvs_size() == 1) {
        op.read_result = response.range().kvs(0).value();
      } else {
        op.read_result = std::nullopt;
      }
      client.last_seen[op.key] = op.read_result;
      break;
    }
    case lincheck::OpKind::kWrite:
      client.last_seen[op.key] = op.value;
      break;
    case lincheck::OpKind::kCas:
      op.cas_succeeded = response.txn().succeeded();
      if (op.cas_succeeded) client.last_seen[op.key] = op.value;
      break;
  }
  op.outcome = lincheck::Outcome::kOk;
  op.return_time = ++logical_time_;
  trace_.Event("client.return", static_cast<uint64_t>(client.id), client.op, [&] {
    return absl::StrCat("client ", client.id, " op ", client.op, " returns ", *result);
  });
  Finish(client);
}

void Simulation::OnTimeout(Client& client, uint64_t attempt) {
  if (failed()) return;
  lincheck::Operation& op = history_[client.op];
  trace_.Event("client.timeout", static_cast<uint64_t>(client.id), client.op,
               [&] { return absl::StrCat("client ", client.id, " op ", client.op, " timed out"); });
  if (healed_ && queue_.now_us() - swarm_.client_timeout_us >= liveness_deadline_us_) {
    Fail("liveness", absl::StrCat("client ", client.id, "'s operation on ", op.key,
                                  " invoked after faults healed did not complete within ",
                                  swarm_.client_timeout_us / 1000, "ms"));
    return;
  }
  // A read that got no answer had no effect; forget it. A write stays in the
  // history with an unknown outcome: it may still take effect.
  if (op.kind == lincheck::OpKind::kRead) recorded_[client.op] = false;
  Finish(client);
}

void Simulation::Finish(Client& client) {
  client.waiting = false;
  queue_.After(static_cast<Micros>(client.random.Exponential(2'000)),
               [this, &client] { IssueNext(client); });
}

// -------------------------------------------------------------------- run --

SimResult Simulation::Run() {
  Setup();
  Micros end_us = options_.safety_phase_us + options_.liveness_phase_us;
  while (!failed() && !queue_.empty() && queue_.next_time_us() <= end_us) queue_.RunNext();

  SimResult result;
  if (!failed()) {
    if (Leader() == 0) {
      Fail("liveness", "no leader at the end of the liveness phase");
    }
  }
  if (!failed()) {
    std::vector<lincheck::Operation> history;
    for (size_t i = 0; i < history_.size(); ++i) {
      if (recorded_[i]) history.push_back(history_[i]);
    }
    lincheck::CheckResult check = lincheck::Check(history);
    if (check.verdict == lincheck::Verdict::kViolation) {
      for (const lincheck::KeyResult& key : check.keys) {
        if (key.verdict != lincheck::Verdict::kViolation) continue;
        Fail("linearizability",
             absl::StrCat("the history of key ", key.key, " (", key.operations,
                          " operations) is not linearizable"));
        result.timeline_html = lincheck::RenderHtml(history, key);
        break;
      }
    }
  }
  for (auto& process : processes_) {
    if (process->member == nullptr) {
      absl::StrAppend(&result.final_state, "  member ", process->id,
                      process->stopped ? ": removed, shut down\n" : ": crashed\n");
      continue;
    }
    raft::NodeStatus status = process->member->Status();
    absl::StrAppend(&result.final_state, "  member ", process->id, ": ", raft::RoleName(status.role),
                    " term ", status.term, " leader ", status.leader, " commit ", status.commit,
                    " applied ", status.applied, " ", status.config,
                    process->paused ? " (paused)" : "", "\n");
  }
  result.violation = checker_.violation();
  result.events = queue_.events_run();
  result.sim_time_us = queue_.now_us();
  trace_.Mix(result.events);
  result.trace_hash = trace_.hash();
  result.swarm = swarm_;
  result.elections = elections_;
  result.crashes = crashes_;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (!recorded_[i]) continue;
    ++result.operations;
    if (history_[i].outcome == lincheck::Outcome::kOk) {
      ++result.operations_ok;
    } else {
      ++result.operations_unknown;
    }
  }
  return result;
}

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  Simulation simulation(options);
  return simulation.Run();
}

}  // namespace etc::sim
