#include "sim/client_history.h"

#include "client/client_interface.h"
#include "gtest/gtest.h"

namespace etc::sim {
namespace {

using client::PutOp;
using client::Txn;

etcdserverpb::RequestOp Put(const std::string& key, const std::string& value, int64_t lease = 0) {
  return PutOp(key, value, lease);
}

etcdserverpb::RequestOp Get(const std::string& key) { return client::GetOp(key); }

absl::StatusOr<etcdserverpb::ResponseOp> PutOk() {
  etcdserverpb::ResponseOp op;
  op.mutable_response_put();
  return op;
}

absl::StatusOr<etcdserverpb::ResponseOp> Read(std::optional<std::string> value) {
  etcdserverpb::ResponseOp op;
  if (value.has_value()) op.mutable_response_range()->add_kvs()->set_value(*value);
  op.mutable_response_range();
  return op;
}

etcdserverpb::RequestOp TxnOp(const Txn& txn) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_txn() = txn.request();
  return op;
}

absl::StatusOr<etcdserverpb::ResponseOp> TxnAnswer(bool succeeded) {
  etcdserverpb::ResponseOp op;
  op.mutable_response_txn()->set_succeeded(succeeded);
  op.mutable_response_txn()->add_responses()->mutable_response_put();
  return op;
}

TEST(ClientHistory, PutsAndReadsBecomeRegisterOperations) {
  ClientHistory history;
  size_t put = history.Invoke(1, Put("/k", "a"));
  history.Finish(put, PutOk());
  size_t get = history.Invoke(2, Get("/k"));
  history.Finish(get, Read("a"));
  std::vector<lincheck::Operation> ops = history.Operations();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, lincheck::OpKind::kWrite);
  EXPECT_EQ(ops[1].kind, lincheck::OpKind::kRead);
  EXPECT_EQ(ops[1].read_result, "a");
  EXPECT_LT(ops[0].return_time, ops[1].invoke_time);
  EXPECT_EQ(lincheck::Check(ops).verdict, lincheck::Verdict::kLinearizable);
}

TEST(ClientHistory, AStaleReadAfterAnAcknowledgedWriteIsAViolation) {
  ClientHistory history;
  history.Finish(history.Invoke(1, Put("/k", "a")), PutOk());
  history.Finish(history.Invoke(1, Put("/k", "b")), PutOk());
  history.Finish(history.Invoke(2, Get("/k")), Read("a"));
  EXPECT_EQ(lincheck::Check(history.Operations()).verdict, lincheck::Verdict::kViolation);
}

TEST(ClientHistory, ATimedOutWriteMayHaveHappenedAndAnUnavailableOneDidNot) {
  ClientHistory history;
  history.Finish(history.Invoke(1, Put("/k", "a")), PutOk());
  history.Finish(history.Invoke(1, Put("/k", "b")), absl::DeadlineExceededError("timeout"));
  history.Finish(history.Invoke(2, Get("/k")), Read("b"));
  EXPECT_EQ(history.unknown(), 1u);
  EXPECT_EQ(lincheck::Check(history.Operations()).verdict, lincheck::Verdict::kLinearizable);

  ClientHistory refused;
  refused.Finish(refused.Invoke(1, Put("/k", "a")), PutOk());
  refused.Finish(refused.Invoke(1, Put("/k", "b")), absl::UnavailableError("not leader"));
  refused.Finish(refused.Invoke(2, Get("/k")), Read("b"));
  EXPECT_EQ(lincheck::Check(refused.Operations()).verdict, lincheck::Verdict::kViolation);
}

