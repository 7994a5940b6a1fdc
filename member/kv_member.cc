#include "member/kv_member.h"

#include <utility>
#include <vector>

#include "base/check.h"
#include "kv/errors.h"
#include "kv/response_status.h"
#include "member/errors.h"
#include "raft/conf_state.h"

namespace etc::member {

absl::StatusOr<kvpb::Response> DecodeResponse(const absl::StatusOr<std::string>& result) {
  if (!result.ok()) return result.status();
  kvpb::Response response;
  if (!response.ParseFromString(*result)) {
    return absl::InternalError("the key tree answered with bytes that do not parse");
  }
  if (absl::Status refused = kv::StatusOf(response); !refused.ok()) return refused;
  return response;
}

absl::StatusOr<std::unique_ptr<KvMember>> KvMember::Start(KvMemberOptions options,
                                                          MemberConfig config,
                                                          raft::DurableState durable,
                                                          Transport* transport, LogStore* store,
                                                          KvMachine* kv, Clock* clock,
                                                          StateMachine* machine) {
  ETC_CHECK(kv != nullptr && clock != nullptr);
  std::unique_ptr<KvMember> self(new KvMember(std::move(options), kv, clock));
  raft::NodeId id = config.raft.id;
  absl::StatusOr<std::unique_ptr<Member>> member = Member::Start(
      std::move(config), std::move(durable), transport, store, machine != nullptr ? machine : kv);
  if (!member.ok()) return member.status();
  self->member_ = std::move(*member);
  self->log_store_ = store;
  if (raft::IsSoleVoter(self->member_->Status().conf_state, id)) {
    (void)self->member_->Campaign();
  }
  self->membership_version_seen_ = self->member_->membership_version();
  return self;
}

KvMember::KvMember(KvMemberOptions options, KvMachine* kv, Clock* clock)
    : options_(std::move(options)),
      kv_(kv),
      clock_(clock),
      watch_streams_(&kv->store(), options_.watch) {
  watch_streams_.set_resolver(
      [this](const std::optional<std::string>& token) { return Resolve(token); });
}

bool KvMember::is_leader() const { return member_->node().raft().role() == raft::Role::kLeader; }

bool KvMember::is_learner() const { return raft::IsLearner(conf(), id()); }

raftpb::ConfState KvMember::conf() const {
  // Not Member::Status(), which also describes every peer's progress.
  return member_->node().raft().tracker().config.ToConfState();
}

// ---------------------------------------------------------------- requests --

void KvMember::Write(kvpb::Request request, Done done) {
  kvpb::RequestHeader* header = request.mutable_header();
  header->set_member_id(id());
  if (header->id() == 0) header->set_id(NextTraceId());
  if (absl::Status s = store().Validate(request); !s.ok()) {
    done(s);
    return;
  }
  // Refused here rather than when applied (as etcd's quota check does), so
  // that a full disk's log does not fill with refusals.
  if (store().RefusedForNoSpace(request)) {
    done(kv::NoSpaceError());
    return;
  }
  uint64_t committed = member_->node().raft().log().committed();
  if (committed > member_->applied_index() &&
      committed - member_->applied_index() > options_.max_applied_lag_entries) {
    done(absl::ResourceExhaustedError("etcdserver: too many requests"));
    return;
  }
  member_->Write(request.SerializeAsString(), AwaitAnswer(std::move(done)));
}

void KvMember::Read(kvpb::Request request, bool serializable, Done done) {
  if (serializable) {
    kv_->QueryAsync(request.SerializeAsString(), AwaitAnswer(std::move(done)));
    return;
  }
  member_->Read(request.SerializeAsString(), AwaitAnswer(std::move(done)));
}

absl::StatusOr<kv::AuthInfo> KvMember::Resolve(const std::optional<std::string>& token) {
  if (!token.has_value() || !store().auth().enabled()) return kv::AuthInfo{};
  absl::StatusOr<std::string> user = store().tokens().Resolve(*token, clock_->now_ms());
  if (!user.ok()) return user.status();
  // Checked against the auth store as this member has it now, as etcd's
  // tokens are: a request is refused as "old revision" only if the auth
  // store moves between its proposal and its apply, not after any auth
  // change since the token was issued. (Changes that concern the token's
  // user dropped the token instead.)
  return kv::AuthInfo{*std::move(user), store().auth().revision()};
}

absl::Status KvMember::Authorize(const std::optional<std::string>& token, kvpb::Request* request) {
  absl::StatusOr<kv::AuthInfo> who = Resolve(token);
  if (!who.ok()) return who.status();
  request->mutable_header()->set_username(who->username);
  request->mutable_header()->set_auth_revision(who->revision);
  return absl::OkStatus();
}

void KvMember::AuthorizeWhenApplied(std::optional<std::string> token, kvpb::Request request,
                                    AuthorizedDone done) {
  absl::Status authorized = Authorize(token, &request);
  if (authorized != kv::InvalidAuthTokenError()) {
    if (!authorized.ok()) {
      done(authorized);
    } else {
      done(std::move(request));
    }
    return;
  }
  AfterReadIndex([this, token = std::move(token), request = std::move(request),
                  done = std::move(done)](absl::Status) mutable {
    // With or without the read index, the answer is the token as this
    // member knows it now.
    absl::Status again = Authorize(token, &request);
    if (!again.ok()) {
      done(again);
      return;
    }
    done(std::move(request));
  });
}

void KvMember::AfterReadIndex(std::function<void(absl::Status)> then) {
  // Listing alarms reads nothing that any user may not, and the answer is
  // not wanted: only that it came after the read index.
  kvpb::Request barrier;
  barrier.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::GET);
  Read(std::move(barrier), /*serializable=*/false,
       [then = std::move(then)](absl::StatusOr<kvpb::Response> read) { then(read.status()); });
}

