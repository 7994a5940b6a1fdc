// watch: prints events until interrupted, optionally running a command per
// event (after "--"), or reads "watch ..." lines under -i.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "client/etcctl_command.h"
#include "client/etcctl_flags.h"
#include "client/etcctl_output.h"
#include "client/etcctl_signals.h"

namespace etc::etcctl {
namespace {

const std::vector<FlagSpec>& WatchFlags() {
  static const std::vector<FlagSpec> flags = {
      {"interactive", "i", FlagKind::kBool, "false", "Interactive mode"},
      {"prefix", "", FlagKind::kBool, "false", "Watch on a prefix if prefix is set"},
      {"prev-kv", "", FlagKind::kBool, "false", "get the previous key-value pair before the event happens"},
      {"rev", "", FlagKind::kInt, "0", "Revision to start watching"},
      {"tree", "", FlagKind::kBool, "false",
       "Show the subtree below the path as a live tree (changes marked)"},
  };
  return flags;
}

absl::StatusOr<etcdserverpb::WatchCreateRequest> CreateFrom(const ParsedFlags& flags,
                                                            const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) return absl::InvalidArgumentError("bad number of arguments");
  etcdserverpb::WatchCreateRequest create;
  create.set_key(args[0]);
  if (args.size() == 2) {
    if (flags.Bool("prefix")) {
      return absl::InvalidArgumentError("`range_end` and `--prefix` are mutually exclusive");
    }
    create.set_range_end(args[1]);
  }
  if (flags.Bool("prefix")) {
    if (args[0].empty()) {
      create.set_key(std::string(1, '\0'));
      create.set_range_end(std::string(1, '\0'));
    } else {
      create.set_range_end(client::PrefixEnd(args[0]));
    }
  }
  create.set_start_revision(flags.Int("rev"));
  create.set_prev_kv(flags.Bool("prev-kv"));
  return create;
}

// Runs `command` with the event in its environment, as etcdctl does.
void RunForEvent(const std::vector<std::string>& command, int64_t revision, const mvccpb::Event& e) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("ETCD_WATCH_REVISION", std::to_string(revision).c_str(), 1);
    setenv("ETCD_WATCH_EVENT_TYPE", e.type() == mvccpb::Event::DELETE ? "\"DELETE\"" : "\"PUT\"", 1);
    setenv("ETCD_WATCH_KEY", GoQuote(e.kv().key()).c_str(), 1);
    setenv("ETCD_WATCH_VALUE", GoQuote(e.kv().value()).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "command %s error (%s)\n", command[0].c_str(), std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
}

// State shared by the watchers' threads and the waiting main thread.
struct WatchState {
  std::mutex print_mu;
  std::atomic<bool> canceled{false};
};

std::unique_ptr<client::Watcher> StartWatch(Context& ctx, client::Client* client,
                                            etcdserverpb::WatchCreateRequest create,
                                            WatchState* state) {
  std::vector<std::string> command = ctx.exec_args;
  return client->Watch(std::move(create), [&ctx, state, command](const etcdserverpb::WatchResponse& r) {
    std::lock_guard<std::mutex> lock(state->print_mu);
    if (r.canceled()) {
      // clientv3's WatchResponse.Err() text.
      std::string why = r.compact_revision() != 0 ? "etcdserver: mvcc: required revision has been compacted"
                        : !r.cancel_reason().empty() ? r.cancel_reason()
                                                     : "etcdserver: mvcc: required revision is a future revision";
      std::fprintf(stderr, "watch was canceled (%s)\n", why.c_str());
      state->canceled.store(true);
    }
    // clientv3 keeps the created notice to itself.
    if (r.created() && r.events_size() == 0 && !r.canceled()) return;
    if (r.events_size() == 0 && !r.canceled()) {
      std::printf("progress notify: %lld\n", static_cast<long long>(r.header().revision()));
    }
    (void)ctx.out.Watch(r);
    std::fflush(stdout);
    if (!command.empty()) {
      for (const mvccpb::Event& e : r.events()) RunForEvent(command, r.header().revision(), e);
    }
  });
}

// Reads "watch ..." lines and starts a watcher for each, until stdin ends.
void ReadWatchLines(Context& ctx, client::Client* client, WatchState* state,
                    std::vector<std::unique_ptr<client::Watcher>>* watchers) {
  static const std::vector<Command> kWatch = {
      {.name = "watch", .usage = "", .short_help = "", .flags = WatchFlags()}};
  std::string line;
  while (std::getline(std::cin, line)) {
    std::vector<std::string> words;
    for (size_t i = 0; i < line.size();) {
      size_t end = line.find(' ', i);
      if (end == std::string::npos) end = line.size();
      if (end > i) words.push_back(line.substr(i, end - i));
      i = end + 1;
    }
    absl::StatusOr<Invocation> inv = ParseCommandLine(words, kWatch);
    if (words.empty() || words[0] != "watch" || !inv.ok() || inv->path.empty()) {
      std::fprintf(stderr, "Invalid command %s (only support watch)\n", line.c_str());
      continue;
    }
    absl::StatusOr<etcdserverpb::WatchCreateRequest> create = CreateFrom(inv->flags, inv->args);
    if (!create.ok()) {
      std::fprintf(stderr, "Invalid command %s (%s)\n", line.c_str(),
                   std::string(create.status().message()).c_str());
      continue;
    }
    watchers->push_back(StartWatch(ctx, client, *create, state));
  }
}

int RunInteractive(Context& ctx, client::Client* client, WatchState* state) {
  // stdin is read on its own thread so Ctrl-C ends the command at any time;
  // the process leaves without joining it (etcctl_main quick-exits).
  auto* watchers = new std::vector<std::unique_ptr<client::Watcher>>();
  std::thread([&ctx, client, state, watchers] { ReadWatchLines(ctx, client, state, watchers); }).detach();
  int signal_number = WaitForSignalOr([state] { return state->canceled.load(); });
  // The watchers' threads still use the context: leave from here, before
  // it is destroyed.
  std::fflush(stdout);
  std::quick_exit(signal_number > 0 ? 128 + signal_number : kExitError);
}

int RunWatch(Context& ctx) {
  if (ctx.flags.Bool("tree")) return RunTreeWatch(ctx);
  BlockStopSignals();  // before any thread starts: only sigwait sees them
  WatchState state;
  client::Client* client = nullptr;
  if (ctx.flags.Bool("interactive")) {
    client = ctx.Client();
    return client == nullptr ? kExitError : RunInteractive(ctx, client, &state);
  }
  absl::StatusOr<etcdserverpb::WatchCreateRequest> create = CreateFrom(ctx.flags, ctx.args);
  if (!create.ok()) return ctx.Usage(create.status());
  client = ctx.Client();
  if (client == nullptr) return kExitError;
  std::unique_ptr<client::Watcher> watcher = StartWatch(ctx, client, *create, &state);
  int signal_number = WaitForSignalOr([&state] { return state.canceled.load(); });
  watcher->Stop();
  if (signal_number > 0) return 128 + signal_number;
  return ctx.Fail("watch is canceled by the server");
}

}  // namespace

Command WatchCommand() {
  return {.name = "watch",
          .usage = "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
          .short_help = "Watches events stream on keys or prefixes",
          .long_help = "Prints events until interrupted (Ctrl-C). A command after '--' runs once per\n"
                       "event with ETCD_WATCH_REVISION, ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and\n"
                       "ETCD_WATCH_VALUE set. With -i, reads \"watch [options] <key>\" lines from stdin.\n\n"
                       "Examples:\n\tetcctl watch /config/ --prefix\n\tetcctl watch foo --rev=1 --prev-kv\n"
                       "\tetcctl watch foo -- sh -c 'echo $ETCD_WATCH_KEY changed'\n"
                       "\tetcctl watch --tree /services\n",
          .flags = WatchFlags(),
          .run = RunWatch,
          .takes_exec_args = true};
}

}  // namespace etc::etcctl
