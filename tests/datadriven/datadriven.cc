#include "tests/datadriven/datadriven.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace etc::datadriven {

namespace {

const Arg* Find(const TestCase& tc, const std::string& key) {
  for (const Arg& arg : tc.args) {
    if (arg.key == key) return &arg;
  }
  return nullptr;
}

std::vector<Arg> ParseArgs(const std::string& text, const std::string& position) {
  std::vector<Arg> args;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '=') ++i;
    Arg arg;
    arg.key = text.substr(start, i - start);
    if (i < text.size() && text[i] == '=') {
      ++i;
      if (i < text.size() && text[i] == '(') {
        size_t close = text.find(')', i);
        if (close == std::string::npos) throw ScriptError{absl::StrCat(position, ": unclosed (")};
        std::string inner = text.substr(i + 1, close - i - 1);
        for (absl::string_view part : absl::StrSplit(inner, ',', absl::SkipWhitespace())) {
          arg.values.emplace_back(absl::StripAsciiWhitespace(part));
        }
        i = close + 1;
      } else {
        size_t value_start = i;
        while (i < text.size() && text[i] != ' ') ++i;
        arg.values.push_back(text.substr(value_start, i - value_start));
      }
    }
    args.push_back(std::move(arg));
  }
  return args;
}

struct Block {
  // Lines before the case (comments, blanks), kept verbatim on rewrite.
  std::vector<std::string> preamble;
  TestCase test_case;
  std::string command_line;
  std::vector<std::string> input_lines;
  std::string expected;
  bool is_case = false;
};

std::vector<Block> Parse(const std::string& path, const std::string& content) {
  std::vector<std::string> lines = absl::StrSplit(content, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::vector<Block> blocks;
  Block current;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == '#') {
      current.preamble.push_back(line);
      ++i;
      continue;
    }
    current.is_case = true;
    current.command_line = line;
    current.test_case.file = path;
    current.test_case.line = static_cast<int>(i + 1);
    std::string position = absl::StrCat(path, ":", i + 1);
    size_t space = line.find(' ');
    current.test_case.command = line.substr(0, space);
    if (space != std::string::npos) current.test_case.args = ParseArgs(line.substr(space + 1), position);
    ++i;
    while (i < lines.size() && lines[i] != "----") {
      current.input_lines.push_back(lines[i]);
      ++i;
    }
    if (i >= lines.size()) throw ScriptError{absl::StrCat(position, ": missing ----")};
    ++i;
    std::vector<std::string> expected;
    while (i < lines.size() && !lines[i].empty()) {
      expected.push_back(lines[i]);
      ++i;
    }
    std::string input;
    for (const std::string& input_line : current.input_lines) absl::StrAppend(&input, input_line, "\n");
    current.test_case.input = input;
    std::string joined;
    for (const std::string& e : expected) absl::StrAppend(&joined, e, "\n");
    current.expected = joined;
    blocks.push_back(std::move(current));
    current = Block();
  }
  if (!current.preamble.empty()) blocks.push_back(std::move(current));
  return blocks;
}

// Output never contains blank lines (they would end the case) and always
// ends with a newline.
std::string Normalize(const std::string& output) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, line, "\n");
  }
  if (out.empty()) out = "ok\n";
  return out;
}

}  // namespace

bool TestCase::Has(const std::string& key) const { return Find(*this, key) != nullptr; }

std::string TestCase::Position() const { return absl::StrCat(file, ":", line); }

std::string TestCase::String(const std::string& key) const {
  const Arg* arg = Find(*this, key);
  if (arg == nullptr || arg->values.size() != 1) {
    throw ScriptError{absl::StrCat(Position(), ": ", command, " needs ", key, "=<value>")};
  }
  return arg->values[0];
}

uint64_t TestCase::Uint(const std::string& key) const {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(String(key), &value)) {
    throw ScriptError{absl::StrCat(Position(), ": ", key, " must be a number")};
  }
  return value;
}

std::string TestCase::StringOr(const std::string& key, const std::string& fallback) const {
  return Has(key) ? String(key) : fallback;
}

uint64_t TestCase::UintOr(const std::string& key, uint64_t fallback) const {
  return Has(key) ? Uint(key) : fallback;
}

bool TestCase::BoolOr(const std::string& key, bool fallback) const {
  if (!Has(key)) return fallback;
  const Arg* arg = Find(*this, key);
  if (arg->values.empty()) return true;
  std::string value = String(key);
  if (value == "true") return true;
  if (value == "false") return false;
  throw ScriptError{absl::StrCat(Position(), ": ", key, " must be true or false")};
}

std::vector<uint64_t> TestCase::Uints(const std::string& key) const {
  const Arg* arg = Find(*this, key);
  if (arg == nullptr) return {};
  std::vector<uint64_t> out;
  for (const std::string& value : arg->values) {
    uint64_t number = 0;
    if (!absl::SimpleAtoi(value, &number)) {
      throw ScriptError{absl::StrCat(Position(), ": ", key, " must list numbers")};
    }
    out.push_back(number);
  }
  return out;
}

std::vector<std::string> TestCase::BareWords() const {
  std::vector<std::string> out;
  for (const Arg& arg : args) {
    if (arg.values.empty()) out.push_back(arg.key);
  }
  return out;
}

std::vector<uint64_t> TestCase::BareUints() const {
  std::vector<uint64_t> out;
  for (const std::string& word : BareWords()) {
    uint64_t number = 0;
    if (!absl::SimpleAtoi(word, &number)) {
      throw ScriptError{absl::StrCat(Position(), ": expected a number, got ", word)};
    }
    out.push_back(number);
  }
  return out;
}

std::vector<std::string> ListScripts(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".txt") out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void RunFile(const std::string& path, const Handler& handler) {
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::vector<Block> blocks;
  try {
    blocks = Parse(path, buffer.str());
  } catch (const ScriptError& error) {
    FAIL() << error.message;
  }
  const char* rewrite_env = std::getenv("ETC_REWRITE");
  bool rewrite = rewrite_env != nullptr && std::string(rewrite_env) == "1";
  std::string rewritten;
  for (Block& block : blocks) {
    for (const std::string& line : block.preamble) absl::StrAppend(&rewritten, line, "\n");
    if (!block.is_case) continue;
    std::string actual;
    try {
      actual = Normalize(handler(block.test_case));
    } catch (const ScriptError& error) {
      ADD_FAILURE() << error.message;
      return;
    }
    absl::StrAppend(&rewritten, block.command_line, "\n");
    for (const std::string& line : block.input_lines) absl::StrAppend(&rewritten, line, "\n");
    absl::StrAppend(&rewritten, "----\n", actual);
    if (!rewrite && actual != block.expected) {
      ADD_FAILURE() << block.test_case.Position() << ": output of `" << block.command_line
                    << "` differs.\n--- expected\n"
                    << block.expected << "--- actual\n"
                    << actual;
      // Later cases depend on this one's state; their diffs would be noise.
      return;
    }
  }
  if (rewrite) {
    const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    ASSERT_NE(workspace, nullptr) << "rewrite with `bazel run <test target> -- --rewrite`";
    std::string target = absl::StrCat(workspace, "/", path);
    std::ofstream out(target);
    ASSERT_TRUE(out.good()) << "cannot write " << target;
    // Cases are separated by blank lines already present in the preamble;
    // keep exactly what the file had.
    out << rewritten;
  }
}

}  // namespace etc::datadriven
