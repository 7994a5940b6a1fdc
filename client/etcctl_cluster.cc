// member add|remove|update|promote|list and endpoint status|health.
#include <chrono>
#include <cstdio>
#include <future>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

absl::StatusOr<uint64_t> MemberId(const Context& ctx) {
  if (ctx.args.size() != 1) return absl::InvalidArgumentError("member ID is not provided");
  uint64_t id = 0;
  if (!absl::SimpleHexAtoi(ctx.args[0], &id)) {
    return absl::InvalidArgumentError("bad member ID arg (strconv.ParseUint: parsing \"" + ctx.args[0] +
                                      "\": invalid syntax), expecting ID in Hex");
  }
  return id;
}

std::vector<std::string> PeerUrls(const Context& ctx) {
  return absl::StrSplit(ctx.flags.String("peer-urls"), ',', absl::SkipEmpty());
}

// After a simple add, etcdctl prints the new member's configuration.
void PrintNewMemberConfig(const std::string& name, const std::string& peer_urls,
                          const etcdserverpb::MemberAddResponse& r) {
  std::vector<std::string> initial;
  for (const etcdserverpb::Member& m : r.members()) {
    for (const std::string& url : m.peerurls()) {
      initial.push_back((m.id() == r.member().id() ? name : m.name()) + "=" + url);
    }
  }
  std::printf("\nETCD_NAME=%s\n", GoQuote(name).c_str());
  std::printf("ETCD_INITIAL_CLUSTER=%s\n", GoQuote(absl::StrJoin(initial, ",")).c_str());
  std::printf("ETCD_INITIAL_ADVERTISE_PEER_URLS=%s\n", GoQuote(peer_urls).c_str());
  std::printf("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
}

int RunMemberAdd(Context& ctx) {
  if (ctx.args.empty()) return ctx.Usage("member name not provided");
  if (ctx.args.size() > 1) {
    return ctx.Usage("too many arguments, did you mean --peer-urls=" + ctx.args[1]);
  }
  std::vector<std::string> urls = PeerUrls(ctx);
  if (urls.empty()) return ctx.Usage("member peer urls not provided");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  absl::StatusOr<etcdserverpb::MemberAddResponse> response = client->MemberAdd(urls, ctx.flags.Bool("learner"));
  if (!response.ok()) return ctx.Fail(response.status());
  if (int code = Printed(ctx, ctx.out.MemberAdd(*response)); code != kExitOk) return code;
  if (ctx.out.format() == OutputFormat::kSimple) {
    PrintNewMemberConfig(ctx.args[0], ctx.flags.String("peer-urls"), *response);
  }
  return kExitOk;
}

int RunMemberRemove(Context& ctx) {
  absl::StatusOr<uint64_t> id = MemberId(ctx);
  if (!id.ok()) return ctx.Usage(id.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->MemberRemove(*id);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.MemberChanged("removed from", *id, response->header(), *response));
}

int RunMemberUpdate(Context& ctx) {
  absl::StatusOr<uint64_t> id = MemberId(ctx);
  if (!id.ok()) return ctx.Usage(id.status());
  std::vector<std::string> urls = PeerUrls(ctx);
  if (urls.empty()) return ctx.Usage("member peer urls not provided");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->MemberUpdate(*id, urls);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.MemberChanged("updated in", *id, response->header(), *response));
}

int RunMemberPromote(Context& ctx) {
  absl::StatusOr<uint64_t> id = MemberId(ctx);
  if (!id.ok()) return ctx.Usage(id.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->MemberPromote(*id);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.MemberChanged("promoted in", *id, response->header(), *response));
}

int RunMemberList(Context& ctx) {
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->MemberList();
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.MemberList(*response));
}

}  // namespace

// The endpoints to visit: --endpoints, or with --cluster every member's
// client URLs.
absl::StatusOr<std::vector<std::string>> EndpointsToVisit(Context& ctx) {
  if (!ctx.flags.Bool("cluster")) return ctx.global.endpoints;
  client::Client* client = ctx.Client();
  if (client == nullptr) return absl::UnavailableError("");
  auto members = client->MemberList();
  if (!members.ok()) {
    return absl::Status(members.status().code(),
                        "failed to fetch endpoints from etcd cluster member list: " +
                            ErrorText(members.status(), ctx.global));
  }
  std::vector<std::string> endpoints;
  for (const etcdserverpb::Member& m : members->members()) {
    for (const std::string& url : m.clienturls()) endpoints.push_back(url);
  }
  return endpoints;
}

