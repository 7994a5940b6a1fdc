// What a program can ask of an etc (or etcd) cluster, as one interface with
// two implementations: the gRPC client (client/client.h) for real clusters,
// and the simulated client (sim/testing.h) that runs the same code on a
// simulated cluster on virtual time. Code written against ClientInterface
// links against either, unchanged:
//
//   absl::Status Increment(etc::client::ClientInterface& etc, const std::string& key) {
//     auto got = etc.Get(key);
//     ...
//     etc.Commit(etc::client::Txn().If(etc::client::ModRevisionEquals(key, rev))
//                                  .Then(etc::client::PutOp(key, next)));
//   }
//
// Time goes through the interface too (SleepFor, now_ms): in a simulation,
// sleeping is virtual time passing, so code that waits or backs off must
// use these rather than std::this_thread::sleep_for.
#ifndef ETC_CLIENT_CLIENT_INTERFACE_H_
#define ETC_CLIENT_CLIENT_INTERFACE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "server/v3electionpb/v3election.pb.h"

namespace etc::client {

struct GetOptions {
  bool prefix = false;
  std::string range_end = {};  // "" = just the key (unless prefix)
  int64_t revision = 0;
  int64_t limit = 0;
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;
};

struct PutOptions {
  int64_t lease = 0;
  bool prev_kv = false;
};

struct DeleteOptions {
  bool prefix = false;
  bool prev_kv = false;
};

// The smallest key greater than every key with `prefix` ("\0" for "").
std::string PrefixEnd(const std::string& prefix);

etcdserverpb::RangeRequest RangeOf(const std::string& key, const GetOptions& options);
etcdserverpb::DeleteRangeRequest DeleteOf(const std::string& key, const DeleteOptions& options);

// Transaction pieces.
etcdserverpb::Compare ValueEquals(const std::string& key, const std::string& value);
etcdserverpb::Compare VersionEquals(const std::string& key, int64_t version);
etcdserverpb::Compare ModRevisionEquals(const std::string& key, int64_t revision);
etcdserverpb::Compare CreateRevisionEquals(const std::string& key, int64_t revision);
etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0);
etcdserverpb::RequestOp GetOp(const std::string& key, GetOptions options = {});
etcdserverpb::RequestOp DeleteOp(const std::string& key, DeleteOptions options = {});

class Txn {
 public:
  Txn& If(etcdserverpb::Compare compare);
  Txn& Then(etcdserverpb::RequestOp op);
  Txn& Else(etcdserverpb::RequestOp op);
  const etcdserverpb::TxnRequest& request() const { return request_; }

 private:
  etcdserverpb::TxnRequest request_;
};

// A watch that survives the loss of its endpoint: it reconnects (to the
// next endpoint) and resumes from the revision after the last one it
// delivered (or, before any event, after the revision the server created
// it at), so no event is lost or repeated. Stops when destroyed, or after
// the server cancels it (a compacted start revision: the cancel response
// is delivered first).
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void Stop() = 0;
  // Everything up to this revision was delivered: the newest of the last
  // event's revision, a progress notification's and the revision the
  // watch was created at (0 before the server confirmed it).
  virtual int64_t last_revision() const = 0;
};

// Where a watch stands, as its responses arrive: what a resume must start
// after, and whether a created response is news (the first) or a
// reconnect's. Both clients' watchers keep one.
class WatchProgress {
 public:
  explicit WatchProgress(int64_t start_revision) : start_revision_(start_revision) {}
  // Takes `response` into account; false if the caller should not pass it
  // on (a created response after a reconnect).
  bool Observe(const etcdserverpb::WatchResponse& response);
  int64_t last_revision() const { return last_revision_; }
  // The start revision a (re)create asks for: the original's, or the one
  // after what was delivered.
  int64_t resume_revision() const {
    return last_revision_ > 0 ? last_revision_ + 1 : start_revision_;
  }

 private:
  int64_t start_revision_;
  int64_t last_revision_ = 0;
  bool created_delivered_ = false;
};

// Keeps a lease alive in the background (a keep-alive every third of its
// TTL, failing over like any safe request) until destroyed.
class KeepAlive {
 public:
  virtual ~KeepAlive() = default;
  virtual void Stop() = 0;
  // The TTL the last keep-alive returned; 0 once the lease is gone.
  virtual int64_t ttl() const = 0;
};

