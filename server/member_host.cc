#include "server/member_host.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "base/check.h"
#include "base/steady_clock.h"
#include "member/errors.h"
#include "raft/conf_state.h"
#include "server/identity.h"
#include "server/json_log.h"
#include "raft/memory_storage.h"

namespace etc::server {
namespace {

using base::SteadyMs;

// The key tree's deadline status, as etcd's wire says it: etcd answers a
// request that timed out (or met a stopping server) with UNAVAILABLE.
absl::Status WireStatus(absl::Status status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded &&
      absl::StartsWith(status.message(), "etcdserver: ")) {
    return absl::UnavailableError(status.message());
  }
  return status;
}

MemberHost::Done OnWire(MemberHost::Done done) {
  return [done = std::move(done)](absl::StatusOr<kvpb::Response> result) {
    if (!result.ok()) {
      done(WireStatus(result.status()));
      return;
    }
    done(std::move(result));
  };
}

}  // namespace

// The machine's monotonic clock, for the member's policies.
class MemberHost::SteadyClock : public member::Clock {
 public:
  int64_t now_ms() override { return SteadyMs(); }
};

int64_t MemberHost::Context::now_ms() const { return SteadyMs(); }

absl::Status Await(absl::Duration timeout,
                   const std::function<void(std::function<void(absl::Status)>)>& start) {
  struct Pending {
    absl::Notification done;
    absl::Status status;
  };
  auto pending = std::make_shared<Pending>();
  start([pending](absl::Status status) {
    pending->status = std::move(status);
    pending->done.Notify();
  });
  if (!pending->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::UnavailableError(member::kRequestTimedOut);
  }
  return pending->status;
}

absl::Status BootstrapDataDir(storage::DataDir* dir, const std::vector<uint64_t>& voters,
                              const std::map<uint64_t, peerpb::MemberAttributes>& attributes,
                              std::string key_tree_state) {
  if (!dir->fresh()) return absl::AlreadyExistsError("the data directory holds a member's data");
  raft::MemoryStorage boot = raft::MemoryStorage::Bootstrap(voters);
  std::map<raft::NodeId, std::string> serialized;
  for (const auto& [id, member] : attributes) serialized[id] = member.SerializeAsString();
  boot.snapshot.set_data(member::Member::BootstrapData(serialized, std::move(key_tree_state)));
  if (absl::Status s = dir->Write(&boot.snapshot, boot.entries, boot.hard_state); !s.ok()) {
    return s;
  }
  return dir->Sync();
}

bool Membership::Contains(uint64_t id) const { return raft::IsMember(conf, id); }

bool Membership::IsLearner(uint64_t id) const { return raft::IsLearner(conf, id); }

std::vector<uint64_t> Membership::Ids() const {
  std::set<uint64_t> ids = raft::MembersOf(conf);
  return std::vector<uint64_t>(ids.begin(), ids.end());
}

MemberHost::MemberHost(MemberHostOptions options, storage::FileSystem* fs,
                       member::Transport* peers)
    : options_(std::move(options)), fs_(fs), peers_(peers) {}

absl::StatusOr<std::unique_ptr<MemberHost>> MemberHost::Start(MemberHostOptions options,
                                                              storage::FileSystem* fs,
                                                              member::Transport* peers) {
  std::unique_ptr<MemberHost> host(new MemberHost(std::move(options), fs, peers));
  if (absl::Status s = host->Open(); !s.ok()) return s;
  host->thread_ = std::thread([h = host.get()] { h->Loop(); });
  pthread_setname_np(host->thread_.native_handle(), "etc-member");
  return host;
}

