// etcctl: etc's command line, spelled and printing as etcdctl 3.4 does.
//
//   etcctl --endpoints=127.0.0.1:2379 put /config/mode fast
//   etcctl get /config/ --prefix -w json
//   etcctl help get
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>
#include <vector>

#include "client/etcctl_command.h"
#include "client/etcctl_flags.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

int UsageError(const std::string& message, bool color) {
  std::fprintf(stderr, color ? "\033[31mError:\033[0m %s\n" : "Error: %s\n", message.c_str());
  return kExitUsage;
}

int Run(const std::vector<std::string>& argv) {
  const char* no_color = std::getenv("NO_COLOR");
  bool color_stderr = isatty(2) && no_color == nullptr;
  absl::StatusOr<Invocation> inv = ParseCommandLine(argv, AllCommands());
  if (!inv.ok()) return UsageError(std::string(inv.status().message()), color_stderr);
  if (inv->path.empty() || inv->help || inv->path.back()->run == nullptr) {
    // etcdctl prints the help of a group named without its subcommand, and succeeds.
    std::fputs(HelpText(inv->path).c_str(), stdout);
    return inv->path.empty() && !inv->help && !inv->args.empty() ? kExitUsage : kExitOk;
  }
  absl::StatusOr<GlobalOptions> global = GlobalOptionsFrom(inv->flags, [](const char* name) {
    return static_cast<const char*>(std::getenv(name));
  });
  if (!global.ok()) return UsageError(std::string(global.status().message()), color_stderr);
  const Command& command = *inv->path.back();
  std::vector<std::string> args = inv->args;
  std::vector<std::string> exec_args = inv->exec_args;
  if (!command.takes_exec_args) {
    args.insert(args.end(), exec_args.begin(), exec_args.end());
    exec_args.clear();
  }
  Output output(global->write_out, global->hex, global->color_stdout);
  Context context(*global, inv->flags, std::move(args), std::move(exec_args), &output);
  int code = command.run(context);
  std::fflush(stdout);
  return code;
}

}  // namespace
}  // namespace etc::etcctl

int main(int argc, char** argv) {
  // gRPC's own log lines (TLS handshake failures, reconnects) would bury
  // etcctl's one-line error; GRPC_VERBOSITY set by the user still wins.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  std::vector<std::string> args(argv + 1, argv + argc);
  // The process may leave with threads (watchers, keep-alives) still
  // blocked in gRPC: leave without running their destructors.
  int code = etc::etcctl::Run(args);
  std::fflush(stdout);
  std::fflush(stderr);
  std::quick_exit(code);
}
