// etcctl's command table: every command is a Command value (name, usage,
// help, flags, subcommands, handler) built by one function in its own
// file and listed once in etcctl_commands.cc. Adding a command is one new
// file (a function returning its Command) plus one line in AllCommands().
//
//   Command Example() {
//     return {.name = "hello", .usage = "hello <name>", .short_help = "Greets",
//             .long_help = "Examples:\n  etcctl hello world\n",
//             .flags = {{.name = "loud", .kind = FlagKind::kBool, .help = "shout"}},
//             .run = [](Context& ctx) { std::printf("hi %s\n", ctx.args[0].c_str()); return 0; }};
//   }
//
// Exit codes: 0 success, 1 an error from the server or the system, 2 a
// usage error (bad flags or arguments): what scripts can rely on.
#ifndef ETC_CLIENT_ETCCTL_COMMAND_H_
#define ETC_CLIENT_ETCCTL_COMMAND_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"

namespace etc::etcctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

enum class FlagKind { kBool, kString, kInt, kDuration };

struct FlagSpec {
  std::string name;       // without dashes: "prefix"
  std::string shorthand;  // one letter or ""
  FlagKind kind = FlagKind::kBool;
  std::string default_value = "";  // as typed on a command line ("false" for a bool if empty)
  std::string help = "";
};

// Flags as typed, before interpretation: the handler asks for them by name.
class ParsedFlags {
 public:
  void Set(const std::string& name, std::string value);
  void SetDefault(const std::string& name, std::string value);
  bool Changed(const std::string& name) const { return changed_.count(name) > 0; }
  std::string String(const std::string& name) const;
  bool Bool(const std::string& name) const;
  // Flag values were validated when parsed, so these cannot fail.
  int64_t Int(const std::string& name) const;
  std::chrono::milliseconds Duration(const std::string& name) const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> changed_;
};

enum class OutputFormat { kSimple, kJson, kTable, kFields };

struct GlobalOptions {
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};
  std::string user;
  std::string password;
  std::string cacert;
  std::string cert;
  std::string key;
  bool insecure_skip_tls_verify = false;
  bool hex = false;
  OutputFormat write_out = OutputFormat::kSimple;
  bool color_stdout = false;  // stdout is a terminal and NO_COLOR is unset
  bool color_stderr = false;
};

class Output;

// What a handler gets: the global options, its own flags and arguments,
// a connection made on first use and the printer for -w.
class Context {
 public:
  Context(GlobalOptions global, ParsedFlags flags, std::vector<std::string> args,
          std::vector<std::string> exec_args, Output* output)
      : global(std::move(global)),
        flags(std::move(flags)),
        args(std::move(args)),
        exec_args(std::move(exec_args)),
        out(*output) {}

  // The client for the global endpoints, connected on first use; nullptr
  // after printing the error (the handler returns kExitError).
  client::Client* Client();
  // A client for one endpoint (endpoint status/health, defrag).
  absl::StatusOr<std::unique_ptr<client::Client>> ClientFor(const std::string& endpoint) const;

  // Print "Error: ..." (red on a terminal) and return the exit code.
  int Fail(const absl::Status& status) const;
  int Fail(std::string_view message) const;
  int Usage(std::string_view message) const;
  int Usage(const absl::Status& status) const { return Usage(std::string(status.message())); }

  const GlobalOptions global;
  const ParsedFlags flags;
  const std::vector<std::string> args;
  // The words after a literal "--" (watch's and lock's command to run).
  const std::vector<std::string> exec_args;
  Output& out;

 private:
  client::ClientOptions ClientOptionsFor(std::vector<std::string> endpoints) const;
  std::unique_ptr<client::Client> client_;
};

struct Command {
  std::string name;
  std::string usage;       // "get [options] <key> [range_end]"
  std::string short_help;  // one line
  std::string long_help = "";  // paragraphs and examples
  std::vector<FlagSpec> flags = {};
  std::vector<Command> subcommands = {};
  std::function<int(Context&)> run = nullptr;  // null: a group ("lease")
  // Words after "--" go to Context::exec_args (a command to run) rather
  // than to the arguments ("put -- key -value").
  bool takes_exec_args = false;
};

// Every top-level command, in help order (etcctl_commands.cc).
const std::vector<Command>& AllCommands();

// The global flags and their ETCDCTL_* variables (etcctl_flags.cc).
const std::vector<FlagSpec>& GlobalFlagSpecs();

// One constructor per file.
Command GetCommand();
Command PutCommand();
Command DelCommand();
Command TxnCommand();
Command CompactionCommand();
Command WatchCommand();
Command LeaseCommand();
Command MemberCommand();
Command EndpointCommand();
Command SnapshotCommand();
Command AlarmCommand();
Command DefragCommand();
Command VersionCommand();
Command UserCommand();
Command RoleCommand();
Command AuthCommand();
Command LockCommand();
Command ElectCommand();
Command LsCommand();
Command TreeCommand();
Command DuCommand();
Command CompletionCommand();
Command HelpCommand();

// `watch --tree`: the live view of a subtree (etcctl_tree.cc).
int RunTreeWatch(Context& ctx);

// Asks on stderr and reads a line from stdin with the terminal's echo off
// (passwords, as etcdctl asks for them).
std::string AskHidden(const std::string& prompt);

// Help text for the command at `path` (empty: etcctl itself).
std::string HelpText(const std::vector<const Command*>& path);

// --endpoints, or with --cluster every member's client URLs.
absl::StatusOr<std::vector<std::string>> EndpointsToVisit(Context& ctx);

// A status's text as etcdctl prints it, with what to do where we know.
std::string ErrorText(const absl::Status& status, const GlobalOptions& global);

}  // namespace etc::etcctl

#endif  // ETC_CLIENT_ETCCTL_COMMAND_H_
