#include "sim/kv_workload.h"

#include "absl/strings/str_cat.h"
#include "sim/registers.h"

namespace etc::sim {
namespace {

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
  // Did the request change the state? (A failed compare-and-set or an
  // error changes nothing.)
  bool changed = response.error_code() == 0 &&
                 (request.has_put() || (request.has_txn() && response.txn().succeeded()));
  uint64_t tag = request.header().id();
  if (!changed || !issued_.contains(tag) || !took_effect_.insert(tag).second) return;
  if (certainly_failed_.contains(tag)) FailCertainFailure(tag, process.id);
  // When its effect first became visible anywhere (reads are served from
  // applied state, so nothing could see it before).
  effect_time_.emplace(OpOf(tag), ++logical_time_);
}

void KvWorkload::IssueNext(Client& client) {
  if (world_->failed()) return;
  const Swarm& swarm = world_->swarm();
  lincheck::Operation op;
  op.client = client.id;
  op.key = RegisterKey(client.random.Uniform(static_cast<uint64_t>(swarm.keys)));
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
    if (seen != client.last_seen.end()) op.expected = seen->second;
  }
  op.outcome = lincheck::Outcome::kUnknown;
  op.invoke_time = ++logical_time_;
  client.op = history_.size();
  history_.push_back(std::move(op));
  recorded_.push_back(true);
  client.waiting = true;
  client.deadline_us = world_->queue().now_us() + swarm.client_timeout_us;
  world_->trace().Event("client.invoke", static_cast<uint64_t>(client.id), client.op, [&] {
    return absl::StrCat("client ", client.id, " invokes op ", client.op, ": ",
                        history_[client.op].key, " ", lincheck::Describe(history_[client.op]));
  });
  world_->queue().At(client.deadline_us, [this, &client, op = client.op] {
    if (client.waiting && client.op == op) OnTimeout(client, client.attempt);
  });
  SendAttempt(client);
}

void KvWorkload::SendAttempt(Client& client) {
  uint64_t attempt = ++client.attempt;
  // Like etcd's client syncing its endpoints from the member list, clients
  // address the members of the current configuration.
  std::vector<NodeId> members = world_->Members();
  NodeId target = members.empty() ? 1 + client.random.Uniform(world_->processes().size())
                                  : members[client.random.Uniform(members.size())];
  const lincheck::Operation op = history_[client.op];
  uint64_t tag = AttemptTag(client.op, attempt);
  issued_.insert(tag);
  world_->queue().After(ClientLatency(), [this, &client, attempt, target, op, tag] {
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
    world_->RunOn(process, [this, &process, &client, op, reply, tag] {
      auth_->Send(process, client.session, RequestFor(op, tag),
                  op.kind == lincheck::OpKind::kRead ? AuthWorkload::Mode::kLinearizableRead
                                                     : AuthWorkload::Mode::kWrite,
                  reply);
    });
  });
}

kvpb::Request KvWorkload::RequestFor(const lincheck::Operation& op, uint64_t tag) {
  kvpb::Request request;
  request.mutable_header()->set_id(tag);
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
  lincheck::Operation& op = history_[client.op];
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
  switch (op.kind) {
    case lincheck::OpKind::kRead: {
      if (!response.has_range() || response.range().kvs_size() > 1) {
        world_->Fail("client", "malformed read answer");
        return;
      }
      if (response.range().kvs_size() == 1) {
        op.read_result = response.range().kvs(0).value();
      } else {
        op.read_result = std::nullopt;
      }
      client.last_seen[op.key] = op.read_result;
      break;
    }
    case lincheck::OpKind::kWrite:
      client.last_seen[op.key] = op.value;
      break;
    case lincheck::OpKind::kCas:
      op.cas_succeeded = response.txn().succeeded();
      if (op.cas_succeeded) client.last_seen[op.key] = op.value;
      break;
  }
  op.outcome = lincheck::Outcome::kOk;
  op.return_time = ++logical_time_;
  world_->trace().Event("client.return", static_cast<uint64_t>(client.id), client.op, [&] {
    return absl::StrCat("client ", client.id, " op ", client.op, " returns ",
                        response.ShortDebugString());
  });
  Finish(client);
}

void KvWorkload::OnTimeout(Client& client, uint64_t attempt) {
  if (world_->failed()) return;
  lincheck::Operation& op = history_[client.op];
  world_->trace().Event("client.timeout", static_cast<uint64_t>(client.id), client.op,
                        [&] { return absl::StrCat("client ", client.id, " op ", client.op, " timed out"); });
  Micros timeout_us = world_->swarm().client_timeout_us;
  if (world_->healed() && world_->queue().now_us() - timeout_us >= liveness_deadline_us_) {
    world_->Fail("liveness", absl::StrCat("client ", client.id, "'s operation on ", op.key,
                                          " invoked after faults healed did not complete within ",
                                          timeout_us / 1000, "ms"));
    return;
  }
  // A read that got no answer had no effect; forget it. A write stays in the
  // history with an unknown outcome: it may still take effect.
  if (op.kind == lincheck::OpKind::kRead) recorded_[client.op] = false;
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
      // which is what made the search give up on busy keys.
      auto effect = effect_time_.find(i);
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
