// The simulated client of sim/testing.h: client::ClientInterface over a
// simulated cluster (sim/world.h), for a program running on a
// CooperativeThread. A call sends its request over the simulated
// client-to-member network to one member (the real member code answers it,
// as the server would), and blocks the program until the answer travels
// back or the request timeout passes, while the simulation runs on.
// Failover: a request that certainly had no effect (nothing listened
// there, or the member answered kUnavailable: no leader, leader changed)
// goes to the next member, until the request timeout, as etcd's clientv3
// retries; a request with no answer is never sent again (its outcome is
// unknown, and the caller gets kDeadlineExceeded).
//
// Locks and elections are etcd's recipes (a key per contender under the
// name, the oldest holds it, each waits for the deletion of the one before
// it), run by the client as etcd's v3lock and v3election services run them.
// Keep-alives and watch deliveries happen in the simulation between the
// program's steps; a paused client process (PauseUntil) makes no call and
// renews nothing until it wakes.
#ifndef ETC_SIM_SIM_CLIENT_H_
#define ETC_SIM_SIM_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "client/client_interface.h"
#include "kv/kvpb/kvpb.pb.h"
#include "sim/client_history.h"
#include "sim/cooperative.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {

// The client pauses a run draws, numbered in the order drawn (all of a
// run's clients together), and which of them take effect: all, or those
// kept (a pause left out is still drawn, so nothing else in the run moves).
struct ClientPauses {
  std::optional<std::set<size_t>> keep;
  // Each drawn pause, described.
  std::vector<std::string> drawn;
  // Those that took effect (indices into drawn).
  std::vector<size_t> taken;
};

struct SimClientOptions {
  Micros request_timeout_us = 1'000'000;
  Micros dial_timeout_us = 2'000'000;
  // Before each call the client process may pause (a GC pause, a stopped
  // VM) with this probability, for up to max_pause_us.
  double pause_probability = 0;
  Micros max_pause_us = 0;
  // Where drawn pauses are numbered and filtered (shared by a run's
  // clients); null: every drawn pause takes effect.
  ClientPauses* pauses = nullptr;
};

class SimClient final : public client::ClientInterface {
 public:
  // `history` records the KV calls; `random` drives the client's choices
  // (lease ids, pauses) and `latency` its network.
  SimClient(World* world, int id, SimClientOptions options, Random random, Random latency,
            ClientHistory* history);
  ~SimClient() override;

  // The program the client's calls block; set before the program runs.
  void set_program(CooperativeThread* program) { program_ = program; }
  // Draws no more pauses from now on (set_pause_probability(0)).
  void set_pause_probability(double probability) { options_.pause_probability = probability; }
  // Freezes the client process until `until_us`.
  void PauseUntil(Micros until_us);

  // ---- client::ClientInterface ----
  absl::StatusOr<etcdserverpb::RangeResponse> Range(
      const etcdserverpb::RangeRequest& request) override;
  absl::StatusOr<etcdserverpb::PutResponse> PutRaw(const etcdserverpb::PutRequest& request) override;
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRaw(
      const etcdserverpb::DeleteRangeRequest& request) override;
  absl::StatusOr<etcdserverpb::TxnResponse> TxnRaw(const etcdserverpb::TxnRequest& request) override;
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision,
                                                           bool physical = false) override;
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl_seconds,
                                                         int64_t id = 0) override;
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> RevokeRaw(int64_t id) override;
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(int64_t id,
                                                                   bool keys = false) override;
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveOnceResponse(int64_t id) override;
  std::unique_ptr<client::KeepAlive> KeepAliveForever(int64_t id, int64_t ttl_seconds) override;
  std::unique_ptr<client::Watcher> Watch(
      etcdserverpb::WatchCreateRequest create,
      std::function<void(const etcdserverpb::WatchResponse&)> on_response) override;
  absl::StatusOr<std::string> Lock(const std::string& name, int64_t lease,
                                   std::chrono::milliseconds timeout) override;
  absl::Status Unlock(const std::string& key) override;
  absl::StatusOr<v3electionpb::LeaderKey> Campaign(const std::string& name, int64_t lease,
                                                   const std::string& value,
                                                   std::chrono::milliseconds timeout) override;
  absl::Status Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value) override;
  absl::StatusOr<mvccpb::KeyValue> Leader(const std::string& name) override;
  absl::Status Resign(const v3electionpb::LeaderKey& leader) override;
  void SleepFor(std::chrono::milliseconds duration) override;
  int64_t now_ms() override;

  // ---- for the client's watchers and keep-alives (sim_client_watch.cc) ----
  using Done = std::function<void(absl::StatusOr<kvpb::Response>)>;
  // Something a program waits for, set by an event in the simulation.
  struct Signal {
    void Set() {
      if (set) return;
      set = true;
      if (notify) notify();
    }
    bool set = false;
    std::function<void()> notify;  // wakes the waiting program
  };
  enum class Mode { kWrite, kLinearizableRead, kSerializableRead, kTimeToLive, kKeepAlive };
  // Sends `request` from the simulation's side, failing over as the class
  // comment says until `deadline_us`; `done` runs in the simulation.
  void Send(kvpb::Request request, Mode mode, Micros deadline_us, Done done);
  // The member the client talks to now, and moving on from it.
  NodeId Target();
  void MoveOn(NodeId from);
  Micros Latency() { return 100 + static_cast<Micros>(latency_.Exponential(300)); }
  World* world() { return world_; }
  // Runs `action` in the simulation after `delay_us`, or when the client
  // process wakes if it is paused then.
  void AfterOnClient(Micros delay_us, std::function<void()> action);
  const SimClientOptions& options() const { return options_; }

 private:
  // Blocks the program until `start`'s callback answers or `timeout_us`
  // passes (kDeadlineExceeded). Requires the program's thread.
  absl::StatusOr<kvpb::Response> Await(const std::function<void(Done)>& start, Micros timeout_us);
  // One KV request from the program, recorded in the history.
  absl::StatusOr<kvpb::Response> Call(kvpb::Request request, Mode mode, bool record);
  // What every call does first: refuse a call from outside the program,
  // and maybe pause the client process.
  absl::Status Enter();
  void Dispatch(Process& process, kvpb::Request request, Mode mode, Done reply);
  void LeaseCall(Process& process, const kvpb::Request& request, bool keep_alive, Done reply,
                 int hops);
  // The recipes' wait: until no key under `prefix` older than `revision`
  // is left (or the deadline passes).
  absl::Status WaitDeletes(const std::string& prefix, int64_t revision, Micros deadline_us);
  // Blocks the program until `signal` is set or the deadline passes.
  void AwaitSignal(const std::shared_ptr<Signal>& signal, Micros deadline_us);
  absl::StatusOr<std::pair<std::string, int64_t>> CreateContender(const std::string& name,
                                                                  int64_t lease,
                                                                  const std::string& value);
  void WakeProgram();
  // Runs what waited for the process to wake, in order.
  void ScheduleWake();
  void RunDeferred();

  World* world_;
  int id_;
  SimClientOptions options_;
  Random random_;
  Random latency_;
  ClientHistory* history_;
  CooperativeThread* program_ = nullptr;
  size_t current_ = 0;
  Micros paused_until_us_ = 0;
  // What reached the process while it was frozen, in order, and whether
  // an event will run it.
  std::deque<std::function<void()>> deferred_;
  bool wake_scheduled_ = false;
  // Shared with the events the client scheduled, which may outlive it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace etc::sim

#endif  // ETC_SIM_SIM_CLIENT_H_