absl::Status MemberHost::Open() {
  absl::StatusOr<std::unique_ptr<storage::DataDir>> dir =
      storage::DataDir::Open(fs_, options_.data_dir, options_.storage);
  if (!dir.ok()) return dir.status();
  dir_ = std::move(*dir);
  LogSetAside(*dir_);
  LogRepair(*dir_);
  if (dir_->fresh() && !options_.initial_voters.empty()) {
    // A new cluster: every initial member starts from the same snapshot
    // naming the initial voters. Reopened after, so the member starts from
    // exactly what recovery sees.
    if (absl::Status s = BootstrapDataDir(dir_.get(), options_.initial_voters,
                                          options_.initial_attributes, "");
        !s.ok()) {
      return s;
    }
    dir_.reset();
    dir = storage::DataDir::Open(fs_, options_.data_dir, options_.storage);
    if (!dir.ok()) return dir.status();
    dir_ = std::move(*dir);
  }
  log_store_ = std::make_unique<ServerLogStore>(
      dir_.get(),
      [this](uint64_t token) {
        Post([token](Context& context) { context.member().OnPersisted(token); });
      },
      // NOSPACE is raised once the next log segment would not fit.
      options_.metrics, options_.storage.wal.segment_bytes);
  member::MemberConfig config;
  config.raft.id = options_.member_id;
  config.raft.election_timeout_ticks = options_.election_ticks;
  config.raft.heartbeat_interval_ticks = 1;
  config.raft.pre_vote = true;
  config.raft.check_quorum = true;
  // Limits on what a leader holds for others: proposals it has not
  // committed (etcd's MaxUncommittedEntriesSize), and appends in flight to
  // one follower.
  config.raft.max_uncommitted_payload_bytes = uint64_t{1} << 30;
  config.raft.max_inflight_payload_bytes = uint64_t{64} << 20;
  config.raft.random_seed = static_cast<uint64_t>(SteadyMs()) ^ (options_.member_id * 0x9E3779B9u);
  // Distinct across restarts (see memberpb.RequestId): counted in the data
  // directory, not read off a clock that may step back.
  absl::StatusOr<uint64_t> incarnation = NextIncarnation(fs_, options_.data_dir);
  if (!incarnation.ok()) return incarnation.status();
  incarnation_ = *incarnation;
  config.incarnation = incarnation_;
  config.snapshot_every_entries = options_.snapshot_count;
  config.catch_up_entries = std::min<uint64_t>(5000, options_.snapshot_count);
  runner_ = std::make_unique<ForkRunner>(
      [this](std::function<void()> task) { Post([task = std::move(task)](Context&) { task(); }); },
      [] {
        // The child logged what it found; the member must not go on with
        // a value it cannot read (its snapshots would fail for ever).
        std::fprintf(stderr,
                     "{\"level\":\"fatal\",\"msg\":\"a snapshot or hash found a value that "
                     "cannot be read back; exiting (a restart rebuilds the value log)\"}\n");
        std::_Exit(1);
      });
  kv::StoreOptions store_options = options_.store;
  if (!options_.values_in_memory) {
    // Rebuilt from the snapshot and the log at every start (value_log.h).
    absl::StatusOr<std::unique_ptr<storage::ValueLog>> log =
        storage::ValueLog::Create(fs_, options_.data_dir + "/member/values");
    if (!log.ok()) return log.status();
    pid_t member_pid = getpid();
    values_ = std::make_unique<member::FileValueStore>(
        std::move(*log), [member_pid](const absl::Status& s) {
          bool child = getpid() != member_pid;  // a snapshot's or hash's (fork_runner.h)
          std::fprintf(stderr,
                       "{\"level\":\"fatal\",\"msg\":\"a value cannot be read back: %s; %s\"}\n",
                       std::string(s.message()).c_str(),
                       child ? "the snapshot or hash stops, and the member with it"
                             : "exiting (a restart rebuilds the value log from the snapshot and the "
                               "log)");
          std::_Exit(child ? ForkRunner::kExitFoundDamage : 1);
        });
    store_options.values = values_.get();
  }
  machine_ = std::make_unique<member::KvMachine>(store_options);
  machine_->set_background_runner(runner_.get());
  if (options_.metrics != nullptr) {
    timed_machine_ = std::make_unique<TimedMachine>(machine_.get(), options_.metrics);
  }
  clock_ = std::make_unique<SteadyClock>();
  absl::StatusOr<std::unique_ptr<member::KvMember>> member = member::KvMember::Start(
      KvOptions(), config, dir_->TakeRecovered(), peers_, &log_store_->store(), machine_.get(),
      clock_.get(), timed_machine_.get());
  if (!member.ok()) {
    return absl::DataLossError(absl::StrCat("cannot start the member from ", options_.data_dir,
                                            ": ", member.status().message()));
  }
  kv_member_ = std::move(*member);
  kv_member_->set_membership_observer([this] { OnMembershipChange(); });
  RefreshMembership();
  return absl::OkStatus();
}

void MemberHost::LogSetAside(const storage::DataDir& dir) {
  const raft::DurableState& recovered = dir.recovered();
  uint64_t last_index = recovered.last_index();
  for (const storage::DamagedSnapshot& damaged : dir.set_aside()) {
    LogJson("warn", absl::StrCat(damaged.status.message(), ": set aside as ", damaged.name,
                                 ".broken (kept, not deleted); the member starts from the snapshot "
                                 "at index ", recovered.snapshot.metadata().index(),
                                 " and the log through entry ", last_index,
                                 ", which hold everything it held"));
  }
}

