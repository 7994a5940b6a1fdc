#include "sim/lincheck_history.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sim/json_line.h"

namespace etc::sim::lincheck {
namespace {

enum class EventType { kInvoke, kOk, kFail, kInfo };

// One line of the file, its fields checked one by one.
struct Event {
  int64_t line = 0;
  int process = 0;
  EventType type = EventType::kInvoke;
  OpKind f = OpKind::kRead;
  std::optional<std::string> key;
  const JsonValue* value = nullptr;  // into the line's parsed object
  std::optional<int64_t> time;
  std::optional<bool> swapped;
};

absl::Status LineError(int64_t line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(what)));
}

absl::StatusOr<EventType> ParseType(const std::string& type, int64_t line) {
  if (type == "invoke") return EventType::kInvoke;
  if (type == "ok") return EventType::kOk;
  if (type == "fail") return EventType::kFail;
  if (type == "info") return EventType::kInfo;
  return LineError(line, absl::StrCat("unknown \"type\" \"", type,
                                      "\" (expected invoke, ok, fail or info)"));
}

absl::StatusOr<OpKind> ParseF(const std::string& f, int64_t line) {
  if (f == "read") return OpKind::kRead;
  if (f == "write") return OpKind::kWrite;
  if (f == "cas") return OpKind::kCas;
  if (f == "delete") return OpKind::kDelete;
  return LineError(line, absl::StrCat("unknown \"f\" \"", f,
                                      "\" (expected read, write, cas or delete)"));
}

// A register value as the file spells it: a string, a number (kept as
// written) or null (absent).
absl::StatusOr<std::optional<std::string>> RegisterValue(const JsonValue& value, int64_t line,
                                                         std::string_view what) {
  switch (value.kind) {
    case JsonValue::Kind::kString:
    case JsonValue::Kind::kNumber:
      return std::optional<std::string>(value.text);
    case JsonValue::Kind::kNull:
      return std::optional<std::string>();
    default:
      return LineError(line, absl::StrCat(std::string(what), " must be a string, a number or null, not ",
                                          JsonKindName(value.kind)));
  }
}

absl::StatusOr<std::string> StringField(const JsonValue& object, std::string_view name, int64_t line) {
  const JsonValue* field = object.Find(name);
  if (field == nullptr) return LineError(line, absl::StrCat("no \"", std::string(name), "\""));
  if (field->kind != JsonValue::Kind::kString) {
    return LineError(line, absl::StrCat("\"", std::string(name), "\" must be a string, not ",
                                        JsonKindName(field->kind)));
  }
  return field->text;
}

// The optional fields: key, time, swapped.
absl::Status ReadOptionalFields(const JsonValue& object, Event* event) {
  if (const JsonValue* key = object.Find("key"); key != nullptr) {
    if (key->kind != JsonValue::Kind::kString && key->kind != JsonValue::Kind::kNumber) {
      return LineError(event->line, absl::StrCat("\"key\" must be a string or a number, not ",
                                                 JsonKindName(key->kind)));
    }
    event->key = key->text;
  }
  if (const JsonValue* time = object.Find("time"); time != nullptr) {
    event->time = time->AsInt64();
    if (!event->time.has_value()) {
      return LineError(event->line, "\"time\" must be an integer (nanoseconds, or any monotonic count)");
    }
  }
  if (const JsonValue* swapped = object.Find("swapped"); swapped != nullptr) {
    if (swapped->kind != JsonValue::Kind::kBool) {
      return LineError(event->line, "\"swapped\" must be true or false");
    }
    if (event->type != EventType::kOk || event->f != OpKind::kCas) {
      return LineError(event->line, "\"swapped\" belongs only on a cas's \"ok\" completion");
    }
    event->swapped = swapped->boolean;
  }
  event->value = object.Find("value");
  return absl::OkStatus();
}

