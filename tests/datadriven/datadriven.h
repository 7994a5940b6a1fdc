// Golden test scripts in the style of CockroachDB's datadriven package.
//
// A script is a sequence of cases:
//
//   # comments and blank lines between cases are kept as they are
//   propose 1 key=value flag list=(1,2,3)
//   optional input lines
//   ----
//   the output the handler must produce
//   (ending at the first blank line)
//
// RunFile calls the handler for each case and compares its output. With
// --rewrite (`bazel run //raft:interaction_test -- --rewrite`, see
// datadriven_main.cc) or the environment variable ETC_REWRITE=1 it instead
// writes the actual outputs back into the source tree, so a reviewer sees
// behaviour changes as diffs.
#ifndef ETC_TESTS_DATADRIVEN_DATADRIVEN_H_
#define ETC_TESTS_DATADRIVEN_DATADRIVEN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace etc::datadriven {

struct Arg {
  std::string key;
  // Empty for a bare word, one element for key=value, several for key=(a,b).
  std::vector<std::string> values;
};

struct TestCase {
  std::string file;
  int line = 0;
  std::string command;
  std::vector<Arg> args;
  std::string input;

  bool Has(const std::string& key) const;
  // Aborts the test case (via Fatal) if the key is missing or malformed.
  std::string String(const std::string& key) const;
  uint64_t Uint(const std::string& key) const;
  std::string StringOr(const std::string& key, const std::string& fallback) const;
  uint64_t UintOr(const std::string& key, uint64_t fallback) const;
  bool BoolOr(const std::string& key, bool fallback) const;
  std::vector<uint64_t> Uints(const std::string& key) const;
  // Bare words (args without a value), in order; numbers parsed.
  std::vector<uint64_t> BareUints() const;
  std::vector<std::string> BareWords() const;
  // Where this case is, for error messages: "raft/testdata/x.txt:12".
  std::string Position() const;
};

// A handler throws this to report a malformed test script.
struct ScriptError {
  std::string message;
};

using Handler = std::function<std::string(const TestCase&)>;

// Runs every case of the script at `path` (relative to the workspace root).
void RunFile(const std::string& path, const Handler& handler);
// Every *.txt file in `dir`, sorted.
std::vector<std::string> ListScripts(const std::string& dir);

}  // namespace etc::datadriven

#endif  // ETC_TESTS_DATADRIVEN_DATADRIVEN_H_
