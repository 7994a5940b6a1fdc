#include "sim/linearizability.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "sim/history_generator.h"

namespace etc::sim::lincheck {
namespace {

// Builders for hand-written histories; times are given explicitly.
Operation Op(OpKind kind, int client, int64_t invoke, int64_t ret, std::string key) {
  Operation op;
  op.client = client;
  op.key = std::move(key);
  op.kind = kind;
  op.invoke_time = invoke;
  op.return_time = ret;
  return op;
}

Operation Write(int client, std::string value, int64_t invoke, int64_t ret, std::string key = "x") {
  Operation op = Op(OpKind::kWrite, client, invoke, ret, std::move(key));
  op.value = std::move(value);
  return op;
}

Operation Read(int client, std::optional<std::string> result, int64_t invoke, int64_t ret,
               std::string key = "x") {
  Operation op = Op(OpKind::kRead, client, invoke, ret, std::move(key));
  op.read_result = std::move(result);
  return op;
}

Operation Cas(int client, std::optional<std::string> expected, std::string value, bool succeeded,
              int64_t invoke, int64_t ret) {
  Operation op = Op(OpKind::kCas, client, invoke, ret, "x");
  op.expected = std::move(expected);
  op.value = std::move(value);
  op.cas_succeeded = succeeded;
  return op;
}

Operation Delete(int client, int64_t invoke, int64_t ret) {
  return Op(OpKind::kDelete, client, invoke, ret, "x");
}

Operation Unknown(Operation op) {
  op.outcome = Outcome::kUnknown;
  op.return_time = 0;
  return op;
}

Verdict VerdictOf(const std::vector<Operation>& history) { return Check(history).verdict; }

TEST(Linearizability, SequentialHistories) {
  EXPECT_EQ(VerdictOf({}), Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Read(0, std::nullopt, 1, 2), Write(0, "a", 3, 4), Read(0, "a", 5, 6)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Read(0, std::nullopt, 3, 4)}), Verdict::kViolation)
      << "a read after a completed write must see it";
}

TEST(Linearizability, StaleReadAfterACompletedWrite) {
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Write(1, "b", 3, 4), Read(2, "a", 5, 6)}),
            Verdict::kViolation);
}

TEST(Linearizability, ConcurrentOperationsMayTakeEitherOrder) {
  // The read overlaps the write: both the old and the new value are fine.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 4), Read(1, "a", 2, 3)}), Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 4), Read(1, std::nullopt, 2, 3)}), Verdict::kLinearizable);
}

TEST(Linearizability, CompareAndSet) {
  EXPECT_EQ(VerdictOf({Cas(0, std::nullopt, "a", true, 1, 2), Read(0, "a", 3, 4)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Cas(0, std::nullopt, "b", true, 3, 4)}),
            Verdict::kViolation)
      << "expected absent, but the key holds a";
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Cas(0, std::nullopt, "b", false, 3, 4), Read(0, "a", 5, 6)}),
            Verdict::kLinearizable)
      << "a failed CAS changes nothing";
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Cas(0, "a", "b", false, 3, 4)}), Verdict::kViolation)
      << "it should have succeeded";
}

TEST(Linearizability, UnknownOutcomes) {
  // A write without an answer that a later read saw: it happened.
  EXPECT_EQ(VerdictOf({Unknown(Write(0, "a", 1, 0)), Read(1, "a", 5, 6)}), Verdict::kLinearizable);
  // One that nobody saw: it may never have happened.
  EXPECT_EQ(VerdictOf({Unknown(Write(0, "a", 1, 0)), Read(1, std::nullopt, 5, 6)}),
            Verdict::kLinearizable);
  // But not before it was invoked.
  EXPECT_EQ(VerdictOf({Read(1, "a", 1, 2), Unknown(Write(0, "a", 3, 0))}), Verdict::kViolation);
  // Once seen, it cannot be unseen by a later read.
  EXPECT_EQ(VerdictOf({Unknown(Write(0, "a", 1, 0)), Read(1, "a", 3, 4), Read(1, std::nullopt, 5, 6)}),
            Verdict::kViolation);
  // Unknown reads say nothing.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Unknown(Read(1, "zzz", 3, 4))}), Verdict::kLinearizable);
}

TEST(Linearizability, Deletes) {
  // A delete empties the register; a create (CAS from absent) may follow.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Delete(1, 3, 4), Read(0, std::nullopt, 5, 6),
                       Cas(2, std::nullopt, "b", true, 7, 8), Read(0, "b", 9, 10)}),
            Verdict::kLinearizable);
  // Deleting an absent register is fine, and leaves it absent.
  EXPECT_EQ(VerdictOf({Delete(1, 1, 2), Read(0, std::nullopt, 3, 4)}), Verdict::kLinearizable);
  // Concurrent with a write, the delete may come before or after it.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Write(0, "b", 3, 8), Delete(1, 4, 7),
                       Read(2, "b", 9, 10)}),
            Verdict::kLinearizable);
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Write(0, "b", 3, 8), Delete(1, 4, 7),
                       Read(2, std::nullopt, 9, 10)}),
            Verdict::kLinearizable);
  // A deleted value cannot be read after the delete returned...
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Delete(1, 3, 4), Read(0, "a", 5, 6)}),
            Verdict::kViolation);
  // ... nor can a CAS expecting it succeed, nor one expecting absent fail.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Delete(1, 3, 4), Cas(0, "a", "b", true, 5, 6)}),
            Verdict::kViolation);
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Delete(1, 3, 4), Cas(0, std::nullopt, "b", false, 5, 6)}),
            Verdict::kViolation);
  // A delete is not a write: what it leaves is absent, not its neighbour's value.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Write(0, "b", 3, 4), Delete(1, 5, 6),
                       Read(2, "b", 7, 8)}),
            Verdict::kViolation);
  EXPECT_EQ(Describe(Delete(0, 1, 2)), "del");
}

