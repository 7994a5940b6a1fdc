// kv::Store, feature by feature, through its public API: the auth
// permission matrix, leases, quota and alarms, directory operations,
// snapshots, validation of bad input and the txn semantics etcd clients rely
// on. Where etcd 3.4 defines the behaviour, the expectation is etcd's (the
// comments name the etcd source it comes from); elsewhere it is store.h's.
//
// A refused request must change nothing: EXPECT_REFUSED compares the
// revision and the Snapshot() bytes before and after.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "base/wire_fields.h"
#include "gtest/gtest.h"
#include "kv/errors.h"
#include "kv/response_status.h"
#include "kv/store.h"

namespace etc::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

// ------------------------------------------------------------ helpers --

const std::string kZero(1, '\0');  // range_end "\0": every key from `key` on

// ---- key-value requests ----

kvpb::Request Put(const std::string& key, const std::string& value, int64_t lease = 0) {
  kvpb::Request r;
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  r.mutable_put()->set_lease(lease);
  return r;
}

kvpb::Request PutPrev(const std::string& key, const std::string& value) {
  kvpb::Request r = Put(key, value);
  r.mutable_put()->set_prev_kv(true);
  return r;
}

kvpb::Request Get(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  kvpb::Request r;
  r.mutable_range()->set_key(key);
  r.mutable_range()->set_range_end(end);
  r.mutable_range()->set_revision(revision);
  return r;
}

kvpb::Request Del(const std::string& key, const std::string& end = "", bool prev_kv = false) {
  kvpb::Request r;
  r.mutable_delete_range()->set_key(key);
  r.mutable_delete_range()->set_range_end(end);
  r.mutable_delete_range()->set_prev_kv(prev_kv);
  return r;
}

kvpb::Request Compact(int64_t revision) {
  kvpb::Request r;
  r.mutable_compaction()->set_revision(revision);
  return r;
}

// ---- txn requests ----

RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0) {
  RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  op.mutable_request_put()->set_lease(lease);
  return op;
}

RequestOp RangeOp(const std::string& key, const std::string& end = "", int64_t revision = 0) {
  RequestOp op;
  op.mutable_request_range()->set_key(key);
  op.mutable_request_range()->set_range_end(end);
  op.mutable_request_range()->set_revision(revision);
  return op;
}

RequestOp DeleteOp(const std::string& key, const std::string& end = "", bool prev_kv = false) {
  RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  op.mutable_request_delete_range()->set_range_end(end);
  op.mutable_request_delete_range()->set_prev_kv(prev_kv);
  return op;
}

TxnRequest MakeTxn(std::vector<Compare> compares, std::vector<RequestOp> success,
                   std::vector<RequestOp> failure = {}) {
  TxnRequest txn;
  for (Compare& c : compares) *txn.add_compare() = std::move(c);
  for (RequestOp& op : success) *txn.add_success() = std::move(op);
  for (RequestOp& op : failure) *txn.add_failure() = std::move(op);
  return txn;
}

RequestOp TxnOp(TxnRequest txn) {
  RequestOp op;
  *op.mutable_request_txn() = std::move(txn);
  return op;
}

kvpb::Request Txn(TxnRequest txn) {
  kvpb::Request r;
  *r.mutable_txn() = std::move(txn);
  return r;
}

kvpb::Request Txn(std::vector<Compare> compares, std::vector<RequestOp> success,
                  std::vector<RequestOp> failure = {}) {
  return Txn(MakeTxn(std::move(compares), std::move(success), std::move(failure)));
}

// A compare on an integer target (VERSION, CREATE, MOD, LEASE).
Compare Cmp(const std::string& key, Compare::CompareTarget target, Compare::CompareResult result,
            int64_t n, const std::string& range_end = "") {
  Compare c;
  c.set_key(key);
  c.set_range_end(range_end);
  c.set_target(target);
  c.set_result(result);
  switch (target) {
    case Compare::VERSION:
      c.set_version(n);
      break;
    case Compare::CREATE:
      c.set_create_revision(n);
      break;
    case Compare::MOD:
      c.set_mod_revision(n);
      break;
    case Compare::LEASE:
      c.set_lease(n);
      break;
    default:
      ADD_FAILURE() << "Cmp is for integer targets";
  }
  return c;
}

Compare CmpValue(const std::string& key, Compare::CompareResult result, const std::string& value,
                 const std::string& range_end = "") {
  Compare c;
  c.set_key(key);
  c.set_range_end(range_end);
  c.set_target(Compare::VALUE);
  c.set_result(result);
  c.set_value(value);
  return c;
}

// ---- leases ----

kvpb::Request LeaseGrant(int64_t id, int64_t ttl) {
  kvpb::Request r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl);
  return r;
}

kvpb::Request LeaseRevoke(int64_t id) {
  kvpb::Request r;
  r.mutable_lease_revoke()->set_id(id);
  return r;
}

kvpb::Request LeaseExpire(std::vector<int64_t> ids) {
  kvpb::Request r;
  for (int64_t id : ids) r.mutable_lease_expire()->add_ids(id);
  return r;
}

etcdserverpb::LeaseTimeToLiveRequest TtlRequest(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest r;
  r.set_id(id);
  r.set_keys(keys);
  return r;
}

std::set<std::string> KeysOf(const etcdserverpb::LeaseTimeToLiveResponse& r) {
  return std::set<std::string>(r.keys().begin(), r.keys().end());
}

// ---- alarms ----

kvpb::Request Alarm(etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member,
                    etcdserverpb::AlarmType type) {
  kvpb::Request r;
  r.mutable_alarm()->set_action(action);
  r.mutable_alarm()->set_memberid(member);
  r.mutable_alarm()->set_alarm(type);
  return r;
}

// ---- directories ----

kvpb::Request List(const std::string& path, int64_t revision = 0, int64_t limit = 0,
                   bool keys_only = false) {
  kvpb::Request r;
  r.mutable_list()->set_path(path);
  r.mutable_list()->set_revision(revision);
  r.mutable_list()->set_limit(limit);
  r.mutable_list()->set_keys_only(keys_only);
  return r;
}

kvpb::Request TreeRange(const std::string& path, int64_t revision = 0, int64_t limit = 0) {
  kvpb::Request r;
  r.mutable_tree_range()->set_path(path);
  r.mutable_tree_range()->set_revision(revision);
  r.mutable_tree_range()->set_limit(limit);
  return r;
}

kvpb::Request DeleteTree(const std::string& path, bool prev_kv = false) {
  kvpb::Request r;
  r.mutable_delete_tree()->set_path(path);
  r.mutable_delete_tree()->set_prev_kv(prev_kv);
  return r;
}

// ---- auth ----

constexpr char kSalt[] = "0123456789abcdef";

const std::string& PasswordHash(const std::string& password) {
  static auto* cache = new std::map<std::string, std::string>;
  auto it = cache->find(password);
  if (it == cache->end()) it = cache->emplace(password, HashPassword(password, kSalt)).first;
  return it->second;
}

std::string PasswordOf(const std::string& user) { return user + "-pw"; }

kvpb::Request UserAdd(const std::string& name, bool no_password = false) {
  kvpb::Request r;
  r.mutable_user_add()->set_name(name);
  if (no_password) {
    r.mutable_user_add()->mutable_options()->set_no_password(true);
  } else {
    r.mutable_user_add()->set_password_hash(PasswordHash(PasswordOf(name)));
  }
  return r;
}

kvpb::Request RoleAdd(const std::string& name) {
  kvpb::Request r;
  r.mutable_role_add()->set_name(name);
  return r;
}

kvpb::Request GrantRole(const std::string& user, const std::string& role) {
  kvpb::Request r;
  r.mutable_user_grant_role()->set_user(user);
  r.mutable_user_grant_role()->set_role(role);
  return r;
}

kvpb::Request RevokeRole(const std::string& user, const std::string& role) {
  kvpb::Request r;
  r.mutable_user_revoke_role()->set_name(user);
  r.mutable_user_revoke_role()->set_role(role);
  return r;
}

kvpb::Request GrantPermission(const std::string& role, authpb::Permission::Type type,
                              const std::string& key, const std::string& end) {
  kvpb::Request r;
  auto* perm = r.mutable_role_grant_permission()->mutable_perm();
  r.mutable_role_grant_permission()->set_name(role);
  perm->set_permtype(type);
  perm->set_key(key);
  perm->set_range_end(end);
  return r;
}

kvpb::Request AuthEnable() {
  kvpb::Request r;
  r.mutable_auth_enable();
  return r;
}

kvpb::Request AuthDisable() {
  kvpb::Request r;
  r.mutable_auth_disable();
  return r;
}

kvpb::Request ChangePassword(const std::string& name, const std::string& password) {
  kvpb::Request r;
  r.mutable_user_change_password()->set_name(name);
  r.mutable_user_change_password()->set_password_hash(PasswordHash(password));
  return r;
}

kvpb::Request UserDelete(const std::string& name) {
  kvpb::Request r;
  r.mutable_user_delete()->set_name(name);
  return r;
}

kvpb::Request RoleDelete(const std::string& role) {
  kvpb::Request r;
  r.mutable_role_delete()->set_role(role);
  return r;
}

kvpb::Request Authenticate(const std::string& name, const std::string& token) {
  kvpb::Request r;
  r.mutable_authenticate()->set_name(name);
  r.mutable_authenticate()->set_token(token);
  return r;
}

kvpb::Request WithUser(kvpb::Request r, const std::string& user, uint64_t auth_revision) {
  r.mutable_header()->set_username(user);
  r.mutable_header()->set_auth_revision(auth_revision);
  return r;
}

// ---- applying ----

kvpb::Response ApplyOk(Store& store, const kvpb::Request& request, const char* file, int line) {
  kvpb::Response response = store.Apply(request);
  if (response.error_code() != 0) {
    ADD_FAILURE_AT(file, line) << "Apply failed: " << StatusOf(response)
                               << "\nrequest: " << request.ShortDebugString().substr(0, 300);
  }
  return response;
}
#define APPLY_OK(store, request) ApplyOk(store, request, __FILE__, __LINE__)

kvpb::Response QueryOk(const Store& store, const kvpb::Request& request, const char* file,
                       int line) {
  kvpb::Response response = store.Query(request);
  if (response.error_code() != 0) {
    ADD_FAILURE_AT(file, line) << "Query failed: " << StatusOf(response)
                               << "\nrequest: " << request.ShortDebugString().substr(0, 300);
  }
  return response;
}
#define QUERY_OK(store, request) QueryOk(store, request, __FILE__, __LINE__)

// Applies a request that must fail with exactly `expected` and change
// nothing replicated.
void ExpectRefused(Store& store, const kvpb::Request& request, const absl::Status& expected) {
  Revision revision = store.revision();
  std::string snapshot = store.Snapshot();
  kvpb::Response response = store.Apply(request);
  EXPECT_EQ(StatusOf(response), expected)
      << "request: " << request.ShortDebugString().substr(0, 300);
  EXPECT_EQ(response.result_case(), kvpb::Response::RESULT_NOT_SET);
  EXPECT_EQ(store.revision(), revision);
  EXPECT_TRUE(store.Snapshot() == snapshot) << "a refused request changed the state";
  store.CheckInvariants();
}
#define EXPECT_REFUSED(store, request, expected)  \
  do {                                            \
    SCOPED_TRACE("EXPECT_REFUSED");               \
    ExpectRefused(store, request, expected);      \
  } while (0)

// Like ExpectRefused, for a refusal whose code is etc's own (no etcd text).
void ExpectRefusedWithCode(Store& store, const kvpb::Request& request, absl::StatusCode code) {
  Revision revision = store.revision();
  std::string snapshot = store.Snapshot();
  kvpb::Response response = store.Apply(request);
  EXPECT_EQ(StatusOf(response).code(), code) << StatusOf(response);
  EXPECT_FALSE(response.error_message().empty());
  EXPECT_EQ(store.revision(), revision);
  EXPECT_TRUE(store.Snapshot() == snapshot) << "a refused request changed the state";
}
#define EXPECT_REFUSED_CODE(store, request, code) \
  do {                                            \
    SCOPED_TRACE("EXPECT_REFUSED_CODE");          \
    ExpectRefusedWithCode(store, request, code);  \
  } while (0)

std::optional<mvccpb::KeyValue> Read(const Store& store, const std::string& key,
                                     int64_t revision = 0) {
  kvpb::Response response = store.Query(Get(key, "", revision));
  EXPECT_EQ(StatusOf(response), absl::OkStatus());
  if (response.range().kvs_size() == 0) return std::nullopt;
  return response.range().kvs(0);
}

std::vector<std::string> KeysIn(const etcdserverpb::RangeResponse& range) {
  std::vector<std::string> keys;
  for (const auto& kv : range.kvs()) keys.push_back(kv.key());
  return keys;
}

// =================================================================== auth ==

// Users root (root role), alice and bob; alice holds one role per kind of
// permission, bob one permission on everything from "x/" on. Keys exist
// under each permission.
class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* key : {"k/r", "k/w", "k/rw", "r/a", "r/b", "w/a", "w/b", "p/x", "p/x/y", "y/a",
                            "z", "u/b", "u/n", "x/1", "other"}) {
      APPLY_OK(store_, Put(key, "v"));
    }
    APPLY_OK(store_, UserAdd("root"));
    APPLY_OK(store_, GrantRole("root", "root"));
    APPLY_OK(store_, UserAdd("alice"));
    APPLY_OK(store_, UserAdd("bob"));
    AddRole("alice", "key-r", authpb::Permission::READ, "k/r", "");
    AddRole("alice", "key-w", authpb::Permission::WRITE, "k/w", "");
    AddRole("alice", "key-rw", authpb::Permission::READWRITE, "k/rw", "");
    AddRole("alice", "range-r", authpb::Permission::READ, "r/a", "r/m");
    AddRole("alice", "range-w", authpb::Permission::WRITE, "w/a", "w/m");
    AddRole("alice", "prefix-rw", authpb::Permission::READWRITE, "p/", PrefixEnd("p/"));
    AddRole("alice", "from-r", authpb::Permission::READ, "y/", kZero);
    AddRole("alice", "union-1", authpb::Permission::READ, "u/a", "u/m");
    AddRole("alice", "union-2", authpb::Permission::READ, "u/m", "u/z");
    AddRole("bob", "bob-from-rw", authpb::Permission::READWRITE, "x/", kZero);
    APPLY_OK(store_, WithUser(AuthEnable(), "root", store_.auth().revision()));
    ASSERT_TRUE(store_.auth().enabled());
  }

  void AddRole(const std::string& user, const std::string& role, authpb::Permission::Type type,
               const std::string& key, const std::string& end) {
    APPLY_OK(store_, RoleAdd(role));
    APPLY_OK(store_, GrantPermission(role, type, key, end));
    APPLY_OK(store_, GrantRole(user, role));
  }

  kvpb::Request As(const std::string& user, kvpb::Request r) const {
    return WithUser(std::move(r), user, store_.auth().revision());
  }
  AuthInfo Who(const std::string& user) const { return AuthInfo{user, store_.auth().revision()}; }
  // Reads as root (reads need a user while auth is enabled).
  std::optional<mvccpb::KeyValue> RootRead(const std::string& key) const {
    kvpb::Response response = store_.Query(As("root", Get(key)));
    EXPECT_EQ(StatusOf(response), absl::OkStatus());
    if (response.range().kvs_size() == 0) return std::nullopt;
    return response.range().kvs(0);
  }

  void Allowed(const std::string& user, const kvpb::Request& r, const char* file, int line) {
    kvpb::Response response = store_.Apply(As(user, r));
    if (response.error_code() != 0) {
      ADD_FAILURE_AT(file, line) << user << " was refused " << r.ShortDebugString() << ": "
                                 << StatusOf(response);
    }
  }
  void Denied(const std::string& user, const kvpb::Request& r, const char* file, int line) {
    SCOPED_TRACE(::testing::Message() << file << ":" << line << ": " << user << " "
                                      << r.ShortDebugString());
    ExpectRefused(store_, As(user, r), PermissionDeniedError());
  }

  Store store_;
};