absl::StatusOr<std::string> KvMember::PasswordHashOf(const std::string& name) const {
  if (!store().auth().enabled()) return kv::AuthNotEnabledError();
  absl::StatusOr<authpb::User> user = store().auth().UserGet(name);
  // Whether the user exists is nobody's business: the same answer as a
  // wrong password.
  if (!user.ok() || user->options().no_password()) return kv::AuthFailedError();
  return user->password();
}

void KvMember::IssueToken(const std::string& name, std::string token, Done done) {
  kvpb::Request request;
  request.mutable_authenticate()->set_name(name);
  request.mutable_authenticate()->set_token(std::move(token));
  Write(std::move(request), std::move(done));
}

void KvMember::ExpireTokens(int64_t now_ms) {
  if (now_ms < next_token_expiry_ms_) return;
  next_token_expiry_ms_ = now_ms + options_.token_expiry_check_interval_ms;
  store().tokens().ExpireOld(now_ms);
}

Callback KvMember::AwaitAnswer(Done done) {
  uint64_t id = next_waiting_id_++;
  waiting_.emplace(id, std::move(done));
  deadlines_ms_.emplace_back(clock_->now_ms() + options_.request_timeout_ms, id);
  return [this, id](absl::StatusOr<std::string> result) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;  // already timed out
    Done waiting = std::move(it->second);
    waiting_.erase(it);
    waiting(DecodeResponse(result));
  };
}

void KvMember::ExpireRequests(int64_t now_ms) {
  while (!deadlines_ms_.empty() && deadlines_ms_.front().first <= now_ms) {
    uint64_t id = deadlines_ms_.front().second;
    deadlines_ms_.pop_front();
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;  // answered
    Done waiting = std::move(it->second);
    waiting_.erase(it);
    waiting(absl::DeadlineExceededError(kRequestTimedOut));
  }
}

void KvMember::FailAll() {
  RetryLeaseCalls(/*give_up=*/true);
  deadlines_ms_.clear();
  std::map<uint64_t, Done> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [id, done] : waiting) {
    done(absl::DeadlineExceededError("etcdserver: server stopped"));
  }
}

// ------------------------------------------------------------------ leases --

