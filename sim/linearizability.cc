#include "sim/linearizability.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/check.h"

namespace etc::sim::lincheck {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kViolation:
      return "NOT linearizable";
    case Verdict::kUnknown:
      return "unknown (search gave up)";
  }
  return "?";
}

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Register values are interned; this one means "absent".
constexpr int32_t kAbsent = -1;

// One key's operations in the form the search needs.
struct KeyOp {
  size_t history_index = 0;
  OpKind kind = OpKind::kRead;
  bool unknown = false;
  int32_t value = kAbsent;     // written / new value
  int32_t expected = kAbsent;  // CAS
  int32_t read = kAbsent;      // read result
  bool cas_succeeded = false;
};

class Interner {
 public:
  int32_t Id(const std::optional<std::string>& value) {
    if (!value.has_value()) return kAbsent;
    auto [it, inserted] = ids_.emplace(*value, static_cast<int32_t>(ids_.size()));
    return it->second;
  }

 private:
  std::map<std::string, int32_t> ids_;
};

// The register's sequential behaviour: whether `op` can happen in `state`,
// and the state after it.
bool Step(const KeyOp& op, int32_t state, int32_t* next) {
  switch (op.kind) {
    case OpKind::kRead:
      *next = state;
      return op.read == state;
    case OpKind::kWrite:
      *next = op.value;
      return true;
    case OpKind::kCas: {
      bool matches = state == op.expected;
      if (op.unknown) {
        *next = matches ? op.value : state;
        return true;
      }
      *next = op.cas_succeeded ? op.value : state;
      return matches == op.cas_succeeded;
    }
    case OpKind::kDelete:
      *next = kAbsent;
      return true;
  }
  return false;
}

struct Bits {
  std::vector<uint64_t> words;
  void Set(size_t i) { words[i / 64] |= uint64_t{1} << (i % 64); }
  void Clear(size_t i) { words[i / 64] &= ~(uint64_t{1} << (i % 64)); }
};

struct CacheKey {
  std::vector<uint64_t> words;
  int32_t state;
  bool operator==(const CacheKey& other) const {
    return state == other.state && words == other.words;
  }
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& key) {
    return H::combine(std::move(h), key.words, key.state);
  }
};

// An operation placed in the linearization, and the state before it.
struct Placement {
  size_t call_event;
  int32_t state_before;
};

// Makes `longest` the history indexes of `stack`'s operations. Its first
// `*agrees` already are (the search lowers that as it pops), so only the
// rest is copied: copying the whole stack at every new record was
// quadratic in the length of a mostly sequential history.
void RecordLongest(const std::vector<Placement>& stack, const std::vector<KeyOp>& ops,
                   size_t* agrees, std::vector<size_t>* longest) {
  longest->resize(*agrees);
  for (size_t i = *agrees; i < stack.size(); ++i) {
    longest->push_back(ops[stack[i].call_event / 2].history_index);
  }
  *agrees = stack.size();
}

