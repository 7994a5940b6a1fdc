#include "sim/kv_workload.h"

#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "sim/registers.h"

namespace etc::sim {
namespace {

// The share of the client requests that are etcd v2's (on the same keys).
constexpr uint64_t kV2Percent = 30;

// What the member path answers when it cannot tell whether a request took
// effect: no answer in time, a snapshot that covered it, a leader that was
// removed or is over its limits. The key tree's own refusals (invalid
// argument, permission, compacted, ...) are none of these.
bool OutcomeUnknown(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

// Did the request change the state? (A failed compare-and-set, a v2
// refusal or an error changes nothing.)
bool ChangedState(const kvpb::Request& request, const kvpb::Response& response) {
  if (response.error_code() != 0) return false;
  if (request.has_tree_set() || request.has_tree_delete()) return response.tree().error_code() == 0;
  return request.has_put() || (request.has_txn() && response.txn().succeeded());
}

// Reads a v3 answer into `op` and what the client saw; an error for an
// answer of the wrong shape. A write's revision (its header's) is the
// index the key then holds its value at.
absl::Status ReadV3Answer(const kvpb::Response& response, lincheck::Operation& op,
                          std::map<std::string, SeenValue>* last_seen) {
  switch (op.kind) {
    case lincheck::OpKind::kRead: {
      if (!response.has_range() || response.range().kvs_size() > 1) {
        return absl::InternalError("malformed read answer");
      }
      SeenValue seen;
      if (response.range().kvs_size() == 1) {
        seen = SeenValue{response.range().kvs(0).value(), response.range().kvs(0).mod_revision()};
      }
      op.read_result = seen.value;
      (*last_seen)[op.key] = std::move(seen);
      break;
    }
    case lincheck::OpKind::kWrite:
      (*last_seen)[op.key] = SeenValue{op.value, response.put().header().revision()};
      break;
    case lincheck::OpKind::kCas:
      op.cas_succeeded = response.txn().succeeded();
      if (op.cas_succeeded) {
        (*last_seen)[op.key] = SeenValue{op.value, response.txn().header().revision()};
      }
      break;
    case lincheck::OpKind::kDelete:
      return absl::InternalError("v3 clients send no deletes");
  }
  return absl::OkStatus();
}

}  // namespace

KvWorkload::KvWorkload(World* world, AuthWorkload* auth, Random random, Random latency)
    : world_(world), auth_(auth), random_(std::move(random)), latency_(std::move(latency)) {
  world_->add_apply_observer([this](Process& process, uint64_t, const kvpb::Request& request,
                                    const kvpb::Response& response) {
    OnApply(process, request, response);
  });
}

void KvWorkload::Start() {
  clients_.resize(static_cast<size_t>(world_->swarm().clients));
  for (int i = 0; i < world_->swarm().clients; ++i) {
    Client& client = clients_[i];
    client.id = i;
    client.random = random_.Fork(i);
    client.session = auth_->NewSession(AuthWorkload::kClientUser);
    world_->queue().At(client.random.Range(0, 20'000), [this, &client] { IssueNext(client); });
  }
}

void KvWorkload::OnApply(Process& process, const kvpb::Request& request,
                         const kvpb::Response& response) {
  uint64_t tag = request.header().id();
  if (!ChangedState(request, response) || !issued_.contains(tag) ||
      !took_effect_.insert(tag).second) {
    return;
  }
  if (certainly_failed_.contains(tag)) FailCertainFailure(tag, process.id);
  // When its effect first became visible anywhere (reads are served from
  // applied state, so nothing could see it before); for every history
  // entry of the request, since one apply makes all of them.
  effect_time_.emplace(OpOf(tag), ++logical_time_);
}

void KvWorkload::IssueNext(Client& client) {
  if (world_->failed()) return;
  client.v2.reset();
  client.prev_index = 0;
  // A share of the requests are v2's, drawn first so that the v3 ones keep
  // their mix.
  if (client.random.Uniform(100) >= kV2Percent) {
    Invoke(client, {DrawV3(client)});
    return;
  }
  v2::Call call = v2::DrawCall(client.random, world_->swarm().keys, client.last_seen,
                               absl::StrCat("c", client.id, ".", ++client.writes));
  client.v2 = call.shape;
  client.prev_index = call.prev_index;
  Invoke(client, std::move(call.ops));
}

lincheck::Operation KvWorkload::DrawV3(Client& client) {
  lincheck::Operation op;
  op.key = RegisterKey(client.random.Uniform(static_cast<uint64_t>(world_->swarm().keys)));
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
    if (seen != client.last_seen.end()) op.expected = seen->second.value;
  }
  return op;
}

void KvWorkload::Invoke(Client& client, std::vector<lincheck::Operation> ops) {
  client.op = history_.size();
  client.ops = ops.size();
  int64_t invoke_time = ++logical_time_;
  for (lincheck::Operation& op : ops) {
    op.client = client.id;
    op.outcome = lincheck::Outcome::kUnknown;
    op.invoke_time = invoke_time;
    history_.push_back(std::move(op));
    recorded_.push_back(true);
    request_of_.push_back(client.op);
  }
  client.waiting = true;
  client.deadline_us = world_->queue().now_us() + world_->swarm().client_timeout_us;
  world_->trace().Event("client.invoke", static_cast<uint64_t>(client.id), client.op, [&] {
    return absl::StrCat("client ", client.id, " invokes op ", client.op, ": ",
                        DescribeRequest(client));
  });
  world_->queue().At(client.deadline_us, [this, &client, op = client.op] {
    if (client.waiting && client.op == op) OnTimeout(client, client.attempt);
  });
  SendAttempt(client);
}

std::string KvWorkload::DescribeRequest(const Client& client) const {
  const lincheck::Operation& first = history_[client.op];
  std::string out = client.v2.has_value() ? absl::StrCat(v2::ShapeName(*client.v2), " ") : "";
  absl::StrAppend(&out, first.key, " ", lincheck::Describe(first));
  if (client.ops > 1) absl::StrAppend(&out, " and ", client.ops - 1, " more keys");
  return out;
}

void KvWorkload::SendAttempt(Client& client) {
  uint64_t attempt = ++client.attempt;
  // Like etcd's client syncing its endpoints from the member list, clients
  // address the members of the current configuration.
  std::vector<NodeId> members = world_->Members();
  NodeId target = members.empty() ? 1 + client.random.Uniform(world_->processes().size())
                                  : members[client.random.Uniform(members.size())];
  uint64_t tag = AttemptTag(client.op, attempt);
  issued_.insert(tag);
  kvpb::Request request = RequestFor(client, tag);
  // Only reads (every entry of a listing is one) go as linearizable reads.
  AuthWorkload::Mode mode = history_[client.op].kind == lincheck::OpKind::kRead
                                ? AuthWorkload::Mode::kLinearizableRead
                                : AuthWorkload::Mode::kWrite;
  world_->queue().After(ClientLatency(), [this, &client, attempt, target, request, mode, tag] {
    Process& process = world_->process(target);
    auto reply = [this, &client, attempt, tag, target](absl::StatusOr<kvpb::Response> result) {
      if (result.status().code() == absl::StatusCode::kUnavailable) {
        certainly_failed_.insert(tag);
        if (took_effect_.contains(tag)) FailCertainFailure(tag, target);
      }
      world_->queue().After(ClientLatency(), [this, &client, attempt, result = std::move(result)] {
        OnResponse(client, attempt, result);
      });
    };
    world_->trace().Event("client.send", static_cast<uint64_t>(client.id), target, [&] {
      return absl::StrCat("client ", client.id, " attempt ", attempt, " of op ", client.op,
                          " reaches member ", target);
    });
    if (!process.up()) {
      // Nothing listens there: the connection is refused at once.
      reply(absl::UnavailableError("connection refused"));
      return;
    }
    world_->RunOn(process, [this, &process, &client, request, mode, reply] {
      auth_->Send(process, client.session, request, mode, reply);
    });
  });
}

kvpb::Request KvWorkload::RequestFor(const Client& client, uint64_t tag) const {
  const lincheck::Operation& first = history_[client.op];
  kvpb::Request request = client.v2.has_value()
                              ? v2::RequestFor(*client.v2, first, client.prev_index)
                              : V3RequestFor(first);
  request.mutable_header()->set_id(tag);
  return request;
}

kvpb::Request KvWorkload::V3RequestFor(const lincheck::Operation& op) {
  kvpb::Request request;
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
    case lincheck::OpKind::kDelete:
      ETC_CHECK(false) << "v3 clients send no deletes";
  }
  return request;
}

uint64_t KvWorkload::AttemptTag(size_t op, uint64_t attempt) {
  // Unique per attempt (attempts per operation stay far below 2^20).
  return (static_cast<uint64_t>(op) + 1) << 20 | (attempt & 0xFFFFF);
}

size_t KvWorkload::OpOf(uint64_t tag) { return (tag >> 20) - 1; }

void KvWorkload::FailCertainFailure(uint64_t tag, NodeId member) {
  size_t op = OpOf(tag);
  world_->Fail("certain-failure",
               absl::StrCat("attempt ", tag & 0xFFFFF, " of client ", history_[op].client,
                            "'s op ", op, " (", history_[op].key, " ",
                            lincheck::Describe(history_[op]),
                            ") was answered Unavailable, which promises it never takes effect, "
                            "but it did (seen at member ",
                            member, ")"));
}

void KvWorkload::OnResponse(Client& client, uint64_t attempt, absl::StatusOr<kvpb::Response> result) {
  if (!client.waiting || attempt != client.attempt || world_->failed()) return;
  if (!result.ok()) {
    world_->trace().Event("client.error", static_cast<uint64_t>(client.id), client.op, [&] {
      return absl::StrCat("client ", client.id, " op ", client.op, ": ",
                          result.status().ToString());
    });
    if (result.status().code() == absl::StatusCode::kUnavailable) {
      // It certainly did not happen: retry elsewhere, after a short backoff,
      // until the deadline.
      world_->queue().After(client.random.Range(2'000, 10'000), [this, &client, attempt] {
        if (client.waiting && client.attempt == attempt && !world_->failed()) SendAttempt(client);
      });
    } else if (!OutcomeUnknown(result.status().code())) {
      // The key tree refused a well-formed request: a bug, not a fault.
      world_->Fail("client", absl::StrCat("op ", client.op, " got an error: ",
                                          result.status().ToString()));
    }
    // Anything else leaves the outcome unknown; the client's timeout
    // records it.
    return;
  }
  const kvpb::Response& response = *result;
  std::span<lincheck::Operation> ops(&history_[client.op], client.ops);
  absl::Status read = client.v2.has_value()
                          ? v2::ReadAnswer(*client.v2, response, ops, &client.last_seen)
                          : ReadV3Answer(response, ops[0], &client.last_seen);
  if (!read.ok()) {
    world_->Fail("client", absl::StrCat("op ", client.op, " (", DescribeRequest(client), "): ",
                                        read.message(), "; answer ", response.ShortDebugString()));
    return;
  }
  int64_t return_time = ++logical_time_;
  for (lincheck::Operation& op : ops) {
    op.outcome = lincheck::Outcome::kOk;
    op.return_time = return_time;
  }
  world_->trace().Event("client.return", static_cast<uint64_t>(client.id), client.op, [&] {
    return absl::StrCat("client ", client.id, " op ", client.op, " returns ",
                        response.ShortDebugString());
  });
  Finish(client);
}

void KvWorkload::OnTimeout(Client& client, uint64_t attempt) {
  if (world_->failed()) return;
  world_->trace().Event("client.timeout", static_cast<uint64_t>(client.id), client.op,
                        [&] { return absl::StrCat("client ", client.id, " op ", client.op, " timed out"); });
  Micros timeout_us = world_->swarm().client_timeout_us;
  if (world_->healed() && !world_->quorum_lost_to_damage() &&
      world_->queue().now_us() - timeout_us >= liveness_deadline_us_) {
    world_->Fail("liveness", absl::StrCat("client ", client.id, "'s operation (",
                                          DescribeRequest(client),
                                          ") invoked after faults healed did not complete within ",
                                          timeout_us / 1000, "ms"));
    return;
  }
  // A read that got no answer had no effect; forget it. A write stays in the
  // history with an unknown outcome: it may still take effect.
  for (size_t i = client.op; i < client.op + client.ops; ++i) {
    if (history_[i].kind == lincheck::OpKind::kRead) recorded_[i] = false;
  }
  Finish(client);
}

void KvWorkload::Finish(Client& client) {
  client.waiting = false;
  world_->queue().After(static_cast<Micros>(client.random.Exponential(2'000)),
                        [this, &client] { IssueNext(client); });
}

void KvWorkload::CheckHistory(std::string* timeline_html) {
  std::vector<lincheck::Operation> history;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (!recorded_[i]) continue;
    lincheck::Operation op = history_[i];
    if (op.outcome == lincheck::Outcome::kUnknown) {
      // The client never learned the outcome, but the simulator saw every
      // apply: an operation whose effect no member ever applied did not
      // happen (a CAS whose compare failed changed nothing either), and
      // one that took effect did so by the first apply. Placed there,
      // unanswered writes no longer stay open to the end of the history,
      // which is what made the search give up on busy keys. The entries of
      // one request (a recursive delete's) all took effect at its apply.
      auto effect = effect_time_.find(request_of_[i]);
      if (effect == effect_time_.end()) continue;
      op.outcome = lincheck::Outcome::kOk;
      op.return_time = effect->second;
      if (op.kind == lincheck::OpKind::kCas) op.cas_succeeded = true;
      ++resolved_unknown_;
    }
    history.push_back(std::move(op));
  }
  lincheck::CheckResult check = lincheck::Check(history);
  for (const lincheck::KeyResult& key : check.keys) {
    if (key.verdict == lincheck::Verdict::kViolation) {
      world_->Fail("linearizability", absl::StrCat("the history of key ", key.key, " (",
                                                   key.operations, " operations) is not linearizable"));
      *timeline_html = lincheck::RenderHtml(history, key);
      return;
    }
  }
  for (const lincheck::KeyResult& key : check.keys) {
    if (key.verdict == lincheck::Verdict::kUnknown) {
      world_->Fail("linearizability",
                   absl::StrCat("the checker gave up on key ", key.key, " (", key.operations,
                                " operations, ", key.states_explored,
                                " states): the history was neither shown linearizable nor not"));
      return;
    }
  }
}

KvWorkloadStats KvWorkload::stats() const {
  KvWorkloadStats stats;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (!recorded_[i]) continue;
    ++stats.operations;
    if (history_[i].outcome == lincheck::Outcome::kOk) {
      ++stats.operations_ok;
    } else {
      ++stats.operations_unknown;
    }
  }
  stats.unknown_resolved = resolved_unknown_;
  return stats;
}

}  // namespace etc::sim
