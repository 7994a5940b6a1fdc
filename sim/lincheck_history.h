// Histories recorded anywhere, as JSON lines, for the linearizability
// checker (sim/linearizability.h): the format etc-lincheck reads, documented
// in docs/lincheck.md. One JSON object per line, Jepsen's event shape:
//
//   {"process":3,"type":"invoke","f":"write","key":"k1","value":"v7","time":1000}
//   {"process":3,"type":"ok","f":"write","key":"k1","value":"v7","time":1900}
//   {"process":1,"type":"invoke","f":"cas","key":"k1","value":["v7","v8"],"time":1200}
//   {"process":1,"type":"info","f":"cas","key":"k1","time":9000}
//
//   absl::StatusOr<lincheck::ParsedHistory> parsed = lincheck::ParseHistory(text);
//   if (!parsed.ok()) ...;   // "line 7: ...": the first problem found
//   lincheck::CheckResult result = lincheck::Check(parsed->operations);
//   std::cout << lincheck::DescribeViolation(*parsed, result.keys[i]);
//
// Each process's invoke is paired with its next completion; an invoke left
// without one is an unknown outcome. Operations that certainly did not
// happen ("fail") are counted and left out of the checked history.
#ifndef ETC_SIM_LINCHECK_HISTORY_H_
#define ETC_SIM_LINCHECK_HISTORY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/linearizability.h"

namespace etc::sim::lincheck {

struct ParsedHistory {
  // What the checker sees: every operation that may have happened, its
  // times replaced by their ranks (unique, as Check wants them) so that
  // equal recorded times never order two operations.
  std::vector<Operation> operations;
  // Per operation (same index): the 1-based lines of its invoke and of its
  // completion (0 when it has none), and its recorded times.
  std::vector<int64_t> invoke_line;
  std::vector<int64_t> completion_line;
  std::vector<int64_t> invoke_time_recorded;
  std::vector<int64_t> completion_time_recorded;
  // Counts, for the report.
  int64_t lines = 0;
  int64_t events = 0;
  int64_t ok = 0;
  // Completed "fail": certainly not applied, so not checked.
  int64_t failed = 0;
  // "info" completions and invokes that never completed.
  int64_t unknown = 0;
  int64_t processes = 0;
};

struct ParseOptions {
  // A line longer than this is refused rather than buffered: histories are
  // flat objects of a few short fields.
  size_t max_line_bytes = 1 << 20;
};

// The history in `text` (JSON lines), or InvalidArgument naming the line
// and what is wrong with it. Never crashes, whatever the bytes.
absl::StatusOr<ParsedHistory> ParseHistory(std::string_view text, const ParseOptions& options = {});

// A few lines about one non-linearizable key for a person: the longest
// order the search could justify (its last operations and the value they
// leave), then the operations around the first one it could not place, with
// their lines in the file, processes, recorded times and what they did.
std::string DescribeViolation(const ParsedHistory& history, const KeyResult& key);

}  // namespace etc::sim::lincheck

#endif  // ETC_SIM_LINCHECK_HISTORY_H_
