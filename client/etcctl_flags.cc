#include "client/etcctl_flags.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace etc::etcctl {

// ------------------------------------------------------------ ParsedFlags --

void ParsedFlags::Set(const std::string& name, std::string value) {
  values_[name] = std::move(value);
  changed_.insert(name);
}

void ParsedFlags::SetDefault(const std::string& name, std::string value) {
  if (values_.count(name) == 0) values_[name] = std::move(value);
}

std::string ParsedFlags::String(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::string() : it->second;
}

bool ParsedFlags::Bool(const std::string& name) const { return String(name) == "true"; }

int64_t ParsedFlags::Int(const std::string& name) const {
  int64_t value = 0;
  (void)absl::SimpleAtoi(String(name), &value);
  return value;
}

std::chrono::milliseconds ParsedFlags::Duration(const std::string& name) const {
  return ParseGoDuration(String(name)).value_or(std::chrono::milliseconds(0));
}

// ---------------------------------------------------------- global flags --

const std::vector<FlagSpec>& GlobalFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"cacert", "", FlagKind::kString, "",
       "verify certificates of TLS-enabled secure servers using this CA bundle"},
      {"cert", "", FlagKind::kString, "", "identify secure client using this TLS certificate file"},
      {"command-timeout", "", FlagKind::kDuration, "5s",
       "timeout for short running command (excluding dial timeout)"},
      {"debug", "", FlagKind::kBool, "false", "accepted for etcdctl's scripts; ignored"},
      {"dial-timeout", "", FlagKind::kDuration, "2s", "dial timeout for client connections"},
      {"endpoints", "", FlagKind::kString, "127.0.0.1:2379", "gRPC endpoints (comma separated)"},
      {"help", "h", FlagKind::kBool, "false", "help for etcctl or the command"},
      {"hex", "", FlagKind::kBool, "false", "print byte strings as hex encoded strings"},
      {"insecure-skip-tls-verify", "", FlagKind::kBool, "false",
       "skip server certificate verification (CAUTION: for testing only)"},
      {"insecure-transport", "", FlagKind::kBool, "true",
       "disable transport security for client connections (ignored: TLS is used when a "
       "certificate flag is given)"},
      {"keepalive-time", "", FlagKind::kDuration, "2s", "accepted for etcdctl's scripts; ignored"},
      {"keepalive-timeout", "", FlagKind::kDuration, "6s", "accepted for etcdctl's scripts; ignored"},
      {"key", "", FlagKind::kString, "", "identify secure client using this TLS key file"},
      {"password", "", FlagKind::kString, "",
       "password for authentication (if this option is used, --user option shouldn't include "
       "password)"},
      {"user", "", FlagKind::kString, "",
       "username[:password] for authentication (prompt if password is not supplied)"},
      {"write-out", "w", FlagKind::kString, "simple",
       "set the output format (fields, json, simple, table)"},
  };
  return specs;
}

std::string EnvName(std::string_view flag) {
  std::string name = "ETCDCTL_";
  for (char c : flag) name += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return name;
}

absl::StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  if (text == "0") return std::chrono::milliseconds(0);
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    double number = 0;
    if (start == i || !absl::SimpleAtod(std::string(text.substr(start, i - start)), &number)) {
      return absl::InvalidArgumentError("time: invalid duration \"" + std::string(text) + "\"");
    }
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double unit_ms = unit == "h"    ? 3600e3
                     : unit == "m"  ? 60e3
                     : unit == "s"  ? 1e3
                     : unit == "ms" ? 1
                     : unit == "us" ? 1e-3
                     : unit == "ns" ? 1e-6
                                    : -1;
    if (unit_ms < 0) {
      return absl::InvalidArgumentError("time: missing or unknown unit in duration \"" +
                                        std::string(text) + "\"");
    }
    total_ms += number * unit_ms;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total_ms));
}

// ------------------------------------------------------------- parsing --

