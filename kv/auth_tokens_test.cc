// The token table alone: who a token names, which tokens each kind of drop
// takes and which it leaves, and expiry on the caller's clock.
#include "kv/auth_tokens.h"

#include <gtest/gtest.h>

#include "kv/errors.h"

namespace etc::kv {
namespace {

TEST(TokenTable, ATokenNamesTheUserItWasIssuedTo) {
  TokenTable tokens;
  tokens.Add("a.1", "alice");
  tokens.Add("b.2", "bob");
  EXPECT_EQ(tokens.Resolve("a.1", 0).value(), "alice");
  EXPECT_EQ(tokens.Resolve("b.2", 0).value(), "bob");
  EXPECT_EQ(tokens.Resolve("c.3", 0).status(), InvalidAuthTokenError());
}

TEST(TokenTable, InvalidatingAUserDropsAllItsTokensAndNoOthers) {
  TokenTable tokens;
  tokens.Add("a.1", "alice");
  tokens.Add("a.2", "alice");
  tokens.Add("b.3", "bob");
  tokens.Add("a.4", "alice2");  // a name that starts like hers is another user
  tokens.InvalidateUser("alice");
  EXPECT_EQ(tokens.Resolve("a.1", 0).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.Resolve("a.2", 0).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.Resolve("b.3", 0).value(), "bob");
  EXPECT_EQ(tokens.Resolve("a.4", 0).value(), "alice2");
  EXPECT_EQ(tokens.size(), 2u);
  // Her next login works.
  tokens.Add("a.5", "alice");
  EXPECT_EQ(tokens.Resolve("a.5", 0).value(), "alice");
}

TEST(TokenTable, ClearDropsEveryToken) {
  TokenTable tokens;
  tokens.Add("a.1", "alice");
  tokens.Add("r.2", "root");
  tokens.Clear();
  EXPECT_EQ(tokens.size(), 0u);
  EXPECT_EQ(tokens.Resolve("a.1", 0).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.Resolve("r.2", 0).status(), InvalidAuthTokenError());
}

TEST(TokenTable, ATokenUsedWithinItsTtlStaysAndOneUnusedLongerGoes) {
  TokenTable tokens(/*ttl_ms=*/2'000);
  tokens.Add("a.1", "alice");
  tokens.Add("b.2", "bob");
  // Each use restarts the token's TTL.
  for (int64_t now_ms = 0; now_ms <= 10'000; now_ms += 2'000) {
    ASSERT_EQ(tokens.Resolve("a.1", now_ms).value(), "alice") << now_ms;
  }
  // Bob's was first used at 0 and never since.
  EXPECT_EQ(tokens.Resolve("b.2", 0).value(), "bob");
  EXPECT_EQ(tokens.Resolve("b.2", 2'001).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.Resolve("a.1", 12'000).value(), "alice");
  EXPECT_EQ(tokens.Resolve("a.1", 14'001).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.size(), 0u);
}

TEST(TokenTable, ExpireOldStartsTheClockOfNewTokensAndDropsTheUnused) {
  TokenTable tokens(/*ttl_ms=*/1'000);
  tokens.Add("a.1", "alice");
  tokens.ExpireOld(5'000);  // the token's clock starts here, not at 0
  EXPECT_EQ(tokens.size(), 1u);
  tokens.Add("b.2", "bob");
  tokens.ExpireOld(5'900);
  EXPECT_EQ(tokens.size(), 2u);
  tokens.ExpireOld(6'001);  // alice's unused for 1,001 ms; bob's for 101
  EXPECT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens.Resolve("a.1", 6'001).status(), InvalidAuthTokenError());
  EXPECT_EQ(tokens.Resolve("b.2", 6'001).value(), "bob");
}

TEST(TokenTable, TheDefaultTtlIsEtcdsFiveMinutes) {
  TokenTable tokens;
  EXPECT_EQ(tokens.ttl_ms(), 300'000);
  tokens.Add("a.1", "alice");
  EXPECT_TRUE(tokens.Resolve("a.1", 0).ok());
  EXPECT_TRUE(tokens.Resolve("a.1", 300'000).ok());
  EXPECT_EQ(tokens.Resolve("a.1", 600'001).status(), InvalidAuthTokenError());
}

}  // namespace
}  // namespace etc::kv
