// A member of an etc cluster: the Raft member (member.h) with the key tree
// (kv_machine.h) and every policy a host would otherwise decide on its own:
// request deadlines, the leader's lease expiry and its hand-over, learner
// promotion, publishing the member's attributes, whose token a request
// carries, and watch delivery to clients' streams (watch_streams.h). The server and the simulator both host this class, on one
// thread each, so every seed runs the decisions the server ships.
//
//   KvMember::Start(options, config, durable, &transport, &log_store, &kv, &clock);
//   kv_member->Write(request, [](absl::StatusOr<kvpb::Response> r) { ... });
//   kv_member->member().Tick();          // at the tick interval
//   kv_member->AfterStep();              // after every input to the member
//
// Callbacks run on the hosting thread, inside the call that completes them.
#ifndef ETC_MEMBER_KV_MEMBER_H_
#define ETC_MEMBER_KV_MEMBER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/kvpb/kvpb.pb.h"
#include "member/clock.h"
#include "member/interfaces.h"
#include "member/kv_machine.h"
#include "member/member.h"
#include "member/watch_streams.h"

namespace etc::member {

struct KvMemberOptions {
  // The member's tick and election timeout, as the host ticks it.
  int64_t tick_ms = 100;
  int64_t election_ticks = 10;
  // A request not answered within this long fails with kDeadlineExceeded
  // "etcdserver: request timed out": its outcome is unknown (etcd's
  // timeout is 5 s plus two election timeouts; its gRPC code for it is
  // UNAVAILABLE, which the server's wire says).
  int64_t request_timeout_ms = 7000;
  // How often the leader looks for expired leases, and how many one
  // revocation proposal carries: 1,000 leases a second at most, as etcd's
  // leaseRevokeRate, so a mass expiry never floods the log.
  int64_t lease_check_interval_ms = 500;
  size_t max_expired_leases_per_proposal = 500;
  // Writes are refused ("etcdserver: too many requests", as etcd's) while
  // this member's applied index lags its commit index by more than this:
  // a member that cannot apply as fast as it commits must not queue
  // without bound.
  uint64_t max_applied_lag_entries = 5000;
  // A learner may be promoted once its log reaches this fraction of the
  // leader's commit index (etcd's 90%).
  double learner_in_sync_fraction = 0.9;
  // The attributes this member publishes through the log once it is in the
  // configuration (etcd's publish), given those recorded for it (empty if
  // none). Not set: it publishes nothing.
  std::function<std::string(const std::string& recorded)> attributes_to_publish;
  // How often the member asks its log store whether the disk is low on
  // space, raising or clearing its NOSPACE alarm (kv_member_disk.cc).
  int64_t disk_check_interval_ms = 1000;
  // Clients' watch streams (delivery bounds, progress interval).
  WatchStreamsOptions watch;
  // How often tokens unused for their TTL are dropped (etcd's simple
  // tokens are looked at every second): a token is gone at most this long
  // after its TTL, and tokens nobody uses do not pile up.
  int64_t token_expiry_check_interval_ms = 1000;
};

class KvMember {
 public:
  using Done = std::function<void(absl::StatusOr<kvpb::Response>)>;
  using StatusDone = std::function<void(absl::Status)>;

  // Starts the member (see Member::Start) on `kv`'s key tree. `machine` is
  // what the member applies through (a host's wrapper around `kv`, e.g. one
  // taking snapshots in a child process); null: `kv` itself. Everything
  // passed must outlive the KvMember. A member alone in its configuration
  // campaigns at once (etcd does the same for a single-member cluster).
  static absl::StatusOr<std::unique_ptr<KvMember>> Start(KvMemberOptions options,
                                                         MemberConfig config,
                                                         raft::DurableState durable,
                                                         Transport* transport, LogStore* store,
                                                         KvMachine* kv, Clock* clock,
                                                         StateMachine* machine = nullptr);
  KvMember(const KvMember&) = delete;
  KvMember& operator=(const KvMember&) = delete;