namespace {

const FlagSpec* FindFlag(const std::vector<const FlagSpec*>& known, std::string_view name,
                         bool shorthand) {
  for (const FlagSpec* spec : known) {
    if (shorthand ? spec->shorthand == name : spec->name == name) return spec;
  }
  return nullptr;
}

absl::Status CheckValue(const FlagSpec& spec, const std::string& value) {
  int64_t number = 0;
  switch (spec.kind) {
    case FlagKind::kBool:
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError("invalid argument \"" + value + "\" for \"--" +
                                          spec.name + "\" flag: strconv.ParseBool: parsing \"" +
                                          value + "\": invalid syntax");
      }
      return absl::OkStatus();
    case FlagKind::kInt:
      if (!absl::SimpleAtoi(value, &number)) {
        return absl::InvalidArgumentError("invalid argument \"" + value + "\" for \"--" +
                                          spec.name + "\" flag: strconv.ParseInt: parsing \"" +
                                          value + "\": invalid syntax");
      }
      return absl::OkStatus();
    case FlagKind::kDuration:
      if (!ParseGoDuration(value).ok()) {
        return absl::InvalidArgumentError("invalid argument \"" + value + "\" for \"--" +
                                          spec.name + "\" flag: " +
                                          std::string(ParseGoDuration(value).status().message()));
      }
      return absl::OkStatus();
    case FlagKind::kString:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

std::vector<const FlagSpec*> KnownFlags(const std::vector<const Command*>& path) {
  std::vector<const FlagSpec*> known;
  for (const FlagSpec& spec : GlobalFlagSpecs()) known.push_back(&spec);
  if (!path.empty()) {
    for (const FlagSpec& spec : path.back()->flags) known.push_back(&spec);
  }
  return known;
}

// Reads one flag token (and maybe its value, advancing *i).
absl::Status ParseFlag(const std::vector<std::string>& argv, size_t* i,
                       const std::vector<const Command*>& path, Invocation* inv) {
  const std::string& token = argv[*i];
  bool is_long = token.rfind("--", 0) == 0;
  std::string body = token.substr(is_long ? 2 : 1);
  std::string name = body;
  std::string value;
  bool has_value = false;
  if (size_t eq = body.find('='); eq != std::string::npos) {
    name = body.substr(0, eq);
    value = body.substr(eq + 1);
    has_value = true;
  } else if (!is_long && body.size() > 1) {
    name = body.substr(0, 1);  // -wjson
    value = body.substr(1);
    has_value = true;
  }
  const FlagSpec* spec = FindFlag(KnownFlags(path), name, !is_long);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(is_long ? "unknown flag: --" + name
                                              : "unknown shorthand flag: '" + name + "' in " + token);
  }
  if (!has_value) {
    if (spec->kind == FlagKind::kBool) {
      value = "true";
    } else if (*i + 1 < argv.size()) {
      value = argv[++*i];
    } else {
      return absl::InvalidArgumentError("flag needs an argument: --" + spec->name);
    }
  }
  if (absl::Status s = CheckValue(*spec, value); !s.ok()) return s;
  inv->flags.Set(spec->name, value);
  return absl::OkStatus();
}

const Command* FindSubcommand(const std::vector<Command>& commands, const std::string& name) {
  for (const Command& command : commands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& argv,
                                            const std::vector<Command>& commands) {
  Invocation inv;
  bool after_dashes = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (after_dashes) {
      inv.exec_args.push_back(token);
      continue;
    }
    if (token == "--") {
      after_dashes = true;
      continue;
    }
    if (token.size() > 1 && token[0] == '-') {
      if (absl::Status s = ParseFlag(argv, &i, inv.path, &inv); !s.ok()) return s;
      continue;
    }
    const std::vector<Command>& choices = inv.path.empty() ? commands : inv.path.back()->subcommands;
    if (inv.args.empty() && (inv.path.empty() || !choices.empty())) {
      const Command* next = FindSubcommand(choices, token);
      if (next != nullptr) {
        inv.path.push_back(next);
        continue;
      }
      if (inv.path.empty()) {
        return absl::InvalidArgumentError("unknown command \"" + token +
                                          "\" for \"etcctl\" (see etcctl --help)");
      }
    }
    inv.args.push_back(token);
  }
  inv.help = inv.flags.Bool("help");
  for (const FlagSpec* spec : KnownFlags(inv.path)) {
    inv.flags.SetDefault(spec->name, spec->kind == FlagKind::kBool && spec->default_value.empty()
                                         ? "false"
                                         : spec->default_value);
  }
  return inv;
}

// ------------------------------------------------------ global options --

namespace {

// The flag's value, or its ETCDCTL_ variable's if the flag was not typed.
absl::StatusOr<std::string> Resolved(const ParsedFlags& flags, const FlagSpec& spec,
                                     const Getenv& getenv) {
  if (flags.Changed(spec.name)) return flags.String(spec.name);
  const char* env = getenv(EnvName(spec.name).c_str());
  if (env == nullptr || *env == '\0') return flags.String(spec.name);
  std::string value = env;
  if (absl::Status s = CheckValue(spec, value); !s.ok()) {
    return absl::InvalidArgumentError(EnvName(spec.name) + ": " + std::string(s.message()));
  }
  return value;
}

absl::StatusOr<OutputFormat> FormatNamed(const std::string& name) {
  if (name == "simple") return OutputFormat::kSimple;
  if (name == "json") return OutputFormat::kJson;
  if (name == "table") return OutputFormat::kTable;
  if (name == "fields") return OutputFormat::kFields;
  return absl::InvalidArgumentError("unsupported output format \"" + name +
                                    "\" (use simple, json, table or fields)");
}

bool ColorWanted(int fd, const Getenv& getenv) {
  const char* no_color = getenv("NO_COLOR");
  const char* term = getenv("TERM");
  return isatty(fd) && no_color == nullptr && !(term != nullptr && std::string(term) == "dumb");
}

}  // namespace

absl::StatusOr<GlobalOptions> GlobalOptionsFrom(const ParsedFlags& flags, const Getenv& getenv) {
  if (const char* api = getenv("ETCDCTL_API"); api != nullptr && *api != '\0' &&
                                                std::string(api) != "3") {
    return absl::InvalidArgumentError(
        "ETCDCTL_API=" + std::string(api) +
        " is not supported: etcctl speaks etcd's v3 API only (unset ETCDCTL_API or set it to 3)");
  }
  std::map<std::string, std::string> value;
  for (const FlagSpec& spec : GlobalFlagSpecs()) {
    absl::StatusOr<std::string> v = Resolved(flags, spec, getenv);
    if (!v.ok()) return v.status();
    value[spec.name] = *v;
  }
  GlobalOptions global;
  for (absl::string_view endpoint : absl::StrSplit(value["endpoints"], ',', absl::SkipWhitespace())) {
    std::string e(endpoint);
    e.erase(0, e.find_first_not_of(' '));
    e.erase(e.find_last_not_of(' ') + 1);
    // gRPC wants host:port; etcdctl also takes URLs.
    for (std::string_view scheme : {"http://", "https://"}) {
      if (e.rfind(scheme, 0) == 0) e = e.substr(scheme.size());
    }
    global.endpoints.push_back(e);
  }
  global.dial_timeout = *ParseGoDuration(value["dial-timeout"]);
  global.command_timeout = *ParseGoDuration(value["command-timeout"]);
  global.user = value["user"];
  global.password = value["password"];
  global.cacert = value["cacert"];
  global.cert = value["cert"];
  global.key = value["key"];
  global.insecure_skip_tls_verify = value["insecure-skip-tls-verify"] == "true";
  global.hex = value["hex"] == "true";
  absl::StatusOr<OutputFormat> format = FormatNamed(value["write-out"]);
  if (!format.ok()) return format.status();
  global.write_out = *format;
  global.color_stdout = ColorWanted(1, getenv);
  global.color_stderr = ColorWanted(2, getenv);
  return global;
}

}  // namespace etc::etcctl