// How long a keep-alive loop waits before its next renewal: a third of
// the TTL (a second at least), sooner after a failed one.
std::chrono::milliseconds KeepAlivePeriod(int64_t ttl_seconds, bool last_renewal_ok);

class ClientInterface {
 public:
  virtual ~ClientInterface() = default;

  // ---- KV ----
  absl::StatusOr<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                                PutOptions options = {});
  absl::StatusOr<etcdserverpb::RangeResponse> Get(const std::string& key, GetOptions options = {});
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key,
                                                           DeleteOptions options = {});
  absl::StatusOr<etcdserverpb::TxnResponse> Commit(const Txn& txn) { return TxnRaw(txn.request()); }
  // The raw calls (all options).
  virtual absl::StatusOr<etcdserverpb::RangeResponse> Range(
      const etcdserverpb::RangeRequest& request) = 0;
  virtual absl::StatusOr<etcdserverpb::PutResponse> PutRaw(
      const etcdserverpb::PutRequest& request) = 0;
  virtual absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRaw(
      const etcdserverpb::DeleteRangeRequest& request) = 0;
  virtual absl::StatusOr<etcdserverpb::TxnResponse> TxnRaw(
      const etcdserverpb::TxnRequest& request) = 0;
  // physical: answer once the compacted revisions are physically removed.
  virtual absl::StatusOr<etcdserverpb::CompactionResponse> Compact(int64_t revision,
                                                                   bool physical = false) = 0;

  // ---- leases ----
  virtual absl::StatusOr<etcdserverpb::LeaseGrantResponse> Grant(int64_t ttl_seconds,
                                                                 int64_t id = 0) = 0;
  absl::Status Revoke(int64_t id) { return RevokeRaw(id).status(); }
  virtual absl::StatusOr<etcdserverpb::LeaseRevokeResponse> RevokeRaw(int64_t id) = 0;
  virtual absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> TimeToLive(int64_t id,
                                                                           bool keys = false) = 0;
  // One keep-alive; returns the new TTL (0: the lease is gone).
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t id);
  virtual absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveOnceResponse(
      int64_t id) = 0;
  virtual std::unique_ptr<KeepAlive> KeepAliveForever(int64_t id, int64_t ttl_seconds) = 0;

  // ---- watch ----
  // Returns once the server confirmed the watch (so every write made after
  // this returns is seen), or after the dial timeout if no endpoint
  // answered; the watch keeps trying in the background either way.
  // `on_response` runs on the watch's own thread (the gRPC client) or in
  // the simulation between other steps (the simulated client): it must not
  // block, nor call this client.
  virtual std::unique_ptr<Watcher> Watch(
      etcdserverpb::WatchCreateRequest create,
      std::function<void(const etcdserverpb::WatchResponse&)> on_response) = 0;

  // ---- lock and election (etcd's v3lock / v3election services) ----
  // Blocks until the lock is held (or `timeout` passes); returns the key
  // that holds it (its create revision is a fencing token).
  virtual absl::StatusOr<std::string> Lock(const std::string& name, int64_t lease,
                                           std::chrono::milliseconds timeout) = 0;
  virtual absl::Status Unlock(const std::string& key) = 0;
  virtual absl::StatusOr<v3electionpb::LeaderKey> Campaign(const std::string& name, int64_t lease,
                                                           const std::string& value,
                                                           std::chrono::milliseconds timeout) = 0;
  virtual absl::Status Proclaim(const v3electionpb::LeaderKey& leader,
                                const std::string& value) = 0;
  virtual absl::StatusOr<mvccpb::KeyValue> Leader(const std::string& name) = 0;
  virtual absl::Status Resign(const v3electionpb::LeaderKey& leader) = 0;

  // ---- time ----
  // Waits `duration` (virtual time in a simulation).
  virtual void SleepFor(std::chrono::milliseconds duration) = 0;
  // A monotonic clock in milliseconds (virtual time in a simulation).
  virtual int64_t now_ms() = 0;
};

}  // namespace etc::client

#endif  // ETC_CLIENT_CLIENT_INTERFACE_H_
