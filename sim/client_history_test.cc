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

TEST(ClientHistory, KeysTheModelCannotFollowAreLeftOut) {
  ClientHistory history;
  history.Finish(history.Invoke(1, Put("/leased", "a", /*lease=*/7)), PutOk());
  history.Finish(history.Invoke(1, Get("/leased")), Read(std::nullopt));  // expired
  history.Finish(history.Invoke(1, Put("/dir/x", "a")), PutOk());
  history.Finish(history.Invoke(1, client::DeleteOp("/dir/", {.prefix = true})), PutOk());
  history.Finish(history.Invoke(1, Get("/dir/x")), Read(std::nullopt));
  history.Finish(history.Invoke(1, Put("/plain", "a")), PutOk());
  std::vector<lincheck::Operation> ops = history.Operations();
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].key, "/plain");
}

}  // namespace
}  // namespace etc::sim
