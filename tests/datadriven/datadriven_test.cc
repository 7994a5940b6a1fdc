#include "tests/datadriven/datadriven.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace etc::datadriven {
namespace {

std::string Echo(const TestCase& tc) {
  std::string out = absl::StrCat("command=", tc.command, "\n");
  for (const Arg& arg : tc.args) absl::StrAppend(&out, arg.key, "=[", absl::StrJoin(arg.values, " "), "]\n");
  if (!tc.input.empty()) absl::StrAppend(&out, "input=", absl::StrReplaceAll(tc.input, {{"\n", "|"}}), "\n");
  return out;
}

TEST(DataDriven, ParsesArgsAndInput) { RunFile("tests/datadriven/testdata/parse.txt", Echo); }

TEST(DataDriven, TypedAccessors) {
  TestCase tc;
  tc.command = "x";
  tc.args = {{"n", {"7"}}, {"flag", {}}, {"list", {"1", "2"}}, {"3", {}}, {"b", {"false"}}};
  EXPECT_EQ(tc.Uint("n"), 7u);
  EXPECT_TRUE(tc.BoolOr("flag", false));
  EXPECT_FALSE(tc.BoolOr("b", true));
  EXPECT_EQ(tc.Uints("list"), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(tc.UintOr("missing", 9), 9u);
  EXPECT_THROW(tc.Uint("missing"), ScriptError);
  EXPECT_THROW(tc.BareUints(), ScriptError);  // "flag" is not a number
}

// A wrong expectation must fail the test, or golden files could rot silently.
void RunWrongExpectation() {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/wrong.txt";
  std::ofstream(path) << "echo\n----\ncommand=something-else\n";
  RunFile(path, Echo);
}

TEST(DataDriven, MismatchFails) {
  EXPECT_NONFATAL_FAILURE(RunWrongExpectation(), "differs");
}

}  // namespace
}  // namespace etc::datadriven
