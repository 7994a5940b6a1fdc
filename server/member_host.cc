#include "server/member_host.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/check.h"
#include "raft/conf_state.h"
#include "server/identity.h"
#include "raft/memory_storage.h"

namespace etc::server {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
    return absl::UnavailableError("etcdserver: request timed out");
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

// The member's LogStore on the data directory. Each Ready's obligations are
// written and synced by a writer thread, and the member hears they are
// durable only then (one sync per Ready: group commit of everything the
// Ready carries). The member thread meanwhile goes on stepping messages and
// taking requests, which gather into the next Ready. Snapshots and log
// releases run on the member thread, serialized with the writer by a lock
// (everything they cover is already durable).
class MemberHost::Store : public member::LogStore {
 public:
  Store(MemberHost* host, storage::DataDir* dir) : host_(host), dir_(dir) {
    writer_ = std::thread([this] { Write(); });
    snapshotter_ = std::thread([this] { Snapshot(); });
    // Named, so that top -H and perf tell the member's threads apart.
    pthread_setname_np(writer_.native_handle(), "etc-wal");
    pthread_setname_np(snapshotter_.native_handle(), "etc-snapshot");
  }
  ~Store() override { Stop(); }

  void Persist(member::PersistRequest request, uint64_t token) override {
    absl::MutexLock lock(&queue_mu_);
    queue_.push_back({std::move(request), token});
  }
  // A snapshot of the key tree can be hundreds of megabytes: it is written
  // on a thread of its own, so that neither the member nor the log waits.
  void SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) override {
    absl::MutexLock lock(&queue_mu_);
    snapshot_jobs_.push_back({std::move(snapshot), 0});
  }
  // After the snapshot before it (the same queue).
  void CompactLog(uint64_t index) override {
    absl::MutexLock lock(&queue_mu_);
    snapshot_jobs_.push_back({nullptr, index});
  }
  // From memory while the snapshot is queued or being written, then from
  // its file (once renamed into place; `writing_` is cleared only after).
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) override {
    auto same = [&metadata](const std::shared_ptr<const raftpb::Snapshot>& snapshot) {
      return snapshot != nullptr && snapshot->metadata().index() == metadata.index() &&
             snapshot->metadata().term() == metadata.term();
    };
    {
      absl::MutexLock lock(&queue_mu_);
      if (same(writing_)) return writing_;
      for (const SnapshotJob& job : snapshot_jobs_) {
        if (same(job.snapshot)) return job.snapshot;
      }
    }
    return dir_->LoadSnapshot(metadata);
  }
  // Writes what is queued, then stops the writers (after the member thread
  // stopped: nothing more will be queued).
  void Stop() {
    {
      absl::MutexLock lock(&queue_mu_);
      stopping_ = true;
    }
    if (writer_.joinable()) writer_.join();
    if (snapshotter_.joinable()) snapshotter_.join();
  }

 private:
  struct Pending {
    member::PersistRequest request;
    uint64_t token;
  };
  // A snapshot to save, or (snapshot null) the index to compact the log to.
  struct SnapshotJob {
    std::shared_ptr<const raftpb::Snapshot> snapshot;
    uint64_t compact_to = 0;
  };
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return stopping_ || !queue_.empty();
  }
  bool HasSnapshotJob() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return stopping_ || !snapshot_jobs_.empty();
  }

  void Write() {
    for (;;) {
      std::deque<Pending> batch;
      {
        absl::MutexLock lock(&queue_mu_);
        queue_mu_.Await(absl::Condition(this, &Store::HasWork));
        if (queue_.empty() && stopping_) return;
        batch.swap(queue_);
      }
      for (Pending& pending : batch) {
        absl::Status status;
        {
          // A snapshot from the leader is a snapshot file too.
          std::optional<absl::MutexLock> snapshot_lock;
          if (pending.request.snapshot != nullptr) snapshot_lock.emplace(&snapshot_mu_);
          absl::MutexLock lock(&dir_mu_);
          status = dir_->Write(pending.request.snapshot.get(), pending.request.entries,
                               pending.request.hard_state);
          if (status.ok() && pending.request.must_sync) {
            auto start = std::chrono::steady_clock::now();
            status = dir_->Sync();
            if (Metrics* metrics = host_->options_.metrics; metrics != nullptr) {
              metrics->wal_fsync_seconds.Observe(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                      .count());
            }
          }
        }
        // A member that cannot write its log must not go on: it would
        // promise what it does not hold.
        ETC_CHECK(status.ok()) << "the write-ahead log failed: " << status;
        uint64_t token = pending.token;
        host_->Post([token](Context& context) { context.member().OnPersisted(token); });
      }
    }
  }

  void Snapshot() {
    for (;;) {
      SnapshotJob job;
      {
        absl::MutexLock lock(&queue_mu_);
        queue_mu_.Await(absl::Condition(this, &Store::HasSnapshotJob));
        if (snapshot_jobs_.empty() && stopping_) return;
        job = std::move(snapshot_jobs_.front());
        snapshot_jobs_.pop_front();
        writing_ = job.snapshot;
      }
      absl::Status status;
      if (job.snapshot != nullptr) {
        absl::MutexLock snapshot_lock(&snapshot_mu_);
        status = dir_->WriteSnapshotFile(*job.snapshot);
        if (status.ok()) {
          absl::MutexLock lock(&dir_mu_);
          status = dir_->RecordSnapshot(job.snapshot->metadata());
        }
        if (status.code() == absl::StatusCode::kResourceExhausted) {
          // Too large for a snapshot file (the quota keeps the key tree
          // below that): the log keeps everything since the last snapshot.
          std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"%s\"}\n",
                       std::string(status.message()).c_str());
          status = absl::OkStatus();
        }
        ETC_CHECK(status.ok()) << "saving a snapshot failed: " << status;
        // Its file is in place: the memory can go.
        absl::MutexLock lock(&queue_mu_);
        writing_.reset();
      } else {
        absl::MutexLock lock(&dir_mu_);
        status = dir_->CompactLog(job.compact_to);
        ETC_CHECK(status.ok()) << "releasing log segments failed: " << status;
      }
    }
  }

  MemberHost* host_;
  storage::DataDir* dir_;
  // Lock order: snapshot_mu_, then dir_mu_.
  absl::Mutex snapshot_mu_;
  absl::Mutex dir_mu_;
  absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  std::deque<SnapshotJob> snapshot_jobs_ ABSL_GUARDED_BY(queue_mu_);
  // The snapshot the snapshot thread is writing.
  std::shared_ptr<const raftpb::Snapshot> writing_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread writer_;
  std::thread snapshotter_;
};