#define ALLOWED(user, request) Allowed(user, request, __FILE__, __LINE__)
#define DENIED(user, request) Denied(user, request, __FILE__, __LINE__)

TEST_F(AuthTest, ReadKeyPermissionAllowsRangeOfThatKeyOnly) {
  ALLOWED("alice", Get("k/r"));
  // [k/r, k/r\0) holds exactly the key.
  ALLOWED("alice", Get("k/r", "k/r" + kZero));
  DENIED("alice", Put("k/r", "x"));
  DENIED("alice", Del("k/r"));
  DENIED("alice", Get("k/r", "k/s"));
  DENIED("alice", Get("k/q"));
}

TEST_F(AuthTest, WriteKeyPermissionAllowsPutAndDeleteButNoRead) {
  ALLOWED("alice", Put("k/w", "x"));
  DENIED("alice", Get("k/w"));
  // prev_kv reads the key too (etcd: apply_auth.go Put / DeleteRange).
  DENIED("alice", PutPrev("k/w", "y"));
  DENIED("alice", Del("k/w", "", /*prev_kv=*/true));
  ALLOWED("alice", Del("k/w"));
  EXPECT_FALSE(RootRead("k/w").has_value());
}

TEST_F(AuthTest, ReadWriteKeyPermissionAllowsEverythingOnThatKeyOnly) {
  ALLOWED("alice", PutPrev("k/rw", "x"));
  ALLOWED("alice", Get("k/rw"));
  ALLOWED("alice", Del("k/rw", "", /*prev_kv=*/true));
  DENIED("alice", Put("k/rw2", "x"));
  DENIED("alice", Put("k/r", "x"));
}

TEST_F(AuthTest, ReadRangePermissionCoversHalfOpenInterval) {
  ALLOWED("alice", Get("r/a"));
  ALLOWED("alice", Get("r/lzzz"));
  ALLOWED("alice", Get("r/a", "r/m"));
  ALLOWED("alice", Get("r/b", "r/c"));
  DENIED("alice", Get("r/m"));  // the end is exclusive
  DENIED("alice", Get("r/a", "r/n"));
  DENIED("alice", Get("r/0", "r/b"));
  DENIED("alice", Put("r/b", "x"));
}

TEST_F(AuthTest, WriteRangePermissionAllowsPutsAndDeletesInside) {
  ALLOWED("alice", Put("w/c", "x"));
  ALLOWED("alice", Del("w/a", "w/m"));
  DENIED("alice", Del("w/a", "w/n"));
  DENIED("alice", Put("w/m", "x"));
  DENIED("alice", Get("w/b"));
  DENIED("alice", Del("w/a", "w/m", /*prev_kv=*/true));
}

TEST_F(AuthTest, PrefixPermissionCoversEveryKeyWithThePrefix) {
  ALLOWED("alice", Put("p/x", "x"));
  ALLOWED("alice", Put("p/x/y/z", "x"));
  ALLOWED("alice", Put("p/", "x"));
  ALLOWED("alice", Get("p/", PrefixEnd("p/")));
  ALLOWED("alice", Del("p/", PrefixEnd("p/"), /*prev_kv=*/true));
  DENIED("alice", Put("p", "x"));
  DENIED("alice", Put("p0", "x"));
  DENIED("alice", Get("p", PrefixEnd("p")));
}

TEST_F(AuthTest, ZeroEndedPermissionCoversEveryKeyFromItsStart) {
  ALLOWED("alice", Get("y/a"));
  ALLOWED("alice", Get("z"));
  ALLOWED("alice", Get("\xff\xff"));
  ALLOWED("alice", Get("y/", kZero));
  ALLOWED("alice", Get("y/b", kZero));
  ALLOWED("alice", Get("z", "\xff"));
  DENIED("alice", Get("x"));
  DENIED("alice", Get("x", kZero));
  DENIED("alice", Get("x/", "y/b"));
  DENIED("alice", Put("y/a", "x"));

  ALLOWED("bob", Put("x/2", "x"));
  ALLOWED("bob", Put("\xff", "x"));
  ALLOWED("bob", Del("x/", kZero, /*prev_kv=*/true));
  DENIED("bob", Put("w", "x"));
  DENIED("bob", Get("w", kZero));
}

TEST_F(AuthTest, ZeroEndedRequestNeedsAnUnboundedPermission) {
  // alice may read [r/a, r/m) and [p/, p0) but not everything after them.
  DENIED("alice", Get("r/a", kZero));
  DENIED("alice", Get("p/", kZero));
  DENIED("alice", Del("p/", kZero));
}

TEST_F(AuthTest, RangeCoveredOnlyByTheUnionOfTwoPermissionsIsAllowed) {
  ALLOWED("alice", Get("u/a", "u/z"));
  ALLOWED("alice", Get("u/b", "u/y"));
  ALLOWED("alice", Get("u/m"));
  DENIED("alice", Get("u/a", "u/zz"));
  DENIED("alice", Get("u/", "u/b"));
  // [r/a, r/m) and [u/a, u/z) leave a gap.
  DENIED("alice", Get("r/a", "u/b"));
}

TEST_F(AuthTest, InvertedRangeIsDeniedWithoutPermission) {
  // etcd's interval check (auth/range_perm_cache.go checkKeyInterval,
  // pkg/adt/interval_tree.go Contains) finds no permission overlapping an
  // interval whose end is before its start, and denies it.
  DENIED("bob", Get("b", "a"));
  DENIED("bob", Del("b", "a"));
}

TEST_F(AuthTest, RootBypassesEveryPermission) {
  ALLOWED("root", PutPrev("anything", "x"));
  ALLOWED("root", Get("\x01", kZero));
  ALLOWED("root", Txn({CmpValue("k/r", Compare::EQUAL, "v")}, {PutOp("k/r", "y")},
                      {DeleteOp("a", "zzz", true)}));
  ALLOWED("root", Del("\x01", kZero, /*prev_kv=*/true));
  EXPECT_EQ(store_.keyspace().live_keys(), 0u);
  etcdserverpb::WatchCreateRequest everything;
  everything.set_key("\x01");
  everything.set_range_end(kZero);
  EXPECT_TRUE(store_.CreateWatch(Who("root"), everything).ok());
  ALLOWED("root", UserAdd("carol"));
}

TEST_F(AuthTest, RequestWithoutUserIsRefusedWithUserEmpty) {
  EXPECT_REFUSED(store_, Put("k/rw", "x"), UserEmptyError());
  EXPECT_REFUSED(store_, Get("k/r"), UserEmptyError());
  EXPECT_EQ(StatusOf(store_.Query(Get("k/r"))), UserEmptyError());
  EXPECT_REFUSED(store_, Del("k/rw"), UserEmptyError());
  EXPECT_REFUSED(store_, Txn({}, {PutOp("k/rw", "x")}), UserEmptyError());
  EXPECT_REFUSED(store_, UserAdd("carol"), UserEmptyError());
  etcdserverpb::WatchCreateRequest w;
  w.set_key("k/r");
  EXPECT_EQ(store_.CreateWatch(AuthInfo{}, w).status(), UserEmptyError());
}

TEST_F(AuthTest, RequestWithOldAuthRevisionIsRefused) {
  uint64_t old = store_.auth().revision();
  APPLY_OK(store_, As("root", GrantPermission("key-r", authpb::Permission::READ, "k/r2", "")));
  ASSERT_GT(store_.auth().revision(), old);
  EXPECT_REFUSED(store_, WithUser(Get("k/r"), "alice", old), AuthOldRevisionError());
  EXPECT_REFUSED(store_, WithUser(Put("k/rw", "x"), "alice", old), AuthOldRevisionError());
  // Even root: the revision is checked before the user (auth/store.go:943).
  EXPECT_REFUSED(store_, WithUser(Put("k/rw", "x"), "root", old), AuthOldRevisionError());
  etcdserverpb::WatchCreateRequest w;
  w.set_key("k/r");
  EXPECT_EQ(store_.CreateWatch(AuthInfo{"alice", old}, w).status(), AuthOldRevisionError());
  // The current revision works.
  ALLOWED("alice", Get("k/r2"));
}

TEST_F(AuthTest, UnknownUserIsDenied) {
  // etcd: a user that does not exist gets ErrPermissionDenied (auth/store.go:965).
  DENIED("mallory", Get("k/r"));
  DENIED("mallory", Put("k/rw", "x"));
}

TEST_F(AuthTest, TxnChecksComparesAndOpsOfBothBranches) {
  // A compare reads its key.
  DENIED("alice", Txn({CmpValue("k/w", Compare::EQUAL, "v")}, {PutOp("k/w", "x")}));
  // The failure branch is checked although the compare holds.
  DENIED("alice", Txn({CmpValue("k/r", Compare::EQUAL, "v")}, {PutOp("k/w", "x")},
                      {PutOp("k/r", "x")}));
  // And the success branch although it fails.
  DENIED("alice", Txn({CmpValue("k/r", Compare::EQUAL, "nope")}, {RangeOp("k/w")},
                      {RangeOp("k/r")}));
  DENIED("alice", Txn({}, {DeleteOp("k/w", "", /*prev_kv=*/true)}));
  DENIED("alice", Txn({CmpValue("r/a", Compare::EQUAL, "v", "r/z")}, {PutOp("k/w", "x")}));
  ALLOWED("alice", Txn({CmpValue("k/r", Compare::EQUAL, "v"), CmpValue("r/a", Compare::EQUAL,
                                                                        "v", "r/m")},
                       {PutOp("k/w", "x"), DeleteOp("w/a", "w/m")}, {RangeOp("k/r")}));
  EXPECT_EQ(RootRead("k/w")->value(), "x");
}

TEST_F(AuthTest, NestedTxnOpsArePermissionChecked) {
  // etcd 3.4.23 does not descend into nested txns here (a known hole, fixed
  // later); the Store checks them like top-level ops.
  DENIED("alice", Txn({}, {TxnOp(MakeTxn({}, {PutOp("k/r", "x")}))}));
  DENIED("alice", Txn({}, {TxnOp(MakeTxn({CmpValue("k/w", Compare::EQUAL, "v")}, {}))}));
  DENIED("alice", Txn({}, {}, {TxnOp(MakeTxn({}, {}, {RangeOp("k/w")}))}));
  ALLOWED("alice", Txn({}, {TxnOp(MakeTxn({}, {PutOp("k/w", "x")}, {PutOp("k/rw", "x")}))}));
}

TEST_F(AuthTest, LeaseRevokeNeedsWritePermissionOnEveryAttachedKey) {
  APPLY_OK(store_, As("root", LeaseGrant(100, 60)));
  APPLY_OK(store_, As("root", Put("k/w", "x", 100)));
  APPLY_OK(store_, As("root", Put("k/r", "x", 100)));
  DENIED("alice", LeaseRevoke(100));
  DENIED("bob", LeaseRevoke(100));
  EXPECT_NE(store_.leases().Find(100), nullptr);

  APPLY_OK(store_, As("root", LeaseGrant(101, 60)));
  APPLY_OK(store_, As("root", Put("w/b", "x", 101)));
  ALLOWED("alice", LeaseRevoke(101));
  EXPECT_EQ(store_.leases().Find(101), nullptr);
  EXPECT_FALSE(RootRead("w/b").has_value());

  // A lease without keys: nothing to check.
  APPLY_OK(store_, As("root", LeaseGrant(102, 60)));
  ALLOWED("alice", LeaseRevoke(102));

  ALLOWED("root", LeaseRevoke(100));
  EXPECT_FALSE(RootRead("k/r").has_value());
  store_.CheckInvariants();
}

TEST_F(AuthTest, PutAttachingLeaseWithUnwritableKeysIsDenied) {
  // etcd's checkLeasePuts (etcdserver/apply_auth.go:65): whoever attaches
  // a key to a lease could revoke it, so must be able to delete its keys.
  APPLY_OK(store_, As("root", LeaseGrant(100, 60)));
  APPLY_OK(store_, As("root", Put("k/r", "x", 100)));
  DENIED("alice", Put("k/w", "x", 100));
  APPLY_OK(store_, As("root", LeaseGrant(101, 60)));
  APPLY_OK(store_, As("root", Put("w/b", "x", 101)));
  ALLOWED("alice", Put("k/w", "x", 101));
  EXPECT_EQ(store_.leases().Find(101)->keys, (std::set<std::string>{"k/w", "w/b"}));
}

TEST_F(AuthTest, APutInsideATxnCannotAttachALeaseWithUnwritableKeys) {
  // The same rule as a top-level put: a txn is no way around it.
  APPLY_OK(store_, As("root", LeaseGrant(110, 60)));
  APPLY_OK(store_, As("root", Put("k/r", "x", 110)));
  DENIED("alice", Txn({}, {PutOp("k/w", "x", 110)}));
  DENIED("alice", Txn({}, {}, {PutOp("p/x", "x", 110)}));
  kvpb::Request nested = Txn({}, {});
  *nested.mutable_txn()->add_success()->mutable_request_txn() =
      Txn({}, {PutOp("k/w", "x", 110)}).txn();
  DENIED("alice", nested);
  EXPECT_EQ(store_.leases().Find(110)->keys, (std::set<std::string>{"k/r"}));
  APPLY_OK(store_, As("root", LeaseGrant(111, 60)));
  ALLOWED("alice", Txn({}, {PutOp("k/w", "x", 111)}));
}

