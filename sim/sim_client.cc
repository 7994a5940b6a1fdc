#include "sim/sim_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace etc::sim {
namespace {

// A member forwards a lease call to the leader it knows over the peer
// network: about this long each way.
constexpr Micros kPeerHopUs = 500;
// After a certain failure, the client tries the next member this soon.
constexpr Micros kFailoverBackoffUs = 10'000;

etcdserverpb::RequestOp Recorded(const kvpb::Request& request) {
  etcdserverpb::RequestOp op;
  if (request.has_range()) *op.mutable_request_range() = request.range();
  if (request.has_put()) *op.mutable_request_put() = request.put();
  if (request.has_delete_range()) *op.mutable_request_delete_range() = request.delete_range();
  if (request.has_txn()) *op.mutable_request_txn() = request.txn();
  return op;
}

absl::StatusOr<etcdserverpb::ResponseOp> RecordedAnswer(const absl::StatusOr<kvpb::Response>& r) {
  if (!r.ok()) return r.status();
  etcdserverpb::ResponseOp op;
  if (r->has_range()) *op.mutable_response_range() = r->range();
  if (r->has_put()) *op.mutable_response_put() = r->put();
  if (r->has_delete_range()) *op.mutable_response_delete_range() = r->delete_range();
  if (r->has_txn()) *op.mutable_response_txn() = r->txn();
  return op;
}

}  // namespace

SimClient::SimClient(World* world, int id, SimClientOptions options, Random random, Random latency,
                     ClientHistory* history)
    : world_(world),
      id_(id),
      options_(options),
      random_(std::move(random)),
      latency_(std::move(latency)),
      history_(history),
      current_(static_cast<size_t>(id)) {}

SimClient::~SimClient() { *alive_ = false; }

void SimClient::PauseUntil(Micros until_us) {
  paused_until_us_ = std::max(paused_until_us_, until_us);
  world_->trace().Event("client.pause", static_cast<uint64_t>(id_), static_cast<uint64_t>(until_us),
                        [&] { return absl::StrCat("client ", id_, " pauses until ", until_us / 1000, "ms"); });
}

void SimClient::AfterOnClient(Micros delay_us, std::function<void()> action) {
  world_->queue().After(delay_us, [this, alive = alive_, action = std::move(action)]() mutable {
    if (!*alive) return;
    // A frozen process acts when it wakes, in the order things reached
    // it (behind whatever already waits, even if it just woke).
    if (world_->queue().now_us() < paused_until_us_ || !deferred_.empty()) {
      deferred_.push_back(std::move(action));
      ScheduleWake();
      return;
    }
    action();
  });
}

void SimClient::ScheduleWake() {
  if (wake_scheduled_) return;
  wake_scheduled_ = true;
  world_->queue().At(std::max(paused_until_us_, world_->queue().now_us()),
                     [this, alive = alive_] {
                       if (!*alive) return;
                       wake_scheduled_ = false;
                       RunDeferred();
                     });
}

void SimClient::RunDeferred() {
  while (!deferred_.empty()) {
    // An action may pause the process again (the program draws a pause).
    if (world_->queue().now_us() < paused_until_us_) {
      ScheduleWake();
      return;
    }
    std::function<void()> action = std::move(deferred_.front());
    deferred_.pop_front();
    action();
  }
}

void SimClient::WakeProgram() {
  AfterOnClient(0, [this] { program_->Resume(); });
}

absl::Status SimClient::Enter() {
  if (program_ == nullptr || CooperativeThread::Current() != program_) {
    return absl::FailedPreconditionError(
        "a simulated client may only be called from its own program (not from a watch callback "
        "or another client's program)");
  }
  if (options_.pause_probability > 0 && random_.Chance(options_.pause_probability)) {
    Micros now_us = world_->queue().now_us();
    Micros pause_us = random_.Range(1, std::max<Micros>(options_.max_pause_us, 2));
    ClientPauses* pauses = options_.pauses;
    bool take = true;
    if (pauses != nullptr) {
      size_t index = pauses->drawn.size();
      pauses->drawn.push_back(absl::StrCat("client ", id_, " pauses at ", now_us / 1000, "ms for ",
                                           pause_us / 1000, "ms"));
      take = !pauses->keep.has_value() || pauses->keep->contains(index);
      if (take) pauses->taken.push_back(index);
    }
    if (take) PauseUntil(now_us + pause_us);
  }
  while (world_->queue().now_us() < paused_until_us_) {
    WakeProgram();
    program_->Block();
  }
  return absl::OkStatus();
}

NodeId SimClient::Target() {
  std::vector<NodeId> members = world_->Members();
  if (members.empty()) {
    for (auto& process : world_->processes()) {
      if (!process->stopped) members.push_back(process->id);
    }
  }
  return members[current_ % members.size()];
}

void SimClient::MoveOn(NodeId from) {
  if (Target() == from) ++current_;
}

