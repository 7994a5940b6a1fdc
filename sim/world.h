// The simulated cluster's processes and what they share: one event queue of
// virtual time, the trace, the network, and the safety checker. Each
// process hosts the very member the server hosts (member::KvMember: the
// Raft member, the key tree and the host policies) on a simulated disk
// (the real storage code), a simulated transport and a drifting clock.
// World runs the processes' lives (start, tick, crash, restart, pause,
// wake) and tells the workloads and checkers what they apply.
//
//   World world(options, swarm);
//   world.AddProcesses();          // voters bootstrap, spares start empty
//   world.add_apply_observer([](Process& p, uint64_t index, auto& request, auto& response) {});
//   world.RunOn(world.process(1), [&] { world.process(1).kv->Write(...); });
#ifndef ETC_SIM_WORLD_H_
#define ETC_SIM_WORLD_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kv/kvpb/kvpb.pb.h"
#include "member/clock.h"
#include "member/file_value_store.h"
#include "member/kv_machine.h"
#include "member/kv_member.h"
#include "sim/checkers.h"
#include "sim/disk.h"
#include "sim/event_queue.h"
#include "sim/faults.h"
#include "sim/network.h"
#include "sim/random.h"
#include "sim/trace.h"

namespace etc::sim {

// Nominal tick period: heartbeats every tick, elections after 10-20 ticks.
inline constexpr Micros kTickPeriodUs = 10'000;
inline constexpr int64_t kElectionTicks = 10;
// The members' policies' periods, scaled to the simulator's 10 ms tick as
// the server's are to its 100 ms one.
inline constexpr int64_t kRequestTimeoutMs = 1'000;
inline constexpr int64_t kLeaseCheckIntervalMs = 100;

// Independent random streams, so that adding draws to one component does
// not change the others' choices.
enum Stream : uint64_t {
  kSwarmStream = 1,
  kNetworkStream,
  kClientNetworkStream,
  kClientStream,
  kFaultStream,
  kSnapshotStream,
  kLeaseStream,
  kWatchStream,
  kAuthStream,
  kDamageStream,
  kDiskStream = 100,
  kClockStream = 200,
  kRaftSeedStream = 300,
};

// A process's monotonic clock: virtual time at the process's own rate
// (its drift), as the server's steady clock is the machine's.
class SimClock : public member::Clock {
 public:
  SimClock(const EventQueue* queue, double rate) : queue_(queue), rate_(rate) {}
  int64_t now_ms() override { return static_cast<int64_t>(scaled_us()) / 1000; }
  // From now on the clock runs at `rate` (a skew a test injects), without
  // jumping.
  void set_rate(double rate) {
    origin_scaled_us_ = scaled_us();
    origin_us_ = queue_->now_us();
    rate_ = rate;
  }

 private:
  double scaled_us() const {
    return static_cast<double>(queue_->now_us() - origin_us_) * rate_ + origin_scaled_us_;
  }
  const EventQueue* queue_;
  double rate_;
  Micros origin_us_ = 0;
  double origin_scaled_us_ = 0;
};

// Background work (the key tree's snapshots, whole-tree hashes) as the
// server runs it in a child process: computed over the state at the call,
// handed to the member after a drawn delay (sometimes at once), so that it
// interleaves with applies, configuration changes, snapshots from the
// leader, restarts and crashes.
class SimBackgroundRunner : public member::BackgroundRunner {
 public:
  // Runs `deliver` on the member after `delay_us`, unless the member is
  // gone by then.
  using Schedule = std::function<void(Micros delay_us, std::function<void()> deliver)>;
  SimBackgroundRunner(Schedule schedule, Random* random)
      : schedule_(std::move(schedule)), random_(random) {}
  void Run(std::function<std::string()> compute, size_t size_hint_bytes, Done done) override;

 private:
  static constexpr Micros kMaxDelayUs = 400'000;
  Schedule schedule_;
  Random* random_;
};

class SimTransport : public member::Transport {
 public:
  using OnSend = std::function<void(const raftpb::Message&)>;
  SimTransport(Network* network, Disk* disk, Trace* trace, OnSend on_send)
      : network_(network), disk_(disk), trace_(trace), on_send_(std::move(on_send)) {}
  void Send(raftpb::Message message) override;

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
  std::unique_ptr<SimClock> clock;
  std::unique_ptr<SimBackgroundRunner> runner;
  // The key tree's values, in a value log on the member's disk.
  std::unique_ptr<member::FileValueStore> values;
  std::unique_ptr<member::KvMachine> machine;
  std::unique_ptr<member::KvMember> kv;
  std::unique_ptr<SimTransport> transport;
  bool crashed = false;
  // A bit was flipped in its stored data: it may rightly refuse to start,
  // else it repairs from the leader and is damaged until it finished.
  bool damaged = false;
  // It refused to start for damaged data, or stopped because a quorum was
  // damaged: it stays down for the operator (FaultInjector::RetireDamaged).
  bool unrecoverable = false;
  uint64_t incarnation = 0;
  // Bumped at every crash, so events scheduled for the dead process stop.
  uint64_t generation = 0;
  Micros tick_period_us = kTickPeriodUs;
  bool paused = false;
  // Ticks the process missed while frozen; it catches up when it wakes, as
  // a host whose timer fires late would (a lease must not outlive a pause).
  int64_t missed_ticks = 0;
  std::deque<std::function<void()>> inbox;