TEST_F(AuthTest, CompactionAlarmsLeaseListsAndHashesAreForRootOnly) {
  // Beyond etcd 3.4, which lets any user compact everyone's history,
  // clear NOSPACE and list every lease.
  kvpb::Request compact;
  compact.mutable_compaction()->set_revision(2);
  DENIED("alice", compact);
  DENIED("alice", Alarm(etcdserverpb::AlarmRequest::ACTIVATE, 1, etcdserverpb::NOSPACE));
  DENIED("alice", Alarm(etcdserverpb::AlarmRequest::DEACTIVATE, 1, etcdserverpb::NOSPACE));
  kvpb::Request leases;
  leases.mutable_lease_leases();
  EXPECT_EQ(StatusOf(store_.Query(As("alice", leases))), PermissionDeniedError());
  kvpb::Request hash;
  hash.mutable_hash_kv();
  EXPECT_EQ(StatusOf(store_.Query(As("alice", hash))), PermissionDeniedError());
  // Alarms can still be listed by anyone, as etcd's etcdctl alarm list.
  EXPECT_EQ(StatusOf(store_.Query(As("alice", Alarm(etcdserverpb::AlarmRequest::GET, 0,
                                                    etcdserverpb::NONE)))),
            absl::OkStatus());
  ALLOWED("root", compact);
  EXPECT_EQ(StatusOf(store_.Query(As("root", leases))), absl::OkStatus());
  EXPECT_EQ(StatusOf(store_.Query(As("root", hash))), absl::OkStatus());
}

TEST_F(AuthTest, WatchCreationNeedsReadPermission) {
  auto watch = [](const std::string& key, const std::string& end) {
    etcdserverpb::WatchCreateRequest w;
    w.set_key(key);
    w.set_range_end(end);
    return w;
  };
  size_t before = store_.watches().watchers();
  auto ok = store_.CreateWatch(Who("alice"), watch("k/r", ""));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(store_.watches().exists(*ok));
  EXPECT_TRUE(store_.CreateWatch(Who("alice"), watch("p/", PrefixEnd("p/"))).ok());
  EXPECT_TRUE(store_.CreateWatch(Who("alice"), watch("u/a", "u/z")).ok());
  EXPECT_TRUE(store_.CreateWatch(Who("alice"), watch("y/", kZero)).ok());
  EXPECT_TRUE(store_.CreateWatch(Who("root"), watch("a", kZero)).ok());
  EXPECT_EQ(store_.watches().watchers(), before + 5);

  EXPECT_EQ(store_.CreateWatch(Who("alice"), watch("k/w", "")).status(), PermissionDeniedError());
  EXPECT_EQ(store_.CreateWatch(Who("alice"), watch("r/a", kZero)).status(),
            PermissionDeniedError());
  EXPECT_EQ(store_.CreateWatch(Who("bob"), watch("k/r", "")).status(), PermissionDeniedError());
  EXPECT_EQ(store_.CreateWatch(AuthInfo{}, watch("k/r", "")).status(), UserEmptyError());
  EXPECT_EQ(store_.watches().watchers(), before + 5);
}

TEST_F(AuthTest, AdminOperationsAreRefusedForNonRootUsers) {
  std::vector<kvpb::Request> admin;
  admin.push_back(UserAdd("carol"));
  admin.push_back([] {
    kvpb::Request r;
    r.mutable_user_delete()->set_name("bob");
    return r;
  }());
  admin.push_back([] {
    kvpb::Request r;
    r.mutable_user_change_password()->set_name("bob");
    r.mutable_user_change_password()->set_password_hash(PasswordHash("new"));
    return r;
  }());
  admin.push_back(GrantRole("alice", "bob-from-rw"));
  admin.push_back(RevokeRole("alice", "key-r"));
  admin.push_back(RoleAdd("new-role"));
  admin.push_back([] {
    kvpb::Request r;
    r.mutable_role_delete()->set_role("key-r");
    return r;
  }());
  admin.push_back(GrantPermission("key-r", authpb::Permission::READWRITE, "\x01", kZero));
  admin.push_back([] {
    kvpb::Request r;
    r.mutable_role_revoke_permission()->set_role("key-r");
    r.mutable_role_revoke_permission()->set_key("k/r");
    return r;
  }());
  admin.push_back([] {
    kvpb::Request r;
    r.mutable_auth_disable();
    return r;
  }());
  for (const kvpb::Request& r : admin) {
    SCOPED_TRACE(r.ShortDebugString());
    EXPECT_REFUSED(store_, As("alice", r), PermissionDeniedError());
    EXPECT_REFUSED(store_, As("mallory", r), UserNotFoundError());
    EXPECT_REFUSED(store_, r, UserEmptyError());
  }
  kvpb::Request user_list;
  user_list.mutable_user_list();
  kvpb::Request role_list;
  role_list.mutable_role_list();
  EXPECT_EQ(StatusOf(store_.Query(As("alice", user_list))), PermissionDeniedError());
  EXPECT_EQ(StatusOf(store_.Query(As("alice", role_list))), PermissionDeniedError());
  EXPECT_EQ(StatusOf(store_.Query(user_list)), UserEmptyError());

  // RoleGet: only a role the user has (etcd apply_auth.go RoleGet).
  kvpb::Request role_get;
  role_get.mutable_role_get()->set_role("bob-from-rw");
  EXPECT_EQ(StatusOf(store_.Query(As("alice", role_get))), PermissionDeniedError());
  role_get.mutable_role_get()->set_role("key-r");
  EXPECT_EQ(StatusOf(store_.Query(As("alice", role_get))), absl::OkStatus());

  // Root may.
  kvpb::Response users = QUERY_OK(store_, As("root", user_list));
  EXPECT_EQ(std::vector<std::string>(users.user_list().users().begin(),
                                     users.user_list().users().end()),
            (std::vector<std::string>{"alice", "bob", "root"}));
  EXPECT_EQ(QUERY_OK(store_, As("root", role_list)).role_list().roles_size(), 10);
  APPLY_OK(store_, As("root", UserAdd("carol")));
  kvpb::Request disable;
  disable.mutable_auth_disable();
  APPLY_OK(store_, As("root", disable));
  EXPECT_FALSE(store_.auth().enabled());
}

TEST(AuthEnableTest, EnablingAuthWithoutRootUserFails) {
  Store store;
  APPLY_OK(store, UserAdd("alice"));
  EXPECT_REFUSED(store, AuthEnable(), RootUserNotExistError());
  APPLY_OK(store, UserAdd("root"));
  EXPECT_REFUSED(store, AuthEnable(), RootRoleNotExistError());
  APPLY_OK(store, GrantRole("root", "root"));
  APPLY_OK(store, WithUser(AuthEnable(), "root", store.auth().revision()));
  EXPECT_TRUE(store.auth().enabled());
}

TEST_F(AuthTest, RootCannotBeDeletedOrLoseRootRoleWhileAuthIsEnabled) {
  kvpb::Request del;
  del.mutable_user_delete()->set_name("root");
  EXPECT_REFUSED(store_, As("root", del), InvalidAuthManagementError());
  EXPECT_REFUSED(store_, As("root", RevokeRole("root", "root")), InvalidAuthManagementError());
  kvpb::Request role_del;
  role_del.mutable_role_delete()->set_role("root");
  EXPECT_REFUSED(store_, As("root", role_del), InvalidAuthManagementError());
  EXPECT_TRUE(store_.auth().HasRole("root", "root"));
}

TEST_F(AuthTest, UserGetOfOneselfIsAllowed) {
  kvpb::Request get;
  get.mutable_user_get()->set_name("alice");
  kvpb::Response self = QUERY_OK(store_, As("alice", get));
  std::set<std::string> roles(self.user_get().roles().begin(), self.user_get().roles().end());
  EXPECT_TRUE(roles.contains("key-r"));
  EXPECT_EQ(roles.size(), 9u);

  get.mutable_user_get()->set_name("bob");
  EXPECT_EQ(StatusOf(store_.Query(As("alice", get))), PermissionDeniedError());
  kvpb::Response bob = QUERY_OK(store_, As("root", get));
  ASSERT_EQ(bob.user_get().roles_size(), 1);
  EXPECT_EQ(bob.user_get().roles(0), "bob-from-rw");
}

TEST_F(AuthTest, AuthenticateRegistersTokenForExistingUser) {
  kvpb::Response response = APPLY_OK(store_, Authenticate("alice", "token-a"));
  EXPECT_EQ(response.authenticate().token(), "token-a");
  absl::StatusOr<std::string> user = store_.tokens().Resolve("token-a", 1000);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, "alice");

  EXPECT_REFUSED(store_, Authenticate("mallory", "token-m"), AuthFailedError());
  EXPECT_EQ(store_.tokens().Resolve("token-m", 1000).status(), InvalidAuthTokenError());
}

TEST(AuthDisabledTest, AuthenticateWhileAuthIsDisabledFails) {
  Store store;
  APPLY_OK(store, UserAdd("alice"));
  EXPECT_REFUSED(store, Authenticate("alice", "t"), AuthNotEnabledError());
  EXPECT_EQ(store.tokens().size(), 0u);
  EXPECT_EQ(store.auth().CheckPassword("alice", PasswordOf("alice")), AuthNotEnabledError());
}

TEST_F(AuthTest, AuthenticateOfNoPasswordUserFails) {
  // etcd refuses to give a token to a user added with no_password
  // (auth/store.go:329, authStore.Authenticate, which runs on apply).
  APPLY_OK(store_, As("root", UserAdd("service", /*no_password=*/true)));
  EXPECT_REFUSED(store_, Authenticate("service", "token-s"), AuthFailedError());
  EXPECT_FALSE(store_.tokens().Resolve("token-s", 0).ok());
}

// ---- tokens: which applied auth changes drop which (etcd's simple tokens) ----

class AuthTokenTest : public AuthTest {
 protected:
  void SetUp() override {
    AuthTest::SetUp();
    APPLY_OK(store_, As("root", GrantRole("alice", "root")));
    for (const auto& [user, token] : kTokens) APPLY_OK(store_, Authenticate(user, token));
  }
  // Who each token of kTokens names now ("" for none).
  std::map<std::string, std::string> Holders() {
    std::map<std::string, std::string> holders;
    for (const auto& [user, token] : kTokens) {
      absl::StatusOr<std::string> holder = store_.tokens().Resolve(token, 0);
      holders[token] = holder.ok() ? *holder : "";
    }
    return holders;
  }
  static constexpr std::pair<const char*, const char*> kTokens[] = {
      {"alice", "a.1"}, {"alice", "a.2"}, {"bob", "b.3"}, {"root", "r.4"}};
  const std::map<std::string, std::string> kAll = {
      {"a.1", "alice"}, {"a.2", "alice"}, {"b.3", "bob"}, {"r.4", "root"}};
};

TEST_F(AuthTokenTest, ChangingAUsersPasswordDropsItsTokensAndNoOthers) {
  APPLY_OK(store_, As("root", ChangePassword("alice", "new")));
  EXPECT_EQ(Holders(), (std::map<std::string, std::string>{
                           {"a.1", ""}, {"a.2", ""}, {"b.3", "bob"}, {"r.4", "root"}}));
  // A login with the new password works.
  APPLY_OK(store_, Authenticate("alice", "a.5"));
  EXPECT_EQ(store_.tokens().Resolve("a.5", 0).value(), "alice");
}

TEST_F(AuthTokenTest, AUserDeletedAndMadeAgainDoesNotGetItsOldTokensBack) {
  APPLY_OK(store_, As("root", UserDelete("alice")));
  APPLY_OK(store_, As("root", UserAdd("alice")));
  APPLY_OK(store_, As("root", GrantRole("alice", "root")));
  EXPECT_EQ(Holders(), (std::map<std::string, std::string>{
                           {"a.1", ""}, {"a.2", ""}, {"b.3", "bob"}, {"r.4", "root"}}));
}

TEST_F(AuthTokenTest, AuthOffDropsEveryTokenAndOnAgainBringsNoneBack) {
  APPLY_OK(store_, As("root", AuthDisable()));
  EXPECT_EQ(store_.tokens().size(), 0u);
  APPLY_OK(store_, AuthEnable());
  EXPECT_EQ(Holders(), (std::map<std::string, std::string>{
                           {"a.1", ""}, {"a.2", ""}, {"b.3", ""}, {"r.4", ""}}));
}

TEST_F(AuthTokenTest, ChangesThatDoNotDropAUsersTokensLeaveThemWorking) {
  // Other users' passwords and existence, roles and permissions: every
  // token stays, as etcd's do.
  APPLY_OK(store_, As("root", UserAdd("carol")));
  APPLY_OK(store_, Authenticate("carol", "c.5"));
  APPLY_OK(store_, As("root", ChangePassword("carol", "new")));
  APPLY_OK(store_, As("root", UserDelete("carol")));
  APPLY_OK(store_, As("root", RoleAdd("other")));
  APPLY_OK(store_, As("root", GrantPermission("other", authpb::Permission::READ, "o", "")));
  APPLY_OK(store_, As("root", GrantRole("bob", "other")));
  EXPECT_EQ(store_.tokens().Resolve("c.5", 0).status(), InvalidAuthTokenError());
  EXPECT_EQ(Holders(), kAll);
  // Revoking a role, even root, or deleting one drops no token either
  // (etcd 3.4 neither): the rights go with the role, at once.
  APPLY_OK(store_, As("root", RevokeRole("alice", "root")));
  APPLY_OK(store_, As("root", RoleDelete("bob-from-rw")));
  EXPECT_EQ(Holders(), kAll);
  EXPECT_REFUSED(store_, As("alice", UserAdd("mallory")), PermissionDeniedError());
  DENIED("bob", Put("x/1", "v"));
  // A refused change drops nothing.
  EXPECT_REFUSED(store_, As("alice", ChangePassword("bob", "x")), PermissionDeniedError());
  EXPECT_REFUSED(store_, As("bob", AuthDisable()), PermissionDeniedError());
  EXPECT_REFUSED(store_, As("root", UserDelete("mallory")), UserNotFoundError());
  EXPECT_EQ(Holders(), kAll);
}