absl::Status KvMember::CheckLeaseLeader() const {
  if (!is_leader()) return absl::FailedPreconditionError("etcdserver: not leader");
  // A new leader answers for leases only once it applied an entry of its
  // own term: until then its log may still hold an earlier leader's
  // revocation, committed but not applied, and a renewal answered now
  // would be undone by it a moment later (etcd waits for the applied
  // index the same way since 3.5).
  const raft::Raft& raft = member_->node().raft();
  if (raft.log().TermAt(member_->applied_index()) != raft.term()) {
    return absl::UnavailableError("etcdserver: leader changed");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> KvMember::KeepAlive(kv::LeaseId id) {
  if (absl::Status s = CheckLeaseLeader(); !s.ok()) return s;
  return store().KeepAlive(id, clock_->now_ms());
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> KvMember::TimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  if (absl::Status s = CheckLeaseLeader(); !s.ok()) return s;
  return store().TimeToLive(request, clock_->now_ms());
}

template <typename T>
void KvMember::WhenLeaseLeader(std::function<T()> call, std::function<void(T)> done) {
  int64_t deadline_ms = clock_->now_ms() + options_.tick_ms * options_.election_ticks;
  // Everything committed when the call came must be applied before it is
  // answered: another member may have answered a revocation this leader
  // committed and has not applied yet, and a client that heard "revoked"
  // must not then hear its lease renewed. (A leader's commit index is at
  // least any member's applied index.)
  uint64_t committed_index = member_->node().raft().log().committed();
  auto attempt = [this, committed_index, call = std::move(call), done = std::move(done),
                  deadline_ms](bool give_up) {
    // Past the deadline nothing is renewed any more: the client has moved
    // on, and a renewal it never hears of would keep the lease alive
    // longer than it believes.
    if (give_up || clock_->now_ms() >= deadline_ms) {
      done(T(absl::UnavailableError("etcdserver: leader changed")));
      return true;
    }
    if (member_->applied_index() < committed_index && is_leader()) return false;
    T result = call();
    if (!result.ok() && result.status().code() == absl::StatusCode::kUnavailable) return false;
    done(std::move(result));
    return true;
  };
  if (!attempt(false)) lease_calls_.push_back(std::move(attempt));
}

void KvMember::RetryLeaseCalls(bool give_up) {
  std::deque<std::function<bool(bool)>> calls;
  calls.swap(lease_calls_);
  for (auto& call : calls) {
    if (!call(give_up)) lease_calls_.push_back(std::move(call));
  }
}

void KvMember::KeepAliveWhenReady(kv::LeaseId id,
                                  std::function<void(absl::StatusOr<int64_t>)> done) {
  WhenLeaseLeader<absl::StatusOr<int64_t>>([this, id] { return KeepAlive(id); },
                                           std::move(done));
}

void KvMember::TimeToLiveWhenReady(
    etcdserverpb::LeaseTimeToLiveRequest request,
    std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) {
  using Answer = absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>;
  if (!request.keys()) {
    WhenLeaseLeader<Answer>([this, request = std::move(request)] { return TimeToLive(request); },
                            std::move(done));
    return;
  }
  // The lease's keys as of the question: a put that another member
  // answered before it was asked must be listed, and this leader may not
  // have applied it yet. A read index first.
  AfterReadIndex([this, request = std::move(request),
                  done = std::move(done)](absl::Status read) mutable {
    if (!read.ok()) {
      done(read);
      return;
    }
    WhenLeaseLeader<Answer>([this, request = std::move(request)] { return TimeToLive(request); },
                            std::move(done));
  });
}

void KvMember::ExpireLeases(int64_t now_ms) {
  bool leader = is_leader();
  if (leader && !was_leader_) {
    // A new leader restarts every lease's TTL (plus an election timeout):
    // it does not know when the old leader last renewed them, and a
    // lease must never end before its holder's last renewal allows.
    store().lessor().Promote(now_ms, options_.election_ticks * options_.tick_ms);
    next_expiry_check_ms_ = now_ms + options_.lease_check_interval_ms;
  }
  was_leader_ = leader;
  // One revocation in flight at a time: the leases it carries are reported
  // expired until it applies, and proposing them again would only fill the
  // log (100,000 leases ending at once are 200 proposals, not 200 a check).
  if (!leader || expiry_in_flight_ || now_ms < next_expiry_check_ms_) return;
  next_expiry_check_ms_ = now_ms + options_.lease_check_interval_ms;
  std::vector<kv::LeaseId> expired =
      store().lessor().Expired(now_ms, options_.max_expired_leases_per_proposal);
  if (expired.empty()) return;
  kvpb::Request request;
  for (kv::LeaseId id : expired) request.mutable_lease_expire()->add_ids(id);
  expiry_in_flight_ = true;
  Write(std::move(request), [this](absl::StatusOr<kvpb::Response>) { expiry_in_flight_ = false; });
}

// -------------------------------------------------------------- membership --

void KvMember::PromoteLearner(raft::NodeId id, StatusDone done) {
  const raft::Raft& raft = member_->node().raft();
  if (raft.role() != raft::Role::kLeader) {
    done(absl::FailedPreconditionError("etcdserver: not leader"));
    return;
  }
  raftpb::ConfState conf = this->conf();
  if (!raft::IsMember(conf, id)) {
    done(MemberNotFoundError());
    return;
  }
  if (!raft::IsLearner(conf, id)) {
    done(absl::FailedPreconditionError("etcdserver: can only promote a learner member"));
    return;
  }
  // Only the leader knows how far the learner's log is: a learner promoted
  // far behind would count in the quorum before it can acknowledge.
  auto progress = raft.tracker().progress.find(id);
  double in_sync_index =
      options_.learner_in_sync_fraction * static_cast<double>(raft.log().committed());
  if (progress == raft.tracker().progress.end() ||
      static_cast<double>(progress->second.match) < in_sync_index) {
    done(absl::FailedPreconditionError(
        "etcdserver: can only promote a learner member which is in sync with leader"));
    return;
  }
  raftpb::ConfChange change;
  change.add_changes()->set_type(raftpb::ADD_NODE);
  change.mutable_changes(0)->set_node_id(id);
  ChangeMembership(std::move(change), "", std::move(done));
}

void KvMember::ChangeMembership(raftpb::ConfChange change, std::string attributes,
                                StatusDone done) {
  member_->ChangeMembership(std::move(change), std::move(attributes),
                            [this, done = std::move(done)](absl::StatusOr<std::string> result) {
                              // So that the caller, once done, sees the new membership.
                              ObserveMembership();
                              done(result.status());
                            });
}

void KvMember::UpdateAttributes(raft::NodeId id, std::string attributes, StatusDone done) {
  member_->UpdateAttributes(id, std::move(attributes),
                            [this, done = std::move(done)](absl::StatusOr<std::string> result) {
                              ObserveMembership();
                              done(result.status());
                            });
}

void KvMember::ObserveMembership() {
  if (member_->membership_version() == membership_version_seen_) return;
  membership_version_seen_ = member_->membership_version();
  // Whatever changed, what is recorded for this member may have too.
  published_ = false;
  if (membership_observer_) membership_observer_();
}

void KvMember::PublishAttributes() {
  // Once it is a member and a leader can take the proposal (etcd's
  // publish); a failure is retried after a later step.
  if (!options_.attributes_to_publish || published_ || publish_in_flight_ ||
      member_->removed_from_cluster() || member_->node().raft().leader() == raft::kNoNode ||
      !raft::IsMember(conf(), id())) {
    return;
  }
  auto recorded = member_->attributes().find(id());
  std::string current = recorded == member_->attributes().end() ? "" : recorded->second;
  std::string wanted = options_.attributes_to_publish(current);
  if (wanted == current) {
    published_ = true;
    return;
  }
  publish_in_flight_ = true;
  member_->UpdateAttributes(id(), std::move(wanted), [this](absl::StatusOr<std::string>) {
    // Success shows as a membership change, which looks again.
    publish_in_flight_ = false;
  });
}

// -------------------------------------------------------------------- step --

void KvMember::AfterStep() {
  int64_t now_ms = clock_->now_ms();
  ExpireLeases(now_ms);
  ExpireTokens(now_ms);
  RetryLeaseCalls(/*give_up=*/false);
  ExpireRequests(now_ms);
  ObserveMembership();
  PublishAttributes();
  WatchDiskSpace(now_ms);
  watch_streams_.Deliver(now_ms);
}

}  // namespace etc::member