  // Running and able to take input (it may be paused: see World::RunOn).
  bool up() const { return !crashed && kv != nullptr; }
  member::Member* member() { return kv == nullptr ? nullptr : &kv->member(); }
  kv::Store& store() { return machine->store(); }
};

struct SimOptions;

class World {
 public:
  World(const SimOptions& options, const Swarm& swarm, Random* root, FILE* trace_to);

  // ---- setup ----
  // The key tree's state in the voters' bootstrap snapshot (before
  // AddProcesses; empty: an empty tree).
  void set_bootstrap_key_tree(std::string state) { bootstrap_key_tree_ = std::move(state); }
  void AddProcesses();
  // Told about every request any member's key tree applies, after its own
  // invariants were checked.
  using ApplyObserver = std::function<void(Process&, uint64_t index, const kvpb::Request&,
                                           const kvpb::Response&)>;
  void add_apply_observer(ApplyObserver observer) { apply_observers_.push_back(std::move(observer)); }
  // Called after every input a running member took.
  void add_after_input(std::function<void(Process&)> hook) { after_input_.push_back(std::move(hook)); }

  // ---- processes ----
  std::vector<std::unique_ptr<Process>>& processes() { return processes_; }
  Process& process(NodeId id) { return *processes_[id - 1]; }
  // Runs `input` now (then the after-input checks), or queues it if the
  // process is frozen; drops it if the process is down.
  void RunOn(Process& process, std::function<void()> input);
  void Crash(Process& process);
  void Restart(Process& process);
  void Pause(Process& process, Micros duration_us);
  void Wake(Process& process, uint64_t generation);
  // The running leader of the highest term (0: none).
  NodeId Leader();
  // The member leading `term`, if it still does (its log is then that
  // term's leader's log).
  const member::Member* LeaderOfTerm(raft::Term term);
  // The members of the leader's configuration (voters and learners).
  std::vector<NodeId> Members();

  // ---- shared ----
  EventQueue& queue() { return queue_; }
  Trace& trace() { return trace_; }
  Network& network() { return network_; }
  SafetyChecker& checker() { return checker_; }
  const Swarm& swarm() const { return swarm_; }
  void Fail(const std::string& checker, const std::string& message) {
    checker_.Fail(checker, message);
  }
  bool failed() const { return checker_.violation().has_value(); }
  // A member stopped because a quorum of voters was damaged at once (the
  // cluster is down for the operator): liveness is no longer checked.
  bool quorum_lost_to_damage() const { return quorum_lost_to_damage_; }
  // Every fault has healed.
  bool healed() const { return healed_; }
  void set_healed() { healed_ = true; }
  // Members removed from the configuration: never re-added under their id.
  std::set<NodeId>& removed() { return removed_; }
  uint64_t elections() const { return elections_; }
  uint64_t crashes() const { return crashes_; }
  // The clock rate drift bound of the run (see Swarm).
  double clock_drift_fraction() const { return swarm_.clock_drift_fraction; }

 private:
  member::MemberConfig ConfigFor(const Process& process) const;
  member::KvMemberOptions KvOptionsFor(const Process& process) const;
  // Recovers the member's state from its disk (the real recovery code) and
  // starts it.
  void StartMember(Process& process);
  void ScheduleTick(Process& process, Micros delay_us);
  void DeliverMessage(raftpb::Message message);
  void AfterInput(Process& process);
  void ObserveApply(Process& process, uint64_t index, const kvpb::Request& request,
                    const kvpb::Response& response);

  const SimOptions& options_;
  const Swarm& swarm_;
  Random* root_;
  EventQueue queue_;
  Trace trace_;
  Network network_;
  Random snapshot_random_;
  SafetyChecker checker_;
  std::string bootstrap_key_tree_;
  std::vector<std::unique_ptr<Process>> processes_;
  std::vector<ApplyObserver> apply_observers_;
  std::vector<std::function<void(Process&)>> after_input_;
  // The key tree's hash after each applied index, as the first member to
  // apply it had it: every other member must have the same.
  std::map<uint64_t, uint64_t> hash_at_index_;
  bool healed_ = false;
  bool quorum_lost_to_damage_ = false;
  std::set<NodeId> removed_;
  NodeId last_leader_ = 0;
  raft::Term last_leader_term_ = 0;
  uint64_t elections_ = 0;
  uint64_t crashes_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_WORLD_H_
