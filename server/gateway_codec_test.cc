#include "server/gateway_codec.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "kv/etcdserverpb/rpc.pb.h"

namespace etc::server {
namespace {

// The values NextJsonValue finds in `body`, or the error it stops at.
std::vector<std::string> Values(absl::string_view body, std::string* error = nullptr) {
  std::vector<std::string> values;
  size_t cursor = 0;
  for (;;) {
    absl::StatusOr<absl::string_view> value = NextJsonValue(body, &cursor);
    if (!value.ok()) {
      if (error != nullptr) *error = std::string(value.status().message());
      return values;
    }
    if (value->empty()) return values;
    values.emplace_back(*value);
  }
}

TEST(NextJsonValue, FindsRequestsOneAfterAnother) {
  EXPECT_EQ(Values("{\"a\":1}{\"b\":[2,{}]}\n  \r\n\t[3] "),
            (std::vector<std::string>{"{\"a\":1}", "{\"b\":[2,{}]}", "[3]"}));
  // Brackets and quotes inside strings are not structure.
  EXPECT_EQ(Values(R"({"k":"}{\"]"} {"k":"\\"})"),
            (std::vector<std::string>{R"({"k":"}{\"]"})", R"({"k":"\\"})"}));
  EXPECT_TRUE(Values("").empty());
  EXPECT_TRUE(Values(" \n").empty());
}

TEST(NextJsonValue, StopsAtWhatIsNotARequest) {
  std::string error;
  EXPECT_EQ(Values("{\"a\":1} {\"b\":", &error), std::vector<std::string>{"{\"a\":1}"});
  EXPECT_EQ(error, "unexpected EOF");
  EXPECT_TRUE(Values("\"text\"", &error).empty());
  EXPECT_TRUE(Values("12 {}", &error).empty());
  EXPECT_TRUE(Values("{\"open string}", &error).empty());
}

TEST(NextJsonValue, ArbitraryBytesNeverCrashAndAlwaysEnd) {
  std::mt19937_64 random(5);
  for (int i = 0; i < 20000; ++i) {
    std::string body;
    size_t length = random() % 40;
    for (size_t j = 0; j < length; ++j) body.push_back("{}[]\"\\ a1:,\n"[random() % 13]);
    size_t cursor = 0;
    for (int steps = 0; steps < 100; ++steps) {
      size_t before = cursor;
      absl::StatusOr<absl::string_view> value = NextJsonValue(body, &cursor);
      if (!value.ok() || value->empty()) break;
      ASSERT_GT(cursor, before) << body;
      ASSERT_LE(cursor, body.size());
    }
  }
}

TEST(GatewayFromJson, IgnoresUnknownFieldsAndRefusesWrongTypes) {
  etcdserverpb::WatchRequest request;
  ASSERT_TRUE(GatewayFromJson(R"({"create_request":{"key":"Zm9v","no_such":[1]},"other":{}})",
                              &request)
                  .ok());
  EXPECT_EQ(request.create_request().key(), "foo");
  etcdserverpb::LeaseKeepAliveRequest keep_alive;
  EXPECT_EQ(GatewayFromJson(R"({"ID":"x"})", &keep_alive).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(GatewayFromJson("{", &keep_alive).ok());
  ASSERT_TRUE(GatewayFromJson(R"({"ID":"-7"})", &keep_alive).ok());
  EXPECT_EQ(keep_alive.id(), -7);
}

TEST(GatewayToJson, WritesProtoNamesInt64AsStringsBytesAsBase64AndNoDefaults) {
  etcdserverpb::WatchResponse response;
  response.set_watch_id(-1);
  response.mutable_header()->set_revision(9);
  auto* event = response.add_events();
  event->set_type(mvccpb::Event::DELETE);
  event->mutable_kv()->set_key("k\xff");
  EXPECT_EQ(GatewayToJson(response),
            R"({"header":{"revision":"9"},"watch_id":"-1","events":[{"type":"DELETE","kv":{"key":"a/8="}}]})");
}

TEST(GatewayErrors, HaveGrpcGatewaysShapesAndStatuses) {
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::FAILED_PRECONDITION), 412);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::CANCELLED), 408);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusOf(static_cast<grpc::StatusCode>(99)), 500);
  HttpResponse unary = GatewayError(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"));
  EXPECT_EQ(unary.status, 403);
  EXPECT_EQ(unary.body, R"({"error":"no","message":"no","code":7})");
  EXPECT_EQ(GatewayStreamError(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token")),
            R"({"error":{"grpc_code":16,"http_code":401,"message":"bad token","http_status":"Unauthorized"}})");
}

TEST(JsonQuote, WritesAnyTextAsAValidJsonString) {
  std::string text = "line\nbreak \"quoted\" back\\slash \x01\x1f tab\t";
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage("{\"s\":" + JsonQuote(text) + "}", &parsed)
                  .ok());
  EXPECT_EQ(parsed.fields().at("s").string_value(), text);
}

}  // namespace
}  // namespace etc::server