// The event on one line, or nullopt for a line to skip (Jepsen's nemesis).
absl::StatusOr<std::optional<Event>> ReadEvent(const JsonValue& object, int64_t line) {
  if (object.kind != JsonValue::Kind::kObject) {
    return LineError(line, absl::StrCat("expected a JSON object, found ", JsonKindName(object.kind)));
  }
  Event event;
  event.line = line;
  const JsonValue* process = object.Find("process");
  if (process == nullptr) return LineError(line, "no \"process\"");
  if (process->kind == JsonValue::Kind::kString && process->text == "nemesis") return std::nullopt;
  std::optional<int64_t> process_id = process->AsInt64();
  if (!process_id.has_value() || *process_id < std::numeric_limits<int>::min() ||
      *process_id > std::numeric_limits<int>::max()) {
    return LineError(line, "\"process\" must be an integer (32 bits) or \"nemesis\"");
  }
  event.process = static_cast<int>(*process_id);
  absl::StatusOr<std::string> type = StringField(object, "type", line);
  if (!type.ok()) return type.status();
  absl::StatusOr<EventType> parsed_type = ParseType(*type, line);
  if (!parsed_type.ok()) return parsed_type.status();
  event.type = *parsed_type;
  absl::StatusOr<std::string> f = StringField(object, "f", line);
  if (!f.ok()) return f.status();
  absl::StatusOr<OpKind> parsed_f = ParseF(*f, line);
  if (!parsed_f.ok()) return parsed_f.status();
  event.f = *parsed_f;
  absl::Status status = ReadOptionalFields(object, &event);
  if (!status.ok()) return status;
  return std::optional<Event>(std::move(event));
}

enum class Ending { kOutstanding, kOk, kFail, kInfo };

// An operation being assembled from its invoke and completion lines.
struct Draft {
  Operation op;
  Ending ending = Ending::kOutstanding;
  int64_t invoke_line = 0;
  int64_t completion_line = 0;
  int64_t invoke_time = 0;
  int64_t completion_time = 0;
};

// Pairs invokes with completions, process by process.
class Builder {
 public:
  absl::Status Add(const Event& event) {
    if (!has_time_.has_value()) has_time_ = event.time.has_value();
    if (*has_time_ != event.time.has_value()) {
      return LineError(event.line, *has_time_ ? "no \"time\", while earlier lines have one"
                                              : "a \"time\", while earlier lines have none");
    }
    processes_.insert(event.process);
    return event.type == EventType::kInvoke ? Invoke(event) : Complete(event);
  }

  ParsedHistory Finish(int64_t lines, int64_t events);

 private:
  absl::Status Invoke(const Event& event);
  absl::Status Complete(const Event& event);
  absl::Status InvokeValue(const Event& event, Operation* op);

  std::optional<bool> has_time_;
  std::vector<Draft> drafts_;
  std::map<int, size_t> outstanding_;  // process -> its invoke's draft
  std::set<int> processes_;
};

absl::Status Builder::Invoke(const Event& event) {
  if (auto it = outstanding_.find(event.process); it != outstanding_.end()) {
    return LineError(event.line, absl::StrCat("process ", event.process,
                                              " invokes again while its invoke on line ",
                                              drafts_[it->second].invoke_line, " has no completion"));
  }
  if (!event.key.has_value()) return LineError(event.line, "an invoke needs a \"key\"");
  Draft draft;
  draft.op.client = event.process;
  draft.op.key = *event.key;
  draft.op.kind = event.f;
  draft.invoke_line = event.line;
  draft.invoke_time = event.time.value_or(event.line);
  absl::Status status = InvokeValue(event, &draft.op);
  if (!status.ok()) return status;
  outstanding_[event.process] = drafts_.size();
  drafts_.push_back(std::move(draft));
  return absl::OkStatus();
}

