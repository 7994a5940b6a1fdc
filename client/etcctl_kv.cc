// get, put, del and compaction: etcdctl's key-value commands.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {

// Every printer call ends the same way: printed, or a usage error (a
// format this response has no printer for).
int Printed(const Context& ctx, const absl::Status& printed) {
  return printed.ok() ? kExitOk : ctx.Usage(printed);
}

namespace {

// The key and range_end etcdctl sends for a key, an optional range end,
// --prefix and --from-key.
struct KeyRange {
  std::string key;
  std::string range_end;
};

KeyRange RangeFor(std::string key, const std::string* end, bool prefix, bool from_key) {
  KeyRange range{std::move(key), end != nullptr ? *end : ""};
  if (prefix) {
    if (range.key.empty()) {
      range.key = std::string(1, '\0');
      range.range_end = std::string(1, '\0');
    } else {
      range.range_end = client::PrefixEnd(range.key);
    }
  }
  if (from_key) {
    if (range.key.empty()) range.key = std::string(1, '\0');
    range.range_end = std::string(1, '\0');
  }
  return range;
}

}  // namespace

absl::StatusOr<etcdserverpb::RangeRequest> GetRequestFrom(const ParsedFlags& flags,
                                                          const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "get command needs one argument as key and an optional argument as range_end");
  }
  bool prefix = flags.Bool("prefix"), from_key = flags.Bool("from-key");
  if (prefix && from_key) {
    return absl::InvalidArgumentError(
        "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  if (args.size() > 1 && (prefix || from_key)) {
    return absl::InvalidArgumentError(
        "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
  }
  etcdserverpb::RangeRequest request;
  std::string consistency = flags.String("consistency");
  if (consistency != "l" && consistency != "s" && !consistency.empty()) {
    return absl::InvalidArgumentError("unknown consistency flag \"" + consistency + "\"");
  }
  request.set_serializable(consistency == "s");
  KeyRange range = RangeFor(args[0], args.size() > 1 ? &args[1] : nullptr, prefix, from_key);
  request.set_key(range.key);
  request.set_range_end(range.range_end);
  request.set_limit(flags.Int("limit"));
  request.set_revision(flags.Int("rev") > 0 ? flags.Int("rev") : 0);
  request.set_keys_only(flags.Bool("keys-only"));
  request.set_count_only(flags.Bool("count-only"));
  std::string order = absl::AsciiStrToUpper(flags.String("order"));
  if (order == "ASCEND") {
    request.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  } else if (order == "DESCEND") {
    request.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  } else if (!order.empty()) {
    return absl::InvalidArgumentError("bad sort order " + flags.String("order"));
  }
  std::string target = absl::AsciiStrToUpper(flags.String("sort-by"));
  const std::map<std::string, etcdserverpb::RangeRequest::SortTarget> targets = {
      {"", etcdserverpb::RangeRequest::KEY},         {"KEY", etcdserverpb::RangeRequest::KEY},
      {"CREATE", etcdserverpb::RangeRequest::CREATE}, {"MODIFY", etcdserverpb::RangeRequest::MOD},
      {"VALUE", etcdserverpb::RangeRequest::VALUE},   {"VERSION", etcdserverpb::RangeRequest::VERSION}};
  auto found = targets.find(target);
  if (found == targets.end()) return absl::InvalidArgumentError("bad sort target " + flags.String("sort-by"));
  request.set_sort_target(found->second);
  // clientv3 sends no order for keys ascending: the store's own order,
  // which spares the server a sort.
  if (request.sort_target() == etcdserverpb::RangeRequest::KEY &&
      request.sort_order() == etcdserverpb::RangeRequest::ASCEND) {
    request.set_sort_order(etcdserverpb::RangeRequest::NONE);
  }
  return request;
}

absl::StatusOr<etcdserverpb::PutRequest> PutRequestFrom(const ParsedFlags& flags,
                                                        const std::vector<std::string>& args,
                                                        bool stdin_allowed) {
  const char* kNeeds = "put command needs 1 argument and input from stdin or 2 arguments";
  if (args.empty()) return absl::InvalidArgumentError(kNeeds);
  bool ignore_value = flags.Bool("ignore-value");
  if (ignore_value && args.size() > 1) {
    return absl::InvalidArgumentError("put command needs only 1 argument when 'ignore-value' is set");
  }
  etcdserverpb::PutRequest request;
  request.set_key(args[0]);
  if (!ignore_value) {
    if (args.size() > 1) {
      request.set_value(args[1]);
    } else {
      std::string value;
      if (stdin_allowed) value.assign(std::istreambuf_iterator<char>(std::cin), {});
      if (value.empty()) return absl::InvalidArgumentError(kNeeds);
      request.set_value(value);
    }
  }
  int64_t lease = 0;
  std::string lease_text = flags.String("lease").empty() ? "0" : flags.String("lease");
  if (!absl::SimpleHexAtoi(lease_text, &lease)) {
    return absl::InvalidArgumentError("bad lease ID (strconv.ParseInt: parsing \"" + lease_text +
                                      "\": invalid syntax), expecting ID in Hex");
  }
  request.set_lease(lease);
  request.set_prev_kv(flags.Bool("prev-kv"));
  request.set_ignore_value(ignore_value);
  request.set_ignore_lease(flags.Bool("ignore-lease"));
  return request;
}

absl::StatusOr<etcdserverpb::DeleteRangeRequest> DelRequestFrom(const ParsedFlags& flags,
                                                                const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) {
    return absl::InvalidArgumentError(
        "del command needs one argument as key and an optional argument as range_end");
  }
  bool prefix = flags.Bool("prefix"), from_key = flags.Bool("from-key");
  if (prefix && from_key) {
    return absl::InvalidArgumentError(
        "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  if (args.size() > 1 && (prefix || from_key)) {
    return absl::InvalidArgumentError(
        "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
  }
  KeyRange range = RangeFor(args[0], args.size() > 1 ? &args[1] : nullptr, prefix, from_key);
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(range.key);
  request.set_range_end(range.range_end);
  request.set_prev_kv(flags.Bool("prev-kv"));
  return request;
}

const std::vector<FlagSpec>& GetFlags() {
  static const std::vector<FlagSpec> flags = {
      {"consistency", "", FlagKind::kString, "l", "Linearizable(l) or Serializable(s)"},
      {"count-only", "", FlagKind::kBool, "false", "Get only the count"},
      {"from-key", "", FlagKind::kBool, "false",
       "Get keys that are greater than or equal to the given key using byte compare"},
      {"keys-only", "", FlagKind::kBool, "false", "Get only the keys"},
      {"limit", "", FlagKind::kInt, "0", "Maximum number of results"},
      {"order", "", FlagKind::kString, "", "Order of results; ASCEND or DESCEND (ASCEND by default)"},
      {"prefix", "", FlagKind::kBool, "false", "Get keys with matching prefix"},
      {"print-value-only", "", FlagKind::kBool, "false",
       "Only write values when using the \"simple\" output format"},
      {"rev", "", FlagKind::kInt, "0", "Specify the kv revision"},
      {"sort-by", "", FlagKind::kString, "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"},
  };
  return flags;
}

const std::vector<FlagSpec>& PutFlags() {
  static const std::vector<FlagSpec> flags = {
      {"ignore-lease", "", FlagKind::kBool, "false", "updates the key using its current lease"},
      {"ignore-value", "", FlagKind::kBool, "false", "updates the key using its current value"},
      {"lease", "", FlagKind::kString, "0", "lease ID (in hexadecimal) to attach to the key"},
      {"prev-kv", "", FlagKind::kBool, "false", "return the previous key-value pair before modification"},
  };
  return flags;
}

const std::vector<FlagSpec>& DelFlags() {
  static const std::vector<FlagSpec> flags = {
      {"from-key", "", FlagKind::kBool, "false",
       "delete keys that are greater than or equal to the given key using byte compare"},
      {"prefix", "", FlagKind::kBool, "false", "delete keys with matching prefix"},
      {"prev-kv", "", FlagKind::kBool, "false", "return deleted key-value pairs"},
  };
  return flags;
}

namespace {

int RunGet(Context& ctx) {
  absl::StatusOr<etcdserverpb::RangeRequest> request = GetRequestFrom(ctx.flags, ctx.args);
  if (!request.ok()) return ctx.Usage(request.status());
  bool value_only = ctx.flags.Bool("print-value-only");
  if (value_only && ctx.out.format() != OutputFormat::kSimple) {
    return ctx.Usage("print-value-only is only for `--write-out=simple`");
  }
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::RangeResponse> response = client->Range(*request);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Get(*response, value_only));
}

int RunPut(Context& ctx) {
  absl::StatusOr<etcdserverpb::PutRequest> request = PutRequestFrom(ctx.flags, ctx.args, true);
  if (!request.ok()) return ctx.Usage(request.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::PutResponse> response = client->PutRaw(*request);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Put(*response));
}

int RunDel(Context& ctx) {
  absl::StatusOr<etcdserverpb::DeleteRangeRequest> request = DelRequestFrom(ctx.flags, ctx.args);
  if (!request.ok()) return ctx.Usage(request.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  // A range delete of many keys can take a while: say so on a terminal.
  bool progress = !request->range_end().empty() && isatty(2);
  if (progress) std::fprintf(stderr, "deleting %s...\r", ctx.args[0].c_str());
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> response = client->DeleteRaw(*request);
  if (progress) std::fprintf(stderr, "\033[K");
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Del(*response));
}

int RunCompaction(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("compaction command needs 1 argument");
  int64_t revision = 0;
  if (!absl::SimpleAtoi(ctx.args[0], &revision)) {
    return ctx.Fail("strconv.ParseInt: parsing \"" + ctx.args[0] + "\": invalid syntax");
  }
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::CompactionResponse> response =
      client->Compact(revision, ctx.flags.Bool("physical"));
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Compaction(revision, *response));
}

}  // namespace