  // ---- client requests: `done` runs exactly once ----
  // A request that changes state (or a linearizable read through the log):
  // validated, stamped with this member's id (and a trace id unless the
  // caller set one), proposed, answered when applied. Errors: the request
  // is invalid; kUnavailable: it certainly did not take effect;
  // kDeadlineExceeded: no answer in time, outcome unknown.
  void Write(kvpb::Request request, Done done);
  // A read: linearizable through ReadIndex, or served from local state.
  void Read(kvpb::Request request, bool serializable, Done done);
  // Who holds `token`, checked against the auth store's current revision:
  // nobody without a token or with auth disabled. Errors: kUnauthenticated
  // "etcdserver: invalid auth token".
  absl::StatusOr<kv::AuthInfo> Resolve(const std::optional<std::string>& token);
  // Stamps `request` with who holds `token` (Resolve) before it goes to
  // Write or Read, as every client request does. Errors: as Resolve.
  absl::Status Authorize(const std::optional<std::string>& token, kvpb::Request* request);
  // Authorize, for a token that may have been issued through another
  // member a moment ago: it reaches this member with the log, perhaps
  // after the client that holds it. A token this member does not know is
  // looked up again once the member applied everything committed when it
  // came (a read index), as etcd's simple tokens wait for the index they
  // were issued at. `done` runs once, with the stamped request or as
  // Authorize fails.
  using AuthorizedDone = std::function<void(absl::StatusOr<kvpb::Request>)>;
  void AuthorizeWhenApplied(std::optional<std::string> token, kvpb::Request request,
                            AuthorizedDone done);

  // ---- authentication, in two steps: the password check between them is
  // slow on purpose (PBKDF2), so the host runs it off this thread ----
  // The stored password hash of `name`. Errors as etcd answers
  // Authenticate: kFailedPrecondition "authentication is not enabled";
  // kInvalidArgument "authentication failed, invalid user ID or password"
  // for a user that does not exist or has no password.
  absl::StatusOr<std::string> PasswordHashOf(const std::string& name) const;
  // Once the password matched: proposes `token` for `name` (applied on
  // every member, so it works on any of them).
  void IssueToken(const std::string& name, std::string token, Done done);

  // ---- what only the leader answers (kFailedPrecondition "etcdserver:
  // not leader" elsewhere; kUnavailable "etcdserver: leader changed" from a
  // new leader that has not applied an entry of its term yet) ----
  absl::StatusOr<int64_t> KeepAlive(kv::LeaseId id);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);
  // The same, for a client: a new leader that cannot answer for leases yet
  // asks again after every step, up to an election timeout, rather than
  // fail the client's renewal (it only has to apply an entry of its term,
  // a round trip). `done` runs once, with the answer or the last error.
  void KeepAliveWhenReady(kv::LeaseId id, std::function<void(absl::StatusOr<int64_t>)> done);
  void TimeToLiveWhenReady(
      etcdserverpb::LeaseTimeToLiveRequest request,
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done);
  // Promotes learner `id` once its log is in sync (see options). Errors as
  // etcd's: not leader, member not found, not a learner, not in sync.
  void PromoteLearner(raft::NodeId id, StatusDone done);

  // ---- membership ----
  // Proposes a configuration change; `attributes` (if not empty) become
  // those of the member its first step adds.
  void ChangeMembership(raftpb::ConfChange change, std::string attributes, StatusDone done);
  void UpdateAttributes(raft::NodeId id, std::string attributes, StatusDone done);
  // Called whenever the applied membership changed (after a step, and
  // before a membership call's `done`).
  void set_membership_observer(std::function<void()> observer) {
    membership_observer_ = std::move(observer);
  }

  // ---- the host's duties ----
  // After every input to the member (tick, message, persisted, request):
  // runs the policies that follow from its new state.
  void AfterStep();
  // The host stops: every request still waiting fails (outcome unknown).
  void FailAll();