TEST(ClientHistory, ACompareAndSetTxnIsACas) {
  ClientHistory history;
  history.Finish(history.Invoke(1, Put("/k", "a")), PutOk());
  Txn cas;
  cas.If(client::ValueEquals("/k", "a")).Then(PutOp("/k", "b"));
  history.Finish(history.Invoke(1, TxnOp(cas)), TxnAnswer(true));
  std::vector<lincheck::Operation> ops = history.Operations();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[1].kind, lincheck::OpKind::kCas);
  EXPECT_EQ(ops[1].expected, "a");
  EXPECT_TRUE(ops[1].cas_succeeded);
  // Both succeeding from "a" cannot be linearized.
  history.Finish(history.Invoke(2, TxnOp(cas)), TxnAnswer(true));
  EXPECT_EQ(lincheck::Check(history.Operations()).verdict, lincheck::Verdict::kViolation);
}

TEST(ClientHistory, AFencedWriteCountsOnlyWhenItsBranchRan) {
  ClientHistory history;
  Txn fenced;
  fenced.If(client::CreateRevisionEquals("/lock/1", 5)).Then(PutOp("/counter", "1"));
  history.Finish(history.Invoke(1, TxnOp(fenced)), TxnAnswer(false));
  history.Finish(history.Invoke(2, Get("/counter")), Read(std::nullopt));
  history.Finish(history.Invoke(1, TxnOp(fenced)), TxnAnswer(true));
  std::vector<lincheck::Operation> ops = history.Operations();
  ASSERT_EQ(ops.size(), 2u);  // the failed branch wrote nothing
  EXPECT_EQ(ops[1].kind, lincheck::OpKind::kWrite);
  EXPECT_EQ(ops[1].value, "1");
}

absl::StatusOr<etcdserverpb::ResponseOp> ReadMany(
    const std::vector<std::pair<std::string, std::string>>& kvs, bool more = false) {
  etcdserverpb::ResponseOp op;
  etcdserverpb::RangeResponse* range = op.mutable_response_range();
  for (const auto& [key, value] : kvs) {
    mvccpb::KeyValue* kv = range->add_kvs();
    kv->set_key(key);
    kv->set_value(value);
  }
  range->set_more(more);
  return op;
}

lincheck::Verdict VerdictOf(const ClientHistory& history) {
  return lincheck::Check(history.Operations()).verdict;
}

TEST(ClientHistory, ARangeDeleteDeletesEveryNamedKeyInside) {
  auto history_with_read = [](std::optional<std::string> read) {
    ClientHistory history;
    history.Finish(history.Invoke(1, Put("/dir/x", "a")), PutOk());
    history.Finish(history.Invoke(1, Put("/dirt", "a")), PutOk());
    history.Finish(history.Invoke(1, client::DeleteOp("/dir/", {.prefix = true})), PutOk());
    history.Finish(history.Invoke(2, Get("/dir/x")), Read(read));
    history.Finish(history.Invoke(2, Get("/dirt")), Read("a"));  // outside the prefix
    return history;
  };
  EXPECT_EQ(VerdictOf(history_with_read(std::nullopt)), lincheck::Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf(history_with_read("a")), lincheck::Verdict::kViolation);

  // Unknown: it may or may not have deleted the key.
  ClientHistory unknown;
  unknown.Finish(unknown.Invoke(1, Put("/dir/x", "a")), PutOk());
  unknown.Finish(unknown.Invoke(1, client::DeleteOp("/dir/", {.prefix = true})),
                 absl::DeadlineExceededError("timeout"));
  unknown.Finish(unknown.Invoke(2, Get("/dir/x")), Read("a"));
  unknown.Finish(unknown.Invoke(2, Get("/dir/x")), Read(std::nullopt));
  EXPECT_EQ(VerdictOf(unknown), lincheck::Verdict::kLinearizable);
  unknown.Finish(unknown.Invoke(2, Get("/dir/x")), Read("a"));  // back again: no
  EXPECT_EQ(VerdictOf(unknown), lincheck::Verdict::kViolation);
}