void MemberHost::LogRepair(const storage::DataDir& dir) {
  std::vector<std::string> files;
  for (const storage::Damage& damage : dir.damage()) {
    LogJson("warn", absl::StrCat("damaged data in ", damage.file, " at offset ", damage.offset,
                                 ": ", damage.what));
    files.push_back(damage.file);
  }
  const raft::DurableState& recovered = dir.recovered();
  repairing_ = recovered.damaged;
  if (!repairing_) return;
  repair_files_ = absl::StrJoin(files, ", ");
  uint64_t last_index = recovered.last_index();
  LogJson("warn", absl::StrCat("repairing: the member keeps its snapshot at index ",
                               recovered.snapshot.metadata().index(), " and its log through entry ",
                               last_index, ", and fetches the rest from the leader; it does not "
                               "vote until it has everything it may have acknowledged"));
}

void MemberHost::CheckRepair(const raft::Node& node) {
  if (!repairing_) return;
  const raft::Raft& raft = node.raft();
  if (node.majority_damaged()) {
    LogJson("fatal", absl::StrCat("cannot repair the damaged data in ", repair_files_,
                                  ": a quorum of voters is repairing and no leader is left to "
                                  "repair from; stopping (restore the members from a backup)"));
    std::fflush(stderr);
    std::_Exit(1);
  }
  if (raft.repairing()) return;
  repairing_ = false;
  LogJson("info", absl::StrCat("repair finished: the log matches leader ", absl::Hex(raft.leader()),
                               "'s through its last index when the repair began (term ",
                               raft.term(), "); the member votes again"));
}

member::KvMemberOptions MemberHost::KvOptions() const {
  member::KvMemberOptions options;
  options.tick_ms = options_.tick_ms;
  options.election_ticks = options_.election_ticks;
  options.request_timeout_ms = options_.request_timeout_ms;
  options.watch.progress_interval_ms = options_.watch_progress_interval_ms;
  // etcd's limit for a fragment: the request size limit.
  options.watch.max_fragment_bytes = static_cast<size_t>(options_.store.max_request_bytes);
  // This member's name and client URLs, published once it is a member
  // (etcd's publish); the peer URLs recorded when it was added win.
  options.attributes_to_publish = [self = options_.self](const std::string& recorded_bytes) {
    peerpb::MemberAttributes recorded;
    // Written by this server's code on every member: bytes that do not
    // parse are replaced.
    (void)recorded.ParseFromString(recorded_bytes);
    peerpb::MemberAttributes wanted = recorded;
    if (wanted.peer_urls().empty()) *wanted.mutable_peer_urls() = self.peer_urls();
    wanted.set_name(self.name());
    *wanted.mutable_client_urls() = self.client_urls();
    if (wanted.SerializeAsString() == recorded.SerializeAsString()) return recorded_bytes;
    return wanted.SerializeAsString();
  };
  return options;
}

MemberHost::~MemberHost() { Stop(); }

void MemberHost::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      if (!thread_.joinable()) return;
    }
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // A snapshot still being taken is of no use now; its reader must not
  // outlive the host it posts to.
  if (runner_ != nullptr) runner_->Stop();
  // Then the log store: what the member queued is written before it goes.
  if (log_store_ != nullptr) log_store_->Stop();
}

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> MemberHost::LoadSnapshot(
    const raftpb::SnapshotMetadata& metadata) {
  return log_store_->store().LoadSnapshot(metadata);
}

void MemberHost::SnapshotKeyTree(std::function<void(absl::StatusOr<std::string>)> done) {
  // The key tree's snapshot as it is (a client's Snapshot RPC): nothing
  // wrapped around it.
  Post([this, done = std::move(done)](Context&) mutable {
    machine_->SnapshotAsync(/*finish=*/nullptr, std::move(done));
  });
}