absl::StatusOr<kvpb::Response> SimClient::Await(const std::function<void(Done)>& start,
                                                Micros timeout_us) {
  struct State {
    bool done = false;
    absl::StatusOr<kvpb::Response> result;
  };
  auto state = std::make_shared<State>();
  Done finish = [this, alive = alive_, state](absl::StatusOr<kvpb::Response> result) {
    if (state->done || !*alive) return;
    state->done = true;
    state->result = std::move(result);
    WakeProgram();
  };
  start(finish);
  world_->queue().After(timeout_us, [finish] {
    finish(absl::DeadlineExceededError("context deadline exceeded (no answer from the cluster)"));
  });
  while (!state->done) program_->Block();
  return std::move(state->result);
}

void SimClient::Send(kvpb::Request request, Mode mode, Micros deadline_us,
                     Done done) {
  NodeId target = Target();
  world_->queue().After(Latency(), [this, alive = alive_, target, request = std::move(request), mode,
                                    deadline_us, done = std::move(done)]() mutable {
    if (!*alive) return;
    Process& process = world_->process(target);
    bool reached = process.up();
    auto reply = [this, alive, target, request, mode, deadline_us, done,
                  reached](absl::StatusOr<kvpb::Response> result) {
      world_->queue().After(Latency(), [=, this] {
        if (!*alive) return;
        // kUnavailable promises the request had no effect (nothing
        // listened, no leader, the leader changed): send it again.
        bool certain_failure = result.status().code() == absl::StatusCode::kUnavailable;
        if (certain_failure && world_->queue().now_us() + kFailoverBackoffUs < deadline_us) {
          MoveOn(target);
          world_->queue().After(kFailoverBackoffUs, [=, this] {
            if (*alive) Send(request, mode, deadline_us, done);
          });
          return;
        }
        done(result);
      });
    };
    if (!reached) {
      reply(absl::UnavailableError("connection refused"));
      return;
    }
    world_->RunOn(process, [this, &process, request = std::move(request), mode, reply]() mutable {
      Dispatch(process, std::move(request), mode, reply);
    });
  });
}

void SimClient::Dispatch(Process& process, kvpb::Request request, Mode mode, Done reply) {
  switch (mode) {
    case Mode::kWrite:
      if (absl::Status s = process.kv->Authorize(std::nullopt, &request); !s.ok()) {
        reply(s);
        return;
      }
      process.kv->Write(std::move(request), std::move(reply));
      return;
    case Mode::kLinearizableRead:
    case Mode::kSerializableRead:
      if (absl::Status s = process.kv->Authorize(std::nullopt, &request); !s.ok()) {
        reply(s);
        return;
      }
      process.kv->Read(std::move(request), mode == Mode::kSerializableRead, std::move(reply));
      return;
    case Mode::kTimeToLive:
    case Mode::kKeepAlive:
      LeaseCall(process, request, mode == Mode::kKeepAlive, std::move(reply), 0);
      return;
  }
}

// Keep-alives and time-to-live questions are answered by the leader; a
// follower forwards them to the leader it knows, as the server does. A
// keep-alive travels as a time-to-live request for its lease; its answer
// carries the new TTL (0: the lease is gone, as etcd answers).
void SimClient::LeaseCall(Process& process, const kvpb::Request& request, bool keep_alive,
                          Done reply, int hops) {
  if (process.kv->is_leader()) {
    const etcdserverpb::LeaseTimeToLiveRequest& asked = request.lease_time_to_live();
    if (keep_alive) {
      process.kv->KeepAliveWhenReady(asked.id(), [reply, id = asked.id()](absl::StatusOr<int64_t> ttl) {
        if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
          reply(ttl.status());
          return;
        }
        kvpb::Response response;
        response.mutable_lease_time_to_live()->set_id(id);
        response.mutable_lease_time_to_live()->set_ttl(ttl.ok() ? *ttl : 0);
        reply(std::move(response));
      });
      return;
    }
    process.kv->TimeToLiveWhenReady(
        asked, [reply](absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> answer) {
          if (!answer.ok()) {
            reply(answer.status());
            return;
          }
          kvpb::Response response;
          *response.mutable_lease_time_to_live() = *answer;
          reply(std::move(response));
        });
    return;
  }
  NodeId leader = process.member()->Status().leader;
  if (leader == 0 || leader == process.id || hops > 0) {
    reply(absl::UnavailableError("etcdserver: no leader"));
    return;
  }
  world_->queue().After(kPeerHopUs, [this, leader, request, keep_alive, reply, hops] {
    Process& to = world_->process(leader);
    if (!to.up()) {
      world_->queue().After(kPeerHopUs, [reply] { reply(absl::UnavailableError("etcdserver: leader gone")); });
      return;
    }
    world_->RunOn(to, [this, &to, request, keep_alive, reply, hops] {
      LeaseCall(to, request, keep_alive, [this, reply](absl::StatusOr<kvpb::Response> r) {
        world_->queue().After(kPeerHopUs, [reply, r] { reply(r); });
      }, hops + 1);
    });
  });
}