TEST_F(AuthTokenTest, AnAdminRequestCheckedBeforeAnAuthChangeIsRefusedAfterIt) {
  // Alice's request is stamped while she holds root; root changes her
  // password before it applies. Applied, it would make a root user with
  // the rights of a token that no longer exists.
  kvpb::Request add = As("alice", UserAdd("mallory"));
  kvpb::Request grant = As("alice", GrantRole("mallory", "root"));
  APPLY_OK(store_, As("root", ChangePassword("alice", "new")));
  EXPECT_REFUSED(store_, add, AuthOldRevisionError());
  EXPECT_REFUSED(store_, grant, AuthOldRevisionError());
  EXPECT_FALSE(store_.auth().UserGet("mallory").ok());
  // Stamped after the change (by a new token), it applies.
  APPLY_OK(store_, As("alice", UserAdd("mallory")));
}

TEST(AuthTokenTtlTest, TheTtlComesFromTheOptionsAndOutlivesASnapshotRestore) {
  StoreOptions options;
  options.auth_token_ttl_ms = 1'000;
  Store store(options);
  EXPECT_EQ(store.tokens().ttl_ms(), 1'000);
  APPLY_OK(store, UserAdd("root"));
  APPLY_OK(store, GrantRole("root", "root"));
  APPLY_OK(store, AuthEnable());
  APPLY_OK(store, Authenticate("root", "r.1"));
  std::string snapshot = store.Snapshot();
  ASSERT_TRUE(store.Restore(snapshot).ok());
  // The member may have missed changes that would have dropped its tokens.
  EXPECT_EQ(store.tokens().Resolve("r.1", 0).status(), InvalidAuthTokenError());
  EXPECT_EQ(store.tokens().ttl_ms(), 1'000);
}

TEST_F(AuthTest, CheckPasswordAcceptsOnlyTheRightPassword) {
  EXPECT_EQ(store_.auth().CheckPassword("alice", PasswordOf("alice")), absl::OkStatus());
  EXPECT_EQ(store_.auth().CheckPassword("root", PasswordOf("root")), absl::OkStatus());
  EXPECT_EQ(store_.auth().CheckPassword("alice", PasswordOf("bob")), AuthFailedError());
  EXPECT_EQ(store_.auth().CheckPassword("alice", ""), AuthFailedError());
  EXPECT_EQ(store_.auth().CheckPassword("mallory", PasswordOf("mallory")), AuthFailedError());
}

TEST_F(AuthTest, DeniedRequestsLeaveTheStateUnchanged) {
  APPLY_OK(store_, As("root", LeaseGrant(100, 60)));
  APPLY_OK(store_, As("root", Put("k/r", "x", 100)));
  // Each of these would change something if it were applied.
  DENIED("alice", Put("other", "x"));
  DENIED("alice", Del("\x01", kZero));
  DENIED("alice", Txn({}, {PutOp("k/w", "x"), PutOp("other", "x")}));
  DENIED("alice", LeaseRevoke(100));
  DENIED("alice", UserAdd("carol"));
  DENIED("alice", GrantRole("alice", "bob-from-rw"));
  DENIED("bob", DeleteTree("k"));
  EXPECT_EQ(RootRead("other")->value(), "v");
  EXPECT_EQ(RootRead("k/r")->lease(), 100);
}

// ================================================================= leases ==

TEST(LeaseTest, GrantWithClientChosenId) {
  Store store;
  kvpb::Response response = APPLY_OK(store, LeaseGrant(42, 10));
  EXPECT_EQ(response.lease_grant().id(), 42);
  EXPECT_EQ(response.lease_grant().ttl(), 10);
  ASSERT_NE(store.leases().Find(42), nullptr);
  EXPECT_EQ(store.leases().Find(42)->ttl_seconds, 10);
  EXPECT_EQ(store.revision(), 0) << "a lease grant is not a key revision";
}

TEST(LeaseTest, GrantWithIdZeroGeneratesPositiveDeterministicIds) {
  Store a, b;
  int64_t a1 = APPLY_OK(a, LeaseGrant(0, 10)).lease_grant().id();
  int64_t b1 = APPLY_OK(b, LeaseGrant(0, 10)).lease_grant().id();
  EXPECT_GT(a1, 0);
  EXPECT_EQ(a1, b1);
  int64_t a2 = APPLY_OK(a, LeaseGrant(0, 10)).lease_grant().id();
  int64_t b2 = APPLY_OK(b, LeaseGrant(0, 10)).lease_grant().id();
  EXPECT_GT(a2, 0);
  EXPECT_NE(a1, a2);
  EXPECT_EQ(a2, b2);
  EXPECT_NE(a.leases().Find(a1), nullptr);
  EXPECT_NE(a.leases().Find(a2), nullptr);
}

TEST(LeaseTest, GrantingAnExistingIdFails) {
  Store store;
  APPLY_OK(store, LeaseGrant(42, 10));
  EXPECT_REFUSED(store, LeaseGrant(42, 20), LeaseExistsError());
  EXPECT_EQ(store.leases().Find(42)->ttl_seconds, 10);
}

TEST(LeaseTest, GrantWithTooLargeTtlFails) {
  Store store;
  EXPECT_REFUSED(store, LeaseGrant(1, kMaxLeaseTtlSeconds + 1), LeaseTtlTooLargeError());
  EXPECT_EQ(store.Validate(LeaseGrant(1, kMaxLeaseTtlSeconds + 1)), LeaseTtlTooLargeError());
  EXPECT_EQ(kMaxLeaseTtlSeconds, 9'000'000'000);
  APPLY_OK(store, LeaseGrant(1, kMaxLeaseTtlSeconds));
}

TEST(LeaseTest, GrantBelowMinimumTtlIsRaisedToIt) {
  Store store(StoreOptions{.min_lease_ttl_seconds = 5});
  kvpb::Response response = APPLY_OK(store, LeaseGrant(1, 2));
  EXPECT_EQ(response.lease_grant().ttl(), 5);
  EXPECT_EQ(store.TimeToLive(TtlRequest(1, false), 0).grantedttl(), 5);
  EXPECT_EQ(APPLY_OK(store, LeaseGrant(2, 7)).lease_grant().ttl(), 7);
}

TEST(LeaseTest, PutWithMissingLeaseFails) {
  Store store;
  EXPECT_REFUSED(store, Put("a", "1", 99), LeaseNotFoundError());
  EXPECT_REFUSED(store, Txn({}, {PutOp("a", "1", 99)}), LeaseNotFoundError());
}

TEST(LeaseTest, RevokeDeletesAllAttachedKeysInOneRevision) {
  Store store;
  APPLY_OK(store, LeaseGrant(7, 60));
  APPLY_OK(store, Put("l/1", "x", 7));
  APPLY_OK(store, Put("l/2", "x", 7));
  APPLY_OK(store, Put("l/3", "x", 7));
  APPLY_OK(store, Put("l/4", "x"));
  Revision before = store.revision();
  kvpb::Response response = APPLY_OK(store, LeaseRevoke(7));
  EXPECT_EQ(store.revision(), before + 1);
  EXPECT_EQ(response.lease_revoke().header().revision(), before + 1);
  EXPECT_EQ(store.leases().Find(7), nullptr);
  kvpb::Response now = QUERY_OK(store, Get("l/", "l0"));
  EXPECT_EQ(KeysIn(now.range()), std::vector<std::string>{"l/4"});
  kvpb::Response then = QUERY_OK(store, Get("l/", "l0", before));
  EXPECT_EQ(then.range().count(), 4);
  store.CheckInvariants();
}

TEST(LeaseTest, RevokeOfLeaseWithoutKeysKeepsTheRevision) {
  // etcd's lessor deletes the keys in one write txn; without keys it
  // changes nothing and the revision stays (lease/lessor.go:340-358).
  Store store;
  APPLY_OK(store, Put("a", "1"));
  APPLY_OK(store, LeaseGrant(7, 60));
  kvpb::Response response = APPLY_OK(store, LeaseRevoke(7));
  EXPECT_EQ(store.revision(), 1);
  EXPECT_EQ(response.lease_revoke().header().revision(), 1);
  EXPECT_EQ(store.leases().Find(7), nullptr);
}

TEST(LeaseTest, RevokeOfUnknownLeaseFails) {
  Store store;
  EXPECT_REFUSED(store, LeaseRevoke(7), LeaseNotFoundError());
}

TEST(LeaseTest, LessorExpiresLeaseExactlyAfterItsTtl) {
  Store store;
  APPLY_OK(store, LeaseGrant(7, 10));
  const int64_t now = 5'000;
  store.lessor().Promote(now, 0);
  EXPECT_TRUE(store.lessor().Expired(now + 10 * 1000 - 1, 10).empty());
  EXPECT_EQ(store.lessor().Expired(now + 10 * 1000, 10), std::vector<LeaseId>{7});
}

TEST(LeaseTest, KeepAliveRenewsTheLease) {
  Store store;
  APPLY_OK(store, LeaseGrant(7, 10));
  store.lessor().Promote(0, 0);
  absl::StatusOr<int64_t> ttl = store.KeepAlive(7, 6'000);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 10);
  EXPECT_TRUE(store.lessor().Expired(15'999, 10).empty());
  EXPECT_EQ(store.lessor().Expired(16'000, 10), std::vector<LeaseId>{7});
  EXPECT_EQ(store.KeepAlive(8, 6'000).status(), LeaseNotFoundError());
}

TEST(LeaseTest, AnExpiredLeaseIsNotRenewedWhileItsRevocationMayBeUnderWay) {
  Store store;
  APPLY_OK(store, LeaseGrant(7, 10));
  store.lessor().Promote(0, 0);
  ASSERT_EQ(store.lessor().Expired(10'000, 10), std::vector<LeaseId>{7});
  // The leader proposes the revocation; a renewal arriving meanwhile must
  // not answer "alive for 10 more seconds".
  EXPECT_EQ(store.KeepAlive(7, 10'001).status().code(), absl::StatusCode::kUnavailable);
  // A new leader restarts its TTL: then it renews again.
  store.lessor().Promote(10'002, 0);
  EXPECT_EQ(*store.KeepAlive(7, 10'003), 10);
}

TEST(LeaseTest, LeaseExpireRevokesEachLeaseWithItsKeys) {
  Store store;
  APPLY_OK(store, LeaseGrant(1, 10));
  APPLY_OK(store, LeaseGrant(2, 10));
  APPLY_OK(store, LeaseGrant(3, 10));
  APPLY_OK(store, Put("a", "x", 1));
  APPLY_OK(store, Put("b", "x", 2));
  APPLY_OK(store, Put("c", "x", 3));
  Revision before = store.revision();
  // 99 is unknown (revoked meanwhile): skipped.
  APPLY_OK(store, LeaseExpire({1, 2, 99}));
  EXPECT_EQ(store.leases().Find(1), nullptr);
  EXPECT_EQ(store.leases().Find(2), nullptr);
  EXPECT_NE(store.leases().Find(3), nullptr);
  EXPECT_FALSE(Read(store, "a").has_value());
  EXPECT_FALSE(Read(store, "b").has_value());
  EXPECT_TRUE(Read(store, "c").has_value());
  EXPECT_EQ(store.revision(), before + 2) << "each lease in its own revision";
  EXPECT_EQ(store.lessor().size(), 1u);
  store.CheckInvariants();
}

TEST(LeaseTest, TimeToLiveReportsRemainingAndGrantedTtlAndKeys) {
  Store store;
  APPLY_OK(store, LeaseGrant(7, 10));
  APPLY_OK(store, Put("a", "x", 7));
  APPLY_OK(store, Put("b", "x", 7));
  store.lessor().Promote(0, 0);
  etcdserverpb::LeaseTimeToLiveResponse r = store.TimeToLive(TtlRequest(7, true), 3'000);
  EXPECT_EQ(r.id(), 7);
  EXPECT_EQ(r.ttl(), 7);
  EXPECT_EQ(r.grantedttl(), 10);
  EXPECT_EQ(KeysOf(r), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(store.TimeToLive(TtlRequest(7, false), 3'000).keys_size(), 0);
}

TEST(LeaseTest, TimeToLiveRoundsRemainingSecondsDownLikeEtcd) {
  // etcd: TTL = int64(lease.Remaining().Seconds()), truncated
  // (etcdserver/v3_server.go:336): 8.5 s left reads as 8.
  Store store;
  APPLY_OK(store, LeaseGrant(7, 10));
  store.lessor().Promote(0, 0);
  EXPECT_EQ(store.TimeToLive(TtlRequest(7, false), 1'500).ttl(), 8);
  EXPECT_EQ(store.TimeToLive(TtlRequest(7, false), 9'999).ttl(), 0);
}

TEST(LeaseTest, TimeToLiveOfUnknownLeaseIsMinusOne) {
  Store store;
  etcdserverpb::LeaseTimeToLiveResponse r = store.TimeToLive(TtlRequest(7, true), 0);
  EXPECT_EQ(r.id(), 7);
  EXPECT_EQ(r.ttl(), -1);
  EXPECT_EQ(r.keys_size(), 0);
}

TEST(LeaseTest, PutsMovingKeysBetweenLeasesKeepKeySetsRight) {
  Store store;
  APPLY_OK(store, LeaseGrant(1, 60));
  APPLY_OK(store, LeaseGrant(2, 60));
  auto keys = [&](LeaseId id) { return KeysOf(store.TimeToLive(TtlRequest(id, true), 0)); };
  const std::set<std::string> none, just_k{"k"};

  APPLY_OK(store, Put("k", "v1", 1));
  EXPECT_EQ(keys(1), just_k);
  APPLY_OK(store, Put("k", "v2", 2));
  EXPECT_EQ(keys(1), none);
  EXPECT_EQ(keys(2), just_k);
  store.CheckInvariants();

  kvpb::Request keep = Put("k", "v3");
  keep.mutable_put()->set_ignore_lease(true);
  APPLY_OK(store, keep);
  EXPECT_EQ(keys(2), just_k);
  EXPECT_EQ(Read(store, "k")->lease(), 2);
  EXPECT_EQ(Read(store, "k")->value(), "v3");

  APPLY_OK(store, Put("k", "v4"));
  EXPECT_EQ(keys(2), none);
  EXPECT_EQ(Read(store, "k")->lease(), 0);
  store.CheckInvariants();

  // Revoking the leases it left must not delete it.
  APPLY_OK(store, LeaseRevoke(1));
  APPLY_OK(store, LeaseRevoke(2));
  EXPECT_TRUE(Read(store, "k").has_value());

  // A delete detaches.
  APPLY_OK(store, LeaseGrant(3, 60));
  APPLY_OK(store, Put("k", "v5", 3));
  APPLY_OK(store, Del("k"));
  EXPECT_EQ(keys(3), none);
  store.CheckInvariants();
}

TEST(LeaseTest, LeaseLeasesListsEveryLease) {
  Store store;
  APPLY_OK(store, LeaseGrant(5, 60));
  APPLY_OK(store, LeaseGrant(9, 60));
  int64_t generated = APPLY_OK(store, LeaseGrant(0, 60)).lease_grant().id();
  APPLY_OK(store, LeaseRevoke(9));
  kvpb::Request r;
  r.mutable_lease_leases();
  kvpb::Response response = QUERY_OK(store, r);
  std::set<int64_t> ids;
  for (const auto& lease : response.lease_leases().leases()) ids.insert(lease.id());
  EXPECT_EQ(ids, (std::set<int64_t>{5, generated}));
}

// ================================================================= quota ==

class QuotaTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kMember = 42;
  static constexpr int64_t kQuota = 4096;
  QuotaTest() : store_(StoreOptions{.quota_bytes = kQuota}) {}

  kvpb::Request From(kvpb::Request r) {
    r.mutable_header()->set_member_id(kMember);
    return r;
  }
  // A write refused for lack of space: no key changes, and NOSPACE raised
  // in kMember's name (the alarm is replicated state, so Snapshot() does
  // change).
  void ExpectNoSpace(const kvpb::Request& request) {
    Revision revision = store_.revision();
    uint32_t hash = store_.HashKV(0);
    size_t leases = store_.leases().leases().size();
    kvpb::Response response = store_.Apply(From(request));
    EXPECT_EQ(StatusOf(response), NoSpaceError());
    EXPECT_EQ(store_.revision(), revision);
    EXPECT_EQ(store_.HashKV(0), hash);
    EXPECT_EQ(store_.leases().leases().size(), leases);
    EXPECT_TRUE(HasNospace(kMember));
  }
  // Fills the store past the quota: raises NOSPACE.
  void Exceed() {
    APPLY_OK(store_, From(Put("small", "1")));
    APPLY_OK(store_, From(Put("gone", "1")));
    ExpectNoSpace(Put("big", std::string(5000, 'x')));
  }
  bool HasNospace(uint64_t member) const {
    return store_.alarms().contains({member, etcdserverpb::NOSPACE});
  }

  Store store_;
};

TEST_F(QuotaTest, PutOverQuotaFailsAndRaisesNospaceForTheProposer) {
  Revision before = store_.revision();
  APPLY_OK(store_, From(Put("small", "1")));
  std::string snapshot_without_alarm = store_.Snapshot();
  kvpb::Response response = store_.Apply(From(Put("big", std::string(5000, 'x'))));
  EXPECT_EQ(StatusOf(response), NoSpaceError());
  EXPECT_EQ(StatusOf(response).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store_.revision(), before + 1);
  EXPECT_FALSE(Read(store_, "big").has_value());
  EXPECT_TRUE(HasNospace(kMember));
  EXPECT_TRUE(store_.nospace());
  EXPECT_EQ(store_.alarms().size(), 1u);
  EXPECT_FALSE(store_.Snapshot() == snapshot_without_alarm) << "the alarm is replicated state";
}

TEST_F(QuotaTest, TxnOverQuotaFailsAndRaisesNospace) {
  ASSERT_FALSE(store_.nospace());
  ExpectNoSpace(
      Txn({}, {PutOp("a", std::string(3000, 'x')), PutOp("b", std::string(3000, 'x'))}));
}

TEST_F(QuotaTest, WhileNospaceIsRaisedPutsTxnPutsAndLeaseGrantsAreRefused) {
  Exceed();
  ASSERT_TRUE(HasNospace(kMember));
  EXPECT_REFUSED(store_, From(Put("tiny", "1")), NoSpaceError());
  EXPECT_REFUSED(store_, From(Put("small", "2")), NoSpaceError());
  EXPECT_REFUSED(store_, From(Txn({}, {PutOp("tiny", "1")})), NoSpaceError());
  EXPECT_REFUSED(store_, From(Txn({CmpValue("small", Compare::EQUAL, "no")}, {},
                                  {PutOp("tiny", "1")})),
                 NoSpaceError());
  EXPECT_REFUSED(store_, From(LeaseGrant(1, 10)), NoSpaceError());
}

TEST_F(QuotaTest, WhileNospaceIsRaisedRangesDeletesAndCompactionWork) {
  Exceed();
  ASSERT_TRUE(store_.nospace());
  EXPECT_EQ(Read(store_, "small")->value(), "1");
  APPLY_OK(store_, From(Del("gone")));
  EXPECT_FALSE(Read(store_, "gone").has_value());
  APPLY_OK(store_, From(Txn({}, {DeleteOp("small"), RangeOp("small")})));
  EXPECT_FALSE(Read(store_, "small").has_value());
  APPLY_OK(store_, From(Compact(store_.revision())));
  EXPECT_EQ(store_.keyspace().compact_revision(), store_.revision());
  EXPECT_TRUE(store_.nospace()) << "only a DEACTIVATE clears the alarm";
}

TEST_F(QuotaTest, DeactivatingNospaceAfterFreeingSpaceAllowsPutsAgain) {
  Exceed();
  APPLY_OK(store_, Del("small"));
  APPLY_OK(store_, Del("gone"));
  APPLY_OK(store_, Compact(store_.revision()));
  EXPECT_REFUSED(store_, From(Put("after", "1")), NoSpaceError());
  kvpb::Response response =
      APPLY_OK(store_, Alarm(etcdserverpb::AlarmRequest::DEACTIVATE, kMember,
                             etcdserverpb::NOSPACE));
  ASSERT_EQ(response.alarm().alarms_size(), 1);
  EXPECT_EQ(response.alarm().alarms(0).memberid(), kMember);
  EXPECT_FALSE(store_.nospace());
  APPLY_OK(store_, From(Put("after", "1")));
  APPLY_OK(store_, From(LeaseGrant(1, 10)));
  EXPECT_EQ(Read(store_, "after")->value(), "1");
}

TEST_F(QuotaTest, AlarmGetListsActiveAlarms) {
  Exceed();
  APPLY_OK(store_, Alarm(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE));
  kvpb::Response all =
      QUERY_OK(store_, Alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NONE));
  std::set<std::pair<uint64_t, int>> listed;
  for (const auto& a : all.alarm().alarms()) listed.insert({a.memberid(), a.alarm()});
  EXPECT_EQ(listed, (std::set<std::pair<uint64_t, int>>{{7, etcdserverpb::NOSPACE},
                                                        {kMember, etcdserverpb::NOSPACE}}));
  // Through the log too.
  EXPECT_EQ(APPLY_OK(store_, Alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NONE))
                .alarm()
                .alarms_size(),
            2);
  APPLY_OK(store_, Alarm(etcdserverpb::AlarmRequest::DEACTIVATE, 7, etcdserverpb::NOSPACE));
  EXPECT_EQ(QUERY_OK(store_, Alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NONE))
                .alarm()
                .alarms_size(),
            1);
}

// ============================================================ directories ==

struct Entry {
  std::string name;
  bool is_dir = false;
  bool has_kv = false;
  std::string value;
  bool operator==(const Entry&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Entry& e) {
  return os << "{" << testing::PrintToString(e.name) << (e.is_dir ? " dir" : "")
            << (e.has_kv ? " kv=" + e.value : "") << "}";
}

std::vector<Entry> EntriesOf(const kvpb::Response& response) {
  std::vector<Entry> out;
  for (const kvpb::ListEntry& e : response.list().entries()) {
    out.push_back(Entry{e.name(), e.is_dir(), e.has_kv(), e.kv().value()});
  }
  return out;
}

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"/d", "dir-key"},
             {"/d/a", "1"},
             {"/d/b/x", "2"},
             {"/d/b", "3"},
             {"/d/c/y/z", "4"},
             {"/d/b!", "5"},
             {"/dx", "sibling"}}) {
      APPLY_OK(store_, Put(key, value));
    }
  }
  Store store_;
};

TEST_F(DirectoryTest, ListShowsImmediateChildrenWithKvOnlyForExactNames) {
  std::vector<Entry> expected = {
      {"a", false, true, "1"},
      {"b", true, true, "3"},
      {"b!", false, true, "5"},
      {"c", true, false, ""},
  };
  kvpb::Response response = QUERY_OK(store_, List("/d"));
  EXPECT_EQ(EntriesOf(response), expected);
  EXPECT_FALSE(response.list().more());
  EXPECT_EQ(response.list().header().revision(), store_.revision());
  EXPECT_EQ(EntriesOf(QUERY_OK(store_, List("/d/"))), expected);
  const kvpb::ListEntry& b = response.list().entries(1);
  EXPECT_EQ(b.kv().key(), "/d/b");
  EXPECT_EQ(b.kv().version(), 1);
  EXPECT_EQ(EntriesOf(QUERY_OK(store_, List("/d/c"))),
            (std::vector<Entry>{{"y", true, false, ""}}));
  EXPECT_EQ(EntriesOf(QUERY_OK(store_, List("/d/c/y"))),
            (std::vector<Entry>{{"z", false, true, "4"}}));
  EXPECT_TRUE(EntriesOf(QUERY_OK(store_, List("/nothing"))).empty());
}

TEST_F(DirectoryTest, ListLimitReportsMore) {
  kvpb::Response two = QUERY_OK(store_, List("/d", 0, 2));
  ASSERT_EQ(two.list().entries_size(), 2);
  EXPECT_EQ(two.list().entries(0).name(), "a");
  EXPECT_EQ(two.list().entries(1).name(), "b");
  EXPECT_TRUE(two.list().more());
  EXPECT_TRUE(QUERY_OK(store_, List("/d", 0, 3)).list().more());
  kvpb::Response four = QUERY_OK(store_, List("/d", 0, 4));
  EXPECT_EQ(four.list().entries_size(), 4);
  EXPECT_FALSE(four.list().more());
}

TEST_F(DirectoryTest, ListAtPastRevision) {
  Revision then = store_.revision();
  APPLY_OK(store_, Del("/d/a"));
  APPLY_OK(store_, Del("/d/c/y/z"));
  APPLY_OK(store_, Put("/d/e", "6"));
  std::vector<std::string> names_then, names_now;
  for (const Entry& e : EntriesOf(QUERY_OK(store_, List("/d", then)))) names_then.push_back(e.name);
  for (const Entry& e : EntriesOf(QUERY_OK(store_, List("/d")))) names_now.push_back(e.name);
  EXPECT_EQ(names_then, (std::vector<std::string>{"a", "b", "b!", "c"}));
  EXPECT_EQ(names_now, (std::vector<std::string>{"b", "b!", "e"}));
  // Before "/d/b" was written the second time.
  APPLY_OK(store_, Put("/d/b", "new"));
  EXPECT_EQ(EntriesOf(QUERY_OK(store_, List("/d", then)))[1], (Entry{"b", true, true, "3"}));

  EXPECT_EQ(StatusOf(store_.Query(List("/d", store_.revision() + 1))), FutureRevisionError());
  APPLY_OK(store_, Compact(then + 1));
  EXPECT_EQ(StatusOf(store_.Query(List("/d", then))), CompactedError());
}

TEST_F(DirectoryTest, ListKeysOnlyDropsValues) {
  kvpb::Response response = QUERY_OK(store_, List("/d", 0, 0, /*keys_only=*/true));
  ASSERT_EQ(response.list().entries_size(), 4);
  const kvpb::ListEntry& a = response.list().entries(0);
  ASSERT_TRUE(a.has_kv());
  EXPECT_EQ(a.kv().key(), "/d/a");
  EXPECT_EQ(a.kv().value(), "");
  EXPECT_GT(a.kv().mod_revision(), 0);
}

TEST_F(DirectoryTest, TreeRangeGetsEveryKeyBelowThePath) {
  const std::vector<std::string> below = {"/d/a", "/d/b", "/d/b!", "/d/b/x", "/d/c/y/z"};
  kvpb::Response response = QUERY_OK(store_, TreeRange("/d"));
  EXPECT_EQ(KeysIn(response.range()), below);
  EXPECT_EQ(response.range().count(), 5);
  EXPECT_EQ(KeysIn(QUERY_OK(store_, TreeRange("/d/")).range()), below);

  kvpb::Response limited = QUERY_OK(store_, TreeRange("/d", 0, 2));
  EXPECT_EQ(limited.range().kvs_size(), 2);
  EXPECT_TRUE(limited.range().more());
  EXPECT_EQ(limited.range().count(), 5);

  Revision then = store_.revision();
  APPLY_OK(store_, Del("/d/a"));
  EXPECT_EQ(QUERY_OK(store_, TreeRange("/d")).range().count(), 4);
  EXPECT_EQ(QUERY_OK(store_, TreeRange("/d", then)).range().count(), 5);
}

TEST_F(DirectoryTest, DeleteTreeDeletesEveryKeyBelowInOneRevision) {
  Revision before = store_.revision();
  kvpb::Response response = APPLY_OK(store_, DeleteTree("/d", /*prev_kv=*/true));
  EXPECT_EQ(store_.revision(), before + 1);
  EXPECT_EQ(response.delete_range().header().revision(), before + 1);
  EXPECT_EQ(response.delete_range().deleted(), 5);
  std::vector<std::string> prev;
  for (const auto& kv : response.delete_range().prev_kvs()) prev.push_back(kv.key());
  EXPECT_EQ(prev, (std::vector<std::string>{"/d/a", "/d/b", "/d/b!", "/d/b/x", "/d/c/y/z"}));
  EXPECT_EQ(response.delete_range().prev_kvs(0).value(), "1");
  EXPECT_EQ(QUERY_OK(store_, TreeRange("/d")).range().count(), 0);
  // The directory's own key and its sibling stay.
  EXPECT_EQ(Read(store_, "/d")->value(), "dir-key");
  EXPECT_EQ(Read(store_, "/dx")->value(), "sibling");
  // An empty directory: nothing deleted, no revision.
  EXPECT_EQ(APPLY_OK(store_, DeleteTree("/d")).delete_range().deleted(), 0);
  EXPECT_EQ(store_.revision(), before + 1);
  store_.CheckInvariants();
}

TEST(DirectoryEdgeTest, KeysWithoutLeadingSlash) {
  Store store;
  APPLY_OK(store, Put("a/b", "1"));
  APPLY_OK(store, Put("a/c/d", "2"));
  APPLY_OK(store, Put("/a/z", "3"));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("a"))),
            (std::vector<Entry>{{"b", false, true, "1"}, {"c", true, false, ""}}));
  EXPECT_EQ(KeysIn(QUERY_OK(store, TreeRange("a")).range()),
            (std::vector<std::string>{"a/b", "a/c/d"}));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/a"))), (std::vector<Entry>{{"z", false, true, "3"}}));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/"))), (std::vector<Entry>{{"a", true, false, ""}}));
  EXPECT_EQ(APPLY_OK(store, DeleteTree("a")).delete_range().deleted(), 2);
  EXPECT_EQ(Read(store, "/a/z")->value(), "3");
}

TEST(DirectoryEdgeTest, KeysWithTrailingSlash) {
  Store store;
  APPLY_OK(store, Put("/t/dir/", "self"));
  APPLY_OK(store, Put("/t/dir/f", "1"));
  APPLY_OK(store, Put("/t/only/", "lonely"));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/t"))),
            (std::vector<Entry>{{"dir", true, false, ""}, {"only", true, false, ""}}));
  // The key naming the directory itself is not one of its children.
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/t/dir"))),
            (std::vector<Entry>{{"f", false, true, "1"}}));
  EXPECT_EQ(KeysIn(QUERY_OK(store, TreeRange("/t/dir")).range()),
            (std::vector<std::string>{"/t/dir/", "/t/dir/f"}));
  EXPECT_EQ(APPLY_OK(store, DeleteTree("/t/dir/")).delete_range().deleted(), 2);
  EXPECT_EQ(Read(store, "/t/only/")->value(), "lonely");
}

TEST(DirectoryEdgeTest, EmptyPathComponents) {
  Store store;
  APPLY_OK(store, Put("/e//b", "1"));
  APPLY_OK(store, Put("/e/c", "2"));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/e"))),
            (std::vector<Entry>{{"", true, false, ""}, {"c", false, true, "2"}}));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/e//"))),
            (std::vector<Entry>{{"b", false, true, "1"}}));
  EXPECT_EQ(KeysIn(QUERY_OK(store, TreeRange("/e")).range()),
            (std::vector<std::string>{"/e//b", "/e/c"}));
  EXPECT_EQ(APPLY_OK(store, DeleteTree("/e//")).delete_range().deleted(), 1);
  EXPECT_EQ(Read(store, "/e/c")->value(), "2");
}

TEST(DirectoryEdgeTest, BinaryBytesInKeys) {
  Store store;
  const std::string nul = std::string("/bin/") + '\0';
  const std::string ff = "/bin/\xff";
  const std::string mid = std::string("/bin/a") + '\0' + "b/c";
  const std::string ffdir = "/bin/\xff\xff/d";
  for (const std::string& key : {nul, ff, mid, ffdir}) APPLY_OK(store, Put(key, key));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/bin"))),
            (std::vector<Entry>{{std::string(1, '\0'), false, true, nul},
                                {std::string("a") + '\0' + "b", true, false, ""},
                                {"\xff", false, true, ff},
                                {"\xff\xff", true, false, ""}}));
  EXPECT_EQ(KeysIn(QUERY_OK(store, TreeRange("/bin")).range()),
            (std::vector<std::string>{nul, mid, ff, ffdir}));
  EXPECT_EQ(EntriesOf(QUERY_OK(store, List("/bin/\xff\xff"))),
            (std::vector<Entry>{{"d", false, true, ffdir}}));
  EXPECT_EQ(Read(store, mid)->value(), mid);
  kvpb::Response deleted = APPLY_OK(store, DeleteTree("/bin/\xff\xff", true));
  ASSERT_EQ(deleted.delete_range().prev_kvs_size(), 1);
  EXPECT_EQ(deleted.delete_range().prev_kvs(0).key(), ffdir);
  EXPECT_EQ(QUERY_OK(store, TreeRange("/bin")).range().count(), 3);
}

TEST(DirectoryEdgeTest, OneMebibyteKeyIsAccepted) {
  Store store;
  const std::string key = "/big/" + std::string(1 << 20, 'k');
  APPLY_OK(store, Put(key, "v"));
  EXPECT_EQ(Read(store, key)->value(), "v");
  kvpb::Response list = QUERY_OK(store, List("/big"));
  ASSERT_EQ(list.list().entries_size(), 1);
  EXPECT_EQ(list.list().entries(0).name().size(), size_t{1} << 20);
  EXPECT_EQ(QUERY_OK(store, TreeRange("/big")).range().count(), 1);
}

TEST(DirectoryEdgeTest, ValueUpToTheRequestLimitIsAcceptedAndOverItRefused) {
  StoreOptions options;
  Store store(options);
  // The largest put whose request is exactly max_request_bytes.
  kvpb::Request at_limit = Put("/v", "");
  size_t value_size = static_cast<size_t>(options.max_request_bytes);
  while (true) {
    at_limit.mutable_put()->set_value(std::string(value_size, 'x'));
    if (static_cast<int64_t>(at_limit.ByteSizeLong()) <= options.max_request_bytes) break;
    --value_size;
  }
  ASSERT_EQ(static_cast<int64_t>(at_limit.ByteSizeLong()), options.max_request_bytes);
  kvpb::Request over = at_limit;
  over.mutable_put()->mutable_value()->push_back('x');
  ASSERT_GT(static_cast<int64_t>(over.ByteSizeLong()), options.max_request_bytes);

  EXPECT_EQ(store.Validate(over), RequestTooLargeError());
  EXPECT_REFUSED(store, over, RequestTooLargeError());
  EXPECT_EQ(store.Validate(at_limit), absl::OkStatus());
  APPLY_OK(store, at_limit);
  EXPECT_EQ(Read(store, "/v")->value().size(), value_size);
}

// ============================================================== snapshots ==

// A store with history, a compaction, leases with keys, users, roles, auth
// enabled and an alarm.
void Populate(Store& store) {
  APPLY_OK(store, Put("/a/1", "one"));
  APPLY_OK(store, Put("/a/2", "two"));
  APPLY_OK(store, Put("/a/2", "two again"));
  APPLY_OK(store, Put("/b", "bee"));
  APPLY_OK(store, LeaseGrant(7, 30));
  int64_t generated = APPLY_OK(store, LeaseGrant(0, 60)).lease_grant().id();
  APPLY_OK(store, Put("/l/1", "leased", 7));
  APPLY_OK(store, Put("/l/2", "leased", 7));
  APPLY_OK(store, Put("/l/3", "leased", generated));
  APPLY_OK(store, Del("/a/1"));
  APPLY_OK(store, Compact(3));
  APPLY_OK(store, Txn({}, {PutOp("/t/1", "x"), PutOp("/t/2", "y"), DeleteOp("/b")}));
  APPLY_OK(store, UserAdd("root"));
  APPLY_OK(store, GrantRole("root", "root"));
  APPLY_OK(store, UserAdd("alice"));
  APPLY_OK(store, UserAdd("svc", /*no_password=*/true));
  APPLY_OK(store, RoleAdd("reader"));
  APPLY_OK(store, GrantPermission("reader", authpb::Permission::READ, "/a/", PrefixEnd("/a/")));
  APPLY_OK(store, GrantRole("alice", "reader"));
  APPLY_OK(store, WithUser(AuthEnable(), "root", store.auth().revision()));
  APPLY_OK(store, WithUser(Put("/after-auth", "z"), "root", store.auth().revision()));
  APPLY_OK(store, WithUser(Alarm(etcdserverpb::AlarmRequest::ACTIVATE, 9, etcdserverpb::NOSPACE),
                           "root", store.auth().revision()));
  store.CheckInvariants();
}

TEST(SnapshotTest, RoundTripGivesTheSameStateAndHashes) {
  Store original;
  Populate(original);
  const std::string snapshot = original.Snapshot();
  // Written field by field, it is byte for byte the deterministic
  // serialization of the message it parses into.
  kvpb::Snapshot parsed;
  ASSERT_TRUE(parsed.ParseFromString(snapshot));
  ASSERT_GT(parsed.keys_size(), 1);
  ASSERT_GT(parsed.leases_size() + parsed.users_size() + parsed.alarms_size(), 0);
  std::string canonical;
  {
    google::protobuf::io::StringOutputStream stream(&canonical);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    parsed.SerializeToCodedStream(&coded);
  }
  EXPECT_TRUE(canonical == snapshot);

  Store restored;
  APPLY_OK(restored, Put("/unrelated", "old"));  // replaced wholesale
  ASSERT_EQ(restored.Restore(snapshot), absl::OkStatus());
  restored.CheckInvariants();
  EXPECT_TRUE(restored.Snapshot() == snapshot);
  EXPECT_EQ(restored.Hash(), original.Hash());
  EXPECT_EQ(restored.revision(), original.revision());
  EXPECT_EQ(restored.keyspace().compact_revision(), 3);
  for (Revision r = 3; r <= original.revision(); ++r) {
    EXPECT_EQ(restored.HashKV(r), original.HashKV(r)) << "at revision " << r;
  }
  EXPECT_EQ(restored.HashKV(0), original.HashKV(0));
  // The hashes do depend on the revision (so the checks above can fail).
  EXPECT_NE(original.HashKV(original.revision()), original.HashKV(original.revision() - 1));

  EXPECT_EQ(QUERY_OK(restored, WithUser(Get("/unrelated"), "root", restored.auth().revision()))
                .range()
                .count(),
            0);
  EXPECT_TRUE(restored.auth().enabled());
  EXPECT_EQ(restored.auth().revision(), original.auth().revision());
  EXPECT_EQ(restored.auth().CheckPassword("alice", PasswordOf("alice")), absl::OkStatus());
  EXPECT_EQ(restored.alarms(), original.alarms());
  EXPECT_EQ(restored.leases().Find(7)->keys, (std::set<std::string>{"/l/1", "/l/2"}));
  // The restored store answers reads like the original.
  kvpb::Request read = WithUser(Get("/", "0"), "root", restored.auth().revision());
  EXPECT_EQ(QUERY_OK(restored, read).range().SerializeAsString(),
            QUERY_OK(original, read).range().SerializeAsString());
}

TEST(SnapshotTest, RestoredStoreRevokesLeasedKeysAndDrawsTheSameIds) {
  Store original;
  APPLY_OK(original, LeaseGrant(0, 60));
  APPLY_OK(original, LeaseGrant(7, 30));
  APPLY_OK(original, Put("k", "v", 7));
  Store restored;
  ASSERT_EQ(restored.Restore(original.Snapshot()), absl::OkStatus());
  EXPECT_EQ(APPLY_OK(restored, LeaseGrant(0, 60)).lease_grant().id(),
            APPLY_OK(original, LeaseGrant(0, 60)).lease_grant().id());
  EXPECT_EQ(KeysOf(restored.TimeToLive(TtlRequest(7, true), 0)), std::set<std::string>{"k"});
  APPLY_OK(restored, LeaseRevoke(7));
  EXPECT_FALSE(Read(restored, "k").has_value());
  restored.CheckInvariants();
}

TEST(SnapshotTest, RestoreReadsTheFieldsInAnyOrder) {
  // Restore reads a snapshot field by field (so that it may pass protobuf's
  // 2 GiB message limit), keys one at a time after the rest: wherever the
  // keys stand among the other fields, it restores what parsing the whole
  // message would.
  Store original;
  Populate(original);
  const std::string snapshot = original.Snapshot();
  std::vector<std::string> keys, others;
  ASSERT_TRUE(base::ForEachWireField(snapshot, [&](const base::WireField& f) {
                (f.number == kvpb::Snapshot::kKeysFieldNumber ? keys : others)
                    .emplace_back(f.whole);
                return true;
              }).ok());
  ASSERT_GT(keys.size(), 1u);
  ASSERT_GT(others.size(), 3u);
  std::string keys_first = absl::StrJoin(keys, "") + absl::StrJoin(others, "");
  std::string reversed_others = absl::StrJoin(keys, "");
  for (auto it = others.rbegin(); it != others.rend(); ++it) reversed_others = *it + reversed_others;
  std::string interleaved;
  for (size_t i = 0; i < std::max(keys.size(), others.size()); ++i) {
    if (i < others.size()) interleaved += others[i];
    if (i < keys.size()) interleaved += keys[i];
  }
  // A key with a field this version does not know (skipped, as protobuf
  // skips it), and its name given twice (the last one counts).
  std::string_view first_key_payload;
  ASSERT_TRUE(base::ForEachWireField(keys[0], [&](const base::WireField& f) {
                first_key_payload = f.payload;
                return true;
              }).ok());
  std::string extended_payload = std::string("\x0a\x03old", 5) + std::string(first_key_payload) +
                                 std::string("\x38\x01", 2);
  std::string with_unknown = others[0] +
                             base::LengthDelimitedFieldHead(kvpb::Snapshot::kKeysFieldNumber,
                                                            extended_payload.size()) +
                             extended_payload;
  for (size_t i = 1; i < keys.size(); ++i) with_unknown += keys[i];
  for (size_t i = 1; i < others.size(); ++i) with_unknown += others[i];
  for (const std::string& data : {keys_first, reversed_others, interleaved, with_unknown}) {
    ASSERT_FALSE(data == snapshot);
    Store restored;
    ASSERT_EQ(restored.Restore(data), absl::OkStatus());
    restored.CheckInvariants();
    EXPECT_TRUE(restored.Snapshot() == snapshot);
    EXPECT_EQ(restored.Hash(), original.Hash());
  }
}

class BadSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Populate(source_);
    good_ = source_.Snapshot();
    ASSERT_TRUE(parsed_.ParseFromString(good_));
    APPLY_OK(target_, Put("/mine", "1"));
    APPLY_OK(target_, LeaseGrant(3, 10));
    etcdserverpb::WatchCreateRequest w;
    w.set_key("/mine");
    ASSERT_TRUE(target_.CreateWatch(AuthInfo{}, w).ok());
  }
  void ExpectDataLossAndNoChange(const std::string& data) {
    std::string before = target_.Snapshot();
    Revision revision = target_.revision();
    absl::Status status = target_.Restore(data);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_TRUE(target_.Snapshot() == before) << "a failed restore changed the state";
    EXPECT_EQ(target_.revision(), revision);
    EXPECT_EQ(target_.watches().watchers(), 1u);
    EXPECT_EQ(target_.lessor().size(), 1u);
    target_.CheckInvariants();
  }
  std::string Edited(const std::function<void(kvpb::Snapshot&)>& edit) {
    kvpb::Snapshot copy = parsed_;
    edit(copy);
    return copy.SerializeAsString();
  }

  Store source_, target_;
  std::string good_;
  kvpb::Snapshot parsed_;
};

TEST_F(BadSnapshotTest, GarbageFailsWithDataLoss) {
  ExpectDataLossAndNoChange("this is not a snapshot");
  ExpectDataLossAndNoChange(std::string(64, '\xff'));
}

TEST_F(BadSnapshotTest, TruncatedSnapshotFailsWithDataLoss) {
  ExpectDataLossAndNoChange(good_.substr(0, good_.size() - 1));
  // Cut inside a value.
  size_t at = good_.find("two again");
  ASSERT_NE(at, std::string::npos);
  ExpectDataLossAndNoChange(good_.substr(0, at + 4));
}

TEST_F(BadSnapshotTest, AMalformedKeyFieldFailsWithDataLoss) {
  // The keys are parsed one at a time as Restore reaches them: a bad one
  // after good ones still leaves nothing behind.
  std::string bad_key_message = good_ + base::LengthDelimitedFieldHead(
                                            kvpb::Snapshot::kKeysFieldNumber, 2) + "\xff\xff";
  ExpectDataLossAndNoChange(bad_key_message);
  // A keys field that is not a message at all (a varint). Stricter than
  // protobuf, which would keep it as an unknown field: our writer never
  // writes one, so it can only be damage.
  ExpectDataLossAndNoChange(good_ + std::string("\x20\x01", 2));
  // A keys field cut short (it announces more than follows).
  ExpectDataLossAndNoChange(good_ + base::LengthDelimitedFieldHead(4, 1 << 20) + "0123456789");
  EXPECT_EQ(target_.Restore(good_), absl::OkStatus());
}

TEST_F(BadSnapshotTest, InconsistentSnapshotFailsWithDataLoss) {
  {
    SCOPED_TRACE("keys attached to a missing lease");
    ExpectDataLossAndNoChange(Edited([](kvpb::Snapshot& s) { s.clear_leases(); }));
  }
  {
    SCOPED_TRACE("auth enabled without a root user");
    ExpectDataLossAndNoChange(Edited([](kvpb::Snapshot& s) {
      auto* users = s.mutable_users();
      for (int i = 0; i < users->size(); ++i) {
        if (users->Get(i).name() == "root") users->DeleteSubrange(i--, 1);
      }
    }));
  }
  {
    SCOPED_TRACE("a version newer than the store's revision");
    ExpectDataLossAndNoChange(Edited([](kvpb::Snapshot& s) {
      s.mutable_keys(0)->mutable_versions(0)->set_mod_revision(s.revision() + 1);
    }));
  }
  {
    SCOPED_TRACE("keys out of order");
    ExpectDataLossAndNoChange(
        Edited([](kvpb::Snapshot& s) { s.mutable_keys()->SwapElements(0, 1); }));
  }
  {
    SCOPED_TRACE("a lease twice");
    ExpectDataLossAndNoChange(Edited([](kvpb::Snapshot& s) { *s.add_leases() = s.leases(0); }));
  }
  {
    SCOPED_TRACE("an alarm of type NONE");
    ExpectDataLossAndNoChange(
        Edited([](kvpb::Snapshot& s) { s.mutable_alarms(0)->set_alarm(etcdserverpb::NONE); }));
  }
  {
    SCOPED_TRACE("an unknown format");
    ExpectDataLossAndNoChange(Edited([](kvpb::Snapshot& s) { s.set_format(s.format() + 1); }));
  }
  {
    SCOPED_TRACE("compacted past its revision");
    ExpectDataLossAndNoChange(
        Edited([](kvpb::Snapshot& s) { s.set_compact_revision(s.revision() + 1); }));
  }
  // The unedited snapshot restores (the edits, not the base, are at fault).
  EXPECT_EQ(target_.Restore(good_), absl::OkStatus());
}

// ============================================================== bad input ==

TEST(BadInputTest, EmptyKeyIsRefused) {
  Store store;
  APPLY_OK(store, Put("a", "1"));
  for (const kvpb::Request& r : {Put("", "1"), Get(""), Del(""), Del("", "z")}) {
    SCOPED_TRACE(r.ShortDebugString());
    EXPECT_EQ(store.Validate(r), EmptyKeyError());
    EXPECT_REFUSED(store, r, EmptyKeyError());
  }
  EXPECT_EQ(StatusOf(store.Query(Get(""))), EmptyKeyError());
  EXPECT_REFUSED(store, Txn({}, {PutOp("", "1")}), EmptyKeyError());
  EXPECT_REFUSED(store, Txn({CmpValue("", Compare::EQUAL, "1")}, {}), EmptyKeyError());
}

TEST(BadInputTest, IgnoreValueWithAValueIsRefused) {
  Store store;
  APPLY_OK(store, Put("a", "1"));
  kvpb::Request r = Put("a", "2");
  r.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(store.Validate(r), ValueProvidedError());
  EXPECT_REFUSED(store, r, ValueProvidedError());
}

TEST(BadInputTest, IgnoreLeaseWithALeaseIsRefused) {
  Store store;
  APPLY_OK(store, LeaseGrant(5, 10));
  APPLY_OK(store, Put("a", "1", 5));
  kvpb::Request r = Put("a", "2", 5);
  r.mutable_put()->set_ignore_lease(true);
  EXPECT_EQ(store.Validate(r), LeaseProvidedError());
  EXPECT_REFUSED(store, r, LeaseProvidedError());
}

TEST(BadInputTest, IgnoreValueOrLeaseOnMissingKeyIsRefused) {
  Store store;
  APPLY_OK(store, Put("a", "1"));
  kvpb::Request value = Put("missing", "");
  value.mutable_put()->set_ignore_value(true);
  kvpb::Request lease = Put("missing", "x");
  lease.mutable_put()->set_ignore_lease(true);
  EXPECT_REFUSED(store, value, KeyNotFoundError());
  EXPECT_REFUSED(store, lease, KeyNotFoundError());
  RequestOp op;
  *op.mutable_request_put() = value.put();
  EXPECT_REFUSED(store, Txn({}, {op}), KeyNotFoundError());
  // Only the branch that runs is checked (etcd's checkRequests follows the
  // txn path, etcdserver/apply.go:910).
  APPLY_OK(store, Txn({CmpValue("a", Compare::EQUAL, "1")}, {PutOp("b", "2")}, {op}));
  // On an existing key it keeps the value.
  value.mutable_put()->set_key("a");
  APPLY_OK(store, value);
  EXPECT_EQ(Read(store, "a")->value(), "1");
  EXPECT_EQ(Read(store, "a")->version(), 2);
}

TEST(BadInputTest, TxnWithTooManyOpsIsRefused) {
  Store store;
  auto puts = [](int n) {
    std::vector<RequestOp> ops;
    for (int i = 0; i < n; ++i) ops.push_back(PutOp("k" + std::to_string(i), "v"));
    return ops;
  };
  std::vector<Compare> compares;
  for (int i = 0; i < 129; ++i) compares.push_back(Cmp("c", Compare::VERSION, Compare::EQUAL, 0));
  EXPECT_REFUSED(store, Txn({}, puts(129)), TooManyOpsError());
  EXPECT_REFUSED(store, Txn({}, {}, puts(129)), TooManyOpsError());
  EXPECT_REFUSED(store, Txn(compares, {}), TooManyOpsError());
  EXPECT_EQ(store.Validate(Txn({}, puts(129))), TooManyOpsError());
  APPLY_OK(store, Txn({}, puts(128), puts(128)));
  EXPECT_EQ(store.revision(), 1);
}

TEST(BadInputTest, ANestedTxnHoldsAtMostWhatItsParentsLeave) {
  // etcd's checkTxnRequest: a nested txn gets the ops its parent's budget
  // leaves after the parent's own, and each sibling gets the same.
  StoreOptions options;
  options.max_txn_ops = 4;
  Store store(options);
  auto puts = [](const std::string& prefix, int n) {
    std::vector<RequestOp> ops;
    for (int i = 0; i < n; ++i) ops.push_back(PutOp(prefix + std::to_string(i), "v"));
    return ops;
  };
  APPLY_OK(store, Txn({}, {TxnOp(MakeTxn({}, puts("a", 2))), TxnOp(MakeTxn({}, puts("b", 2)))}));
  EXPECT_REFUSED(store, Txn({}, {TxnOp(MakeTxn({}, puts("a", 3))), PutOp("c", "v")}),
                 TooManyOpsError());
  // The larger branch counts.
  EXPECT_REFUSED(store, Txn({}, puts("c", 2), {TxnOp(MakeTxn({}, {}, puts("a", 3)))}),
                 TooManyOpsError());
  // Two levels down: 4 - 1 - 1 left.
  APPLY_OK(store, Txn({}, {TxnOp(MakeTxn({}, {TxnOp(MakeTxn({}, puts("a", 2)))}))}));
  EXPECT_REFUSED(store, Txn({}, {TxnOp(MakeTxn({}, {TxnOp(MakeTxn({}, puts("a", 3)))}))}),
                 TooManyOpsError());
  EXPECT_EQ(store.revision(), 2);
}

TEST(BadInputTest, TxnPuttingAKeyTwiceIsRefused) {
  Store store;
  EXPECT_REFUSED(store, Txn({}, {PutOp("a", "1"), PutOp("a", "2")}), DuplicateKeyError());
  EXPECT_REFUSED(store, Txn({}, {}, {PutOp("a", "1"), PutOp("b", "1"), PutOp("a", "2")}),
                 DuplicateKeyError());
  EXPECT_EQ(store.Validate(Txn({}, {PutOp("a", "1"), PutOp("a", "2")})), DuplicateKeyError());
}

TEST(BadInputTest, TxnPuttingAKeyAnotherOpDeletesIsRefused) {
  Store store;
  EXPECT_REFUSED(store, Txn({}, {PutOp("a/1", "1"), DeleteOp("a/", "a0")}), DuplicateKeyError());
  EXPECT_REFUSED(store, Txn({}, {DeleteOp("a/1"), PutOp("a/1", "1")}), DuplicateKeyError());
  // Across nesting levels too.
  EXPECT_REFUSED(store, Txn({}, {DeleteOp("a/", "a0"), TxnOp(MakeTxn({}, {PutOp("a/1", "1")}))}),
                 DuplicateKeyError());
  EXPECT_REFUSED(store, Txn({}, {PutOp("a/1", "1"), TxnOp(MakeTxn({}, {}, {DeleteOp("a/1")}))}),
                 DuplicateKeyError());
}

TEST(BadInputTest, TxnWithOverlappingDeletesIsAccepted) {
  Store store;
  for (const char* key : {"a", "b", "c", "d"}) APPLY_OK(store, Put(key, "1"));
  kvpb::Response response =
      APPLY_OK(store, Txn({}, {DeleteOp("a", "c"), DeleteOp("b", "d"), DeleteOp("b")}));
  EXPECT_EQ(response.txn().responses(0).response_delete_range().deleted(), 2);
  EXPECT_EQ(response.txn().responses(1).response_delete_range().deleted(), 1);
  EXPECT_EQ(response.txn().responses(2).response_delete_range().deleted(), 0);
  EXPECT_EQ(store.revision(), 5);
  EXPECT_TRUE(Read(store, "d").has_value());
}

TEST(BadInputTest, BranchesOfANestedTxnMayPutTheSameKey) {
  Store store;
  APPLY_OK(store, Txn({}, {TxnOp(MakeTxn({CmpValue("x", Compare::EQUAL, "1")}, {PutOp("k", "then")},
                                         {PutOp("k", "else")}))}));
  EXPECT_EQ(Read(store, "k")->value(), "else");
  // But not alongside a put of the same key outside it.
  EXPECT_REFUSED(store,
                 Txn({}, {PutOp("k", "outer"),
                          TxnOp(MakeTxn({}, {PutOp("k", "then")}, {PutOp("k", "else")}))}),
                 DuplicateKeyError());
  // Nor in two different nested txns.
  EXPECT_REFUSED(store,
                 Txn({}, {TxnOp(MakeTxn({}, {PutOp("k", "1")})),
                          TxnOp(MakeTxn({}, {}, {PutOp("k", "2")}))}),
                 DuplicateKeyError());
}

TEST(BadInputTest, RequestOpWithoutARequestIsRefused) {
  Store store;
  EXPECT_REFUSED(store, Txn({}, {RequestOp()}), KeyNotFoundError());
  EXPECT_REFUSED(store, Txn({}, {PutOp("a", "1")}, {RequestOp()}), KeyNotFoundError());
  EXPECT_REFUSED(store, Txn({}, {TxnOp(MakeTxn({}, {RequestOp()}))}), KeyNotFoundError());
}

TEST(BadInputTest, NegativeLimitOrRevisionOfARangeMeanNoneAsInEtcd) {
  // etcd 3.4 accepts these (mvcc/kvstore_txn.go): a negative revision reads
  // the current one, a negative limit is no limit.
  Store store;
  APPLY_OK(store, Put("/a", "1"));
  APPLY_OK(store, Put("/b", "2"));
  kvpb::Request limit = Get("/", std::string(1, '\0'));
  limit.mutable_range()->set_limit(-1);
  kvpb::Response all = store.Query(limit);
  ASSERT_EQ(all.error_code(), 0) << all.error_message();
  EXPECT_EQ(all.range().kvs_size(), 2);
  EXPECT_FALSE(all.range().more());
  kvpb::Response current = store.Query(Get("/a", "", -1));
  ASSERT_EQ(current.error_code(), 0) << current.error_message();
  EXPECT_EQ(current.range().kvs(0).value(), "1");
  APPLY_OK(store, Txn({}, {RangeOp("/a", "", -1)}));
}

TEST(BadInputTest, TheLargestLimitIsNoLimitAndDoesNotOverflow) {
  // limit + 1 (to tell `more`) overflowed at INT64_MAX: undefined
  // behaviour, which --config=ubsan (run by CI on kv/) turns into a failure.
  Store store;
  APPLY_OK(store, Put("/a", "1"));
  APPLY_OK(store, Put("/b", "2"));
  kvpb::Request request = Get("/", std::string(1, '\0'));
  request.mutable_range()->set_limit(std::numeric_limits<int64_t>::max());
  kvpb::Response all = store.Query(request);
  ASSERT_EQ(all.error_code(), 0) << all.error_message();
  EXPECT_EQ(all.range().kvs_size(), 2);
  EXPECT_FALSE(all.range().more());
}

TEST(BadInputTest, NegativeLimitOrRevisionOfADirectoryRequestIsRefused) {
  // etc's own requests say so instead.
  Store store;
  APPLY_OK(store, Put("/a", "1"));
  EXPECT_REFUSED_CODE(store, List("/", -1), absl::StatusCode::kInvalidArgument);
  EXPECT_REFUSED_CODE(store, List("/", 0, -1), absl::StatusCode::kInvalidArgument);
  EXPECT_REFUSED_CODE(store, TreeRange("/", -1), absl::StatusCode::kInvalidArgument);
  EXPECT_REFUSED_CODE(store, TreeRange("/", 0, -1), absl::StatusCode::kInvalidArgument);
}

TEST(BadInputTest, EmptyRequestIsRefused) {
  Store store;
  APPLY_OK(store, Put("a", "1"));
  kvpb::Request empty;
  EXPECT_EQ(store.Validate(empty).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_REFUSED_CODE(store, empty, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusOf(store.Query(empty)).code(), absl::StatusCode::kInvalidArgument);
  // A header alone is still empty.
  empty.mutable_header()->set_member_id(1);
  EXPECT_REFUSED_CODE(store, empty, absl::StatusCode::kInvalidArgument);
}

TEST(BadInputTest, RangeAtFutureOrCompactedRevisionIsRefused) {
  Store store;
  for (int i = 0; i < 4; ++i) APPLY_OK(store, Put("a", std::to_string(i)));
  EXPECT_REFUSED(store, Get("a", "", 5), FutureRevisionError());
  EXPECT_EQ(StatusOf(store.Query(Get("a", "", 5))), FutureRevisionError());
  // etcd checks the ranges of the branch that runs (checkRequestRange).
  EXPECT_REFUSED(store, Txn({}, {PutOp("b", "1"), RangeOp("a", "", 5)}), FutureRevisionError());
  APPLY_OK(store, Compact(3));
  EXPECT_REFUSED(store, Get("a", "", 2), CompactedError());
  EXPECT_REFUSED(store, Txn({}, {RangeOp("a", "", 2)}), CompactedError());
  EXPECT_EQ(Read(store, "a", 3)->value(), "2");
  EXPECT_REFUSED(store, Compact(3), CompactedError());
  EXPECT_REFUSED(store, Compact(5), FutureRevisionError());
}

// ==================================================================== txn ==

class TxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    APPLY_OK(store_, LeaseGrant(9, 60));
    APPLY_OK(store_, Put("k", "abc"));       // rev 1
    APPLY_OK(store_, Put("k", "abc", 9));    // rev 2: version 2, lease 9
    APPLY_OK(store_, Put("r/a", "1"));       // rev 3
    APPLY_OK(store_, Put("r/b", "2"));       // rev 4
    APPLY_OK(store_, Put("r/b", "2"));       // rev 5: version 2
  }
  bool Holds(Compare c) {
    kvpb::Response response = store_.Query(Txn({std::move(c)}, {RangeOp("k")}, {}));
    EXPECT_EQ(StatusOf(response), absl::OkStatus());
    return response.txn().succeeded();
  }
  Store store_;
};

TEST_F(TxnTest, ComparesOnEachTargetAndResult) {
  EXPECT_TRUE(Holds(Cmp("k", Compare::VERSION, Compare::EQUAL, 2)));
  EXPECT_FALSE(Holds(Cmp("k", Compare::VERSION, Compare::NOT_EQUAL, 2)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::VERSION, Compare::GREATER, 1)));
  EXPECT_FALSE(Holds(Cmp("k", Compare::VERSION, Compare::LESS, 2)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::CREATE, Compare::EQUAL, 1)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::CREATE, Compare::LESS, 2)));
  EXPECT_FALSE(Holds(Cmp("k", Compare::CREATE, Compare::GREATER, 1)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::MOD, Compare::EQUAL, 2)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::MOD, Compare::NOT_EQUAL, 1)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::MOD, Compare::GREATER, 1)));
  EXPECT_FALSE(Holds(Cmp("k", Compare::MOD, Compare::LESS, 2)));
  EXPECT_TRUE(Holds(CmpValue("k", Compare::EQUAL, "abc")));
  EXPECT_TRUE(Holds(CmpValue("k", Compare::GREATER, "abb")));
  EXPECT_TRUE(Holds(CmpValue("k", Compare::LESS, "abd")));
  EXPECT_TRUE(Holds(CmpValue("k", Compare::LESS, "abc\x01")));
  EXPECT_FALSE(Holds(CmpValue("k", Compare::NOT_EQUAL, "abc")));
  EXPECT_TRUE(Holds(Cmp("k", Compare::LEASE, Compare::EQUAL, 9)));
  EXPECT_TRUE(Holds(Cmp("k", Compare::LEASE, Compare::GREATER, 8)));
  EXPECT_FALSE(Holds(Cmp("k", Compare::LEASE, Compare::NOT_EQUAL, 9)));
  EXPECT_TRUE(Holds(Cmp("r/a", Compare::LEASE, Compare::EQUAL, 0)));
  // All compares must hold.
  kvpb::Response both = store_.Query(Txn(
      {Cmp("k", Compare::VERSION, Compare::EQUAL, 2), CmpValue("k", Compare::EQUAL, "x")}, {}));
  EXPECT_FALSE(both.txn().succeeded());
}

