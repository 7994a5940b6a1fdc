// The key tree's state machine: what every member applies from the Raft
// log, in the same order, to reach the same state. It takes and returns
// etcd v3's own messages (wrapped in kvpb.Request / kvpb.Response) and
// answers exactly as etcd 3.4 does, revision for revision, plus etc's
// directory operations (list the children of a path, recursive get and
// delete) and etcd v2's keys API over the same keys (kv/tree.h).
//
// Replicated, deterministic state: the keyspace with its history, leases
// and the keys attached to them, users/roles/permissions, alarms. Each
// member also keeps local state the Store owns but never replicates:
// watchers (WatchHub), lease expiry clocks (Lessor) and auth tokens
// (TokenTable); time reaches them only as arguments.
//
//   Store store;
//   kvpb::Request request;
//   request.mutable_put()->set_key("/services/web/port");
//   request.mutable_put()->set_value("8080");
//   kvpb::Response response = store.Apply(request);      // revision 1
//
// Every request is validated first (Validate, also usable at the edge), and
// a failed request changes nothing.
#ifndef ETC_KV_STORE_H_
#define ETC_KV_STORE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/auth.h"
#include "kv/auth_tokens.h"
#include "kv/keyspace.h"
#include "kv/kvpb/kvpb.pb.h"
#include "kv/lease.h"
#include "kv/watch.h"

namespace etc::kv {

// The default quota, etcd's: 2 GiB.
inline constexpr int64_t kDefaultQuotaBytes = int64_t{2} << 30;
// The largest quota: etcd's largest recommended, 8 GiB. A key tree of this
// size serializes to a snapshot of about 10 GiB, which snapshot files, the
// transfer to a new member and Restore all take (they read snapshots past
// protobuf's 2 GiB message limit field by field: base/wire_fields.h).
inline constexpr int64_t kMaxQuotaBytes = int64_t{8} << 30;

// The largest --max-request-bytes: a request travels in one log entry, which
// must fit one WAL record (storage::kMaxRecordPayloadBytes, 64 MiB, the
// most its reader takes), envelope included. Larger, the leader's log would
// refuse the entry and the member stop.
inline constexpr int64_t kMaxRequestBytesLimit = int64_t{32} << 20;  // 32 MiB

struct StoreOptions {
  // --quota-backend-bytes: the size (Keyspace::size_bytes, i.e. retained
  // keys and values plus a fixed cost per version) past which writes are
  // refused and the NOSPACE alarm raised. At most kMaxQuotaBytes.
  int64_t quota_bytes = kDefaultQuotaBytes;
  // --max-request-bytes (etcd: 1.5 MiB).
  int64_t max_request_bytes = 1536 * 1024;
  // --max-txn-ops (etcd: 128).
  int max_txn_ops = 128;
  // Leases granted with a shorter TTL get this one (etcd derives it from
  // the election timeout).
  int64_t min_lease_ttl_seconds = 1;
  // --auth-token-ttl: a token unused this long is dropped (etcd: 300 s).
  int64_t auth_token_ttl_ms = kDefaultAuthTokenTtlMs;
  WatchLimits watch;
  // Where the key tree keeps its values (not owned; it must outlive the
  // store). Null: in memory, in the store's own MemoryValueStore.
  ValueStore* values = nullptr;
};

class Store {
 public:
  explicit Store(StoreOptions options = {});
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Checks what can be checked without the state: empty keys, conflicting
  // options, txn size and duplicate keys, request size. The server calls it
  // before proposing; Apply calls it again (a request is data from the log).
  absl::Status Validate(const kvpb::Request& request) const;

  // Applies a committed request. Deterministic: the same requests in the
  // same order give the same responses and state on every member.
  kvpb::Response Apply(const kvpb::Request& request);
  // Answers a read-only request (range, list, tree range, lease list, user
  // and role queries, hash) from the current state, without changing it.
  // Errors (in the response) for requests that write.
  kvpb::Response Query(const kvpb::Request& request) const;
  static bool IsReadOnly(const kvpb::Request& request);

  // ---- leases, with time from the caller (see Lessor) ----
  // Keepalive on the leader. Errors: lease not found.
  absl::StatusOr<int64_t> KeepAlive(LeaseId id, int64_t now_ms);
  etcdserverpb::LeaseTimeToLiveResponse TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& r,
                                                   int64_t now_ms);
  Lessor& lessor() { return lessor_; }