TEST(Linearizability, DeletesWithUnknownOutcomes) {
  // An unanswered delete may have happened (the read saw absent) ...
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Unknown(Delete(1, 3, 0)), Read(0, std::nullopt, 5, 6)}),
            Verdict::kLinearizable);
  // ... or not (the read still saw a).
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Unknown(Delete(1, 3, 0)), Read(0, "a", 5, 6)}),
            Verdict::kLinearizable);
  // But it happens once: a value seen gone cannot come back without a write.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Unknown(Delete(1, 3, 0)), Read(0, std::nullopt, 5, 6),
                       Read(0, "a", 7, 8)}),
            Verdict::kViolation);
  // And not before it was invoked.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 2), Read(0, std::nullopt, 3, 4), Unknown(Delete(1, 5, 0))}),
            Verdict::kViolation);
}

TEST(Linearizability, ReadsSeeingTwoWritesInOppositeOrders) {
  // Two concurrent writes; one client sees a then b, another b then a.
  EXPECT_EQ(VerdictOf({Write(0, "a", 1, 10), Write(1, "b", 2, 11), Read(2, "a", 3, 4),
                       Read(2, "b", 5, 6), Read(3, "b", 3, 4), Read(3, "a", 5, 6)}),
            Verdict::kViolation);
}

TEST(Linearizability, KeysAreCheckedIndependentlyAndTheCulpritIsNamed) {
  std::vector<Operation> history = {
      Write(0, "a", 1, 2, "good"), Read(1, "a", 3, 4, "good"),
      Write(0, "a", 5, 6, "bad"),  Read(1, std::nullopt, 7, 8, "bad"),
  };
  CheckResult result = Check(history);
  EXPECT_EQ(result.verdict, Verdict::kViolation);
  ASSERT_EQ(result.keys.size(), 2u);
  EXPECT_EQ(result.keys[0].key, "bad");
  EXPECT_EQ(result.keys[0].verdict, Verdict::kViolation);
  // The longest justified prefix is the write; the read is the anomaly.
  EXPECT_EQ(result.keys[0].longest_linearized, (std::vector<size_t>{2}));
  EXPECT_EQ(result.keys[1].verdict, Verdict::kLinearizable);
}

TEST(Linearizability, GivesUpInsteadOfHanging) {
  std::vector<Operation> history;
  for (int i = 0; i < 12; ++i) history.push_back(Write(i, absl::StrCat("v", i), 1 + i, 100 + i));
  history.push_back(Read(99, "never-written", 200, 201));
  CheckOptions options;
  options.max_states_per_key = 50;
  EXPECT_EQ(Check(history, options).verdict, Verdict::kUnknown);
}

TEST(LinearizabilityHtml, IsSelfContainedAndEscaped) {
  std::vector<Operation> history = {Write(0, "<script>alert(1)</script>", 1, 2),
                                    Read(1, std::nullopt, 3, 4),
                                    Unknown(Cas(2, "a", "b", false, 5, 0))};
  CheckResult result = Check(history);
  ASSERT_EQ(result.verdict, Verdict::kViolation);
  std::string html = RenderHtml(history, result.keys[0]);
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_NE(html.find("Key x"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("http://example"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_NE(html.find("r\u2192\u2205"), std::string::npos);
  EXPECT_NE(html.find("cas(a\u2192b)"), std::string::npos);
  EXPECT_NE(html.find("class=\"bad"), std::string::npos);
}

// ---------------------------------------------------------------- properties

std::vector<Operation> GenerateHistory(int clients, int operations, int keys,
                                       bool with_unknown) {
  auto draw = [](int64_t lo, int64_t hi) { return *rc::gen::inRange<int64_t>(lo, hi); };
  return GenerateLinearizableHistory(draw, clients, operations, keys, with_unknown);
}

RC_GTEST_PROP(LinearizabilityProperty, TrueExecutionsAreLinearizable, ()) {
  auto history = GenerateHistory(16, *rc::gen::inRange(1, 300), *rc::gen::inRange(1, 5), true);
  RC_ASSERT(Check(history).verdict == Verdict::kLinearizable);
}

RC_GTEST_PROP(LinearizabilityProperty, AReadOfANeverWrittenValueIsAViolation, ()) {
  auto history = GenerateHistory(16, *rc::gen::inRange(2, 300), *rc::gen::inRange(1, 5), false);
  std::vector<size_t> reads;
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].kind == OpKind::kRead) reads.push_back(i);
  }
  RC_PRE(!reads.empty());
  size_t victim = reads[*rc::gen::inRange<size_t>(0, reads.size())];
  history[victim].read_result = "never-written";
  CheckResult result = Check(history);
  RC_ASSERT(result.verdict == Verdict::kViolation);
}

}  // namespace
}  // namespace etc::sim::lincheck
