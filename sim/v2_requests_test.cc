// The register clients' v2 requests against the real key tree: each shape
// is asked and read back in the register model's terms.
#include "sim/v2_requests.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "kv/store.h"

namespace etc::sim::v2 {
namespace {

using lincheck::OpKind;
using lincheck::Operation;

Operation One(OpKind kind, uint64_t key, std::string value = "",
              std::optional<std::string> expected = std::nullopt) {
  Operation op;
  op.kind = kind;
  op.key = RegisterKey(key);
  op.value = std::move(value);
  op.expected = std::move(expected);
  return op;
}

std::vector<Operation> Every(OpKind kind, int registers) {
  std::vector<Operation> ops;
  for (int i = 0; i < registers; ++i) ops.push_back(One(kind, static_cast<uint64_t>(i)));
  return ops;
}

class V2RequestsTest : public testing::Test {
 protected:
  // Asks `ops` as a request of `shape` (reads as queries, the rest
  // applied) and reads the answer back.
  absl::Status Ask(Shape shape, std::vector<Operation>& ops, int64_t prev_index = 0) {
    kvpb::Request request = RequestFor(shape, ops[0], prev_index);
    kvpb::Response response =
        ops[0].kind == OpKind::kRead ? store_.Query(request) : store_.Apply(request);
    EXPECT_EQ(response.error_code(), 0) << response.ShortDebugString();
    return ReadAnswer(shape, response, ops, &seen_);
  }
  void Put(uint64_t key, const std::string& value) {
    kvpb::Request request;
    request.mutable_put()->set_key(RegisterKey(key));
    request.mutable_put()->set_value(value);
    ASSERT_EQ(store_.Apply(request).error_code(), 0);
  }

