#include "sim/examples/recipes.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace etc::examples {
namespace {

using client::ClientInterface;

// How long a contender waits for a lock or an election before trying
// again.
constexpr std::chrono::milliseconds kWaitForTurn(2000);

absl::StatusOr<int64_t> ReadCounter(ClientInterface& etc, const std::string& counter) {
  absl::StatusOr<etcdserverpb::RangeResponse> got = etc.Get(counter);
  if (!got.ok()) return got.status();
  int64_t value = 0;
  if (got->kvs_size() > 0 && !absl::SimpleAtoi(got->kvs(0).value(), &value)) {
    return absl::DataLossError(absl::StrCat("counter holds ", got->kvs(0).value()));
  }
  return value;
}

// The create revision of `key`, or kAborted if it is gone.
absl::StatusOr<int64_t> CreateRevision(ClientInterface& etc, const std::string& key) {
  absl::StatusOr<etcdserverpb::RangeResponse> got = etc.Get(key);
  if (!got.ok()) return got.status();
  if (got->kvs_size() == 0) return absl::AbortedError("the lock key is gone: lock lost");
  return got->kvs(0).create_revision();
}

// Writes `value` to `key`: plainly, or only while `fence_key` is still at
// `fence_revision` (kAborted if not).
absl::Status GuardedPut(ClientInterface& etc, Guard guard, const std::string& fence_key,
                        int64_t fence_revision, const std::string& key, const std::string& value) {
  if (guard == Guard::kNaive) return etc.Put(key, value).status();
  absl::StatusOr<etcdserverpb::TxnResponse> done =
      etc.Commit(client::Txn()
                     .If(client::CreateRevisionEquals(fence_key, fence_revision))
                     .Then(client::PutOp(key, value)));
  if (!done.ok()) return done.status();
  if (!done->succeeded()) return absl::AbortedError("fenced write refused: lock lost");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Increment> IncrementUnderLock(ClientInterface& etc, const std::string& lock,
                                             int64_t lease, const std::string& counter,
                                             Guard guard) {
  absl::StatusOr<std::string> key = etc.Lock(lock, lease, kWaitForTurn);
  if (!key.ok()) return key.status();
  Increment increment;
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<int64_t> fence = CreateRevision(etc, *key);
    if (!fence.ok()) return fence.status();
    absl::StatusOr<int64_t> read = ReadCounter(etc, counter);
    if (!read.ok()) return read.status();
    increment.read = *read;
    increment.wrote = *read + 1;
    absl::Status wrote =
        GuardedPut(etc, guard, *key, *fence, counter, absl::StrCat(increment.wrote));
    increment.acknowledged = wrote.ok();
    return wrote;
  }();
  (void)etc.Unlock(*key);
  if (!status.ok()) return status;
  return increment;
}

absl::StatusOr<int> LeaderWorker(ClientInterface& etc, const std::string& election,
                                 const std::string& name, int64_t lease,
                                 const std::string& work_prefix, Guard guard,
                                 const std::function<bool()>& stop) {
  absl::StatusOr<v3electionpb::LeaderKey> leader = etc.Campaign(election, lease, name, kWaitForTurn);
  if (!leader.ok()) return leader.status();
  int written = 0;
  absl::Status lost;
  while (!stop()) {
    std::string item = absl::StrCat(work_prefix, leader->rev(), "/", written);
    lost = GuardedPut(etc, guard, leader->key(), leader->rev(), item, name);
    if (!lost.ok()) break;
    ++written;
    etc.SleepFor(std::chrono::milliseconds(20));
  }
  (void)etc.Resign(*leader);
  if (!lost.ok() && written == 0) return lost;
  return written;
}

absl::Status WatchedCache::Refresh() {
  if (!needs_reload()) return absl::OkStatus();
  watcher_.reset();
  absl::StatusOr<etcdserverpb::RangeResponse> all = etc_->Get(prefix_, {.prefix = true});
  if (!all.ok()) return all.status();
  // A new state: events still arriving for the old watch change nothing.
  auto state = std::make_shared<State>();
  for (const mvccpb::KeyValue& kv : all->kvs()) state->values[kv.key()] = kv.value();
  state->revision = all->header().revision();
  state_ = state;
  ++reloads_;
  etcdserverpb::WatchCreateRequest create;
  create.set_key(prefix_);
  create.set_range_end(client::PrefixEnd(prefix_));
  create.set_start_revision(state->revision + 1);
  watcher_ = etc_->Watch(create, [state](const etcdserverpb::WatchResponse& response) {
    if (response.canceled()) state->cancelled = true;
    // One response may hold several events of one revision (a txn).
    int64_t applied_through = state->revision;
    for (const mvccpb::Event& event : response.events()) {
      if (event.kv().mod_revision() <= applied_through && state->anomaly.empty()) {
        state->anomaly = absl::StrCat("event at revision ", event.kv().mod_revision(),
                                      " arrived after revision ", applied_through);
      }
      if (event.type() == mvccpb::Event::DELETE) {
        state->values.erase(event.kv().key());
      } else {
        state->values[event.kv().key()] = event.kv().value();
      }
      state->revision = std::max(state->revision, event.kv().mod_revision());
    }
    // A progress notification: nothing happened up to its revision.
    if (response.events_size() == 0 && !response.created() && !response.canceled()) {
      state->revision = std::max(state->revision, response.header().revision());
    }
  });
  return absl::OkStatus();
}

}  // namespace etc::examples