void MemberHost::Post(Task task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void MemberHost::Write(kvpb::Request request, Done done) {
  Post([request = std::move(request), done = std::move(done)](Context& context) mutable {
    context.host().StartWrite(std::move(request), std::move(done));
  });
}

void MemberHost::Read(kvpb::Request request, bool serializable, Done done) {
  Post([request = std::move(request), serializable, done = std::move(done)](
           Context& context) mutable {
    context.host().StartRead(std::move(request), serializable, std::move(done));
  });
}

void MemberHost::StartWrite(kvpb::Request request, Done done) {
  kv_member_->Write(std::move(request),
                    OnWire([this, done = std::move(done)](absl::StatusOr<kvpb::Response> result) {
                      if (!result.ok() && options_.metrics != nullptr) {
                        options_.metrics->proposals_failed.fetch_add(1);
                      }
                      done(std::move(result));
                    }));
}

void MemberHost::StartRead(kvpb::Request request, bool serializable, Done done) {
  kv_member_->Read(std::move(request), serializable, OnWire(std::move(done)));
}

void MemberHost::Receive(raftpb::Message message) {
  std::vector<raftpb::Message> one;
  one.push_back(std::move(message));
  Receive(std::move(one));
}

void MemberHost::Receive(std::vector<raftpb::Message> messages) {
  Post([messages = std::move(messages)](Context& context) {
    // A malformed message is the sender's problem: it is dropped.
    for (const raftpb::Message& message : messages) (void)context.member().Receive(message);
  });
}

void MemberHost::LeaderKeepAlive(int64_t lease_id,
                                 std::function<void(absl::StatusOr<int64_t>)> done) {
  Post([lease_id, done = std::move(done)](Context& context) mutable {
    context.kv().KeepAliveWhenReady(lease_id, std::move(done));
  });
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> MemberHost::LeaderTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  using Result = absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>;
  // The answer may come after the wait gave up: it lands in shared memory.
  auto answer = std::make_shared<std::optional<Result>>();
  absl::Duration timeout =
      absl::Milliseconds(options_.request_timeout_ms + options_.tick_ms * options_.election_ticks);
  absl::Status waited = Await(timeout, [&](std::function<void(absl::Status)> done) {
    Post([request, answer, done = std::move(done)](Context& context) mutable {
      context.kv().TimeToLiveWhenReady(std::move(request),
                                       [answer, done = std::move(done)](Result result) {
                                         *answer = std::move(result);
                                         done(absl::OkStatus());
                                       });
    });
  });
  if (!waited.ok()) return waited;
  return std::move(**answer);
}

void ListMembers(const Membership& membership,
                 google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) {
  for (uint64_t id : membership.Ids()) {
    etcdserverpb::Member* member = out->Add();
    member->set_id(id);
    auto it = membership.attributes.find(id);
    if (it != membership.attributes.end()) {
      member->set_name(it->second.name());
      for (const std::string& url : it->second.peer_urls()) member->add_peerurls(url);
      for (const std::string& url : it->second.client_urls()) member->add_clienturls(url);
    }
    member->set_islearner(membership.IsLearner(id));
  }
}

void MemberHost::PromoteLearner(uint64_t id, std::function<void(absl::Status)> done) {
  Post([id, done = std::move(done)](Context& context) mutable {
    context.kv().PromoteLearner(id, std::move(done));
  });
}

void MemberHost::ChangeMembership(raftpb::ConfChange change,
                                  std::optional<peerpb::MemberAttributes> attributes,
                                  std::function<void(absl::Status)> done) {
  Post([change = std::move(change), attributes = std::move(attributes),
        done = std::move(done)](Context& context) mutable {
    context.kv().ChangeMembership(
        std::move(change), attributes.has_value() ? attributes->SerializeAsString() : "",
        std::move(done));
  });
}

void MemberHost::UpdateAttributes(uint64_t id, peerpb::MemberAttributes attributes,
                                  std::function<void(absl::Status)> done) {
  Post([id, attributes = std::move(attributes), done = std::move(done)](Context& context) mutable {
    context.kv().UpdateAttributes(id, attributes.SerializeAsString(), std::move(done));
  });
}

Membership MemberHost::membership() const {
  absl::MutexLock lock(&membership_mu_);
  return membership_;
}

void MemberHost::set_on_membership_change(std::function<void(const Membership&)> hook) {
  Post([this, hook = std::move(hook)](Context&) mutable {
    on_membership_change_ = std::move(hook);
    on_membership_change_(membership());
  });
}

void MemberHost::OnMembershipChange() {
  RefreshMembership();
  if (on_membership_change_) on_membership_change_(membership());
}

void MemberHost::RefreshMembership() {
  const member::Member& member = kv_member_->member();
  {
    absl::MutexLock lock(&membership_mu_);
    if (membership_.version == member.membership_version() && membership_.version != 0) return;
  }
  Membership next;
  next.version = member.membership_version();
  next.conf = kv_member_->conf();
  for (const auto& [id, bytes] : member.attributes()) {
    // Written by this server's code on every member: a member whose
    // attributes do not parse is listed without them.
    (void)next.attributes[id].ParseFromString(bytes);
  }
  next.removed.insert(member.removed_members().begin(), member.removed_members().end());
  learner_.store(next.IsLearner(options_.member_id));
  absl::MutexLock lock(&membership_mu_);
  membership_ = std::move(next);
}

void MemberHost::LogLeadership() {
  const raft::Raft& raft = kv_member_->member().node().raft();
  // Formatted only when something changed: this runs after every step.
  if (raft.term() == logged_term_ && raft.leader() == logged_leader_ &&
      raft.role() == logged_role_) {
    return;
  }
  std::string what;
  if (raft.role() == raft::Role::kLeader && logged_role_ != raft::Role::kLeader) {
    what = absl::StrCat("became the leader at term ", raft.term());
  } else if (logged_role_ == raft::Role::kLeader && raft.role() != raft::Role::kLeader) {
    what = absl::StrCat("stepped down at term ", raft.term(),
                        raft.leader() != raft::kNoNode ? absl::StrCat(", new leader ", absl::Hex(raft.leader())) : "");
  } else if (raft.leader() != logged_leader_) {
    what = raft.leader() == raft::kNoNode
               ? absl::StrCat("lost its leader at term ", raft.term())
               : absl::StrCat("follows leader ", absl::Hex(raft.leader()), " at term ", raft.term());
  }
  logged_term_ = raft.term();
  logged_leader_ = raft.leader();
  logged_role_ = raft.role();
  if (what.empty()) return;
  std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"member %llx %s\"}\n",
               static_cast<unsigned long long>(options_.member_id), what.c_str());
}

