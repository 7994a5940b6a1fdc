// user add|delete|get|list|passwd|grant-role|revoke-role,
// role add|delete|get|list|grant-permission|revoke-permission, auth enable|disable.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

// The new password: asked twice on a terminal (--interactive, the default),
// or one word from stdin with --interactive=false.
absl::StatusOr<std::string> NewPassword(const Context& ctx, const std::string& user) {
  if (!ctx.flags.Bool("interactive")) {
    std::string word;
    std::cin >> word;
    return word;
  }
  std::string first = AskHidden("Password of " + user + ": ");
  if (first.empty()) return absl::InvalidArgumentError("empty password");
  std::string second = AskHidden("Type password of " + user + " again for confirmation: ");
  if (first != second) return absl::InvalidArgumentError("given passwords are different");
  return first;
}

// Runs a call and prints its reply; `simple` is etcdctl's simple text.
template <typename Response>
int Reply(const Context& ctx, const absl::StatusOr<Response>& response, const std::string& simple) {
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.AuthReply(simple, response->header(), *response));
}

int RunUserAdd(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("user add command requires user name as its argument");
  etcdserverpb::AuthUserAddRequest request;
  std::string name = ctx.args[0];
  if (ctx.flags.Bool("no-password")) {
    request.mutable_options()->set_no_password(true);
  } else if (!ctx.flags.String("new-user-password").empty()) {
    request.set_password(ctx.flags.String("new-user-password"));
  } else if (size_t colon = name.find(':'); colon != std::string::npos) {
    request.set_password(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (name.empty()) return ctx.Usage("empty user name is not allowed");
  } else {
    absl::StatusOr<std::string> password = NewPassword(ctx, name);
    if (!password.ok()) return ctx.Usage(password.status());
    request.set_password(*password);
  }
  request.set_name(name);
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->UserAdd(request), "User " + name + " created");
}

int RunUserDelete(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("user delete command requires user name as its argument");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->UserDelete(ctx.args[0]), "User " + ctx.args[0] + " deleted");
}

int RunUserGet(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("user get command requires user name as its argument");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->UserGet(ctx.args[0]);
  if (!response.ok()) return ctx.Fail(response.status());
  if (!ctx.flags.Bool("detail")) return Printed(ctx, ctx.out.UserGet(ctx.args[0], *response));
  std::printf("User: %s\n", ctx.args[0].c_str());
  for (const std::string& role : response->roles()) {
    std::printf("\n");
    auto detail = client->RoleGet(role);
    if (!detail.ok()) return ctx.Fail(detail.status());
    if (int code = Printed(ctx, ctx.out.RoleGet(role, *detail)); code != kExitOk) return code;
  }
  return kExitOk;
}

int RunUserList(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("user list command requires no arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->UserList();
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.UserList(*response));
}

int RunUserPasswd(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("user passwd command requires user name as its argument");
  absl::StatusOr<std::string> password = NewPassword(ctx, ctx.args[0]);
  if (!password.ok()) return ctx.Usage(password.status());
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->UserChangePassword(ctx.args[0], *password), "Password updated");
}

int RunUserGrantRole(Context& ctx) {
  if (ctx.args.size() != 2) {
    return ctx.Usage("user grant command requires user name and role name as its argument");
  }
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->UserGrantRole(ctx.args[0], ctx.args[1]),
               "Role " + ctx.args[1] + " is granted to user " + ctx.args[0]);
}

int RunUserRevokeRole(Context& ctx) {
  if (ctx.args.size() != 2) {
    return ctx.Usage("user revoke-role requires user name and role name as its argument");
  }
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->UserRevokeRole(ctx.args[0], ctx.args[1]),
               "Role " + ctx.args[1] + " is revoked from user " + ctx.args[0]);
}

int RunRoleAdd(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("role add command requires role name as its argument");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->RoleAdd(ctx.args[0]), "Role " + ctx.args[0] + " created");
}

int RunRoleDelete(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("role delete command requires role name as its argument");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->RoleDelete(ctx.args[0]), "Role " + ctx.args[0] + " deleted");
}