TEST_F(TxnTest, CompareOnMissingKey) {
  // A value compare on a missing key is false whatever the result asked.
  EXPECT_FALSE(Holds(CmpValue("missing", Compare::EQUAL, "")));
  EXPECT_FALSE(Holds(CmpValue("missing", Compare::NOT_EQUAL, "x")));
  EXPECT_FALSE(Holds(CmpValue("missing", Compare::LESS, "x")));
  // Others compare as zero: the create_revision == 0 idiom.
  EXPECT_TRUE(Holds(Cmp("missing", Compare::CREATE, Compare::EQUAL, 0)));
  EXPECT_TRUE(Holds(Cmp("missing", Compare::VERSION, Compare::LESS, 1)));
  EXPECT_FALSE(Holds(Cmp("missing", Compare::MOD, Compare::GREATER, 0)));
}

TEST_F(TxnTest, CompareOverARangeMustHoldForEveryKey) {
  EXPECT_TRUE(Holds(Cmp("r/", Compare::VERSION, Compare::GREATER, 0, "r0")));
  EXPECT_FALSE(Holds(Cmp("r/", Compare::VERSION, Compare::EQUAL, 1, "r0")));
  EXPECT_TRUE(Holds(Cmp("r/", Compare::VERSION, Compare::EQUAL, 1, "r/b")));
  EXPECT_TRUE(Holds(Cmp("r/", Compare::MOD, Compare::GREATER, 2, "r0")));
  EXPECT_FALSE(Holds(CmpValue("r/", Compare::EQUAL, "1", "r0")));
  EXPECT_TRUE(Holds(CmpValue("r/", Compare::LESS, "3", "r0")));
  EXPECT_TRUE(Holds(CmpValue("k", Compare::LESS, "b", kZero)));
  EXPECT_FALSE(Holds(CmpValue("a", Compare::GREATER, "2", kZero)));
  // An empty range compares like a missing key.
  EXPECT_TRUE(Holds(Cmp("s/", Compare::CREATE, Compare::EQUAL, 0, "s0")));
  EXPECT_FALSE(Holds(CmpValue("s/", Compare::NOT_EQUAL, "x", "s0")));
}

