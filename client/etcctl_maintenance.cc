// snapshot save, alarm list|disarm, defrag and version.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_join.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

constexpr char kVersion[] = "3.4.23-etc";
constexpr char kApiVersion[] = "3.4";

int RunSnapshotSave(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("snapshot save expects one argument");
  if (ctx.global.endpoints.size() != 1) {
    return ctx.Usage("snapshot must be requested to one selected node, not multiple [" +
                     absl::StrJoin(ctx.global.endpoints, " ") + "]");
  }
  const std::string& path = ctx.args[0];
  std::string partial = path + ".part";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) return ctx.Fail("could not open " + partial + " (" + std::strerror(errno) + ")");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  // Progress only on a terminal: scripts get clean stderr.
  bool progress = isatty(2);
  uint64_t received_bytes = 0;
  absl::Status streamed = client->Snapshot([&](const etcdserverpb::SnapshotResponse& chunk) {
    out.write(chunk.blob().data(), static_cast<std::streamsize>(chunk.blob().size()));
    received_bytes += chunk.blob().size();
    if (progress) {
      std::fprintf(stderr, "\rreceived %s (%llu bytes)\033[K", HumanizeBytes(received_bytes).c_str(),
                   static_cast<unsigned long long>(received_bytes));
    }
    return static_cast<bool>(out);
  });
  if (progress) std::fprintf(stderr, "\r\033[K");
  out.close();
  if (!streamed.ok() || !out) {
    std::remove(partial.c_str());
    return streamed.ok() ? ctx.Fail("could not write " + partial) : ctx.Fail(streamed);
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    return ctx.Fail("could not rename " + partial + " to " + path + " (" + std::strerror(errno) + ")");
  }
  std::printf("Snapshot saved at %s\n", path.c_str());
  return kExitOk;
}

int RunAlarmList(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("alarm list command accepts no arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  etcdserverpb::AlarmRequest request;
  request.set_action(etcdserverpb::AlarmRequest::GET);
  auto response = client->Alarm(request);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.Alarm(*response));
}

int RunAlarmDisarm(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("alarm disarm command accepts no arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  // As clientv3 disarms "all": list the alarms, then deactivate each.
  etcdserverpb::AlarmRequest request;
  request.set_action(etcdserverpb::AlarmRequest::GET);
  auto listed = client->Alarm(request);
  if (!listed.ok()) return ctx.Fail(listed.status());
  etcdserverpb::AlarmResponse all;
  *all.mutable_header() = listed->header();
  for (const etcdserverpb::AlarmMember& alarm : listed->alarms()) {
    etcdserverpb::AlarmRequest disarm;
    disarm.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    disarm.set_memberid(alarm.memberid());
    disarm.set_alarm(alarm.alarm());
    auto response = client->Alarm(disarm);
    if (!response.ok()) return ctx.Fail(response.status());
    *all.mutable_header() = response->header();
    for (const auto& a : response->alarms()) *all.add_alarms() = a;
  }
  return Printed(ctx, ctx.out.Alarm(all));
}

int RunDefrag(Context& ctx) {
  if (!ctx.flags.String("data-dir").empty()) {
    return ctx.Usage("defrag --data-dir is not supported by etcctl (defragment a running member instead)");
  }
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsToVisit(ctx);
  if (!endpoints.ok()) return endpoints.status().message().empty() ? kExitError : ctx.Fail(endpoints.status());
  bool failed = false;
  for (const std::string& endpoint : *endpoints) {
    size_t scheme = endpoint.find("://");
    auto client = ctx.ClientFor(scheme == std::string::npos ? endpoint : endpoint.substr(scheme + 3));
    absl::Status done = client.ok() ? (*client)->Defragment().status() : client.status();
    if (!done.ok()) {
      failed = true;
      std::fprintf(stderr, "Failed to defragment etcd member[%s] (%s)\n", endpoint.c_str(),
                   ErrorText(done, ctx.global).c_str());
      continue;
    }
    std::printf("Finished defragmenting etcd member[%s]\n", endpoint.c_str());
  }
  return failed ? kExitError : kExitOk;
}

int RunVersion(Context& ctx) {
  std::printf("etcctl version: %s\nAPI version: %s\n", kVersion, kApiVersion);
  return kExitOk;
}

}  // namespace

Command SnapshotCommand() {
  return {.name = "snapshot",
          .usage = "snapshot <subcommand>",
          .short_help = "Manages etcd node snapshots",
          .subcommands = {{.name = "save", .usage = "save <filename>",
                           .short_help = "Stores an etcd node backend snapshot to a given file",
                           .long_help = "Needs exactly one endpoint. Writes <filename>.part, then renames it.\n\n"
                                        "Examples:\n\tetcctl --endpoints=127.0.0.1:2379 snapshot save backup.db\n",
                           .run = RunSnapshotSave}}};
}

Command AlarmCommand() {
  return {.name = "alarm",
          .usage = "alarm <subcommand>",
          .short_help = "Alarm related commands",
          .subcommands = {
              {.name = "disarm", .usage = "disarm", .short_help = "Disarms all alarms",
               .long_help = "Examples:\n\tetcctl alarm disarm\n", .run = RunAlarmDisarm},
              {.name = "list", .usage = "list", .short_help = "Lists all alarms",
               .long_help = "Examples:\n\tetcctl alarm list\n", .run = RunAlarmList},
          }};
}

Command DefragCommand() {
  return {.name = "defrag",
          .usage = "defrag [--cluster]",
          .short_help = "Defragments the storage of the etcd members with given endpoints",
          .long_help = "Examples:\n\tetcctl defrag --cluster\n",
          .flags = {{"cluster", "", FlagKind::kBool, "false", "use all endpoints from the cluster member list"},
                    {"data-dir", "", FlagKind::kString, "", "not supported by etcctl"}},
          .run = RunDefrag};
}

Command VersionCommand() {
  return {.name = "version", .usage = "version", .short_help = "Prints the version of etcctl",
          .run = RunVersion};
}

}  // namespace etc::etcctl