  // Clients' watch streams, fed after every step.
  WatchStreams& watch_streams() { return watch_streams_; }
  Member& member() { return *member_; }
  const Member& member() const { return *member_; }
  kv::Store& store() { return kv_->store(); }
  const kv::Store& store() const { return kv_->store(); }
  Clock& clock() { return *clock_; }
  const KvMemberOptions& options() const { return options_; }
  raft::NodeId id() const { return member_->id(); }
  bool is_leader() const;
  bool is_learner() const;
  // The configuration as the Raft core holds it now.
  raftpb::ConfState conf() const;
  // Requests waiting for an answer.
  size_t waiting_requests() const { return waiting_.size(); }
  // This member's attributes are recorded as it publishes them.
  bool published() const { return published_; }
  // A lease revocation is proposed and not applied yet.
  bool expiry_in_flight() const { return expiry_in_flight_; }

 private:
  KvMember(KvMemberOptions options, KvMachine* kv, Clock* clock);
  // Remembers `done` until the member answers or the deadline passes;
  // returns the member's callback.
  Callback AwaitAnswer(Done done);
  void ExpireRequests(int64_t now_ms);
  void ExpireLeases(int64_t now_ms);
  absl::Status CheckLeaseLeader() const;
  // Calls `call` now and, while it answers kUnavailable, after each step
  // until an election timeout passed; then gives `done` its answer.
  template <typename T>
  void WhenLeaseLeader(std::function<T()> call, std::function<void(T)> done);
  // Runs the lease calls that wait (giving up: with their last answer).
  void RetryLeaseCalls(bool give_up);
  // Runs `then` once this member applied everything committed now (a read
  // index), or once that failed.
  void AfterReadIndex(std::function<void(absl::Status)> then);
  void ExpireTokens(int64_t now_ms);
  void PublishAttributes();
  void ObserveMembership();
  void WatchDiskSpace(int64_t now_ms);
  uint64_t NextTraceId() { return next_trace_id_++; }

  KvMemberOptions options_;
  KvMachine* kv_;
  Clock* clock_;
  std::unique_ptr<Member> member_;
  std::function<void()> membership_observer_;
  uint64_t membership_version_seen_ = 0;
  WatchStreams watch_streams_;

  uint64_t next_trace_id_ = 1;
  // Requests the member has not answered, by waiting id, and their
  // deadlines in order (one timeout for all: arrival order is deadline
  // order).
  std::map<uint64_t, Done> waiting_;
  std::deque<std::pair<int64_t, uint64_t>> deadlines_ms_;
  uint64_t next_waiting_id_ = 1;

  // Whether this member led at the last step, and when the leader looks
  // for expired leases next.
  bool was_leader_ = false;
  int64_t next_expiry_check_ms_ = 0;
  bool expiry_in_flight_ = false;
  // Lease calls waiting for this new leader to answer for leases: each
  // tries once and says whether it is done.
  std::deque<std::function<bool(bool give_up)>> lease_calls_;

  bool published_ = false;
  bool publish_in_flight_ = false;

  // The store the member persists through (its disk space), and this
  // member's NOSPACE alarm for a full disk: when it looks next, whether a
  // proposal is out, whether it raised the alarm standing now.
  LogStore* log_store_ = nullptr;
  int64_t next_disk_check_ms_ = 0;
  bool disk_alarm_in_flight_ = false;
  bool disk_alarm_raised_ = false;

  // When tokens unused for their TTL are dropped next.
  int64_t next_token_expiry_ms_ = 0;
};

// The key tree's answer as a status (its error code and message) or the
// response. Errors: kInternal for bytes that do not parse.
absl::StatusOr<kvpb::Response> DecodeResponse(const absl::StatusOr<std::string>& result);

}  // namespace etc::member

#endif  // ETC_MEMBER_KV_MEMBER_H_
