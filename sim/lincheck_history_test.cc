#include "sim/lincheck_history.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sim/history_generator.h"
#include "sim/json_line.h"

namespace etc::sim::lincheck {
namespace {

std::string Lines(const std::vector<std::string>& lines) { return absl::StrJoin(lines, "\n") + "\n"; }

// The error message of parsing `lines`, "" when it parses.
std::string ErrorOf(const std::vector<std::string>& lines) {
  absl::StatusOr<ParsedHistory> parsed = ParseHistory(Lines(lines));
  return parsed.ok() ? "" : std::string(parsed.status().message());
}

TEST(JsonLine, ParsesTheFlatShapesAndEscapes) {
  absl::StatusOr<JsonValue> v =
      ParseJson(R"( {"a": [1, -2.5e3, null, true], "b": "x\"\\\/\n\u00e9\ud83d\ude00", "c": {}} )");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Find("a")->items.size(), 4u);
  EXPECT_EQ(v->Find("a")->items[0].AsInt64(), 1);
  EXPECT_EQ(v->Find("a")->items[1].AsInt64(), std::nullopt);
  EXPECT_EQ(v->Find("b")->text, "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonLine, RefusesWhatIsNotJson) {
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "\"\\x\"",
                          "\"\\ud800\"", "\"\\udc00\"", "tru", "{\"a\":1}x", "{\"a\":1,\"a\":2}",
                          "\"a\tb\"", "{'a':1}", "99999999999999999999x"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseJson(std::string(100, '[')).ok());  // too deep, not a stack overflow
  JsonValue huge;
  huge.kind = JsonValue::Kind::kNumber;
  huge.text = "99999999999999999999";
  EXPECT_FALSE(huge.AsInt64().has_value());
}

TEST(ParseHistory, PairsInvokesWithCompletions) {
  absl::StatusOr<ParsedHistory> parsed = ParseHistory(Lines({
      R"({"process":1,"type":"invoke","f":"write","key":"k","value":"a","time":5})",
      R"({"process":2,"type":"invoke","f":"cas","key":"k","value":[null,"b"],"time":6})",
      "",
      R"({"process":"nemesis","type":"info","f":"kill","value":"n1","time":6})",
      R"({"process":1,"type":"ok","f":"write","key":"k","value":"a","time":9})",
      R"({"process":2,"type":"ok","f":"cas","swapped":false,"time":9,"extra":{"ignored":[1]}})",
      R"({"process":3,"type":"invoke","f":"read","key":"k","value":null,"time":10})",
      R"({"process":3,"type":"ok","f":"read","key":"k","value":"a","time":12})",
      R"({"process":4,"type":"invoke","f":"delete","key":"k","time":13})",
      R"({"process":5,"type":"invoke","f":"write","key":"k","value":7,"time":14})",
      R"({"process":5,"type":"fail","f":"write","key":"k","time":15})",
  }));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->events, 9);  // not the blank line nor the nemesis's
  EXPECT_EQ(parsed->ok, 3);
  EXPECT_EQ(parsed->failed, 1);
  EXPECT_EQ(parsed->unknown, 1);
  EXPECT_EQ(parsed->processes, 5);
  ASSERT_EQ(parsed->operations.size(), 4u);
  const Operation& cas = parsed->operations[1];
  EXPECT_EQ(cas.kind, OpKind::kCas);
  EXPECT_EQ(cas.expected, std::nullopt);
  EXPECT_EQ(cas.value, "b");
  EXPECT_FALSE(cas.cas_succeeded);
  // Both completed at time 9: a tie orders nothing, and the ranks are unique.
  EXPECT_NE(parsed->operations[0].return_time, cas.return_time);
  EXPECT_EQ(parsed->operations[2].read_result, "a");
  EXPECT_EQ(parsed->operations[3].outcome, Outcome::kUnknown);
  EXPECT_EQ(parsed->invoke_line[3], 9);
  EXPECT_EQ(parsed->completion_line[3], 0);
  EXPECT_EQ(Check(parsed->operations).verdict, Verdict::kLinearizable);
}

