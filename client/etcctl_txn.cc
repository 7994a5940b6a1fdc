// txn: compares, then success requests, then failure requests, each block
// ended by an empty line, read from stdin (with prompts under -i), as
// etcdctl reads them:
//
//   mod("key1") > "0"
//
//   put key1 "overwrote-key1"
//
//   put key1 "created-key1"
//   put key2 "some extra key"
#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "client/etcctl_command.h"
#include "client/etcctl_flags.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

// Reads a Go-quoted string ("..." with escapes, or `...`) at text[*i].
bool ReadQuoted(std::string_view text, size_t* i, std::string* out) {
  if (*i >= text.size() || (text[*i] != '"' && text[*i] != '`')) return false;
  char quote = text[(*i)++];
  out->clear();
  while (*i < text.size() && text[*i] != quote) {
    char c = text[(*i)++];
    if (c != '\\' || quote == '`' || *i >= text.size()) {
      *out += c;
      continue;
    }
    char e = text[(*i)++];
    int hex = 0;
    switch (e) {
      case 'n': *out += '\n'; break;
      case 't': *out += '\t'; break;
      case 'r': *out += '\r'; break;
      case '0': *out += '\0'; break;
      case 'x':
        if (*i + 2 > text.size() || !absl::SimpleHexAtoi(std::string(text.substr(*i, 2)), &hex)) return false;
        *out += static_cast<char>(hex);
        *i += 2;
        break;
      default: *out += e; break;
    }
  }
  if (*i >= text.size()) return false;
  ++*i;
  return true;
}

// etcdctl's argify: words, "double quoted" (Go escapes) or 'single quoted'.
std::vector<std::string> Argify(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    if (std::isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
      continue;
    }
    std::string word;
    if (line[i] == '"' && ReadQuoted(line, &i, &word)) {
      words.push_back(word);
      continue;
    }
    if (line[i] == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end != std::string_view::npos) {
        words.push_back(std::string(line.substr(i + 1, end - i - 1)));
        i = end + 1;
        continue;
      }
    }
    size_t end = i;
    while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
    words.push_back(std::string(line.substr(i, end - i)));
    i = end;
  }
  return words;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

absl::StatusOr<etcdserverpb::Compare> ParseCompare(std::string_view line) {
  auto malformed = [&](const std::string& why) {
    return absl::InvalidArgumentError("malformed comparison: " + std::string(line) + why);
  };
  size_t paren = line.find('(');
  if (paren == std::string_view::npos) return malformed("");
  std::string target(line.substr(0, paren)), key, op, value;
  size_t i = paren + 1;
  if (!ReadQuoted(line, &i, &key) || i >= line.size() || line[i] != ')') return malformed("");
  ++i;
  std::vector<std::string> rest = Argify(line.substr(i));
  if (rest.size() != 2) return malformed("");
  op = rest[0];
  size_t j = Trim(line.substr(i)).find(op) + op.size();
  std::string_view quoted = Trim(Trim(line.substr(i)).substr(j));
  size_t k = 0;
  if (!ReadQuoted(quoted, &k, &value)) return malformed("");
  etcdserverpb::Compare compare;
  compare.set_key(key);
  const std::map<std::string, etcdserverpb::Compare::CompareResult> results = {
      {"=", etcdserverpb::Compare::EQUAL}, {"==", etcdserverpb::Compare::EQUAL},
      {"!=", etcdserverpb::Compare::NOT_EQUAL}, {"<", etcdserverpb::Compare::LESS},
      {">", etcdserverpb::Compare::GREATER}};
  if (results.count(op) == 0) return absl::InvalidArgumentError("Unknown op: " + op);
  compare.set_result(results.at(op));
  int64_t number = 0;
  bool numeric = absl::SimpleAtoi(value, &number);
  auto invalid = absl::InvalidArgumentError("invalid txn compare request: " + std::string(line));
  if (target == "ver" || target == "version") {
    if (!numeric) return invalid;
    compare.set_target(etcdserverpb::Compare::VERSION);
    compare.set_version(number);
  } else if (target == "c" || target == "create") {
    if (!numeric) return invalid;
    compare.set_target(etcdserverpb::Compare::CREATE);
    compare.set_create_revision(number);
  } else if (target == "m" || target == "mod") {
    if (!numeric) return invalid;
    compare.set_target(etcdserverpb::Compare::MOD);
    compare.set_mod_revision(number);
  } else if (target == "val" || target == "value") {
    compare.set_target(etcdserverpb::Compare::VALUE);
    compare.set_value(value);
  } else if (target == "lease") {
    if (!absl::SimpleHexAtoi(value, &number)) return invalid;
    compare.set_target(etcdserverpb::Compare::LEASE);
    compare.set_lease(number);
  } else {
    return malformed(" (unknown target " + target + ")");
  }
  return compare;
}

