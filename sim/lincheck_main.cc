// etc-lincheck: checks a history recorded anywhere (JSON lines, see
// docs/lincheck.md) for linearizability, key by key.
//
//   etc-lincheck history.jsonl [--html=out.html] [--max-states=N]
//
// Exit codes: 0 linearizable, 1 NOT linearizable, 2 usage or parse error,
// 3 unknown (the search gave up on some key within --max-states).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sim/lincheck_history.h"
#include "sim/linearizability.h"

namespace etc::sim::lincheck {
namespace {

constexpr int kExitLinearizable = 0;
constexpr int kExitViolation = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnknown = 3;

constexpr char kUsage[] =
    "usage: etc-lincheck HISTORY.jsonl [--html=OUT.html] [--max-states=N]\n"
    "  Checks a JSON-lines history of single-key registers (read, write, cas, delete)\n"
    "  for linearizability; HISTORY '-' reads standard input. Format: docs/lincheck.md.\n"
    "  --html=FILE       write the timeline of the smallest non-linearizable key\n"
    "  --max-states=N    give up on a key after N search states (default 50000000)\n"
    "  exit codes: 0 linearizable, 1 NOT linearizable, 2 usage or parse error, 3 unknown\n";

struct Args {
  std::string history_path;
  std::string html_path;
  CheckOptions check;
};

// Hand-parsed rather than absl flags: absl exits 1 on a bad flag, which is
// this command's "violation" code.
bool ParseArgs(int argc, char** argv, Args* args, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *error = "";
      return false;
    }
    if (arg.substr(0, 7) == "--html=") {
      args->html_path = std::string(arg.substr(7));
    } else if (arg.substr(0, 13) == "--max-states=") {
      std::string count(arg.substr(13));
      if (!absl::SimpleAtoi(count, &args->check.max_states_per_key) || args->check.max_states_per_key == 0) {
        *error = absl::StrCat("--max-states wants a positive integer, not '", count, "'");
        return false;
      }
    } else if (arg.size() > 1 && arg[0] == '-') {
      *error = absl::StrCat("unknown flag '", std::string(arg), "'");
      return false;
    } else if (!args->history_path.empty()) {
      *error = "one history file at a time";
      return false;
    } else {
      args->history_path = std::string(arg);
    }
  }
  if (args->history_path.empty()) {
    *error = "no history file given";
    return false;
  }
  return true;
}

bool ReadAll(const std::string& path, std::string* text) {
  std::ostringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    buffer << in.rdbuf();
  }
  *text = buffer.str();
  return true;
}

// The violating key with the fewest operations: the easiest to read.
const KeyResult* SmallestViolation(const CheckResult& result) {
  const KeyResult* smallest = nullptr;
  for (const KeyResult& key : result.keys) {
    if (key.verdict != Verdict::kViolation) continue;
    if (smallest == nullptr || key.operations < smallest->operations) smallest = &key;
  }
  return smallest;
}

void PrintSummary(const ParsedHistory& history, const CheckResult& result) {
  std::cout << "history: " << history.events << " events, " << history.operations.size()
            << " operations checked (" << history.ok << " ok, " << history.unknown
            << " unknown outcome), " << history.failed << " failed (left out), by "
            << history.processes << " processes on " << result.keys.size() << " keys\n";
  for (const KeyResult& key : result.keys) {
    std::cout << "  key \"" << key.key << "\": " << key.operations << " operations, "
              << VerdictName(key.verdict) << " (" << key.states_explored << " states)\n";
  }
}

int Run(const Args& args) {
  std::string text;
  if (!ReadAll(args.history_path, &text)) {
    std::cerr << "etc-lincheck: cannot read " << args.history_path << "\n";
    return kExitUsage;
  }
  absl::StatusOr<ParsedHistory> history = ParseHistory(text);
  if (!history.ok()) {
    std::cerr << "etc-lincheck: " << args.history_path << ": " << history.status().message() << "\n";
    return kExitUsage;
  }
  CheckResult result = Check(history->operations, args.check);
  PrintSummary(*history, result);
  std::cout << "verdict: " << VerdictName(result.verdict) << "\n";
  const KeyResult* bad = SmallestViolation(result);
  if (bad != nullptr) std::cout << "\n" << DescribeViolation(*history, *bad);
  if (bad != nullptr && !args.html_path.empty()) {
    std::ofstream out(args.html_path, std::ios::binary);
    out << RenderHtml(history->operations, *bad);
    if (!out) {
      std::cerr << "etc-lincheck: cannot write " << args.html_path << "\n";
      return kExitUsage;
    }
    std::cout << "timeline: " << args.html_path << "\n";
  }
  switch (result.verdict) {
    case Verdict::kLinearizable:
      return kExitLinearizable;
    case Verdict::kViolation:
      return kExitViolation;
    case Verdict::kUnknown:
      return kExitUnknown;
  }
  return kExitUnknown;
}

}  // namespace
}  // namespace etc::sim::lincheck

int main(int argc, char** argv) {
  using namespace etc::sim::lincheck;
  Args args;
  std::string error;
  if (!ParseArgs(argc, argv, &args, &error)) {
    if (error.empty()) {
      std::cout << kUsage;
      return kExitLinearizable;
    }
    std::cerr << "etc-lincheck: " << error << "\n" << kUsage;
    return kExitUsage;
  }
  return Run(args);
}