// Wing & Gong's search with Lowe's memoization, iteratively: walk the list
// of call/return events in time order; at a call, try to place that
// operation next (remove it and its return from the list); at a return whose
// operation is not yet placed, undo the last placement and try the next call.
KeyResult CheckKey(const std::string& key, const std::vector<KeyOp>& ops,
                   const std::vector<std::pair<int64_t, int64_t>>& intervals,
                   const CheckOptions& options) {
  KeyResult result;
  result.key = key;
  result.operations = ops.size();
  size_t n = ops.size();
  if (n == 0) return result;

  // Events: 2n entries, call of op i = 2i, return = 2i+1; sorted by time.
  std::vector<size_t> order(2 * n);
  for (size_t i = 0; i < 2 * n; ++i) order[i] = i;
  auto time_of = [&](size_t event) {
    const auto& [invoke, ret] = intervals[event / 2];
    return event % 2 == 0 ? invoke : ret;
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int64_t ta = time_of(a), tb = time_of(b);
    if (ta != tb) return ta < tb;
    // Only unknown returns share a time (never); keep calls first.
    return a < b;
  });
  // Doubly linked list over event slots; slot 2n is the head sentinel.
  const size_t head = 2 * n;
  constexpr size_t kEnd = std::numeric_limits<size_t>::max();
  std::vector<size_t> next(2 * n + 1, kEnd), prev(2 * n + 1, kEnd);
  size_t last = head;
  for (size_t event : order) {
    next[last] = event;
    prev[event] = last;
    last = event;
  }
  auto unlink = [&](size_t event) {
    next[prev[event]] = next[event];
    if (next[event] != kEnd) prev[next[event]] = prev[event];
  };
  auto relink = [&](size_t event) {
    next[prev[event]] = event;
    if (next[event] != kEnd) prev[next[event]] = event;
  };

  Bits placed{std::vector<uint64_t>((n + 63) / 64, 0)};
  absl::flat_hash_set<CacheKey> seen;
  std::vector<Placement> stack;
  size_t longest_agrees = 0;  // see RecordLongest
  int32_t state = kAbsent;
  size_t event = next[head];
  while (next[head] != kEnd) {
    if (++result.states_explored > options.max_states_per_key) {
      result.verdict = Verdict::kUnknown;
      return result;
    }
    ETC_CHECK_NE(event, kEnd) << "ran off the event list";
    size_t op = event / 2;
    if (event % 2 == 0) {
      int32_t after = 0;
      if (Step(ops[op], state, &after)) {
        placed.Set(op);
        if (seen.insert(CacheKey{placed.words, after}).second) {
          stack.push_back(Placement{event, state});
          state = after;
          unlink(event);
          unlink(event + 1);
          if (stack.size() > result.longest_linearized.size()) {
            RecordLongest(stack, ops, &longest_agrees, &result.longest_linearized);
          }
          event = next[head];
          continue;
        }
        placed.Clear(op);
      }
      event = next[event];
      continue;
    }
    // A return of an operation that could not be placed before it.
    if (stack.empty()) {
      result.verdict = Verdict::kViolation;
      return result;
    }
    Placement undo = stack.back();
    stack.pop_back();
    longest_agrees = std::min(longest_agrees, stack.size());
    state = undo.state_before;
    placed.Clear(undo.call_event / 2);
    relink(undo.call_event + 1);
    relink(undo.call_event);
    event = next[undo.call_event];
  }
  result.verdict = Verdict::kLinearizable;
  result.longest_linearized.clear();
  return result;
}

}  // namespace

CheckResult Check(const std::vector<Operation>& history, const CheckOptions& options) {
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    // An unanswered read changes nothing and tells nothing.
    if (op.kind == OpKind::kRead && op.outcome == Outcome::kUnknown) continue;
    by_key[op.key].push_back(i);
  }
  CheckResult result;
  for (const auto& [key, indexes] : by_key) {
    Interner values;
    std::vector<KeyOp> ops;
    std::vector<std::pair<int64_t, int64_t>> intervals;
    for (size_t index : indexes) {
      const Operation& op = history[index];
      KeyOp key_op;
      key_op.history_index = index;
      key_op.kind = op.kind;
      key_op.unknown = op.outcome == Outcome::kUnknown;
      key_op.value = values.Id(op.value);
      key_op.expected = values.Id(op.expected);
      key_op.read = values.Id(op.read_result);
      key_op.cas_succeeded = op.cas_succeeded;
      ops.push_back(key_op);
      intervals.emplace_back(op.invoke_time, key_op.unknown ? kNever : op.return_time);
    }
    KeyResult key_result = CheckKey(key, ops, intervals, options);
    if (key_result.verdict == Verdict::kViolation) {
      result.verdict = Verdict::kViolation;
    } else if (key_result.verdict == Verdict::kUnknown && result.verdict != Verdict::kViolation) {
      result.verdict = Verdict::kUnknown;
    }
    result.keys.push_back(std::move(key_result));
  }
  return result;
}

// ----------------------------------------------------------------- render --

namespace {

std::string Escape(const std::string& text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"},
                                    {"'", "&#39;"}});
}

std::string Shown(const std::optional<std::string>& value) {
  return value.has_value() ? *value : "\u2205";
}

}  // namespace

