// lock and elect: the v3lock and v3election recipes on a session lease
// kept alive until the command ends (Ctrl-C unlocks or resigns first).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>

#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"
#include "client/etcctl_signals.h"

namespace etc::etcctl {
namespace {

// Long enough for any wait a person would make; Ctrl-C ends it sooner.
constexpr std::chrono::hours kWaitForever{24 * 365};

struct Session {
  int64_t lease = 0;
  std::unique_ptr<client::KeepAlive> keep_alive;
};

absl::StatusOr<Session> NewSession(client::Client* client, int64_t ttl_seconds) {
  auto granted = client->Grant(ttl_seconds);
  if (!granted.ok()) return granted.status();
  Session session;
  session.lease = granted->id();
  session.keep_alive = client->KeepAliveForever(session.lease, granted->ttl());
  return session;
}

void EndSession(client::Client* client, Session& session) {
  session.keep_alive->Stop();
  (void)client->Revoke(session.lease);
}

// Runs `command` with the lock's key and revision in its environment;
// returns its exit status.
int RunHolding(const std::vector<std::string>& command, const std::string& key, int64_t revision) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("ETCD_LOCK_KEY", key.c_str(), 1);
    setenv("ETCD_LOCK_REV", std::to_string(revision).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "Error: exec: \"%s\": %s\n", command[0].c_str(), std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int RunLock(Context& ctx) {
  if (ctx.args.empty()) return ctx.Usage("lock takes a lock name argument and an optional command to execute");
  BlockStopSignals();
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<Session> session = NewSession(client, ctx.flags.Int("ttl"));
  if (!session.ok()) return ctx.Fail(session.status());
  auto locking = std::async(std::launch::async, [&] { return client->Lock(ctx.args[0], session->lease, kWaitForever); });
  int sig = WaitForSignalOr([&] { return locking.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  if (sig > 0) {
    EndSession(client, *session);  // the waiting lock key goes with the lease
    return 128 + sig;
  }
  absl::StatusOr<std::string> key = locking.get();
  if (!key.ok()) return ctx.Fail(key.status());
  auto held = client->Get(*key);
  if (!held.ok() || held->kvs_size() == 0) {
    EndSession(client, *session);
    return held.ok() ? ctx.Fail("lock lost on init") : ctx.Fail(held.status());
  }
  std::vector<std::string> command(ctx.args.begin() + 1, ctx.args.end());
  command.insert(command.end(), ctx.exec_args.begin(), ctx.exec_args.end());
  if (!command.empty()) {
    int code = RunHolding(command, *key, held->header().revision());
    absl::Status unlocked = client->Unlock(*key);
    EndSession(client, *session);
    // etcdctl reports a failed command as Go's exec error.
    if (code != 0) return ctx.Fail("exit status " + std::to_string(code));
    return unlocked.ok() ? kExitOk : ctx.Fail(unlocked);
  }
  (void)Printed(ctx, ctx.out.Get(*held));
  std::fflush(stdout);
  WaitForSignalOr([&] { return session->keep_alive->ttl() <= 0; });
  if (session->keep_alive->ttl() <= 0) return ctx.Fail("session expired");
  absl::Status unlocked = client->Unlock(*key);
  EndSession(client, *session);
  return unlocked.ok() ? kExitOk : ctx.Fail(unlocked);
}

// -l: prints the leader each time it changes, until Ctrl-C.
int Observe(Context& ctx, client::Client* client) {
  std::string last_key;
  int64_t last_revision = -1;
  for (;;) {
    auto leader = client->Leader(ctx.args[0]);
    if (leader.ok() && (leader->key() != last_key || leader->mod_revision() != last_revision)) {
      last_key = leader->key();
      last_revision = leader->mod_revision();
      etcdserverpb::RangeResponse shown;
      *shown.add_kvs() = *leader;
      shown.set_count(1);
      (void)Printed(ctx, ctx.out.Get(shown));
      std::fflush(stdout);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    if (WaitForSignalOr([deadline] { return std::chrono::steady_clock::now() >= deadline; }) > 0) {
      return kExitOk;
    }
  }
}

int RunElect(Context& ctx) {
  if (ctx.args.empty() || ctx.args.size() > 2) {
    return ctx.Usage("elect takes one election name argument and an optional proposal argument");
  }
  bool listen = ctx.flags.Bool("listen");
  if (ctx.args.size() == 1 && !listen) return ctx.Usage("no proposal argument but -l not set");
  if (ctx.args.size() == 2 && listen) return ctx.Usage("proposal given but -l is set");
  BlockStopSignals();
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  if (listen) return Observe(ctx, client);
  absl::StatusOr<Session> session = NewSession(client, 60);
  if (!session.ok()) return ctx.Fail(session.status());
  auto campaigning = std::async(std::launch::async, [&] {
    return client->Campaign(ctx.args[0], session->lease, ctx.args[1], kWaitForever);
  });
  int sig = WaitForSignalOr([&] { return campaigning.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  if (sig > 0) {
    EndSession(client, *session);
    return 128 + sig;
  }
  absl::StatusOr<v3electionpb::LeaderKey> leader = campaigning.get();
  if (!leader.ok()) return ctx.Fail(leader.status());
  auto held = client->Get(leader->key());
  if (!held.ok()) return ctx.Fail(held.status());
  (void)Printed(ctx, ctx.out.Get(*held));
  std::fflush(stdout);
  WaitForSignalOr([&] { return session->keep_alive->ttl() <= 0; });
  if (session->keep_alive->ttl() <= 0) return ctx.Fail("elect: session expired");
  absl::Status resigned = client->Resign(*leader);
  EndSession(client, *session);
  return resigned.ok() ? kExitOk : ctx.Fail(resigned);
}

}  // namespace

Command LockCommand() {
  return {.name = "lock",
          .usage = "lock <lockname> [exec-command arg1 arg2 ...]",
          .short_help = "Acquires a named lock",
          .long_help = "Holds the lock until Ctrl-C, or while the command runs (with ETCD_LOCK_KEY and\n"
                       "ETCD_LOCK_REV set); put '--' before a command that has flags.\n\n"
                       "Examples:\n\tetcctl lock deploy\n\tetcctl lock deploy -- ./deploy.sh --fast\n",
          .flags = {{"ttl", "", FlagKind::kInt, "10", "timeout for session"}},
          .run = RunLock,
          .takes_exec_args = true};
}

Command ElectCommand() {
  return {.name = "elect",
          .usage = "elect <election-name> [proposal]",
          .short_help = "Observes and participates in leader election",
          .long_help = "Campaigns with the proposal and, once leader, holds leadership until Ctrl-C;\n"
                       "with -l, prints each new leader.\n\n"
                       "Examples:\n\tetcctl elect scheduler node-a\n\tetcctl elect -l scheduler\n",
          .flags = {{"listen", "l", FlagKind::kBool, "false", "observation mode"}},
          .run = RunElect};
}

}  // namespace etc::etcctl