TEST_F(TxnTest, NestedTxnComparesSeeTheStateBeforeTheTxn) {
  // The outer txn changes k first; the nested compare still sees "abc".
  kvpb::Response response = APPLY_OK(
      store_, Txn({}, {PutOp("k", "changed"),
                       TxnOp(MakeTxn({CmpValue("k", Compare::EQUAL, "abc"),
                                      Cmp("new", Compare::VERSION, Compare::EQUAL, 0)},
                                     {PutOp("seen", "before")}, {PutOp("seen", "after")})),
                       PutOp("new", "1")}));
  EXPECT_TRUE(response.txn().responses(1).response_txn().succeeded());
  EXPECT_EQ(Read(store_, "seen")->value(), "before");
  EXPECT_EQ(Read(store_, "k")->value(), "changed");
}

TEST_F(TxnTest, TxnIsOneRevision) {
  Revision before = store_.revision();
  kvpb::Response response = APPLY_OK(
      store_, Txn({}, {PutOp("x", "1"), PutOp("y", "2"), DeleteOp("r/", "r0"),
                       TxnOp(MakeTxn({}, {PutOp("z", "3")}))}));
  EXPECT_EQ(store_.revision(), before + 1);
  EXPECT_EQ(response.txn().header().revision(), before + 1);
  EXPECT_EQ(response.txn().responses(0).response_put().header().revision(), before + 1);
  for (const char* key : {"x", "y", "z"}) {
    EXPECT_EQ(Read(store_, key)->mod_revision(), before + 1) << key;
    EXPECT_EQ(Read(store_, key)->create_revision(), before + 1) << key;
  }
  EXPECT_EQ(QUERY_OK(store_, Get("r/", "r0")).range().count(), 0);
  EXPECT_EQ(QUERY_OK(store_, Get("r/", "r0", before)).range().count(), 2);
}