absl::StatusOr<kvpb::Response> SimClient::Call(kvpb::Request request, Mode mode, bool record) {
  if (absl::Status entered = Enter(); !entered.ok()) return entered;
  std::optional<size_t> call;
  if (record) call = history_->Invoke(id_, Recorded(request));
  Micros deadline_us = world_->queue().now_us() + options_.request_timeout_us;
  absl::StatusOr<kvpb::Response> result = Await(
      [&](Done done) { Send(std::move(request), mode, deadline_us, std::move(done)); },
      options_.request_timeout_us);
  if (call.has_value()) history_->Finish(*call, RecordedAnswer(result));
  return result;
}

// ------------------------------------------------------------------- KV --

absl::StatusOr<etcdserverpb::RangeResponse> SimClient::Range(
    const etcdserverpb::RangeRequest& request) {
  kvpb::Request wrapped;
  *wrapped.mutable_range() = request;
  auto result = Call(std::move(wrapped),
                     request.serializable() ? Mode::kSerializableRead : Mode::kLinearizableRead,
                     /*record=*/true);
  if (!result.ok()) return result.status();
  return result->range();
}

absl::StatusOr<etcdserverpb::PutResponse> SimClient::PutRaw(const etcdserverpb::PutRequest& request) {
  kvpb::Request wrapped;
  *wrapped.mutable_put() = request;
  auto result = Call(std::move(wrapped), Mode::kWrite, /*record=*/true);
  if (!result.ok()) return result.status();
  return result->put();
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> SimClient::DeleteRaw(
    const etcdserverpb::DeleteRangeRequest& request) {
  kvpb::Request wrapped;
  *wrapped.mutable_delete_range() = request;
  auto result = Call(std::move(wrapped), Mode::kWrite, /*record=*/true);
  if (!result.ok()) return result.status();
  return result->delete_range();
}

absl::StatusOr<etcdserverpb::TxnResponse> SimClient::TxnRaw(const etcdserverpb::TxnRequest& request) {
  kvpb::Request wrapped;
  *wrapped.mutable_txn() = request;
  bool read_only = true;
  for (const auto* branch : {&request.success(), &request.failure()}) {
    for (const auto& op : *branch) read_only = read_only && op.has_request_range();
  }
  auto result = Call(std::move(wrapped), read_only ? Mode::kLinearizableRead : Mode::kWrite,
                     /*record=*/true);
  if (!result.ok()) return result.status();
  return result->txn();
}

absl::StatusOr<etcdserverpb::CompactionResponse> SimClient::Compact(int64_t revision,
                                                                    bool physical) {
  kvpb::Request wrapped;
  wrapped.mutable_compaction()->set_revision(revision);
  wrapped.mutable_compaction()->set_physical(physical);
  auto result = Call(std::move(wrapped), Mode::kWrite, /*record=*/false);
  if (!result.ok()) return result.status();
  return result->compaction();
}

// ---------------------------------------------------------------- leases --

absl::StatusOr<etcdserverpb::LeaseGrantResponse> SimClient::Grant(int64_t ttl_seconds, int64_t id) {
  kvpb::Request wrapped;
  // As the server does, the client's side picks an id if none was asked
  // for (from the client's own random stream, so runs replay).
  wrapped.mutable_lease_grant()->set_id(id != 0 ? id : static_cast<int64_t>(random_.Next() >> 2) + 1);
  wrapped.mutable_lease_grant()->set_ttl(ttl_seconds);
  auto result = Call(std::move(wrapped), Mode::kWrite, /*record=*/false);
  if (!result.ok()) return result.status();
  return result->lease_grant();
}

absl::StatusOr<etcdserverpb::LeaseRevokeResponse> SimClient::RevokeRaw(int64_t id) {
  kvpb::Request wrapped;
  wrapped.mutable_lease_revoke()->set_id(id);
  auto result = Call(std::move(wrapped), Mode::kWrite, /*record=*/false);
  if (!result.ok()) return result.status();
  return result->lease_revoke();
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> SimClient::TimeToLive(int64_t id, bool keys) {
  kvpb::Request wrapped;
  wrapped.mutable_lease_time_to_live()->set_id(id);
  wrapped.mutable_lease_time_to_live()->set_keys(keys);
  auto result = Call(std::move(wrapped), Mode::kTimeToLive, /*record=*/false);
  if (!result.ok()) return result.status();
  return result->lease_time_to_live();
}

absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> SimClient::KeepAliveOnceResponse(int64_t id) {
  kvpb::Request wrapped;
  wrapped.mutable_lease_time_to_live()->set_id(id);
  auto result = Call(std::move(wrapped), Mode::kKeepAlive, /*record=*/false);
  if (!result.ok()) return result.status();
  etcdserverpb::LeaseKeepAliveResponse response;
  response.set_id(id);
  response.set_ttl(result->lease_time_to_live().ttl());
  return response;
}

// ------------------------------------------------------------------ time --

void SimClient::SleepFor(std::chrono::milliseconds duration) {
  if (!Enter().ok()) return;
  Micros until_us = world_->queue().now_us() + duration.count() * 1000;
  while (world_->queue().now_us() < until_us) {
    AfterOnClient(until_us - world_->queue().now_us(), [this] { program_->Resume(); });
    program_->Block();
  }
}

int64_t SimClient::now_ms() { return world_->queue().now_us() / 1000; }

}  // namespace etc::sim