namespace {

// An endpoint's error, its hint naming that endpoint.
std::string EndpointError(const absl::Status& status, const Context& ctx, const std::string& endpoint) {
  GlobalOptions just_this = ctx.global;
  just_this.endpoints = {endpoint};
  return ErrorText(status, just_this);
}

// Go's Duration.String() for sub-minute durations: "1.168129ms", "2.5s".
std::string GoDuration(std::chrono::nanoseconds took) {
  int64_t ns = took.count();
  char buffer[64];
  if (ns < 1000) {
    std::snprintf(buffer, sizeof(buffer), "%lldns", static_cast<long long>(ns));
  } else if (ns < 1000000) {
    std::snprintf(buffer, sizeof(buffer), "%.3fµs", ns / 1e3);
  } else if (ns < 1000000000) {
    std::snprintf(buffer, sizeof(buffer), "%.6fms", ns / 1e6);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.9fs", ns / 1e9);
  }
  std::string text = buffer;
  size_t unit = text.find_first_not_of("0123456789.");
  std::string number = text.substr(0, unit);
  if (number.find('.') != std::string::npos) {
    number.erase(number.find_last_not_of('0') + 1);
    if (number.back() == '.') number.pop_back();
  }
  return number + text.substr(unit);
}

EndpointHealth CheckHealth(const Context& ctx, const std::string& endpoint) {
  EndpointHealth health;
  health.endpoint = endpoint;
  auto client = ctx.ClientFor(endpoint.substr(endpoint.find("://") == std::string::npos
                                                  ? 0
                                                  : endpoint.find("://") + 3));
  if (!client.ok()) {
    health.error = EndpointError(client.status(), ctx, endpoint);
    return health;
  }
  auto start = std::chrono::steady_clock::now();
  // Any answer to a linearizable read proves the member has a leader and
  // a quorum; permission denied counts (the read went through consensus).
  auto got = (*client)->Get("health");
  health.took = GoDuration(std::chrono::steady_clock::now() - start);
  bool denied = !got.ok() && got.status().code() == absl::StatusCode::kPermissionDenied;
  health.health = got.ok() || denied;
  if (!health.health) health.error = EndpointError(got.status(), ctx, endpoint);
  return health;
}

int RunHealth(Context& ctx) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsToVisit(ctx);
  if (!endpoints.ok()) return endpoints.status().message().empty() ? kExitError : ctx.Fail(endpoints.status());
  std::vector<std::future<EndpointHealth>> checks;
  for (const std::string& endpoint : *endpoints) {
    checks.push_back(std::async(std::launch::async, [&ctx, endpoint] { return CheckHealth(ctx, endpoint); }));
  }
  std::vector<EndpointHealth> list;
  bool unhealthy = false;
  for (auto& check : checks) {
    list.push_back(check.get());
    unhealthy = unhealthy || !list.back().error.empty();
  }
  if (int code = Printed(ctx, ctx.out.EndpointHealthList(list)); code != kExitOk) return code;
  return unhealthy ? ctx.Fail("unhealthy cluster") : kExitOk;
}

int RunStatus(Context& ctx) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsToVisit(ctx);
  if (!endpoints.ok()) return endpoints.status().message().empty() ? kExitError : ctx.Fail(endpoints.status());
  std::vector<EndpointStatus> list;
  absl::Status last_error;  // etcdctl ends with the last failure
  for (const std::string& endpoint : *endpoints) {
    size_t scheme = endpoint.find("://");
    auto client = ctx.ClientFor(scheme == std::string::npos ? endpoint : endpoint.substr(scheme + 3));
    absl::StatusOr<etcdserverpb::StatusResponse> status =
        client.ok() ? (*client)->Status() : absl::StatusOr<etcdserverpb::StatusResponse>(client.status());
    if (!status.ok()) {
      last_error = status.status();
      std::fprintf(stderr, "Failed to get the status of endpoint %s (%s)\n", endpoint.c_str(),
                   EndpointError(status.status(), ctx, endpoint).c_str());
      continue;
    }
    list.push_back({endpoint, *status});
  }
  if (int code = Printed(ctx, ctx.out.EndpointStatusList(list)); code != kExitOk) return code;
  return last_error.ok() ? kExitOk : kExitError;  // etcdctl says no more than the lines above
}