TEST_F(TxnTest, RangesInsideATxnSeeItsEarlierWrites) {
  kvpb::Response response = APPLY_OK(
      store_, Txn({}, {RangeOp("k"), PutOp("k", "new"), RangeOp("k"), DeleteOp("r/a"),
                       RangeOp("r/", "r0"), PutOp("fresh", "f"), RangeOp("fresh")}));
  const auto& ops = response.txn().responses();
  EXPECT_EQ(ops[0].response_range().kvs(0).value(), "abc");
  EXPECT_EQ(ops[2].response_range().kvs(0).value(), "new");
  EXPECT_EQ(ops[2].response_range().kvs(0).version(), 3);
  EXPECT_EQ(KeysIn(ops[4].response_range()), std::vector<std::string>{"r/b"});
  ASSERT_EQ(ops[6].response_range().kvs_size(), 1);
  EXPECT_EQ(ops[6].response_range().kvs(0).create_revision(), store_.revision());
}

TEST_F(TxnTest, EachNestedTxnTakesItsOwnBranchAtAnyDepth) {
  Compare holds = CmpValue("k", Compare::EQUAL, "abc");
  Compare fails = CmpValue("k", Compare::EQUAL, "xyz");
  TxnRequest inner = MakeTxn({holds}, {PutOp("b", "then"), RangeOp("b")}, {PutOp("b", "else")});
  TxnRequest first = MakeTxn({fails}, {PutOp("a", "then")}, {TxnOp(inner), PutOp("a", "else")});
  TxnRequest second = MakeTxn({holds}, {PutOp("c", "then")}, {PutOp("c", "else")});
  kvpb::Response response =
      APPLY_OK(store_, Txn({holds}, {TxnOp(first), TxnOp(second), RangeOp("a")}));
  const etcdserverpb::TxnResponse& outer = response.txn();
  ASSERT_TRUE(outer.succeeded());
  ASSERT_EQ(outer.responses_size(), 3);
  const etcdserverpb::TxnResponse& first_out = outer.responses(0).response_txn();
  EXPECT_FALSE(first_out.succeeded());
  ASSERT_EQ(first_out.responses_size(), 2);
  const etcdserverpb::TxnResponse& inner_out = first_out.responses(0).response_txn();
  EXPECT_TRUE(inner_out.succeeded());
  ASSERT_EQ(inner_out.responses_size(), 2);
  EXPECT_EQ(inner_out.responses(1).response_range().kvs(0).value(), "then");
  EXPECT_TRUE(first_out.responses(1).has_response_put());
  EXPECT_TRUE(outer.responses(1).response_txn().succeeded());
  EXPECT_EQ(outer.responses(2).response_range().kvs(0).value(), "else");
  // Every result, at any depth, reports the txn's revision.
  EXPECT_EQ(inner_out.header().revision(), store_.revision());
  EXPECT_EQ(inner_out.responses(1).response_range().header().revision(), store_.revision());
  EXPECT_EQ(first_out.responses(1).response_put().header().revision(), store_.revision());
  EXPECT_EQ(Read(store_, "a")->value(), "else");
  EXPECT_EQ(Read(store_, "b")->value(), "then");
  EXPECT_EQ(Read(store_, "c")->value(), "then");
}