int RunRoleGet(Context& ctx) {
  if (ctx.args.size() != 1) return ctx.Usage("role get command requires role name as its argument");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->RoleGet(ctx.args[0]);
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.RoleGet(ctx.args[0], *response));
}

int RunRoleList(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("role list command requires no arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto response = client->RoleList();
  if (!response.ok()) return ctx.Fail(response.status());
  return Printed(ctx, ctx.out.RoleList(*response));
}

// etcdctl's key and range end of a permission from [key [endkey]] and the flags.
absl::StatusOr<std::pair<std::string, std::string>> PermRange(const Context& ctx,
                                                              const std::vector<std::string>& args) {
  bool prefix = ctx.flags.Bool("prefix"), from_key = ctx.flags.Bool("from-key");
  if (prefix && from_key) return absl::InvalidArgumentError("--from-key and --prefix flags are mutually exclusive");
  if (args[0].empty()) {
    // The empty key means every key: ["\0", "\0") with a flag.
    return std::make_pair(std::string(1, '\0'), prefix || from_key ? std::string(1, '\0') : "");
  }
  if (args.size() == 1) {
    if (prefix) return std::make_pair(args[0], client::PrefixEnd(args[0]));
    if (from_key) return std::make_pair(args[0], std::string(1, '\0'));
    return std::make_pair(args[0], std::string());
  }
  if (prefix) return absl::InvalidArgumentError("unexpected endkey argument with --prefix flag");
  if (from_key) return absl::InvalidArgumentError("unexpected endkey argument with --from-key flag");
  return std::make_pair(args[0], args[1]);
}

int RunGrantPermission(Context& ctx) {
  if (ctx.args.size() < 3) {
    return ctx.Usage("role grant command requires role name, permission type, and key [endkey] as its argument");
  }
  authpb::Permission::Type type;
  if (!authpb::Permission::Type_Parse(absl::AsciiStrToUpper(ctx.args[1]), &type)) {
    return ctx.Usage("invalid permission type: " + ctx.args[1]);
  }
  auto range = PermRange(ctx, {ctx.args.begin() + 2, ctx.args.end()});
  if (!range.ok()) return ctx.Usage(range.status());
  etcdserverpb::AuthRoleGrantPermissionRequest request;
  request.set_name(ctx.args[0]);
  request.mutable_perm()->set_permtype(type);
  request.mutable_perm()->set_key(range->first);
  request.mutable_perm()->set_range_end(range->second);
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  return Reply(ctx, client->RoleGrantPermission(request), "Role " + ctx.args[0] + " updated");
}

int RunRevokePermission(Context& ctx) {
  if (ctx.args.size() < 2) {
    return ctx.Usage("role revoke-permission command requires role name and key [endkey] as its argument");
  }
  auto range = PermRange(ctx, {ctx.args.begin() + 1, ctx.args.end()});
  if (!range.ok()) return ctx.Usage(range.status());
  etcdserverpb::AuthRoleRevokePermissionRequest request;
  request.set_role(ctx.args[0]);
  request.set_key(range->first);
  request.set_range_end(range->second);
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  const std::string& key = ctx.args[1];
  const std::string& end = range->second;
  std::string text = end.empty() ? "Permission of key " + key + " is revoked from role " + ctx.args[0]
                     : end != std::string(1, '\0')
                         ? "Permission of range [" + key + ", " + end + ") is revoked from role " + ctx.args[0]
                         : "Permission of range [" + key + ", <open ended> is revoked from role " + ctx.args[0];
  return Reply(ctx, client->RoleRevokePermission(request), text);
}

int RunAuthEnable(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("auth enable command does not accept any arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto enabled = client->AuthEnable();
  // etcdctl makes the root role and grants it to root when the root user
  // lacks it, and tries again.
  if (!enabled.ok() && absl::StrContains(enabled.status().message(), "root user does not have root role")) {
    if (auto added = client->RoleAdd("root"); !added.ok()) return ctx.Fail(added.status());
    if (auto granted = client->UserGrantRole("root", "root"); !granted.ok()) return ctx.Fail(granted.status());
    enabled = client->AuthEnable();
  }
  if (!enabled.ok()) return ctx.Fail(enabled.status());
  std::printf("Authentication Enabled\n");
  return kExitOk;
}

int RunAuthDisable(Context& ctx) {
  if (!ctx.args.empty()) return ctx.Usage("auth disable command does not accept any arguments");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  auto disabled = client->AuthDisable();
  if (!disabled.ok()) return ctx.Fail(disabled.status());
  std::printf("Authentication Disabled\n");
  return kExitOk;
}

Command Sub(std::string name, std::string usage, std::string help, std::string example,
            std::function<int(Context&)> run, std::vector<FlagSpec> flags = {}) {
  return {.name = std::move(name), .usage = std::move(usage), .short_help = std::move(help),
          .long_help = "Examples:\n\t" + example + "\n", .flags = std::move(flags), .run = std::move(run)};
}

}  // namespace

Command UserCommand() {
  FlagSpec interactive{"interactive", "", FlagKind::kBool, "true",
                       "Read password from stdin instead of interactive terminal"};
  return {.name = "user", .usage = "user <subcommand>", .short_help = "User related commands",
          .subcommands = {
              Sub("add", "add <user name or user:password> [options]", "Adds a new user",
                  "etcctl user add alice:secret", RunUserAdd,
                  {interactive,
                   {"new-user-password", "", FlagKind::kString, "", "Supply password from the command line flag"},
                   {"no-password", "", FlagKind::kBool, "false", "Create a user without password (CN based auth only)"}}),
              Sub("delete", "delete <user name>", "Deletes a user", "etcctl user delete alice", RunUserDelete),
              Sub("get", "get <user name> [options]", "Gets detailed information of a user",
                  "etcctl user get alice --detail", RunUserGet,
                  {{"detail", "", FlagKind::kBool, "false", "Show permissions of roles granted to the user"}}),
              Sub("grant-role", "grant-role <user name> <role name>", "Grants a role to a user",
                  "etcctl user grant-role alice readers", RunUserGrantRole),
              Sub("list", "list", "Lists all users", "etcctl user list", RunUserList),
              Sub("passwd", "passwd <user name> [options]", "Changes password of user",
                  "echo newsecret | etcctl user passwd alice --interactive=false", RunUserPasswd, {interactive}),
              Sub("revoke-role", "revoke-role <user name> <role name>", "Revokes a role from a user",
                  "etcctl user revoke-role alice readers", RunUserRevokeRole),
          }};
}

Command RoleCommand() {
  std::vector<FlagSpec> range_flags = {
      {"from-key", "", FlagKind::kBool, "false",
       "a permission of keys that are greater than or equal to the given key using byte compare"},
      {"prefix", "", FlagKind::kBool, "false", "a prefix permission"}};
  return {.name = "role", .usage = "role <subcommand>", .short_help = "Role related commands",
          .subcommands = {
              Sub("add", "add <role name>", "Adds a new role", "etcctl role add readers", RunRoleAdd),
              Sub("delete", "delete <role name>", "Deletes a role", "etcctl role delete readers", RunRoleDelete),
              Sub("get", "get <role name>", "Gets detailed information of a role", "etcctl role get readers",
                  RunRoleGet),
              Sub("grant-permission", "grant-permission [options] <role name> <permission type> <key> [endkey]",
                  "Grants a key to a role", "etcctl role grant-permission readers read /config/ --prefix",
                  RunGrantPermission, range_flags),
              Sub("list", "list", "Lists all roles", "etcctl role list", RunRoleList),
              Sub("revoke-permission", "revoke-permission <role name> <key> [endkey]", "Revokes a key from a role",
                  "etcctl role revoke-permission readers /config/ --prefix", RunRevokePermission, range_flags),
          }};
}

Command AuthCommand() {
  return {.name = "auth", .usage = "auth <enable or disable>", .short_help = "Enable or disable authentication",
          .subcommands = {
              Sub("disable", "disable", "Disables authentication", "etcctl --user=root:secret auth disable",
                  RunAuthDisable),
              Sub("enable", "enable", "Enables authentication",
                  "etcctl user add root:secret && etcctl auth enable", RunAuthEnable),
          }};
}

}  // namespace etc::etcctl
