#include "server/json_log.h"

#include <gtest/gtest.h>

namespace etc::server {
namespace {

TEST(JsonEscape, EscapesWhatWouldEndOrBreakTheString) {
  EXPECT_EQ(JsonEscape("plain text: 1/2"), "plain text: 1/2");
  EXPECT_EQ(JsonEscape("say \"hi\"\\now\n\tend"), "say \\\"hi\\\"\\\\now\\n\\tend");
  EXPECT_EQ(JsonEscape(std::string("a\x01z\x1f", 4)), "a\\u0001z\\u001f");
}

TEST(RateLimitedLog, TheFirstEventIsToldAtOnceAndTheRestOncePerInterval) {
  RateLimitedLog log(/*interval_ms=*/10'000);
  EXPECT_EQ(log.Count(1'000), 1u);
  // A burst within the interval waits...
  for (int i = 0; i < 99; ++i) EXPECT_EQ(log.Count(1'000 + i), 0u);
  EXPECT_EQ(log.Due(10'999), 0u);
  // ...and is told, whole, by the first line the interval allows.
  EXPECT_EQ(log.Due(11'000), 99u);
  EXPECT_EQ(log.Due(30'000), 0u) << "nothing held back";
  EXPECT_EQ(log.Count(30'001), 1u);
  EXPECT_EQ(log.Count(30'002), 0u);
  EXPECT_EQ(log.Count(40'001), 2u);
}

}  // namespace
}  // namespace etc::server
