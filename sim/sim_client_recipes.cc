// etcd's lock and election recipes (its v3lock and v3election services,
// built on clientv3/concurrency), run by the simulated client on top of
// its own KV calls and watches: every contender creates a key under the
// name with its lease; the key with the oldest create revision holds the
// lock (or leads), and each contender waits for the deletion of the newest
// key older than its own.
#include "absl/strings/str_cat.h"
#include "sim/sim_client.h"

namespace etc::sim {
namespace {

// How long the recipe backs off after a failed step before trying again.
constexpr std::chrono::milliseconds kRetryBackoff(50);

std::string ContenderKey(const std::string& name, int64_t lease) {
  return absl::StrCat(name, "/", absl::Hex(lease));
}

}  // namespace

absl::StatusOr<std::pair<std::string, int64_t>> SimClient::CreateContender(
    const std::string& name, int64_t lease, const std::string& value) {
  std::string key = ContenderKey(name, lease);
  client::Txn txn;
  txn.If(client::CreateRevisionEquals(key, 0))
      .Then(client::PutOp(key, value, lease))
      .Else(client::GetOp(key));
  absl::StatusOr<etcdserverpb::TxnResponse> created = Commit(txn);
  if (!created.ok()) return created.status();
  if (created->succeeded()) return std::make_pair(key, created->header().revision());
  const etcdserverpb::RangeResponse& existing = created->responses(0).response_range();
  if (existing.kvs_size() == 0) return absl::UnavailableError("contender key vanished; try again");
  return std::make_pair(key, existing.kvs(0).create_revision());
}

absl::Status SimClient::WaitDeletes(const std::string& prefix, int64_t revision,
                                    Micros deadline_us) {
  for (;;) {
    if (world_->queue().now_us() >= deadline_us) {
      return absl::DeadlineExceededError("context deadline exceeded");
    }
    etcdserverpb::RangeRequest older;
    older.set_key(prefix);
    older.set_range_end(client::PrefixEnd(prefix));
    older.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    older.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    older.set_max_create_revision(revision - 1);
    older.set_limit(1);
    absl::StatusOr<etcdserverpb::RangeResponse> found = Range(older);
    if (!found.ok()) {
      SleepFor(kRetryBackoff);
      continue;
    }
    // Nothing is older than revision 1 (etc's first write; etcd's is 2),
    // and a max_create_revision of 0 would mean "no bound".
    if (found->kvs_size() == 0 || revision <= 1) return absl::OkStatus();
    // Wait for that key's deletion after the revision just read.
    auto deleted = std::make_shared<Signal>();
    etcdserverpb::WatchCreateRequest create;
    create.set_key(found->kvs(0).key());
    create.set_start_revision(found->header().revision() + 1);
    create.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    std::unique_ptr<client::Watcher> watch =
        Watch(create, [deleted](const etcdserverpb::WatchResponse& response) {
          if (response.events_size() > 0 || response.canceled()) deleted->Set();
        });
    AwaitSignal(deleted, deadline_us);
  }
}

absl::StatusOr<std::string> SimClient::Lock(const std::string& name, int64_t lease,
                                            std::chrono::milliseconds timeout) {
  Micros deadline_us = world_->queue().now_us() + timeout.count() * 1000;
  auto contender = CreateContender(name, lease, "");
  if (!contender.ok()) return contender.status();
  if (absl::Status held = WaitDeletes(name + "/", contender->second, deadline_us); !held.ok()) {
    // Never hold the lock later: give the place up.
    (void)Delete(contender->first);
    return held;
  }
  return contender->first;
}

absl::Status SimClient::Unlock(const std::string& key) { return Delete(key).status(); }

absl::StatusOr<v3electionpb::LeaderKey> SimClient::Campaign(const std::string& name, int64_t lease,
                                                            const std::string& value,
                                                            std::chrono::milliseconds timeout) {
  Micros deadline_us = world_->queue().now_us() + timeout.count() * 1000;
  auto contender = CreateContender(name, lease, value);
  if (!contender.ok()) return contender.status();
  v3electionpb::LeaderKey leader;
  leader.set_name(name);
  leader.set_key(contender->first);
  leader.set_rev(contender->second);
  leader.set_lease(lease);
  if (absl::Status led = WaitDeletes(name + "/", contender->second, deadline_us); !led.ok()) {
    (void)Delete(contender->first);
    return led;
  }
  // A campaign again with the same lease keeps its place: its value is
  // the new one.
  if (absl::Status proclaimed = Proclaim(leader, value); !proclaimed.ok()) return proclaimed;
  return leader;
}

absl::Status SimClient::Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value) {
  client::Txn txn;
  txn.If(client::CreateRevisionEquals(leader.key(), leader.rev()))
      .Then(client::PutOp(leader.key(), value, leader.lease()));
  absl::StatusOr<etcdserverpb::TxnResponse> done = Commit(txn);
  if (!done.ok()) return done.status();
  if (!done->succeeded()) return absl::FailedPreconditionError("election: not leader");
  return absl::OkStatus();
}

absl::StatusOr<mvccpb::KeyValue> SimClient::Leader(const std::string& name) {
  etcdserverpb::RangeRequest oldest;
  oldest.set_key(name + "/");
  oldest.set_range_end(client::PrefixEnd(name + "/"));
  oldest.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  oldest.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  oldest.set_limit(1);
  absl::StatusOr<etcdserverpb::RangeResponse> found = Range(oldest);
  if (!found.ok()) return found.status();
  if (found->kvs_size() == 0) return absl::NotFoundError("election: no leader");
  return found->kvs(0);
}

absl::Status SimClient::Resign(const v3electionpb::LeaderKey& leader) {
  client::Txn txn;
  txn.If(client::CreateRevisionEquals(leader.key(), leader.rev()))
      .Then(client::DeleteOp(leader.key()));
  return Commit(txn).status();
}

}  // namespace etc::sim
