// A linearizability checker for histories of single-key registers with read,
// write, compare-and-set and delete, in the style of Wing & Gong with Lowe's
// memoization (as in Porcupine): each key is checked on its own, searching
// for an order of the operations that respects real time and the register's
// sequential behaviour, remembering (set of operations placed, register
// value) pairs already explored.
//
//   std::vector<lincheck::Operation> history = ...;   // from the clients
//   lincheck::CheckResult result = lincheck::Check(history);
//   if (result.verdict == lincheck::Verdict::kViolation)
//     WriteFile("timeline.html", lincheck::RenderHtml(history, result.keys[i]));
//
// An operation whose client got no answer (Outcome::kUnknown) may take effect
// at any time after its invocation, or never: it is treated as returning at
// infinity (placing it last is the same as it never happening); so may an
// unknown delete. Unknown reads tell nothing and are ignored.
#ifndef ETC_SIM_LINEARIZABILITY_H_
#define ETC_SIM_LINEARIZABILITY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace etc::sim::lincheck {

enum class OpKind {
  kRead,
  kWrite,
  kCas,
  // The register becomes absent (whatever it held, absent included).
  kDelete,
};

enum class Outcome {
  // Completed; the result fields below are known.
  kOk,
  // No answer: it may or may not have taken effect.
  kUnknown,
};

struct Operation {
  int client = 0;
  std::string key;
  OpKind kind = OpKind::kRead;
  // kWrite: the value written. kCas: the new value.
  std::string value;
  // kCas: what the key must hold; nullopt means it must be absent.
  std::optional<std::string> expected;
  // kRead with kOk: the value read (nullopt: absent).
  std::optional<std::string> read_result;
  // kCas with kOk: whether it succeeded (a failed CAS changes nothing).
  bool cas_succeeded = false;
  Outcome outcome = Outcome::kOk;
  // Logical timestamps, unique across the history: a precedes b in real
  // time iff a.return_time < b.invoke_time. Ignored for kUnknown returns.
  int64_t invoke_time = 0;
  int64_t return_time = 0;
};

enum class Verdict {
  kLinearizable,
  kViolation,
  // The search gave up (CheckOptions::max_states_per_key): neither proven
  // linearizable nor a violation.
  kUnknown,
};

const char* VerdictName(Verdict verdict);

struct KeyResult {
  std::string key;
  size_t operations = 0;
  Verdict verdict = Verdict::kLinearizable;
  // For a violation: the longest order of operations the search could
  // justify, as indexes into the history. The anomaly is among the rest.
  std::vector<size_t> longest_linearized;
  uint64_t states_explored = 0;
};

struct CheckResult {
  // kViolation if any key has one, else kUnknown if any key gave up.
  Verdict verdict = Verdict::kLinearizable;
  // In key order.
  std::vector<KeyResult> keys;
};

struct CheckOptions {
  uint64_t max_states_per_key = 50'000'000;
};

CheckResult Check(const std::vector<Operation>& history, const CheckOptions& options = {});

// A short label: "r→v1", "w(v2)", "cas(v1→v2) ok", "del" ("∅" for absent).
std::string Describe(const Operation& op);

// A small self-contained HTML page (inline SVG and CSS, nothing loaded from
// anywhere) with a timeline of one key's operations, one lane per client,
// the justified operations in one colour and the rest highlighted.
std::string RenderHtml(const std::vector<Operation>& history, const KeyResult& key);

}  // namespace etc::sim::lincheck

#endif  // ETC_SIM_LINEARIZABILITY_H_