TEST(ClientHistory, AWholeRangeReadReadsEveryNamedKeyInside) {
  auto read_after_two_puts = [](std::vector<std::pair<std::string, std::string>> got, bool more) {
    ClientHistory history;
    history.Finish(history.Invoke(1, Put("/dir/a", "1")), PutOk());
    history.Finish(history.Invoke(1, Put("/dir/b", "2")), PutOk());
    history.Finish(history.Invoke(2, client::GetOp("/dir/", {.prefix = true})),
                   ReadMany(got, more));
    return history;
  };
  EXPECT_EQ(VerdictOf(read_after_two_puts({{"/dir/a", "1"}, {"/dir/b", "2"}}, false)),
            lincheck::Verdict::kLinearizable);
  // /dir/b was written before the read began: it cannot be missing...
  EXPECT_EQ(VerdictOf(read_after_two_puts({{"/dir/a", "1"}}, false)),
            lincheck::Verdict::kViolation);
  // ...nor hold another value...
  EXPECT_EQ(VerdictOf(read_after_two_puts({{"/dir/a", "1"}, {"/dir/b", "9"}}, false)),
            lincheck::Verdict::kViolation);
  // ...but a read a limit cut short says nothing of what it did not return.
  EXPECT_EQ(VerdictOf(read_after_two_puts({{"/dir/a", "1"}}, true)),
            lincheck::Verdict::kLinearizable);
}

TEST(ClientHistory, ALeaseRevokeDeletesItsKeysBetweenTheAttachingPutAndItsApply) {
  // A leased key may vanish only by a revoke the cluster reported.
  ClientHistory unreported;
  unreported.Finish(unreported.Invoke(1, Put("/leased", "a", /*lease=*/7)), PutOk());
  unreported.Finish(unreported.Invoke(2, Get("/leased")), Read(std::nullopt));
  EXPECT_EQ(VerdictOf(unreported), lincheck::Verdict::kViolation);
  unreported.LeaseDeleted({"/leased"});
  // Reported later, it may have committed before the read: the model only
  // knows it came after the attaching put was invoked.
  EXPECT_EQ(VerdictOf(unreported), lincheck::Verdict::kLinearizable);

  ClientHistory gone;
  gone.Finish(gone.Invoke(1, Put("/leased", "a", /*lease=*/7)), PutOk());
  gone.Finish(gone.Invoke(2, Get("/leased")), Read("a"));
  gone.LeaseDeleted({"/leased"});
  gone.Finish(gone.Invoke(2, Get("/leased")), Read(std::nullopt));
  EXPECT_EQ(VerdictOf(gone), lincheck::Verdict::kLinearizable);
  // After the revoke applied, the old value cannot come back.
  gone.Finish(gone.Invoke(2, Get("/leased")), Read("a"));
  EXPECT_EQ(VerdictOf(gone), lincheck::Verdict::kViolation);

  // A read that overlaps the attaching put may see the key gone already:
  // the revoke may have come right after the put applied.
  ClientHistory overlapping;
  size_t put = overlapping.Invoke(1, Put("/leased", "a", /*lease=*/7));
  overlapping.LeaseDeleted({"/leased"});
  overlapping.Finish(put, PutOk());
  overlapping.Finish(overlapping.Invoke(2, Get("/leased")), Read(std::nullopt));
  EXPECT_EQ(VerdictOf(overlapping), lincheck::Verdict::kLinearizable);
}

TEST(ClientHistory, KeysTheModelCannotFollowAreLeftOut) {
  ClientHistory history;
  etcdserverpb::RequestOp keep_value = Put("/kept", "", /*lease=*/7);
  keep_value.mutable_request_put()->set_ignore_value(true);
  history.Finish(history.Invoke(1, Put("/kept", "a")), PutOk());
  history.Finish(history.Invoke(1, keep_value), PutOk());
  history.Finish(history.Invoke(1, Get("/kept")), Read("a"));
  history.Finish(history.Invoke(1, Put("/plain", "a")), PutOk());
  std::vector<lincheck::Operation> ops = history.Operations();
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].key, "/plain");
}

}  // namespace
}  // namespace etc::sim
