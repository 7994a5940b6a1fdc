// lease grant|revoke|timetolive|list|keep-alive.
#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"
#include "client/etcctl_signals.h"

namespace etc::etcctl {
namespace {

absl::StatusOr<int64_t> LeaseId(const std::string& text) {
  int64_t id = 0;
  if (!absl::SimpleHexAtoi(text, &id)) {
    return absl::InvalidArgumentError("bad lease ID arg (strconv.ParseInt: parsing \"" + text +
                                      "\": invalid syntax), expecting ID in Hex");
  }
  return id;
}

int RunGrant(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("lease grant command needs TTL argument");
  int64_t ttl_seconds = 0;
  if (!absl::SimpleAtoi(ctx.args[0], &ttl_seconds)) {
    return ctx.Usage("bad TTL (strconv.ParseInt: parsing \"" + ctx.args[0] + "\": invalid syntax)");
  }
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> response = client->Grant(ttl_seconds);
  if (!response.ok()) return ctx.Fail("failed to grant lease (" + ErrorText(response.status(), ctx.global) + ")");
  return Printed(ctx, ctx.out.Grant(*response));
}

int RunRevoke(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("lease revoke command needs 1 argument");
  absl::StatusOr<int64_t> id = LeaseId(ctx.args[0]);
  if (!id.ok()) return ctx.Usage(id.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> revoked = client->RevokeRaw(*id);
  if (!revoked.ok()) {
    return ctx.Fail("failed to revoke lease (" + ErrorText(revoked.status(), ctx.global) + ")");
  }
  return Printed(ctx, ctx.out.Revoke(*id, *revoked));
}

int RunTimeToLive(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("lease timetolive command needs lease ID as argument");
  absl::StatusOr<int64_t> id = LeaseId(ctx.args[0]);
  if (!id.ok()) return ctx.Usage(id.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  bool keys = ctx.flags.Bool("keys");
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> response = client->TimeToLive(*id, keys);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.TimeToLive(*response, keys));
}

int RunList(Context& ctx) {
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> response = client->LeaseLeases();
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Leases(*response));
}

int RunKeepAlive(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("lease keep-alive command needs lease ID as argument");
  absl::StatusOr<int64_t> id = LeaseId(ctx.args[0]);
  if (!id.ok()) return ctx.Usage(id.status());
  BlockStopSignals();
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  bool once = ctx.flags.Bool("once");
  for (;;) {
    absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> response = client->KeepAliveOnceResponse(*id);
    if (!response.ok()) return ctx.Fail(response.status());
    if (response->ttl() <= 0) {
      if (once) return ctx.Fail("etcdserver: requested lease not found");
      std::printf("lease %s expired or revoked.\n", Hex16(*id).c_str());
      return kExitOk;
    }
    if (int code = Printed(ctx, ctx.out.KeepAlive(*response)); code != kExitOk) return code;
    std::fflush(stdout);
    if (once) return kExitOk;
    // clientv3 renews a third of the way through the TTL.
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max<int64_t>(500, response->ttl() * 1000 / 3));
    int sig = WaitForSignalOr([deadline] { return std::chrono::steady_clock::now() >= deadline; });
    if (sig > 0) return 128 + sig;
  }
}

}  // namespace

Command LeaseCommand() {
  return {
      .name = "lease",
      .usage = "lease <subcommand>",
      .short_help = "Lease related commands",
      .subcommands =
          {
              {.name = "grant", .usage = "grant <ttl>", .short_help = "Creates leases",
               .long_help = "Examples:\n\tetcctl lease grant 60\n\tetcctl put k v --lease=$(etcctl lease grant 60 | cut -d' ' -f2)\n",
               .run = RunGrant},
              {.name = "keep-alive", .usage = "keep-alive [options] <leaseID>",
               .short_help = "Keeps leases alive (renew)",
               .long_help = "Examples:\n\tetcctl lease keep-alive 694d77aa9e38260f\n\tetcctl lease keep-alive --once 694d77aa9e38260f\n",
               .flags = {{"once", "", FlagKind::kBool, "false",
                          "Resets the keep-alive time to its original value and exits immediately"}},
               .run = RunKeepAlive},
              {.name = "list", .usage = "list", .short_help = "List all active leases",
               .long_help = "Examples:\n\tetcctl lease list -w json\n", .run = RunList},
              {.name = "revoke", .usage = "revoke <leaseID>", .short_help = "Revokes leases",
               .long_help = "Examples:\n\tetcctl lease revoke 694d77aa9e38260f\n", .run = RunRevoke},
              {.name = "timetolive", .usage = "timetolive <leaseID> [options]",
               .short_help = "Get lease information",
               .long_help = "Examples:\n\tetcctl lease timetolive 694d77aa9e38260f --keys\n",
               .flags = {{"keys", "", FlagKind::kBool, "false", "Get keys attached to this lease"}},
               .run = RunTimeToLive},
          },
  };
}

}  // namespace etc::etcctl
