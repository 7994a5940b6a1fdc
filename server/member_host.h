// Hosts one cluster member in the server: one thread owns the member (a
// member::KvMember: the Raft member, the key tree and the policies the
// simulator runs too) and the data directory, and everything else talks to
// it by posting tasks. It feeds the member real time (a tick every
// heartbeat interval) and persists each Ready to the WAL before its
// messages leave (the durability rule).
//
//   auto host = MemberHost::Start(options, &fs, &peers).value();
//   host->Write(request, [](absl::StatusOr<kvpb::Response> r) { ... });
//   host->Post([](MemberHost::Context& c) { c.store().watches()... });
//
// Callbacks run on the member thread: they must be quick and must not block.
#ifndef ETC_SERVER_MEMBER_HOST_H_
#define ETC_SERVER_MEMBER_HOST_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kv/kvpb/kvpb.pb.h"
#include "kv/store.h"
#include "member/errors.h"
#include "member/file_value_store.h"
#include "member/interfaces.h"
#include "member/kv_machine.h"
#include "member/kv_member.h"
#include "member/member.h"
#include "server/fork_runner.h"
#include "server/server_log_store.h"
#include "server/metrics.h"
#include "server/timed_machine.h"
#include "server/peerpb/peer.pb.h"
#include "storage/data_dir.h"

namespace etc::server {

struct MemberHostOptions {
  uint64_t member_id = 1;
  uint64_t cluster_id = 1;
  // The initial voters, for a new cluster's bootstrap.
  std::vector<uint64_t> initial_voters;
  std::string data_dir = "default.etc";
  int64_t tick_ms = 100;             // --heartbeat-interval
  int64_t election_ticks = 10;       // --election-timeout / --heartbeat-interval
  uint64_t snapshot_count = 100000;  // --snapshot-count (etcd 3.4's default)
  kv::StoreOptions store;
  storage::DataDirOptions storage;
  // Values in the heap instead of the value log (<data_dir>/member/values).
  bool values_in_memory = false;
  // A new cluster's initial members' attributes (the bootstrap snapshot).
  std::map<uint64_t, peerpb::MemberAttributes> initial_attributes;
  // This member's name and client URLs, published through the log once it
  // is in the configuration (as etcd publishes them), so every member lists
  // them. Its peer URLs are used only if the cluster has none recorded.
  peerpb::MemberAttributes self;
  // Where to count (nullptr: nowhere).
  Metrics* metrics = nullptr;
  // A client request not answered within this long fails with kUnavailable
  // "etcdserver: request timed out" (its outcome is then unknown, as with
  // etcd, whose timeout is 5 s plus two election timeouts).
  int64_t request_timeout_ms = 7000;
  // Watchers that ask for progress notifications get one this often
  // (etcd's --experimental-watch-progress-notify-interval).
  int64_t watch_progress_interval_ms = 600'000;
};

// The cluster's membership as this member applied it.
struct Membership {
  // Grows with every change.
  uint64_t version = 0;
  raftpb::ConfState conf;
  std::map<uint64_t, peerpb::MemberAttributes> attributes;
  // Members removed by committed changes (their ids are never reused).
  std::set<uint64_t> removed;

  bool Contains(uint64_t id) const;
  bool IsLearner(uint64_t id) const;
  // Voters and learners, by id.
  std::vector<uint64_t> Ids() const;
};

// Writes a new cluster member's first state into a data directory that
// holds none (fresh()): the initial voters, their attributes, and the key
// tree's state (empty, or a snapshot's to restore a backup). Errors: the
// directory already holds a member's data, or cannot be written.
absl::Status BootstrapDataDir(storage::DataDir* dir, const std::vector<uint64_t>& voters,
                              const std::map<uint64_t, peerpb::MemberAttributes>& attributes,
                              std::string key_tree_state);

// The members as etcd's Cluster API lists them.
void ListMembers(const Membership& membership,
                 google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out);

class MemberHost {
 public:
  // What a task posted to the member thread may use.
  class Context {
   public:
    kv::Store& store() { return host_->machine_->store(); }
    member::Member& member() { return host_->kv_member_->member(); }
    member::KvMember& kv() { return *host_->kv_member_; }
    MemberHost& host() { return *host_; }
    int64_t now_ms() const;

