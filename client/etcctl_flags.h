// etcctl's command line: pflag-style flags (--name=value, --name value,
// -w json, a bool alone, flags anywhere among the arguments, "--" ending
// them), the command path (a command and its subcommand), and the global
// options with their ETCDCTL_* environment variables (a flag beats its
// variable; ETCDCTL_API=3 is accepted and ignored, any other API refused).
//
//   absl::StatusOr<Invocation> inv = ParseCommandLine({"get", "--prefix", "/a"}, AllCommands());
//   absl::StatusOr<GlobalOptions> global = GlobalOptionsFrom(inv->flags, getenv);
#ifndef ETC_CLIENT_ETCCTL_FLAGS_H_
#define ETC_CLIENT_ETCCTL_FLAGS_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "client/etcctl_command.h"

namespace etc::etcctl {

struct Invocation {
  std::vector<const Command*> path;  // empty: no command named
  ParsedFlags flags;                 // global and the command's own
  std::vector<std::string> args;
  std::vector<std::string> exec_args;  // after "--"
  bool help = false;                   // -h/--help seen
};

// Errors (InvalidArgument, a usage error): an unknown flag or command, a
// flag without its value, a value of the wrong kind.
absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& argv,
                                            const std::vector<Command>& commands);

// The environment variable of a global flag: "dial-timeout" -> ETCDCTL_DIAL_TIMEOUT.
std::string EnvName(std::string_view flag);

using Getenv = std::function<const char*(const char*)>;

// Errors (InvalidArgument): a bad -w, a bad ETCDCTL_* value, ETCDCTL_API other than 3.
absl::StatusOr<GlobalOptions> GlobalOptionsFrom(const ParsedFlags& flags, const Getenv& getenv);

// Go's time.ParseDuration for what people type: "2s", "500ms", "1m30s", "1.5s".
absl::StatusOr<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

}  // namespace etc::etcctl

#endif  // ETC_CLIENT_ETCCTL_FLAGS_H_