Command GetCommand() {
  return {.name = "get",
          .usage = "get [options] <key> [range_end]",
          .short_help = "Gets the key or a range of keys",
          .long_help = "Examples:\n\tetcctl get /config/mode\n\tetcctl get /config/ --prefix --keys-only\n"
                       "\tetcctl get a z --sort-by=MODIFY --order=DESCEND --limit=10\n"
                       "\tetcctl get /config/ --prefix --rev=42 -w json\n",
          .flags = GetFlags(),
          .run = RunGet};
}

Command PutCommand() {
  return {.name = "put",
          .usage = "put [options] <key> <value> (<value> can also be given from stdin)",
          .short_help = "Puts the given key into the store",
          .long_help = "When <value> begins with '-', insert '--' first: put <key> -- <value>.\n"
                       "Without <value> (and without --ignore-value), the value is read from stdin.\n\n"
                       "Examples:\n\tetcctl put /config/mode fast\n\tcat file | etcctl put /config/file\n"
                       "\tetcctl put /session/me alive --lease=694d77aa9e38260f\n",
          .flags = PutFlags(),
          .run = RunPut};
}

Command DelCommand() {
  return {.name = "del",
          .usage = "del [options] <key> [range_end]",
          .short_help = "Removes the specified key or range of keys [key, range_end)",
          .long_help = "Examples:\n\tetcctl del /config/mode\n\tetcctl del /config/ --prefix --prev-kv\n",
          .flags = DelFlags(),
          .run = RunDel};
}

Command CompactionCommand() {
  return {.name = "compaction",
          .usage = "compaction [options] <revision>",
          .short_help = "Compacts the event history in etcd",
          .long_help = "Examples:\n\tetcctl compaction 1234\n\tetcctl compaction --physical 1234\n",
          .flags = {{"physical", "", FlagKind::kBool, "false",
                     "'true' to wait for compaction to physically remove all old revisions"}},
          .run = RunCompaction};
}

}  // namespace etc::etcctl