   private:
    friend class MemberHost;
    explicit Context(MemberHost* host) : host_(host) {}
    MemberHost* host_;
  };
  using Task = std::function<void(Context&)>;
  using Done = std::function<void(absl::StatusOr<kvpb::Response>)>;

  // Opens (or creates) the data directory, recovers, starts the thread.
  // Errors: what the data directory refused (locked, damaged, another
  // format).
  static absl::StatusOr<std::unique_ptr<MemberHost>> Start(MemberHostOptions options,
                                                           storage::FileSystem* fs,
                                                           member::Transport* peers);
  ~MemberHost();
  MemberHost(const MemberHost&) = delete;
  MemberHost& operator=(const MemberHost&) = delete;

  // Thread-safe: runs `task` on the member thread soon.
  void Post(Task task);
  // A request that changes state (or a linearizable read): proposed, and
  // answered when applied. `done` runs on the member thread exactly once:
  // with the answer, or with kUnavailable when the request timed out or
  // the member stopped.
  void Write(kvpb::Request request, Done done);
  // A read: linearizable through ReadIndex, or served from local state.
  // `done` as for Write.
  void Read(kvpb::Request request, bool serializable, Done done);
  // The same, called on the member thread (from a posted task).
  void StartWrite(kvpb::Request request, Done done);
  void StartRead(kvpb::Request request, bool serializable, Done done);
  // A message from a peer.
  void Receive(raftpb::Message message);
  // A peer's batch, stepped in order by one task.
  void Receive(std::vector<raftpb::Message> messages);
  // Lease calls answered by this member's lessor, which is authoritative
  // only on the leader (member::KvMember). A new leader that cannot answer
  // for leases yet is asked again every tick, up to an election timeout.
  // Errors: kFailedPrecondition "etcdserver: not leader" elsewhere; lease
  // not found; kUnavailable (still no answer, or the host stopped).
  // Thread-safe and never blocks: `done` runs on the member thread, once
  // (never, if the call is made after the host stopped).
  void LeaderKeepAlive(int64_t lease_id, std::function<void(absl::StatusOr<int64_t>)> done);
  // Blocking (at most a request timeout and an election timeout).
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaderTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);
  // Proposes a configuration change; `attributes` (if any) become those of
  // the member the change adds. Done on the member thread with the new
  // configuration or the error.
  void ChangeMembership(raftpb::ConfChange change, std::optional<peerpb::MemberAttributes> attributes,
                        std::function<void(absl::Status)> done);
  // On the leader: promotes learner `id` to voter once it is in sync
  // (member::KvMember::PromoteLearner).
  void PromoteLearner(uint64_t id, std::function<void(absl::Status)> done);
  // Replaces member `id`'s attributes through the log.
  void UpdateAttributes(uint64_t id, peerpb::MemberAttributes attributes,
                        std::function<void(absl::Status)> done);
  // Thread-safe: the membership as of the member thread's last step.
  Membership membership() const;
  // Called on the member thread once at start and after every membership
  // change (to point the peer transport at the members).
  void set_on_membership_change(std::function<void(const Membership&)> hook);
  // This member is a learner (it serves serializable reads only, as etcd's).
  bool learner() const { return learner_.load(); }
  // This member was removed from the cluster and may stop for good.
  bool removed() const { return removed_.load(); }
  // Thread-safe (for the peer transport's snapshot sender): the member's
  // saved snapshot with this index and term, with its data (see
  // member::LogStore::LoadSnapshot).
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata);
  // Thread-safe: serializes the key tree as it is now in the background
  // (the snapshot child process, as the member's own snapshots), for a
  // backup; `done` runs on the member thread.
  void SnapshotKeyTree(std::function<void(absl::StatusOr<std::string>)> done);
  // Finishes in-flight work and stops the thread.
  void Stop();


  const MemberHostOptions& options() const { return options_; }
  // This start's incarnation (see NextIncarnation).
  uint64_t incarnation() const { return incarnation_; }
  // As of the member thread's last step (safe from any thread).
  uint64_t term() const { return term_.load(); }
  uint64_t leader() const { return leader_.load(); }

 private:
  class SteadyClock;
  void UpdateMetrics();
  // Logs elections, step-downs and leader changes as they happen.
  void LogLeadership();
  MemberHost(MemberHostOptions options, storage::FileSystem* fs, member::Transport* peers);
  absl::Status Open();
  // The damaged snapshot files recovery passed over and set aside.
  static void LogSetAside(const storage::DataDir& dir);
  // What recovery repaired around (--repair-damaged-data), and whether the
  // member starts repairing; keeps the damaged files' names.
  void LogRepair(const storage::DataDir& dir);
  // After each step: repair finished (logged), or cannot (stops the
  // process, naming the damaged files).
  void CheckRepair(const raft::Node& node);
  member::KvMemberOptions KvOptions() const;
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_.empty() || stopping_; }
  // Refreshes membership() from the member and tells the hook (reads
  // only: safe inside a member callback).
  void OnMembershipChange();
  void RefreshMembership();

  MemberHostOptions options_;
  storage::FileSystem* fs_;
  member::Transport* peers_;
  std::unique_ptr<storage::DataDir> dir_;
  std::unique_ptr<ServerLogStore> log_store_;
  // The key tree's values (null with values_in_memory), then the tree.
  std::unique_ptr<member::FileValueStore> values_;
  std::unique_ptr<member::KvMachine> machine_;
  // Where snapshots and whole-tree hashes run (a child process).
  std::unique_ptr<ForkRunner> runner_;
  // With metrics: the machine as the member applies through it.
  std::unique_ptr<TimedMachine> timed_machine_;
  std::unique_ptr<SteadyClock> clock_;
  uint64_t incarnation_ = 0;
  uint64_t metrics_leader_ = 0;
  uint64_t logged_term_ = 0;
  uint64_t logged_leader_ = 0;
  raft::Role logged_role_ = raft::Role::kFollower;
  // The damaged files a repairing member started from ("" if none).
  std::string repair_files_;
  bool repairing_ = false;
  std::unique_ptr<member::KvMember> kv_member_;
  std::function<void(const Membership&)> on_membership_change_;
  mutable absl::Mutex membership_mu_;
  Membership membership_ ABSL_GUARDED_BY(membership_mu_);
  std::atomic<bool> removed_{false};
  std::atomic<bool> learner_{false};

  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};

  absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Runs `task` on the member thread and waits for its result, at most the