// The key tree as the server hosts it: every apply's latency goes into the
// metrics, and snapshots are taken in a child process. fork() gives the
// child the key tree as it is at that instant (copy-on-write), so the child
// serializes it while the member thread goes on applying; the member thread
// pauses only for the fork itself, not for the seconds a large tree takes.
// The child runs nothing but the serialization and a write to a pipe, then
// leaves with _exit; a reader thread here collects the bytes and hands
// them to the member thread.
class MemberHost::HostMachine : public member::StateMachine {
 public:
  HostMachine(MemberHost* host, member::KvMachine* machine, Metrics* metrics)
      : host_(host), machine_(machine), metrics_(metrics) {}
  ~HostMachine() override { Stop(); }
  // Waits for the snapshots being taken (their results go nowhere).
  void Stop() { JoinReaders(/*all=*/true); }

  std::string Apply(uint64_t index, std::string_view command) override {
    if (metrics_ == nullptr) return machine_->Apply(index, command);
    auto start = std::chrono::steady_clock::now();
    std::string result = machine_->Apply(index, command);
    metrics_->apply_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return result;
  }
  absl::StatusOr<std::string> Query(std::string_view query) const override {
    return machine_->Query(query);
  }
  std::string Snapshot() const override { return machine_->Snapshot(); }
  absl::Status Restore(std::string_view data) override { return machine_->Restore(data); }
  absl::Status CheckSnapshot(std::string_view data) const override {
    return machine_->CheckSnapshot(data);
  }