TEST_F(TxnTest, ATxnIsReadOnlyWhenNoBranchWritesAtAnyDepth) {
  TxnRequest reads = MakeTxn({}, {RangeOp("k")}, {RangeOp("r/", "r0")});
  EXPECT_TRUE(Store::IsReadOnly(Txn({}, {RangeOp("k"), TxnOp(reads)})));
  EXPECT_FALSE(Store::IsReadOnly(Txn({}, {RangeOp("k")}, {PutOp("k", "v")})));
  EXPECT_FALSE(Store::IsReadOnly(Txn({}, {TxnOp(MakeTxn({}, {}, {DeleteOp("k")}))})));
  EXPECT_FALSE(
      Store::IsReadOnly(Txn({}, {TxnOp(MakeTxn({}, {TxnOp(MakeTxn({}, {PutOp("k", "v")}))}))})));
  // A txn that writes must be proposed.
  EXPECT_EQ(StatusOf(store_.Query(Txn({}, {}, {DeleteOp("k")}))).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TxnTest, ReadOnlyTxnDoesNotBumpTheRevision) {
  Revision before = store_.revision();
  std::string snapshot = store_.Snapshot();
  kvpb::Response response = APPLY_OK(store_, Txn({}, {RangeOp("k"), RangeOp("r/", "r0")}));
  EXPECT_EQ(store_.revision(), before);
  EXPECT_EQ(response.txn().header().revision(), before);
  EXPECT_EQ(response.txn().responses(1).response_range().count(), 2);
  // A txn whose branch that runs writes nothing, or deletes nothing, neither.
  APPLY_OK(store_, Txn({CmpValue("k", Compare::EQUAL, "no")}, {PutOp("k", "x")}, {RangeOp("k")}));
  APPLY_OK(store_, Txn({}, {DeleteOp("missing")}));
  EXPECT_EQ(store_.revision(), before);
  EXPECT_TRUE(store_.Snapshot() == snapshot);
  // And through Query.
  EXPECT_TRUE(QUERY_OK(store_, Txn({}, {RangeOp("k")})).txn().succeeded());
  EXPECT_EQ(StatusOf(store_.Query(Txn({}, {PutOp("k", "x")}))).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.revision(), before);
}

}  // namespace
}  // namespace etc::kv