TEST(ParseHistory, EqualTimesMakeOperationsConcurrent) {
  // The write returns at 5 and the read is invoked at 5: were the write
  // ordered first, the read of absent would be a violation.
  absl::StatusOr<ParsedHistory> parsed = ParseHistory(Lines({
      R"({"process":1,"type":"invoke","f":"write","key":"k","value":"a","time":1})",
      R"({"process":1,"type":"ok","f":"write","key":"k","time":5})",
      R"({"process":2,"type":"invoke","f":"read","key":"k","time":5})",
      R"({"process":2,"type":"ok","f":"read","key":"k","value":null,"time":7})",
  }));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(Check(parsed->operations).verdict, Verdict::kLinearizable);
}

TEST(ParseHistory, ErrorsNameTheLine) {
  const std::string w = R"({"process":1,"type":"invoke","f":"write","key":"k","value":"a","time":1})";
  EXPECT_EQ(ErrorOf({w, "{"}), "line 2: malformed JSON at byte 2: expected a member name in quotes");
  EXPECT_EQ(ErrorOf({w, "[1]"}), "line 2: expected a JSON object, found an array");
  EXPECT_EQ(ErrorOf({R"({"type":"invoke"})"}), "line 1: no \"process\"");
  EXPECT_EQ(ErrorOf({R"({"process":1.5,"type":"invoke","f":"read","key":"k"})"}),
            "line 1: \"process\" must be an integer (32 bits) or \"nemesis\"");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"start","f":"read","key":"k"})"}),
            "line 1: unknown \"type\" \"start\" (expected invoke, ok, fail or info)");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"append","key":"k"})"}),
            "line 1: unknown \"f\" \"append\" (expected read, write, cas or delete)");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"ok","f":"read","key":"k","value":null})"}),
            "line 1: a completion for process 1, which has no invoke outstanding");
  EXPECT_EQ(ErrorOf({w, w}), "line 2: process 1 invokes again while its invoke on line 1 has no completion");
  EXPECT_EQ(ErrorOf({w, R"({"process":1,"type":"ok","f":"read","time":2})"}),
            "line 2: the completion's \"f\" differs from its invoke's on line 1");
  EXPECT_EQ(ErrorOf({w, R"({"process":1,"type":"ok","f":"write","key":"j","time":2})"}),
            "line 2: the completion's \"key\" differs from its invoke's on line 1");
  EXPECT_EQ(ErrorOf({w, R"({"process":1,"type":"ok","f":"write","time":0})"}),
            "line 2: completed at time 0, before its invoke at 1 (line 1)");
  EXPECT_EQ(ErrorOf({w, R"({"process":1,"type":"ok","f":"write"})"}),
            "line 2: no \"time\", while earlier lines have one");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"write","key":"k","time":1})"}),
            "line 1: a write's invoke needs the \"value\" written");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"cas","key":"k","value":["a"],"time":1})"}),
            "line 1: a cas's invoke needs \"value\": [expected, new]");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"cas","key":"k","value":["a",null],"time":1})"}),
            "line 1: a cas's new value cannot be null");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"read","key":"k","value":"a","time":1})"}),
            "line 1: a read's or delete's invoke takes no \"value\" (or null)");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"read","time":1})"}),
            "line 1: an invoke needs a \"key\"");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"read","key":"k","time":1})",
                     R"({"process":1,"type":"ok","f":"read","time":2})"}),
            "line 2: a read's \"ok\" needs the \"value\" read (null: absent)");
  EXPECT_EQ(ErrorOf({w, R"({"process":1,"type":"ok","f":"write","swapped":true,"time":2})"}),
            "line 2: \"swapped\" belongs only on a cas's \"ok\" completion");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"read","key":"k","time":"1"})"}),
            "line 1: \"time\" must be an integer (nanoseconds, or any monotonic count)");
  EXPECT_EQ(ErrorOf({R"({"process":1,"type":"invoke","f":"write","key":"k","value":{},"time":1})"}),
            "line 1: \"value\" must be a string, a number or null, not an object");
  ParseOptions small;
  small.max_line_bytes = 10;
  EXPECT_EQ(ParseHistory(w, small).status().message(), "line 1: longer than 10 bytes");
}

std::string Value(const std::optional<std::string>& value) {
  return value.has_value() ? absl::StrCat("\"", *value, "\"") : "null";
}