  void SnapshotAsync(SnapshotDone done) override {
    JoinReaders(/*all=*/false);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      done(absl::InternalError(absl::StrCat("snapshot: pipe: ", std::strerror(errno))));
      return;
    }
    size_t expected_bytes = machine_->store().SnapshotBytesHint();
    auto started = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid < 0) {
      int error = errno;
      close(fds[0]);
      close(fds[1]);
      done(absl::InternalError(absl::StrCat("snapshot: fork: ", std::strerror(error))));
      return;
    }
    if (pid == 0) {
      // The child: this thread alone, the tree as of the fork. It runs
      // only when the server's threads leave a core idle: every member
      // snapshots at about the same index, and three serializations at once
      // must not starve the requests.
      close(fds[0]);
      sched_param idle{};
      if (sched_setscheduler(0, SCHED_IDLE, &idle) != 0) (void)nice(19);
      std::string data = machine_->Snapshot();
      const char* next = data.data();
      size_t left = data.size();
      while (left > 0) {
        ssize_t n = write(fds[1], next, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(1);
        next += n;
        left -= static_cast<size_t>(n);
      }
      _exit(0);
    }
    close(fds[1]);
    int64_t fork_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    readers_.push_back(Reader{
        std::thread([this, fd = fds[0], pid, expected_bytes, started, fork_us, finished,
                     done = std::move(done)]() mutable {
          absl::StatusOr<std::string> result = Collect(fd, pid, expected_bytes);
          if (result.ok()) {
            std::fprintf(stderr,
                         "{\"level\":\"info\",\"msg\":\"took a snapshot of the key tree: %zu "
                         "bytes in %lld ms (child process %d; the fork paused the member %lld us)\"}\n",
                         result->size(),
                         static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    std::chrono::steady_clock::now() - started)
                                                    .count()),
                         static_cast<int>(pid), static_cast<long long>(fork_us));
          }
          host_->Post([done = std::move(done), result = std::move(result)](Context&) mutable {
            done(std::move(result));
          });
          finished->store(true);
        }),
        finished});
    pthread_setname_np(readers_.back().thread.native_handle(), "etc-snap-read");
  }

 private:
  struct Reader {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };

  // Reads the child's bytes to the end, then reaps it: the snapshot is
  // whole only if the child exited cleanly.
  static absl::StatusOr<std::string> Collect(int fd, pid_t pid, size_t expected_bytes) {
    std::string data;
    data.reserve(expected_bytes);
    std::vector<char> buffer(1 << 20);
    for (;;) {
      ssize_t n = read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      data.append(buffer.data(), static_cast<size_t>(n));
    }
    close(fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return absl::InternalError("snapshot: the child process failed");
    }
    return data;
  }

  // Joins the readers that are done (all of them: waits).
  void JoinReaders(bool all) {
    for (auto it = readers_.begin(); it != readers_.end();) {
      if (all || it->finished->load()) {
        it->thread.join();
        it = readers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  MemberHost* host_;
  member::KvMachine* machine_;
  Metrics* metrics_;
  std::vector<Reader> readers_;  // member thread only
};

MemberHost::MemberHost(MemberHostOptions options, storage::FileSystem* fs,
                       member::Transport* peers)
    : options_(std::move(options)), fs_(fs), peers_(peers), machine_(options_.store) {}

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
  log_store_ = std::make_unique<Store>(this, dir_.get());
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
  host_machine_ = std::make_unique<HostMachine>(this, &machine_, options_.metrics);
  clock_ = std::make_unique<SteadyClock>();
  absl::StatusOr<std::unique_ptr<member::KvMember>> member = member::KvMember::Start(
      KvOptions(), config, dir_->TakeRecovered(), peers_, log_store_.get(), &machine_,
      clock_.get(), host_machine_.get());
  if (!member.ok()) {
    return absl::DataLossError(absl::StrCat("cannot start the member from ", options_.data_dir,
                                            ": ", member.status().message()));
  }
  kv_member_ = std::move(*member);
  kv_member_->set_membership_observer([this] { OnMembershipChange(); });
  RefreshMembership();
  return absl::OkStatus();
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
  if (host_machine_ != nullptr) host_machine_->Stop();
  // Then the writer: what the member queued is written before it goes.
  if (log_store_ != nullptr) log_store_->Stop();
}

absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> MemberHost::LoadSnapshot(
    const raftpb::SnapshotMetadata& metadata) {
  return log_store_->LoadSnapshot(metadata);
}

void MemberHost::SnapshotKeyTree(std::function<void(absl::StatusOr<std::string>)> done) {
  Post([this, done = std::move(done)](Context&) mutable {
    host_machine_->SnapshotAsync([done = std::move(done)](absl::StatusOr<std::string> data) {
      done(std::move(data));
    });
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
  Post([message = std::move(message)](Context& context) {
    // A malformed message is the sender's problem: it is dropped.
    (void)context.member().Receive(message);
  });
}

template <typename T>
T MemberHost::OnLeaseLeader(std::function<T(Context&)> call) {
  // A new leader answers for leases once it applied an entry of its term
  // (KvMember::KeepAlive): that takes a round trip, so wait for it, up to
  // an election timeout, rather than fail a client's renewal.
  int64_t waited_ms = 0;
  for (;;) {
    T result = OnMember<T>(this, call);
    if (result.ok() || result.status().code() != absl::StatusCode::kUnavailable ||
        waited_ms >= options_.tick_ms * options_.election_ticks) {
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.tick_ms));
    waited_ms += options_.tick_ms;
  }
}

absl::StatusOr<int64_t> MemberHost::LeaderKeepAlive(int64_t lease_id) {
  using Result = absl::StatusOr<int64_t>;
  return OnLeaseLeader<Result>(
      [lease_id](Context& context) { return context.kv().KeepAlive(lease_id); });
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> MemberHost::LeaderTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  using Result = absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>;
  return OnLeaseLeader<Result>(
      [&request](Context& context) { return context.kv().TimeToLive(request); });
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
  metrics->db_size_bytes.store(machine_.store().keyspace().size_bytes());
  metrics->keys.store(static_cast<int64_t>(machine_.store().keyspace().live_keys()));
  metrics->watchers.store(static_cast<int64_t>(machine_.store().watches().watchers()));
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