int RunHashKV(Context& ctx) {
  absl::StatusOr<std::vector<std::string>> endpoints = EndpointsToVisit(ctx);
  if (!endpoints.ok()) return endpoints.status().message().empty() ? kExitError : ctx.Fail(endpoints.status());
  std::vector<EndpointHash> list;
  absl::Status last_error;  // etcdctl ends with the last failure
  for (const std::string& endpoint : *endpoints) {
    size_t scheme = endpoint.find("://");
    auto client = ctx.ClientFor(scheme == std::string::npos ? endpoint : endpoint.substr(scheme + 3));
    absl::StatusOr<etcdserverpb::HashKVResponse> hash =
        client.ok() ? (*client)->HashKV(ctx.flags.Int("rev"))
                    : absl::StatusOr<etcdserverpb::HashKVResponse>(client.status());
    if (!hash.ok()) {
      last_error = hash.status();
      std::fprintf(stderr, "Failed to get the hash of endpoint %s (%s)\n", endpoint.c_str(),
                   EndpointError(hash.status(), ctx, endpoint).c_str());
      continue;
    }
    list.push_back({endpoint, *hash});
  }
  if (int code = Printed(ctx, ctx.out.EndpointHashList(list)); code != kExitOk) return code;
  return last_error.ok() ? kExitOk : ctx.Fail(last_error);
}

}  // namespace

Command MemberCommand() {
  FlagSpec peer_urls{"peer-urls", "", FlagKind::kString, "", "comma separated peer URLs for the new member."};
  return {
      .name = "member",
      .usage = "member <subcommand>",
      .short_help = "Membership related commands",
      .subcommands = {
          {.name = "add", .usage = "add <memberName> [options]", .short_help = "Adds a member into the cluster",
           .long_help = "Examples:\n\tetcctl member add m4 --peer-urls=http://127.0.0.1:42380\n"
                        "\tetcctl member add m4 --peer-urls=http://127.0.0.1:42380 --learner\n",
           .flags = {{"learner", "", FlagKind::kBool, "false", "indicates if the new member is raft learner"},
                     peer_urls},
           .run = RunMemberAdd},
          {.name = "list", .usage = "list", .short_help = "Lists all members in the cluster",
           .long_help = "Examples:\n\tetcctl member list -w table\n", .run = RunMemberList},
          {.name = "promote", .usage = "promote <memberID>",
           .short_help = "Promotes a non-voting member in the cluster",
           .long_help = "Examples:\n\tetcctl member promote 8e9e05c52164694d\n", .run = RunMemberPromote},
          {.name = "remove", .usage = "remove <memberID>", .short_help = "Removes a member from the cluster",
           .long_help = "Examples:\n\tetcctl member remove 8e9e05c52164694d\n", .run = RunMemberRemove},
          {.name = "update", .usage = "update <memberID> [options]", .short_help = "Updates a member in the cluster",
           .long_help = "Examples:\n\tetcctl member update 8e9e05c52164694d --peer-urls=http://10.0.0.4:2380\n",
           .flags = {{"peer-urls", "", FlagKind::kString, "", "comma separated peer URLs for the updated member."}},
           .run = RunMemberUpdate},
      }};
}

Command EndpointCommand() {
  FlagSpec cluster{"cluster", "", FlagKind::kBool, "false", "use all endpoints from the cluster member list"};
  return {.name = "endpoint",
          .usage = "endpoint <subcommand>",
          .short_help = "Endpoint related commands",
          .subcommands = {
              {.name = "hashkv", .usage = "hashkv [--cluster] [--rev=REV]",
               .short_help = "Prints the KV history hash for each endpoint in --endpoints",
               .long_help = "Members that applied the same history up to REV print the same hash.\n\n"
                            "Examples:\n\tetcctl endpoint hashkv --cluster --rev=1000 -w table\n",
               .flags = {cluster, {"rev", "", FlagKind::kInt, "0", "maximum revision to hash (default: all revisions)"}},
               .run = RunHashKV},
              {.name = "health", .usage = "health [--cluster]",
               .short_help = "Checks the healthiness of endpoints specified in `--endpoints` flag",
               .long_help = "Examples:\n\tetcctl endpoint health --cluster -w table\n",
               .flags = {cluster}, .run = RunHealth},
              {.name = "status", .usage = "status [--cluster]",
               .short_help = "Prints out the status of endpoints specified in `--endpoints` flag",
               .long_help = "The simple format prints: endpoint, ID, version, db size, is leader, is learner,\n"
                            "raft term, raft index, raft applied index, errors.\n\n"
                            "Examples:\n\tetcctl endpoint status --cluster -w table\n",
               .flags = {cluster}, .run = RunStatus},
          }};
}

}  // namespace etc::etcctl