// host's request timeout: then (or if the host has stopped) the result is
// kUnavailable "etcdserver: request timed out" and the task, if it has not
// started yet, never runs (so it may refer to the caller's locals). R is a
// Status or StatusOr.
template <typename R>
R OnMember(MemberHost* host, std::function<R(MemberHost::Context&)> task) {
  static_assert(std::is_constructible_v<R, absl::Status>, "OnMember returns a Status or StatusOr");
  struct Shared {
    absl::Mutex mu;
    bool abandoned ABSL_GUARDED_BY(mu) = false;
    bool done ABSL_GUARDED_BY(mu) = false;
    std::optional<R> result ABSL_GUARDED_BY(mu);
  };
  auto shared = std::make_shared<Shared>();
  host->Post([shared, task = std::move(task)](MemberHost::Context& context) {
    absl::MutexLock lock(&shared->mu);
    if (shared->abandoned) return;
    shared->result.emplace(task(context));
    shared->done = true;
  });
  absl::MutexLock lock(&shared->mu);
  if (!shared->mu.AwaitWithTimeout(absl::Condition(&shared->done),
                                   absl::Milliseconds(host->options().request_timeout_ms))) {
    shared->abandoned = true;
    return R(absl::UnavailableError(member::kRequestTimedOut));
  }
  return std::move(*shared->result);
}

// Starts an asynchronous operation (its callback may run after the caller
// gave up) and waits at most `timeout` for its result; then
// kUnavailable "etcdserver: request timed out", as etcd says.
absl::Status Await(absl::Duration timeout,
                   const std::function<void(std::function<void(absl::Status)>)>& start);

}  // namespace etc::server

#endif  // ETC_SERVER_MEMBER_HOST_H_