// What an invoke's "value" must be for its operation.
absl::Status Builder::InvokeValue(const Event& event, Operation* op) {
  const JsonValue* value = event.value;
  bool none = value == nullptr || value->kind == JsonValue::Kind::kNull;
  switch (event.f) {
    case OpKind::kRead:
    case OpKind::kDelete:
      if (!none) return LineError(event.line, "a read's or delete's invoke takes no \"value\" (or null)");
      return absl::OkStatus();
    case OpKind::kWrite: {
      if (none) return LineError(event.line, "a write's invoke needs the \"value\" written");
      absl::StatusOr<std::optional<std::string>> written = RegisterValue(*value, event.line, "\"value\"");
      if (!written.ok()) return written.status();
      op->value = **written;
      return absl::OkStatus();
    }
    case OpKind::kCas: {
      if (value == nullptr || value->kind != JsonValue::Kind::kArray || value->items.size() != 2) {
        return LineError(event.line, "a cas's invoke needs \"value\": [expected, new]");
      }
      absl::StatusOr<std::optional<std::string>> expected =
          RegisterValue(value->items[0], event.line, "a cas's expected value");
      if (!expected.ok()) return expected.status();
      absl::StatusOr<std::optional<std::string>> next =
          RegisterValue(value->items[1], event.line, "a cas's new value");
      if (!next.ok()) return next.status();
      if (!next->has_value()) return LineError(event.line, "a cas's new value cannot be null");
      op->expected = *expected;
      op->value = **next;
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status Builder::Complete(const Event& event) {
  auto it = outstanding_.find(event.process);
  if (it == outstanding_.end()) {
    return LineError(event.line, absl::StrCat("a completion for process ", event.process,
                                              ", which has no invoke outstanding"));
  }
  Draft& draft = drafts_[it->second];
  if (draft.op.kind != event.f) {
    return LineError(event.line, absl::StrCat("the completion's \"f\" differs from its invoke's on line ",
                                              draft.invoke_line));
  }
  if (event.key.has_value() && *event.key != draft.op.key) {
    return LineError(event.line, absl::StrCat("the completion's \"key\" differs from its invoke's on line ",
                                              draft.invoke_line));
  }
  int64_t time = event.time.value_or(event.line);
  if (time < draft.invoke_time) {
    return LineError(event.line, absl::StrCat("completed at time ", time, ", before its invoke at ",
                                              draft.invoke_time, " (line ", draft.invoke_line, ")"));
  }
  if (event.type == EventType::kOk && event.f == OpKind::kRead) {
    if (event.value == nullptr) return LineError(event.line, "a read's \"ok\" needs the \"value\" read (null: absent)");
    absl::StatusOr<std::optional<std::string>> read = RegisterValue(*event.value, event.line, "\"value\"");
    if (!read.ok()) return read.status();
    draft.op.read_result = *read;
  }
  draft.op.cas_succeeded = event.swapped.value_or(true);
  draft.ending = event.type == EventType::kOk     ? Ending::kOk
                 : event.type == EventType::kFail ? Ending::kFail
                                                  : Ending::kInfo;
  draft.completion_line = event.line;
  draft.completion_time = time;
  outstanding_.erase(it);
  return absl::OkStatus();
}

ParsedHistory Builder::Finish(int64_t lines, int64_t events) {
  ParsedHistory out;
  out.lines = lines;
  out.events = events;
  out.processes = static_cast<int64_t>(processes_.size());
  // Ranks replace times: on a tie, invokes come first, so two operations
  // recorded at the same instant count as concurrent, never as ordered.
  std::vector<std::tuple<int64_t, int, size_t>> stamps;  // (time, 0 invoke / 1 completion, draft)
  for (size_t i = 0; i < drafts_.size(); ++i) {
    Draft& draft = drafts_[i];
    if (draft.ending == Ending::kFail) {
      ++out.failed;
      continue;
    }
    bool known = draft.ending == Ending::kOk;
    draft.op.outcome = known ? Outcome::kOk : Outcome::kUnknown;
    ++(known ? out.ok : out.unknown);
    stamps.emplace_back(draft.invoke_time, 0, i);
    if (known) stamps.emplace_back(draft.completion_time, 1, i);
  }
  std::sort(stamps.begin(), stamps.end());
  std::vector<size_t> kept;
  for (size_t rank = 0; rank < stamps.size(); ++rank) {
    auto [time, is_completion, i] = stamps[rank];
    (is_completion ? drafts_[i].op.return_time : drafts_[i].op.invoke_time) = static_cast<int64_t>(rank + 1);
    if (!is_completion) kept.push_back(i);
  }
  std::sort(kept.begin(), kept.end());
  for (size_t i : kept) {
    Draft& draft = drafts_[i];
    if (draft.ending != Ending::kOk) draft.op.return_time = 0;
    out.operations.push_back(std::move(draft.op));
    out.invoke_line.push_back(draft.invoke_line);
    out.completion_line.push_back(draft.ending == Ending::kOutstanding ? 0 : draft.completion_line);
    out.invoke_time_recorded.push_back(draft.invoke_time);
    out.completion_time_recorded.push_back(draft.ending == Ending::kOk ? draft.completion_time : 0);
  }
  return out;
}

}  // namespace

absl::StatusOr<ParsedHistory> ParseHistory(std::string_view text, const ParseOptions& options) {
  Builder builder;
  int64_t line_number = 0;
  int64_t events = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.size() > options.max_line_bytes) {
      return LineError(line_number, absl::StrCat("longer than ", options.max_line_bytes, " bytes"));
    }
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    absl::StatusOr<JsonValue> object = ParseJson(line);
    if (!object.ok()) return LineError(line_number, std::string(object.status().message()));
    absl::StatusOr<std::optional<Event>> event = ReadEvent(*object, line_number);
    if (!event.ok()) return event.status();
    if (!event->has_value()) continue;
    ++events;
    absl::Status status = builder.Add(**event);
    if (!status.ok()) return status;
  }
  return builder.Finish(line_number, events);
}