  // ---- watches ----
  // Creates a watcher after checking the user may read its range.
  // An empty key means "\0" (with range_end "\0": every key), as in etcd.
  absl::StatusOr<WatcherId> CreateWatch(const AuthInfo& who,
                                        etcdserverpb::WatchCreateRequest request);
  WatchHub& watches() { return watches_; }

  // ---- auth ----
  const AuthStore& auth() const { return auth_; }
  TokenTable& tokens() { return tokens_; }

  // ---- etcd v2's view of recent revisions (local, not replicated) ----
  // What a v2 watcher shows for a revision that a v2 call or a lease's
  // expiry made: its action ("create", "update", "compareAndSwap",
  // "compareAndDelete", "expire", ...; "refresh" is shown to nobody), and
  // for a directory's deletion, the directory. Nothing for v3's writes
  // (a v2 watcher shows "set" and "delete"). Kept for the last
  // kMaxTreeNotes such revisions, and lost with a restart or a snapshot:
  // older events show as v3's.
  struct TreeNote {
    std::string action;
    std::string path;  // empty: the event's own key
    bool dir = false;
  };
  static constexpr size_t kMaxTreeNotes = 100'000;
  const TreeNote* TreeNoteAt(Revision revision) const;

  // ---- whole state ----
  const Keyspace& keyspace() const { return keys_; }
  Revision revision() const { return keys_.revision(); }
  const LeaseTable& leases() const { return leases_; }
  // A deterministic byte string of the replicated state.
  std::string Snapshot() const;
  // About how many bytes Snapshot() returns (to reserve them up front).
  size_t SnapshotBytesHint() const {
    return static_cast<size_t>(keys_.size_bytes()) + keys_.versions() * 16 + 4096;
  }
  // Replaces the replicated state with a snapshot's (empty data: the empty
  // state of a new cluster); watchers catch up or are cancelled, tokens are
  // dropped. Errors: kDataLoss (nothing changed).
  absl::Status Restore(std::string_view data);
  // CRC-32C of the keyspace's versions at or below `revision` (0: all): the
  // same on every member that applied the same log. For HashKV.
  uint32_t HashKV(Revision revision) const;
  // CRC-32C of the whole replicated state (Snapshot()). For Hash.
  uint32_t Hash() const;
  // A digest of the replicated state that costs no walk of the keyspace
  // (Keyspace::digest, revisions, leases, auth revision, alarms): equal on
  // members that applied the same log. Local only: not a wire format.
  uint64_t StateDigest() const;
  // Active alarms, by member.
  const std::set<std::pair<uint64_t, int>>& alarms() const { return alarms_; }
  bool nospace() const;
  // While NOSPACE is raised, the requests its apply would refuse: a member
  // refuses them before proposing, so a full disk's log stops growing.
  bool RefusedForNoSpace(const kvpb::Request& request) const;

  void CheckInvariants() const;

 private:
  // Grouped by the file that defines them. Query's and Apply's handlers
  // (Query*, Apply*), by kind of request: each checks the caller's
  // permissions, then answers into `response` or changes nothing.

  // ---- reads (store_read.cc) ----
  absl::Status QueryRange(const kvpb::Request& request, const AuthInfo& who,
                          kvpb::Response* response) const;
  absl::Status QueryMaintenance(const kvpb::Request& request, const AuthInfo& who,
                                kvpb::Response* response) const;
  absl::Status QueryUserOrRole(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response) const;
  absl::StatusOr<etcdserverpb::RangeResponse> DoRange(const etcdserverpb::RangeRequest& r) const;

  // ---- the v3 tree's reads (store_list.cc) ----
  absl::Status QueryList(const kvpb::Request& request, const AuthInfo& who,
                         kvpb::Response* response) const;
  absl::Status QueryStat(const kvpb::Request& request, const AuthInfo& who,
                         kvpb::Response* response) const;
  absl::StatusOr<kvpb::ListResponse> DoList(const kvpb::ListRequest& r) const;
  absl::StatusOr<kvpb::StatResponse> DoStat(const kvpb::StatRequest& r) const;