std::string Describe(const Operation& op) {
  switch (op.kind) {
    case OpKind::kRead:
      return op.outcome == Outcome::kOk ? absl::StrCat("r\u2192", Shown(op.read_result)) : "r";
    case OpKind::kWrite:
      return absl::StrCat("w(", op.value, ")");
    case OpKind::kCas: {
      std::string out = absl::StrCat("cas(", Shown(op.expected), "\u2192", op.value, ")");
      if (op.outcome == Outcome::kOk) absl::StrAppend(&out, op.cas_succeeded ? " ok" : " fail");
      return out;
    }
    case OpKind::kDelete:
      return "del";
  }
  return "?";
}

std::string RenderHtml(const std::vector<Operation>& history, const KeyResult& key) {
  std::vector<size_t> ops;
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    if (op.key != key.key) continue;
    if (op.kind == OpKind::kRead && op.outcome == Outcome::kUnknown) continue;
    ops.push_back(i);
  }
  // The x axis is the rank of each timestamp, so long quiet stretches do not
  // squeeze the interesting part.
  std::vector<int64_t> times;
  std::map<int, int> lane_of_client;
  for (size_t i : ops) {
    times.push_back(history[i].invoke_time);
    if (history[i].outcome == Outcome::kOk) times.push_back(history[i].return_time);
    lane_of_client.emplace(history[i].client, 0);
  }
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  int lane = 0;
  for (auto& [client, assigned] : lane_of_client) assigned = lane++;
  constexpr int kStep = 24;
  constexpr int kLaneHeight = 34;
  constexpr int kLeft = 80;
  auto x_of = [&](int64_t t) {
    return kLeft + kStep * static_cast<int>(std::lower_bound(times.begin(), times.end(), t) - times.begin());
  };
  int width = kLeft + kStep * (static_cast<int>(times.size()) + 4);
  int height = kLaneHeight * (lane + 1);
  std::vector<bool> justified(history.size(), key.verdict != Verdict::kViolation);
  for (size_t i : key.longest_linearized) justified[i] = true;
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>key ", Escape(key.key),
      "</title>\n<style>body{font-family:sans-serif;margin:16px}"
      ".ok{fill:#cde8cd;stroke:#2e7d32}.bad{fill:#f8c9c9;stroke:#c62828}"
      ".open{stroke-dasharray:4 3}text{font-size:11px}</style></head><body>\n",
      "<h2>Key ", Escape(key.key), ": ", VerdictName(key.verdict), "</h2>\n<p>",
      ops.size(), " operations by ", lane, " clients. Bars run from invocation to response "
      "(x: order of events, not time); one lane per client. Green operations fit one "
      "sequential order that respects real time; red ones could not be placed in it, so the "
      "anomaly is among them. A dashed bar never got an answer and may or may not have taken "
      "effect. &#8709; means the key was absent.</p>\n",
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height, "\">\n");
  for (const auto& [client, row] : lane_of_client) {
    absl::StrAppend(&out, "<text x=\"4\" y=\"", row * kLaneHeight + 22, "\">client ", client,
                    "</text>\n");
  }
  for (size_t i : ops) {
    const Operation& op = history[i];
    int row = lane_of_client.at(op.client);
    int x1 = x_of(op.invoke_time);
    bool open = op.outcome == Outcome::kUnknown;
    int x2 = open ? width - 8 : x_of(op.return_time);
    absl::StrAppend(&out, "<rect class=\"", justified[i] ? "ok" : "bad", open ? " open" : "",
                    "\" x=\"", x1, "\" y=\"", row * kLaneHeight + 6, "\" width=\"",
                    std::max(x2 - x1, 6), "\" height=\"22\" rx=\"3\"><title>op ", i, ": ",
                    Escape(Describe(op)), "</title></rect>\n<text x=\"", x1 + 3, "\" y=\"",
                    row * kLaneHeight + 21, "\">", Escape(Describe(op)), "</text>\n");
  }
  absl::StrAppend(&out, "</svg>\n</body></html>\n");
  return out;
}

}  // namespace etc::sim::lincheck
