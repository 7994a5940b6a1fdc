// etcd v2's request parsing and JSON, checked against what etcd 3.4 was
// seen to answer (the referee's words and bytes).
#include <gtest/gtest.h>

#include "server/v2_json.h"
#include "server/v2_request.h"

namespace etc::server {
namespace {

HttpRequest Http(std::string method, std::string query, std::string body = "",
                 std::string type = "application/x-www-form-urlencoded") {
  HttpRequest r;
  r.method = std::move(method);
  r.path = "/v2/keys/a";
  r.query = std::move(query);
  r.body = std::move(body);
  if (!type.empty()) r.headers["content-type"] = type;
  return r;
}

V2Error ErrorOf(const HttpRequest& r) {
  V2Parsed parsed = ParseV2KeyRequest(r, "/a");
  EXPECT_TRUE(parsed.error.has_value());
  return parsed.error.value_or(V2Error{});
}

TEST(V2Request, FormsAsGoReadsThem) {
  Form form;
  ASSERT_TRUE(ParseForm("a=1&b=x+y&c=%2F&a=2&&d", &form).ok());
  EXPECT_EQ(form["a"], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(form["b"][0], "x y");
  EXPECT_EQ(form["c"][0], "/");
  EXPECT_EQ(form["d"][0], "");
  EXPECT_EQ(ParseForm("value=a%ZZ", &form).message(), "invalid URL escape \"%ZZ\"");
  EXPECT_EQ(ParseForm("value=1;ttl=5", &form).message(), "invalid semicolon separator in query");
}

TEST(V2Request, ErrorsInEtcdsOrderAndWords) {
  auto expect = [](const HttpRequest& r, int code, const std::string& cause) {
    V2Error e = ErrorOf(r);
    EXPECT_EQ(e.code, code) << r.query << " " << r.body;
    EXPECT_EQ(e.cause, cause) << r.query << " " << r.body;
    EXPECT_EQ(e.index, 0);
  };
  expect(Http("PUT", "", "value=a%ZZ"), 210, "invalid URL escape \"%ZZ\"");
  expect(Http("PUT", "prevIndex=-3"), 203, "invalid value for \"prevIndex\"");
  expect(Http("GET", "waitIndex=abc&recursive=x"), 203, "invalid value for \"waitIndex\"");
  expect(Http("GET", "recursive="), 209, "invalid value for \"recursive\"");
  expect(Http("GET", "sorted=yes"), 209, "invalid value for \"sorted\"");
  expect(Http("PUT", "wait=true"), 209, "\"wait\" can only be used with GET requests");
  expect(Http("PUT", "prevValue="), 201, "\"prevValue\" cannot be empty");
  expect(Http("PUT", "ttl=abc"), 202, "invalid value for \"ttl\"");
  expect(Http("PUT", "ttl=-1"), 202, "invalid value for \"ttl\"");
  expect(Http("PUT", "ttl=1.5"), 202, "invalid value for \"ttl\"");
  expect(Http("PUT", "ttl=99999999999999"), 202, "invalid value for \"ttl\"");
  expect(Http("PUT", "prevExist=maybe"), 209, "invalid value for prevExist");
  expect(Http("PUT", "refresh=x"), 209, "invalid value for refresh");
  expect(Http("PUT", "refresh=true&ttl=5&value=z"), 211, "A value was provided on a refresh");
  expect(Http("PUT", "refresh=true&prevExist=true"), 212, "No TTL value set");
}

TEST(V2Request, ModesAsEtcdsApplyMapsThem) {
  auto mode = [](const HttpRequest& r) {
    V2Parsed parsed = ParseV2KeyRequest(r, "/a");
    EXPECT_FALSE(parsed.error.has_value());
    return parsed.key.request.tree_set().mode();
  };
  using M = kvpb::TreeSetRequest;
  EXPECT_EQ(mode(Http("PUT", "", "value=1")), M::SET);
  EXPECT_EQ(mode(Http("PUT", "prevExist=false")), M::CREATE);
  EXPECT_EQ(mode(Http("PUT", "prevExist=true")), M::UPDATE);
  EXPECT_EQ(mode(Http("PUT", "prevExist=true&prevValue=x")), M::COMPARE_AND_SWAP);
  EXPECT_EQ(mode(Http("PUT", "prevExist=false&prevValue=x")), M::CREATE);
  EXPECT_EQ(mode(Http("PUT", "prevIndex=3")), M::COMPARE_AND_SWAP);
  EXPECT_EQ(mode(Http("PUT", "prevIndex=0")), M::SET);
  EXPECT_EQ(mode(Http("POST", "prevExist=true", "value=j")), M::CREATE_IN_ORDER);
}

TEST(V2Request, WhereValuesComeFrom) {
  // The body's value wins over the query's; a body only counts when it is
  // urlencoded, and never for DELETE.
  V2Parsed put = ParseV2KeyRequest(Http("PUT", "value=q", "value=b"), "/a");
  EXPECT_EQ(put.key.request.tree_set().value(), "b");
  V2Parsed json = ParseV2KeyRequest(Http("PUT", "", "value=b", "application/json"), "/a");
  EXPECT_EQ(json.key.request.tree_set().value(), "");
  V2Parsed del = ParseV2KeyRequest(Http("DELETE", "", "prevValue=no"), "/a");
  EXPECT_TRUE(del.key.request.has_tree_delete());
  EXPECT_EQ(del.key.request.tree_delete().prev_value(), "");
  V2Parsed recursive = ParseV2KeyRequest(Http("DELETE", "recursive=true"), "/a");
  EXPECT_TRUE(recursive.key.request.tree_delete().dir());
  V2Parsed ttl = ParseV2KeyRequest(Http("PUT", "ttl=", "value=1"), "/a");
  EXPECT_FALSE(ttl.key.ttl.has_value());  // "ttl=" makes the key permanent
  V2Parsed dir = ParseV2KeyRequest(Http("PUT", "dir=true&value=x"), "/a");
  EXPECT_EQ(dir.key.request.tree_set().value(), "");  // a directory's value is ignored
  V2Parsed watch = ParseV2KeyRequest(Http("GET", "wait=true&waitIndex=7&recursive=1"), "/a");
  EXPECT_TRUE(watch.key.wait);
  EXPECT_EQ(watch.key.wait_index, 7u);
  EXPECT_EQ(watch.key.request.op_case(), kvpb::Request::OP_NOT_SET);
}

TEST(V2Json, GoEscapes) {
  EXPECT_EQ(GoJsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoJsonString("<&>"), "\"\\u003c\\u0026\\u003e\"");
  EXPECT_EQ(GoJsonString("\n\x01"), "\"\\n\\u0001\"");
  EXPECT_EQ(GoJsonString("\xff" "a"), "\"\\ufffda\"");
  EXPECT_EQ(GoJsonString("\xe2\x80\xa8"), "\"\\u2028\"");
  EXPECT_EQ(GoJsonString("\xc3\xa9"), "\"\xc3\xa9\"");
}

TEST(V2Json, NodesAndErrorsAsEtcdWritesThem) {
  kvpb::TreeResponse tree;
  tree.set_action("set");
  tree.mutable_node()->set_key("/a");
  tree.mutable_node()->set_value("2");
  tree.mutable_node()->set_created_index(4);
  tree.mutable_node()->set_modified_index(5);
  tree.mutable_prev_node()->set_key("/a");
  tree.mutable_prev_node()->set_value("1");
  tree.mutable_prev_node()->set_created_index(4);
  tree.mutable_prev_node()->set_modified_index(4);
  tree.mutable_prev_node()->set_lease(9);
  ExpiryOf expiry = [](int64_t lease) -> std::optional<NodeExpiry> {
    if (lease != 9) return std::nullopt;
    return NodeExpiry{4'001, 1'796'535'873'491'621'720};
  };
  EXPECT_EQ(V2EventBody(tree, expiry),
            "{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"2\",\"modifiedIndex\":5,"
            "\"createdIndex\":4},\"prevNode\":{\"key\":\"/a\",\"value\":\"1\",\"expiration\":"
            "\"2026-12-06T05:44:33.49162172Z\",\"ttl\":5,\"modifiedIndex\":4,\"createdIndex\":4}}\n");
  EXPECT_EQ(V2EventBody(tree, expiry, /*no_value_on_success=*/true), "{\"action\":\"set\"}\n");
  kvpb::TreeResponse root;
  root.set_action("get");
  root.mutable_node()->set_key("/");
  root.mutable_node()->set_dir(true);
  EXPECT_EQ(V2EventBody(root, expiry), "{\"action\":\"get\",\"node\":{\"dir\":true}}\n");
  EXPECT_EQ(V2ErrorBody({100, "/nope", 8}),
            "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":8}\n");
  EXPECT_EQ(V2ErrorBody({102, "", 49}), "{\"errorCode\":102,\"message\":\"Not a file\",\"index\":49}\n");
  EXPECT_EQ(V2ErrorHttpStatus(104), 400);
  EXPECT_EQ(V2ErrorHttpStatus(107), 400);
  EXPECT_EQ(V2ErrorHttpStatus(108), 403);
  EXPECT_EQ(V2ErrorHttpStatus(105), 412);
}

}  // namespace
}  // namespace etc::server