absl::StatusOr<etcdserverpb::RequestOp> ParseRequest(std::string_view line) {
  static const std::vector<Command> kOps = {GetCommand(), PutCommand(), DelCommand()};
  auto invalid = absl::InvalidArgumentError("invalid txn request: " + std::string(line));
  std::vector<std::string> words = Argify(line);
  if (words.size() < 2) return absl::InvalidArgumentError("invalid txn compare request: " + std::string(line));
  absl::StatusOr<Invocation> inv = ParseCommandLine(words, kOps);
  if (!inv.ok() || inv->path.empty()) return invalid;
  std::vector<std::string> args = inv->args;
  args.insert(args.end(), inv->exec_args.begin(), inv->exec_args.end());
  etcdserverpb::RequestOp op;
  const std::string& name = inv->path[0]->name;
  if (name == "get") {
    auto request = GetRequestFrom(inv->flags, args);
    if (!request.ok()) return invalid;
    *op.mutable_request_range() = *request;
  } else if (name == "put") {
    auto request = PutRequestFrom(inv->flags, args, false);
    if (!request.ok()) return invalid;
    *op.mutable_request_put() = *request;
  } else {
    auto request = DelRequestFrom(inv->flags, args);
    if (!request.ok()) return invalid;
    *op.mutable_request_delete_range() = *request;
  }
  return op;
}

// Lines up to an empty one; each parsed by `parse` into `add`.
template <typename Parse, typename Add>
absl::Status ReadBlock(Parse parse, Add add) {
  for (;;) {
    std::string line;
    if (!std::getline(std::cin, line) || std::cin.eof()) return absl::InvalidArgumentError("EOF");
    std::string_view trimmed = Trim(line);
    if (trimmed.empty()) return absl::OkStatus();
    auto parsed = parse(trimmed);
    if (!parsed.ok()) return parsed.status();
    add(*parsed);
  }
}

int RunTxn(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("txn command does not accept argument");
  bool interactive = ctx.flags.Bool("interactive");
  auto prompt = [&](const char* text) {
    if (interactive) {
      std::printf("%s\n", text);
      std::fflush(stdout);
    }
  };
  etcdserverpb::TxnRequest txn;
  prompt("compares:");
  absl::Status read = ReadBlock(ParseCompare, [&](const auto& c) { *txn.add_compare() = c; });
  if (read.ok()) {
    prompt("success requests (get, put, del):");
    read = ReadBlock(ParseRequest, [&](const auto& op) { *txn.add_success() = op; });
  }
  if (read.ok()) {
    prompt("failure requests (get, put, del):");
    read = ReadBlock(ParseRequest, [&](const auto& op) { *txn.add_failure() = op; });
  }
  if (!read.ok()) return ctx.Fail(std::string(read.message()));
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::TxnResponse> response = client->TxnRaw(txn);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Txn(*response));
}

}  // namespace

Command TxnCommand() {
  return {.name = "txn",
          .usage = "txn [options]",
          .short_help = "Txn processes all the requests in one transaction",
          .long_help =
              "Reads compares, success requests and failure requests from stdin, each block ended\n"
              "by an empty line. Compares: <target>(\"<key>\") <op> \"<value>\" with target one of\n"
              "value, version, create, mod, lease and op one of =, !=, <, >.\n\n"
              "Examples:\n"
              "\tprintf 'mod(\"key1\") > \"0\"\\n\\nput key1 \"overwrote\"\\n\\nput key1 \"created\"\\n\\n' | etcctl txn\n"
              "\tetcctl txn -i\n",
          .flags = {{"interactive", "i", FlagKind::kBool, "false", "Input transaction in interactive mode"}},
          .run = RunTxn};
}

}  // namespace etc::etcctl