void MemberHost::UpdateMetrics() {
  Metrics* metrics = options_.metrics;
  if (metrics == nullptr) return;
  const member::Member& member = kv_member_->member();
  const raft::Raft& raft = member.node().raft();
  uint64_t leader = raft.leader();
  if (leader != metrics_leader_ && leader != raft::kNoNode) metrics->leader_changes.fetch_add(1);
  metrics_leader_ = leader;
  metrics->has_leader.store(leader != raft::kNoNode ? 1 : 0);
  metrics->is_leader.store(raft.role() == raft::Role::kLeader ? 1 : 0);
  metrics->proposals_committed.store(raft.log().committed());
  metrics->proposals_applied.store(member.applied_index());
  metrics->proposals_pending.store(static_cast<int64_t>(member.pending_requests()));
  metrics->raft_term.store(raft.term());
  metrics->db_size_bytes.store(machine_->store().keyspace().size_bytes());
  metrics->keys.store(static_cast<int64_t>(machine_->store().keyspace().live_keys()));
  metrics->watchers.store(static_cast<int64_t>(machine_->store().watches().watchers()));
}

void MemberHost::Loop() {
  Context context(this);
  member::Member& member = kv_member_->member();
  int64_t next_tick_ms = SteadyMs() + options_.tick_ms;
  for (;;) {
    std::deque<Task> tasks;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      int64_t wait_ms = std::max<int64_t>(0, next_tick_ms - SteadyMs());
      mu_.AwaitWithTimeout(absl::Condition(this, &MemberHost::HasWork), absl::Milliseconds(wait_ms));
      tasks.swap(tasks_);
      stopping = stopping_;
    }
    for (Task& task : tasks) task(context);
    int64_t now = SteadyMs();
    // Catch up on missed ticks (a long pause must not make a lease outlive
    // its real duration), but never burst more than an election timeout.
    int ticks = 0;
    while (now >= next_tick_ms && ticks < options_.election_ticks) {
      member.Tick();
      next_tick_ms += options_.tick_ms;
      ++ticks;
    }
    if (now >= next_tick_ms) next_tick_ms = now + options_.tick_ms;
    kv_member_->AfterStep();
    // This step's writes, synced before the loop takes more work: what
    // arrives meanwhile gathers into the next Ready (server_log_store.h).
    log_store_->WriteAndSync();
    CheckRepair(member.node());
    removed_.store(member.ShouldShutDown());
    LogLeadership();
    UpdateMetrics();
    term_.store(member.node().raft().term());
    leader_.store(member.node().raft().leader());
    if (stopping && tasks.empty()) {
      absl::MutexLock lock(&mu_);
      if (tasks_.empty()) {
        kv_member_->FailAll();
        return;
      }
    }
  }
}

}  // namespace etc::server