  // ---- writes (store_write.cc) ----
  absl::Status ApplyPut(const kvpb::Request& request, const AuthInfo& who,
                        kvpb::Response* response);
  absl::Status ApplyDelete(const kvpb::Request& request, const AuthInfo& who,
                           kvpb::Response* response);
  void ApplyDiskSpaceAlarm(const kvpb::Request& request, kvpb::Response* response);
  absl::Status ApplyAlarm(const kvpb::Request& request, const AuthInfo& who,
                          kvpb::Response* response);
  // AuthEnable, AuthDisable, Authenticate.
  absl::Status ApplyAuthSwitch(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response);
  absl::Status ApplyUserOrRole(const kvpb::Request& request, const AuthInfo& who);
  // `replace`: see Keyspace::Put.
  absl::StatusOr<etcdserverpb::PutResponse> DoPut(const etcdserverpb::PutRequest& r,
                                                  bool replace = false);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DoDeleteRange(
      const etcdserverpb::DeleteRangeRequest& r);
  absl::Status CheckPutState(const etcdserverpb::PutRequest& r) const;
  // Refuses a write growing the store by `growth_bytes` past the quota
  // (raising NOSPACE in `member_id`'s name), or while NOSPACE is raised.
  absl::Status CheckQuota(int64_t growth_bytes, uint64_t member_id);

  // ---- etcd v2's keys API (store_tree.cc, kv/tree.h) ----
  absl::Status ApplyTreeSet(const kvpb::Request& request, const AuthInfo& who,
                            kvpb::Response* response);
  absl::Status ApplyTreeDelete(const kvpb::Request& request, const AuthInfo& who,
                               kvpb::Response* response);
  absl::Status QueryTreeGet(const kvpb::Request& request, const AuthInfo& who,
                            kvpb::Response* response) const;
  // Whether `who` may write the node `path` at all: the key, or the
  // directory (its marker or all of it). Checked before anything about the
  // node is told.
  absl::Status MayWrite(const AuthInfo& who, const std::string& path) const;
  // Remembers what `revision`, which the caller's write just made, was to
  // v2 (TreeNoteAt).
  void NoteTreeEvent(Revision revision, std::string action, std::string path, bool dir);
  // The immediate children of directory `path` that `who` may read (a
  // child directory only if all of it is readable) into `dir`.
  void AddChildren(const std::string& path, Revision revision, const AuthInfo& who,
                   bool all_readable, kvpb::TreeNode* dir) const;

  // ---- transactions (store_txn.cc) ----
  absl::StatusOr<etcdserverpb::TxnResponse> DoTxn(const etcdserverpb::TxnRequest& r,
                                                  const AuthInfo& who, uint64_t member_id);
  absl::Status CheckTxnPermissions(const AuthInfo& who, const etcdserverpb::TxnRequest& r) const;
  // One op of a txn, a nested txn's own ops aside.
  absl::Status CheckTxnOpPermissions(const AuthInfo& who, const etcdserverpb::RequestOp& op) const;
  // Checks the ops of the branch each (nested) txn will take.
  absl::Status CheckTxnState(const etcdserverpb::TxnRequest& r) const;
  bool EvaluateCompares(const etcdserverpb::TxnRequest& r) const;
  bool CompareHolds(const etcdserverpb::Compare& compare) const;
  void ApplyTxnOps(const etcdserverpb::TxnRequest& r, etcdserverpb::TxnResponse* response);
  // Applies one op of a txn that is not a nested txn.
  void ApplyTxnOp(const etcdserverpb::RequestOp& op, etcdserverpb::ResponseOp* result);

  // ---- leases (store_lease.cc) ----
  absl::Status ApplyLease(const kvpb::Request& request, const AuthInfo& who,
                          kvpb::Response* response);
  absl::Status RevokeLease(LeaseId id);
  // With auth on, `who` may write every key already attached to lease `id`.
  absl::Status CheckLeaseKeys(const AuthInfo& who, LeaseId id) const;

  // ---- responses (store.cc) ----
  etcdserverpb::ResponseHeader Header() const;
  // Sets the header of the response's result (creating the result message
  // if the request's handler left it empty).
  void StampHeader(kvpb::Response* response, const kvpb::Request& request) const;

  StoreOptions options_;
  Keyspace keys_;
  LeaseTable leases_;
  AuthStore auth_;
  // (member id, alarm type) of every active alarm.
  std::set<std::pair<uint64_t, int>> alarms_;
  // Local, not replicated.
  Lessor lessor_;
  WatchHub watches_;
  TokenTable tokens_;
  std::map<Revision, TreeNote> tree_notes_;
};

// The directory `path` as a key range: every key below it.
std::pair<std::string, std::string> SubtreeRange(std::string_view path);

}  // namespace etc::kv

#endif  // ETC_KV_STORE_H_
