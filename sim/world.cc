#include "sim/world.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/conf_state.h"
#include "raft/describe.h"
#include "raft/memory_storage.h"
#include "sim/simulation.h"

namespace etc::sim {

void SimBackgroundRunner::Run(std::function<std::string()> compute, size_t, Done done) {
  std::string result = compute();
  Micros delay_us = random_->Range(0, 3) == 0 ? 0 : random_->Range(1, kMaxDelayUs);
  if (delay_us == 0) {
    done(std::move(result));
    return;
  }
  schedule_(delay_us, [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void SimTransport::Send(raftpb::Message message) {
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

World::World(const SimOptions& options, const Swarm& swarm, Random* root, FILE* trace_to)
    : options_(options),
      swarm_(swarm),
      root_(root),
      trace_(&queue_, trace_to),
      network_(&queue_, &trace_, root->Fork(kNetworkStream), swarm.network,
               [this](raftpb::Message m) { DeliverMessage(std::move(m)); }),
      snapshot_random_(root->Fork(kSnapshotStream)) {}

// ------------------------------------------------------------------ setup --

member::MemberConfig World::ConfigFor(const Process& process) const {
  member::MemberConfig config;
  config.raft.id = process.id;
  config.raft.election_timeout_ticks = kElectionTicks;
  config.raft.heartbeat_interval_ticks = 1;
  config.raft.max_append_payload_bytes = swarm_.max_append_bytes;
  config.raft.random_seed = root_->Fork(kRaftSeedStream + process.id).Next() + process.incarnation;
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

member::KvMemberOptions World::KvOptionsFor(const Process& process) const {
  member::KvMemberOptions options;
  options.tick_ms = kTickPeriodUs / 1000;
  options.election_ticks = kElectionTicks;
  options.request_timeout_ms = kRequestTimeoutMs;
  options.lease_check_interval_ms = kLeaseCheckIntervalMs;
  // Small, so that leases ending together take several proposals.
  options.max_expired_leases_per_proposal = 8;
  options.watch.max_queued_responses = swarm_.watch_queue_bound;
  options.watch.progress_interval_ms = 200;
  // What the server publishes is its name and URLs; here, a name.
  options.attributes_to_publish = [id = process.id](const std::string&) {
    return absl::StrCat("member-", id);
  };
  return options;
}

void World::AddProcesses() {
  std::vector<raft::NodeId> voters;
  for (int i = 1; i <= swarm_.voters; ++i) voters.push_back(static_cast<raft::NodeId>(i));
  Random clock_random = root_->Fork(kClockStream);
  int members = swarm_.voters + swarm_.spares;
  for (int i = 1; i <= members; ++i) {
    auto process = std::make_unique<Process>();
    process->id = static_cast<NodeId>(i);
    process->disk = std::make_unique<Disk>(process->id, &queue_, &trace_,
                                           root_->Fork(kDiskStream + i), swarm_.disk);
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
    // The clock runs at the rate its ticks do.
    process->clock = std::make_unique<SimClock>(
        &queue_, static_cast<double>(kTickPeriodUs) / static_cast<double>(process->tick_period_us));
    // Voters share the bootstrap snapshot; spares start empty and are sent
    // one when they are added.
    raft::MemoryStorage initial =
        i <= swarm_.voters ? raft::MemoryStorage::Bootstrap(voters) : raft::MemoryStorage();
    if (i <= swarm_.voters && !bootstrap_key_tree_.empty()) {
      initial.snapshot.set_data(member::Member::BootstrapData({}, bootstrap_key_tree_));
    }
    process->disk->Bootstrap(std::move(initial));
    processes_.push_back(std::move(process));
  }
  for (auto& process : processes_) {
    StartMember(*process);
    // A random phase, so members do not tick in lockstep.
    ScheduleTick(*process, clock_random.Range(1, kTickPeriodUs));
  }
}

void World::StartMember(Process& process) {
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
      process.unrecoverable = true;
      return;
    }
    Fail("durability", absl::StrCat("member ", process.id, " cannot recover its disk: ",
                                    durable.status().ToString()));
    process.crashed = true;
    return;
  }
  process.runner = std::make_unique<SimBackgroundRunner>(
      [this, &process, generation = process.generation](Micros delay_us,
                                                        std::function<void()> deliver) {
        queue_.After(delay_us, [this, &process, generation, deliver = std::move(deliver)] {
          if (process.generation != generation || process.crashed) return;
          RunOn(process, deliver);
        });
      },
      &snapshot_random_);
  // The server's value log on the simulated disk, rebuilt at every start
  // as the server's is; small segments and buffer, so that segments fill,
  // move and go within a run and most reads come from the file.
  absl::StatusOr<std::unique_ptr<storage::ValueLog>> value_log = storage::ValueLog::Create(
      process.disk->fs(), "data/member/values",
      {.segment_bytes = 8 * 1024, .write_buffer_bytes = 256});
  if (!value_log.ok()) {
    Fail("durability", absl::StrCat("member ", process.id, " cannot make its value log: ",
                                    value_log.status().ToString()));
    process.crashed = true;
    return;
  }
  process.machine.reset();
  process.values = std::make_unique<member::FileValueStore>(std::move(*value_log), nullptr);
  kv::StoreOptions store_options;
  store_options.values = process.values.get();
  process.machine = std::make_unique<member::KvMachine>(store_options);
  process.machine->set_background_runner(process.runner.get());
  process.machine->set_apply_observer(
      [this, &process](uint64_t index, const kvpb::Request& request,
                       const kvpb::Response& response) {
        ObserveApply(process, index, request, response);
      });
  absl::StatusOr<std::unique_ptr<member::KvMember>> member = member::KvMember::Start(
      KvOptionsFor(process), ConfigFor(process), *durable, process.transport.get(),
      process.disk.get(), process.machine.get(), process.clock.get());
  if (!member.ok()) {
    // What a member persisted must always be enough to restart it.
    Fail("durability", absl::StrCat("member ", process.id, " cannot restart: ",
                                    member.status().ToString()));
    process.crashed = true;
    return;
  }
  process.kv = std::move(*member);
  if (process.damaged && process.disk->flip_must_be_reported() && !durable->damaged) {
    // Records followed the flipped one: they were written after it, so it
    // was no torn write, and cutting the log there loses what it held.
    Fail("durability", absl::StrCat("member ", process.id,
                                    " recovered from a bit flipped inside its log (other "
                                    "records follow it) without reporting damage"));
  }
  // It recovered whole (the flipped bit was in the log's last record,
  // which recovery may take for a torn write), or it repairs from the
  // leader and counts as damaged until it finished (AfterInput).
  process.damaged = durable->damaged;
  if (durable->damaged) {
    trace_.Event("repairing", process.id, 0, [&] {
      return absl::StrCat(process.id, " starts repairing damaged storage from the leader (its log "
                          "kept through entry ", durable->last_index(), ")");
    });
  }
  NodeId id = process.id;
  process.member()->set_apply_observer(
      [this, id](const raftpb::Entry& entry) { checker_.OnApply(id, entry); });
  process.disk->set_on_failed([this, &process, generation = process.generation](
                                  const absl::Status& status) {
    if (process.generation != generation) return;
    // What the server does: stop serving, exit, restart from what is
    // durable (the test or the fault schedule restarts it).
    trace_.Event("disk.failed", process.id, 0, [&] {
      return absl::StrCat(process.id, " exits: ", status.ToString());
    });
    Crash(process);
  });
  process.disk->set_on_persisted([this, &process, generation = process.generation](uint64_t token) {
    if (process.generation != generation) return;
    RunOn(process, [&process, token] { process.member()->OnPersisted(token); });
  });
  process.crashed = false;
}

void World::ObserveApply(Process& process, uint64_t index, const kvpb::Request& request,
                         const kvpb::Response& response) {
  kv::Store& store = process.store();
  // The key tree's own invariants (revisions, compaction, lease
  // attachments, watchers), after every request it applies.
  store.CheckInvariants();
  // Replicas converge: every member that applied an index holds the same
  // replicated state after it (a nondeterministic apply, or a member that
  // skipped or doubled an entry, shows here long before any client read).
  // The digest is kept up to date by the key tree, so this costs no walk;
  // the store's invariants check it against a full one.
  uint64_t hash = store.StateDigest();
  auto [it, first] = hash_at_index_.emplace(index, hash);
  if (!first && it->second != hash) {
    Fail("replica-hash", absl::StrCat("member ", process.id, "'s key tree after index ", index,
                                      " digests to ", hash, ", another member's to ", it->second));
    return;
  }
  for (const ApplyObserver& observer : apply_observers_) observer(process, index, request, response);
}

void World::ScheduleTick(Process& process, Micros delay_us) {
  queue_.After(delay_us, [this, &process, generation = process.generation] {
    if (process.generation != generation || process.crashed) return;
    if (process.paused) {
      ++process.missed_ticks;
    } else {
      trace_.Mix(process.id);
      process.member()->Tick();
      AfterInput(process);
    }
    ScheduleTick(process, process.tick_period_us);
  });
}

// ---------------------------------------------------------------- members --

void World::RunOn(Process& process, std::function<void()> input) {
  if (!process.up()) return;
  if (process.paused) {
    process.inbox.push_back(std::move(input));
    return;
  }
  input();
  AfterInput(process);
}

void World::DeliverMessage(raftpb::Message message) {
  if (message.to() == 0 || message.to() > processes_.size()) return;
  Process& target = process(message.to());
  trace_.Event("net.deliver", message.from(), message.to(),
               [&] { return raft::DescribeMessage(message); });
  RunOn(target, [this, &target, message = std::move(message)] {
    // Members never send malformed messages; an error here is a bug.
    absl::Status status = target.member()->Receive(message);
    if (!status.ok()) {
      Fail("message", absl::StrCat("member ", target.id, " rejected ",
                                   raft::DescribeMessage(message), ": ", status.ToString()));
    }
  });
}

void World::AfterInput(Process& process) {
  if (!process.up()) return;
  // The host's duties after every input: the member's policies (lease
  // expiry, deadlines, publishing) run here exactly as in the server.
  process.kv->AfterStep();
  if (!process.up()) return;
  checker_.CheckMember(*process.member());
  // Read straight from the core: this runs after every event, and
  // Member::Status() formats descriptions the hot path does not need.
  const raft::Raft& raft = process.member()->node().raft();
  if (process.member()->ShouldShutDown()) {
    // It applied its own removal or a peer told it, and its grace period is
    // over: shut down for good.
    trace_.Event("removed", process.id, 0,
                 [&] { return absl::StrCat(process.id, " was removed and shuts down"); });
    Crash(process);
    process.stopped = true;
    return;
  }
  if (process.damaged && raft.majority_damaged()) {
    // What the server does: it stops, naming the damaged file, for the
    // operator to restore. It stays down. Only right if a quorum of the
    // voters is damaged: else it gave up on a repair it could finish.
    raftpb::ConfState conf = process.kv->conf();
    int damaged_voters = 0;
    for (NodeId voter : conf.voters()) damaged_voters += this->process(voter).damaged ? 1 : 0;
    if (damaged_voters < conf.voters_size() / 2 + 1) {
      Fail("liveness", absl::StrCat("member ", process.id, " stopped for a damaged quorum, but ",
                                    damaged_voters, " of its ", conf.voters_size(),
                                    " voters are damaged"));
    }
    trace_.Event("damaged", process.id, 1, [&] {
      return absl::StrCat(process.id, " stops: a quorum of voters is repairing damaged storage");
    });
    quorum_lost_to_damage_ = true;
    Crash(process);
    process.unrecoverable = true;
    return;
  }
  if (process.damaged && !raft.repairing()) {
    process.damaged = false;
    trace_.Event("repaired", process.id, raft.term(), [&] {
      return absl::StrCat(process.id, " finished repairing its storage from leader ", raft.leader(),
                          " at term ", raft.term());
    });
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
  for (const auto& hook : after_input_) hook(process);
}

void World::Crash(Process& process) {
  if (process.crashed) return;
  trace_.Event("crash", process.id, process.incarnation,
               [&] { return absl::StrCat(process.id, " crashes"); });
  ++crashes_;
  // A crash answers nobody: the member and its waiting requests vanish.
  process.kv.reset();
  process.machine.reset();
  process.values.reset();
  process.runner.reset();
  process.disk->Crash();
  process.crashed = true;
  process.paused = false;
  process.missed_ticks = 0;
  process.inbox.clear();
  ++process.generation;
}

void World::Restart(Process& process) {
  if (!process.crashed || process.stopped) return;
  ++process.incarnation;
  trace_.Event("restart", process.id, process.incarnation,
               [&] { return absl::StrCat(process.id, " restarts from its disk"); });
  process.unrecoverable = false;  // StartMember says again if it is
  StartMember(process);
  if (process.crashed) return;
  ScheduleTick(process, process.tick_period_us);
  AfterInput(process);
}

void World::Pause(Process& process, Micros duration_us) {
  if (process.crashed || process.paused) return;
  trace_.Event("pause", process.id, duration_us,
               [&] { return absl::StrCat(process.id, " freezes for ", duration_us / 1000, "ms"); });
  process.paused = true;
  queue_.After(duration_us, [this, &process, generation = process.generation] {
    Wake(process, generation);
  });
}

void World::Wake(Process& process, uint64_t generation) {
  if (process.generation != generation || !process.paused) return;
  trace_.Event("wake", process.id, process.missed_ticks, [&] {
    return absl::StrCat(process.id, " wakes, ", process.missed_ticks, " ticks late");
  });
  process.paused = false;
  // Time went on while it was frozen: the timer catches up first (a lease
  // read must not be served on a stale tick count, see ARCHITECTURE.md).
  for (; process.missed_ticks > 0 && process.up(); --process.missed_ticks) {
    process.member()->Tick();
    AfterInput(process);
  }
  std::deque<std::function<void()>> inbox = std::move(process.inbox);
  process.inbox.clear();
  for (auto& input : inbox) {
    if (!process.up() || process.paused) break;
    input();
    AfterInput(process);
  }
}

NodeId World::Leader() {
  NodeId leader = 0;
  raft::Term term = 0;
  for (auto& process : processes_) {
    if (!process->up()) continue;
    const raft::Raft& raft = process->member()->node().raft();
    if (raft.role() == raft::Role::kLeader && raft.term() >= term) {
      leader = raft.id();
      term = raft.term();
    }
  }
  return leader;
}

const member::Member* World::LeaderOfTerm(raft::Term term) {
  NodeId id = checker_.LeaderOfTerm(term);
  if (id == 0) return nullptr;
  Process& leader = process(id);
  if (!leader.up()) return nullptr;
  const raft::Raft& raft = leader.member()->node().raft();
  if (raft.role() != raft::Role::kLeader || raft.term() != term) return nullptr;
  return leader.member();
}

std::vector<NodeId> World::Members() {
  std::vector<NodeId> members;
  if (NodeId leader = Leader(); leader != 0) {
    for (NodeId id : raft::MembersOf(process(leader).kv->conf())) members.push_back(id);
  }
  return members;
}

}  // namespace etc::sim