// `history` as JSON lines, in time order, as a recorder would write it.
std::string ToJsonLines(const std::vector<Operation>& history) {
  std::vector<std::pair<int64_t, std::string>> lines;
  for (const Operation& op : history) {
    const char* f[] = {"read", "write", "cas", "delete"};
    std::string common = absl::StrCat(R"({"process":)", op.client, R"(,"f":")",
                                      f[static_cast<int>(op.kind)], R"(","key":")", op.key, "\"");
    std::string invoke_value = op.kind == OpKind::kWrite ? absl::StrCat(",\"value\":", Value(op.value))
                               : op.kind == OpKind::kCas
                                   ? absl::StrCat(",\"value\":[", Value(op.expected), ",", Value(op.value), "]")
                                   : "";
    lines.emplace_back(op.invoke_time * 2, absl::StrCat(common, R"(,"type":"invoke")", invoke_value,
                                                        ",\"time\":", op.invoke_time, "}"));
    if (op.outcome == Outcome::kUnknown) {
      // The client gave up on it (a timeout) before its next operation.
      lines.emplace_back(op.return_time * 2 + 1,
                         absl::StrCat(common, R"(,"type":"info","time":)", op.return_time, "}"));
      continue;
    }
    std::string result = op.kind == OpKind::kRead  ? absl::StrCat(",\"value\":", Value(op.read_result))
                         : op.kind == OpKind::kCas ? (op.cas_succeeded ? ",\"swapped\":true" : ",\"swapped\":false")
                                                   : "";
    lines.emplace_back(op.return_time * 2 + 1,
                       absl::StrCat(common, R"(,"type":"ok")", result, ",\"time\":", op.return_time, "}"));
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [time, line] : lines) absl::StrAppend(&out, line, "\n");
  return out;
}

RC_GTEST_PROP(ParseHistoryProperty, TrueExecutionsWrittenAsJsonLinesAreLinearizable, ()) {
  auto draw = [](int64_t lo, int64_t hi) { return *rc::gen::inRange<int64_t>(lo, hi); };
  auto history = GenerateLinearizableHistory(draw, 8, *rc::gen::inRange(1, 200), *rc::gen::inRange(1, 4), true);
  absl::StatusOr<ParsedHistory> parsed = ParseHistory(ToJsonLines(history));
  if (!parsed.ok()) RC_FAIL(std::string(parsed.status().message()));
  RC_ASSERT(parsed->operations.size() == history.size());
  RC_ASSERT(Check(parsed->operations).verdict == Verdict::kLinearizable);
}

// Whatever the bytes, parsing answers (a history or an error) and a parsed
// history can be checked and described without crashing.
void ParseAndCheckAnything(const std::string& text) {
  absl::StatusOr<ParsedHistory> parsed = ParseHistory(text);
  if (!parsed.ok()) {
    RC_ASSERT(parsed.status().message().substr(0, 5) == "line ");
    return;
  }
  CheckResult result = Check(parsed->operations);
  for (const KeyResult& key : result.keys) {
    if (key.verdict == Verdict::kViolation) DescribeViolation(*parsed, key);
  }
}

RC_GTEST_PROP(ParseHistoryProperty, RandomBytesNeverCrash, ()) {
  ParseAndCheckAnything(*rc::gen::arbitrary<std::string>());
}

RC_GTEST_PROP(ParseHistoryProperty, MutatedHistoriesNeverCrash, ()) {
  auto draw = [](int64_t lo, int64_t hi) { return *rc::gen::inRange<int64_t>(lo, hi); };
  std::string text = ToJsonLines(GenerateLinearizableHistory(draw, 4, *rc::gen::inRange(1, 20), 2, true));
  const std::string alphabet = "{}[]\",:0123456789-.eE\\u nultrfasx\n\t";
  int mutations = *rc::gen::inRange(1, 8);
  for (int i = 0; i < mutations && !text.empty(); ++i) {
    size_t at = *rc::gen::inRange<size_t>(0, text.size());
    switch (*rc::gen::inRange(0, 3)) {
      case 0:
        text[at] = alphabet[*rc::gen::inRange<size_t>(0, alphabet.size())];
        break;
      case 1:
        text.erase(at, *rc::gen::inRange<size_t>(1, 12));
        break;
      default:
        text.insert(at, text.substr(*rc::gen::inRange<size_t>(0, text.size()), 20));
    }
  }
  ParseAndCheckAnything(text);
}

}  // namespace
}  // namespace etc::sim::lincheck