  kv::Store store_;
  std::map<std::string, SeenValue> seen_;
};

TEST_F(V2RequestsTest, GetAndSetReadAndWriteTheV3Keys) {
  std::vector<Operation> get = {One(OpKind::kRead, 0)};
  ASSERT_TRUE(Ask(Shape::kGet, get).ok());
  EXPECT_EQ(get[0].read_result, std::nullopt);  // 100: absent
  std::vector<Operation> set = {One(OpKind::kWrite, 0, "a")};
  ASSERT_TRUE(Ask(Shape::kSet, set).ok());
  EXPECT_EQ(seen_[RegisterKey(0)].value, "a");
  EXPECT_EQ(seen_[RegisterKey(0)].index, 1);
  Put(0, "b");
  ASSERT_TRUE(Ask(Shape::kGet, get).ok());
  EXPECT_EQ(get[0].read_result, "b");
  EXPECT_EQ(seen_[RegisterKey(0)].index, 2);
}

TEST_F(V2RequestsTest, CompareAndSwapOnTheIndexSeen) {
  Put(0, "a");
  std::vector<Operation> get = {One(OpKind::kRead, 0)};
  ASSERT_TRUE(Ask(Shape::kGet, get).ok());
  int64_t seen_at = seen_[RegisterKey(0)].index;
  std::vector<Operation> cas = {One(OpKind::kCas, 0, "b", "a")};
  ASSERT_TRUE(Ask(Shape::kCasIndex, cas, seen_at).ok());
  EXPECT_TRUE(cas[0].cas_succeeded);
  // The index moved on: the same compare fails (101).
  std::vector<Operation> stale = {One(OpKind::kCas, 0, "c", "a")};
  ASSERT_TRUE(Ask(Shape::kCasIndex, stale, seen_at).ok());
  EXPECT_FALSE(stale[0].cas_succeeded);
  // A key deleted since it was seen fails with 100.
  std::vector<Operation> all = Every(OpKind::kDelete, 1);
  ASSERT_TRUE(Ask(Shape::kDeleteAll, all).ok());
  std::vector<Operation> gone = {One(OpKind::kCas, 0, "d", "b")};
  ASSERT_TRUE(Ask(Shape::kCasValue, gone).ok());
  EXPECT_FALSE(gone[0].cas_succeeded);
}

TEST_F(V2RequestsTest, CreateIsACompareAndSwapFromAbsent) {
  std::vector<Operation> create = {One(OpKind::kCas, 1, "a")};
  ASSERT_TRUE(Ask(Shape::kCreate, create).ok());
  EXPECT_TRUE(create[0].cas_succeeded);
  std::vector<Operation> again = {One(OpKind::kCas, 1, "b")};
  ASSERT_TRUE(Ask(Shape::kCreate, again).ok());  // 105
  EXPECT_FALSE(again[0].cas_succeeded);
  std::vector<Operation> by_value = {One(OpKind::kCas, 1, "c", "a")};
  ASSERT_TRUE(Ask(Shape::kCasValue, by_value).ok());
  EXPECT_TRUE(by_value[0].cas_succeeded);
}

TEST_F(V2RequestsTest, ListingsReadEveryRegister) {
  for (Shape shape : {Shape::kList, Shape::kListRecursive}) {
    std::vector<Operation> empty = Every(OpKind::kRead, 3);
    ASSERT_TRUE(Ask(shape, empty).ok());  // 100: nothing under /kv yet
    for (const Operation& op : empty) EXPECT_EQ(op.read_result, std::nullopt);
  }
  Put(0, "a");
  Put(2, "c");
  for (Shape shape : {Shape::kList, Shape::kListRecursive}) {
    std::vector<Operation> listing = Every(OpKind::kRead, 3);
    ASSERT_TRUE(Ask(shape, listing).ok());
    EXPECT_EQ(listing[0].read_result, "a");
    EXPECT_EQ(listing[1].read_result, std::nullopt);
    EXPECT_EQ(listing[2].read_result, "c");
    EXPECT_EQ(seen_[RegisterKey(2)].index, 2);
  }
  // Only the register keys may live under /kv.
  Put(7, "stray");
  std::vector<Operation> listing = Every(OpKind::kRead, 3);
  EXPECT_FALSE(Ask(Shape::kList, listing).ok());
}

TEST_F(V2RequestsTest, RecursiveDeleteEmptiesEveryRegister) {
  Put(0, "a");
  Put(1, "b");
  std::vector<Operation> all = Every(OpKind::kDelete, 2);
  ASSERT_TRUE(Ask(Shape::kDeleteAll, all).ok());
  EXPECT_EQ(all[0].kind, OpKind::kDelete);
  std::vector<Operation> listing = Every(OpKind::kRead, 2);
  ASSERT_TRUE(Ask(Shape::kList, listing).ok());
  EXPECT_EQ(listing[0].read_result, std::nullopt);
  // Nothing left (100): the delete changed nothing and read every key absent.
  std::vector<Operation> again = Every(OpKind::kDelete, 2);
  ASSERT_TRUE(Ask(Shape::kDeleteAll, again).ok());
  for (const Operation& op : again) {
    EXPECT_EQ(op.kind, OpKind::kRead);
    EXPECT_EQ(op.read_result, std::nullopt);
  }
}

TEST(V2Requests, DrawsEveryShapeAndCompareAndSwapsFromWhatWasSeen) {
  Random random(7);
  std::map<std::string, SeenValue> seen;
  for (int i = 0; i < 4; ++i) seen[RegisterKey(i)] = SeenValue{absl::StrCat("v", i), 10 + i};
  std::set<Shape> shapes;
  for (int i = 0; i < 2000; ++i) {
    Call call = DrawCall(random, 4, seen, "new");
    shapes.insert(call.shape);
    bool every = call.shape == Shape::kList || call.shape == Shape::kListRecursive ||
                 call.shape == Shape::kDeleteAll;
    ASSERT_EQ(call.ops.size(), every ? 4u : 1u);
    if (call.shape == Shape::kCasIndex) {
      // The value expected is the one seen at the index compared.
      const SeenValue& at = seen[call.ops[0].key];
      EXPECT_EQ(call.ops[0].expected, at.value);
      EXPECT_EQ(call.prev_index, at.index);
    }
  }
  EXPECT_EQ(shapes.size(), 7u);  // all but kCreate: every key was seen holding a value
  // Nothing seen (or seen absent): a compare-and-swap is a create.
  seen.clear();
  seen[RegisterKey(0)] = SeenValue{};
  shapes.clear();
  for (int i = 0; i < 2000; ++i) shapes.insert(DrawCall(random, 4, seen, "new").shape);
  EXPECT_TRUE(shapes.contains(Shape::kCreate));
  EXPECT_FALSE(shapes.contains(Shape::kCasValue));
  EXPECT_FALSE(shapes.contains(Shape::kCasIndex));
}

}  // namespace
}  // namespace etc::sim::v2