namespace {

std::string Shown(const std::optional<std::string>& value) {
  return value.has_value() ? absl::StrCat("\"", *value, "\"") : "absent";
}

// The register's value after `order`, replayed from absent (an unknown
// CAS placed in the order took effect iff its comparison held there).
std::optional<std::string> ValueAfter(const std::vector<Operation>& ops, const std::vector<size_t>& order) {
  std::optional<std::string> value;
  for (size_t i : order) {
    const Operation& op = ops[i];
    if (op.kind == OpKind::kWrite) value = op.value;
    if (op.kind == OpKind::kDelete) value.reset();
    bool swaps = op.outcome == Outcome::kOk ? op.cas_succeeded : value == op.expected;
    if (op.kind == OpKind::kCas && swaps) value = op.value;
  }
  return value;
}

std::string OperationLine(const ParsedHistory& history, size_t i, bool placed) {
  const Operation& op = history.operations[i];
  bool known = op.outcome == Outcome::kOk;
  return absl::StrCat("  ", placed ? "   " : "!! ", "line ", history.invoke_line[i], "-",
                      history.completion_line[i] == 0 ? std::string("(none)")
                                                      : absl::StrCat(history.completion_line[i]),
                      "  process ", op.client, "  time ", history.invoke_time_recorded[i], "..",
                      known ? absl::StrCat(history.completion_time_recorded[i]) : std::string("?"),
                      "  ", Describe(op), known ? "" : " (outcome unknown)", "\n");
}

}  // namespace

std::string DescribeViolation(const ParsedHistory& history, const KeyResult& key) {
  const std::vector<Operation>& ops = history.operations;
  std::vector<bool> placed(ops.size(), false);
  for (size_t i : key.longest_linearized) {
    if (i < ops.size()) placed[i] = true;
  }
  std::string out = absl::StrCat("key \"", key.key, "\": ", key.operations, " operations; at most ",
                                 key.longest_linearized.size(),
                                 " fit one order that respects real time.\n");
  size_t shown = std::min<size_t>(key.longest_linearized.size(), 4);
  if (shown > 0) absl::StrAppend(&out, "The longest such order ends with:\n");
  for (size_t k = key.longest_linearized.size() - shown; k < key.longest_linearized.size(); ++k) {
    absl::StrAppend(&out, OperationLine(history, key.longest_linearized[k], true));
  }
  absl::StrAppend(&out, "leaving the key ", Shown(ValueAfter(ops, key.longest_linearized)), ".\n");
  // The answered operation that could not be placed and returned first:
  // the search failed at its return.
  std::optional<size_t> culprit;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].key != key.key || placed[i] || ops[i].outcome != Outcome::kOk) continue;
    if (!culprit.has_value() || ops[i].return_time < ops[*culprit].return_time) culprit = i;
  }
  if (!culprit.has_value()) return out;
  const Operation& bad = ops[*culprit];
  absl::StrAppend(&out, "It could not place this operation (!!) with those around it:\n");
  constexpr int kMaxLines = 16;
  int lines = 0;
  for (size_t i = 0; i < ops.size() && lines < kMaxLines; ++i) {
    const Operation& op = ops[i];
    if (op.key != key.key || (op.kind == OpKind::kRead && op.outcome != Outcome::kOk)) continue;
    bool ends_before = op.outcome == Outcome::kOk && op.return_time < bad.invoke_time;
    bool starts_after = op.invoke_time > bad.return_time;
    // What overlaps it, and what just precedes it (its reads' justification).
    bool near_before = ends_before && op.return_time + 6 >= bad.invoke_time;
    if (starts_after || (ends_before && !near_before)) continue;
    absl::StrAppend(&out, OperationLine(history, i, i != *culprit));
    ++lines;
  }
  return out;
}

}  // namespace etc::sim::lincheck
