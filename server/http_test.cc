#include "server/http.h"

#include <random>

#include <gtest/gtest.h>

namespace etc::server {
namespace {

TEST(ParseHttpRequest, ReadsARequestOnlyOnceItIsComplete) {
  std::string data = "POST /v3/kv/put?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
  HttpRequest request;
  for (size_t cut = 0; cut < data.size(); ++cut) {
    absl::StatusOr<size_t> partial = ParseHttpRequest(data.substr(0, cut), &request);
    ASSERT_TRUE(partial.ok()) << cut;
    EXPECT_EQ(*partial, 0u) << cut;
  }
  absl::StatusOr<size_t> used = ParseHttpRequest(data + "GET /next", &request);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, data.size());
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/v3/kv/put");
  EXPECT_EQ(request.query, "x=1");
  EXPECT_EQ(request.headers.at("host"), "a");
  EXPECT_EQ(request.body, "body");
}

TEST(ParseHttpRequest, RefusesMalformedAndOversizedRequests) {
  HttpRequest request;
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET nopath HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nno colon\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    EXPECT_FALSE(ParseHttpRequest(bad, &request).ok()) << bad;
  }
  absl::StatusOr<size_t> huge =
      ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", &request);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(ParseHttpRequest(std::string(100000, 'a'), &request).ok());
}

TEST(ParseHttpRequest, ArbitraryBytesNeverCrash) {
  std::mt19937_64 random(7);
  HttpRequest request;
  for (int i = 0; i < 20000; ++i) {
    std::string data = "GET / HTTP/1.1\r\n";
    size_t length = random() % 64;
    for (size_t j = 0; j < length; ++j) data.push_back(static_cast<char>("\r\n: aZ0"[random() % 7]));
    data += "\r\n\r\n";
    (void)ParseHttpRequest(data, &request);
  }
}

}  // namespace
}  // namespace etc::server
