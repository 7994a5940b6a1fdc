#include "base/check.h"

#include <gtest/gtest.h>

namespace {

TEST(Check, PassingChecksDoNothing) {
  int evaluations = 0;
  ETC_CHECK(++evaluations == 1) << "never printed";
  ETC_CHECK_LE(1, 2);
  ETC_CHECK_EQ(evaluations, 1);
}

TEST(CheckDeathTest, FailureNamesConditionAndValues) {
  int committed = 7;
  int last_index = 5;
  EXPECT_DEATH(ETC_CHECK_LE(committed, last_index) << "commit past log end",
               "check failed: committed <= last_index \\(7 vs 5\\) commit past log end");
  EXPECT_DEATH(ETC_CHECK(committed == 0) << "why " << 42, "committed == 0 why 42");
}

}  // namespace
