#include "sim/auth_workload.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "kv/errors.h"
#include "kv/store.h"
#include "sim/registers.h"

namespace etc::sim {
namespace {

constexpr char kSalt[] = "sim-salt-16bytes";
// The role the administrator edits, on keys nobody reads or writes.
constexpr char kScratchRole[] = "scratch";
constexpr int kScratchKeys = 4;
// How long a client waits for its login's answer before trying another
// (a member answers or times out within its request timeout).
constexpr Micros kLoginTimeoutUs = 2 * kRequestTimeoutMs * 1000;

std::string PasswordOf(const std::string& user) { return user + "-password"; }

// Every key: from "\0" on (range end "\0": no upper bound).
authpb::Permission EveryKey(authpb::Permission::Type type) {
  authpb::Permission permission;
  permission.set_permtype(type);
  permission.set_key(std::string(1, '\0'));
  permission.set_range_end(std::string(1, '\0'));
  return permission;
}

void ApplyOrDie(kv::Store& store, const kvpb::Request& request) {
  kvpb::Response response = store.Apply(request);
  ETC_CHECK_EQ(response.error_code(), 0) << request.ShortDebugString() << ": "
                                          << response.error_message();
}

void AddUser(kv::Store& store, const std::string& name, const std::string& role) {
  kvpb::Request add;
  add.mutable_user_add()->set_name(name);
  add.mutable_user_add()->set_password_hash(kv::HashPassword(PasswordOf(name), kSalt, 1));
  ApplyOrDie(store, add);
  kvpb::Request grant;
  grant.mutable_user_grant_role()->set_user(name);
  grant.mutable_user_grant_role()->set_role(role);
  ApplyOrDie(store, grant);
}

void AddRole(kv::Store& store, const std::string& name,
             std::optional<authpb::Permission> permission) {
  kvpb::Request add;
  add.mutable_role_add()->set_name(name);
  ApplyOrDie(store, add);
  if (!permission.has_value()) return;
  kvpb::Request grant;
  grant.mutable_role_grant_permission()->set_name(name);
  *grant.mutable_role_grant_permission()->mutable_perm() = *permission;
  ApplyOrDie(store, grant);
}

// Whether an applied request wrote (or, a txn, could have): a v2 write that
// v2 refused (an error code in its answer) changed nothing.
bool Writes(const kvpb::Request& request, const kvpb::Response& response) {
  if (request.has_tree_set() || request.has_tree_delete()) return response.tree().error_code() == 0;
  return request.has_put() || request.has_delete_range() || request.has_txn() ||
         request.has_delete_tree();
}

}  // namespace

AuthWorkload::AuthWorkload(World* world, Random random)
    : world_(world), random_(std::move(random)) {
  admin_ = NewSession(kv::kRootUser);
  intruder_ = NewSession(kReaderUser);
  world_->add_apply_observer([this](Process&, uint64_t, const kvpb::Request& request,
                                    const kvpb::Response& response) {
    OnApply(request, response);
  });
}

std::string AuthWorkload::BootstrapKeyTree() const {
  if (!enabled()) return std::string();
  kv::Store store;
  AddRole(store, kv::kRootRole, std::nullopt);
  AddUser(store, kv::kRootUser, kv::kRootRole);
  AddRole(store, "readwrite", EveryKey(authpb::Permission::READWRITE));
  AddUser(store, kClientUser, "readwrite");
  AddRole(store, "readonly", EveryKey(authpb::Permission::READ));
  AddUser(store, kReaderUser, "readonly");
  AddRole(store, kScratchRole, std::nullopt);
  kvpb::Request enable;
  enable.mutable_auth_enable();
  ApplyOrDie(store, enable);
  return store.Snapshot();
}

AuthWorkload::Session AuthWorkload::NewSession(std::string user) {
  Session session;
  session.user = std::move(user);
  session.id = next_session_id_++;
  return session;
}

void AuthWorkload::Send(Process& process, Session& session, kvpb::Request request, Mode mode,
                        Done reply) {
  auto dispatch = [&process, mode](kvpb::Request request, Done reply) {
    if (mode == Mode::kWrite) {
      process.kv->Write(std::move(request), std::move(reply));
    } else {
      process.kv->Read(std::move(request), mode == Mode::kSerializableRead, std::move(reply));
    }
  };
  if (!enabled()) {
    dispatch(std::move(request), std::move(reply));
    return;
  }
  if (!session.token.has_value()) {
    LogIn(process, session);
    reply(absl::UnavailableError("logging in first"));
    return;
  }
  if (absl::Status authorized = process.kv->Authorize(session.token, &request); !authorized.ok()) {
    // Unknown here (issued elsewhere and not applied yet, or forgotten in a
    // restart): log in again.
    session.token.reset();
    reply(absl::UnavailableError(authorized.message()));
    return;
  }
  dispatch(std::move(request), [this, reply = std::move(reply)](absl::StatusOr<kvpb::Response> r) {
    // Refused at its apply because the auth store moved after its
    // proposal, or because the member that stamped it had not applied the
    // auth state yet (a member just added stamps nobody): it changed
    // nothing, and the client sends it again (clientv3 does for both).
    if (r.status() == kv::AuthOldRevisionError() || r.status() == kv::UserEmptyError()) {
      ++stats_.old_revision_refusals;
      reply(absl::UnavailableError(r.status().message()));
      return;
    }
    reply(std::move(r));
  });
}

absl::StatusOr<kv::AuthInfo> AuthWorkload::Who(Process& process, Session& session) {
  if (!enabled()) return kv::AuthInfo{};
  if (!session.token.has_value()) {
    LogIn(process, session);
    return absl::UnavailableError("logging in first");
  }
  absl::StatusOr<kv::AuthInfo> who = process.kv->Resolve(session.token);
  if (!who.ok()) {
    session.token.reset();
    return absl::UnavailableError(who.status().message());
  }
  return who;
}

void AuthWorkload::LogIn(Process& process, Session& session) {
  Micros now_us = world_->queue().now_us();
  if (now_us < session.login_until_us) return;
  // A member that has not applied the bootstrap state yet (a spare that
  // was just added) has no users: the client tries elsewhere later.
  absl::StatusOr<std::string> hash = process.kv->PasswordHashOf(session.user);
  if (!hash.ok()) return;
  // The check a server makes off its member thread.
  if (!kv::CheckPasswordHash(PasswordOf(session.user), *hash)) {
    world_->Fail("auth", absl::StrCat("member ", process.id, " holds a password hash for ",
                                      session.user, " that its password does not match"));
    return;
  }
  ++session.logins;
  ++stats_.logins;
  session.login_until_us = now_us + kLoginTimeoutUs;
  std::string token = absl::StrCat(session.user, ".", session.id, ".", session.logins);
  process.kv->IssueToken(session.user, token,
                         [&session, token](absl::StatusOr<kvpb::Response> issued) {
                           session.login_until_us = 0;
                           if (issued.ok()) session.token = token;
                         });
}

void AuthWorkload::Start(Micros until_us) {
  if (!enabled()) return;
  until_us_ = until_us;
  world_->queue().After(random_.Range(1'000, 50'000), [this] { Administer(); });
  world_->queue().After(random_.Range(1'000, 50'000), [this] { Intrude(); });
}

NodeId AuthWorkload::AnyMember() {
  std::vector<NodeId> members = world_->Members();
  return members.empty() ? 1 + random_.Uniform(world_->processes().size())
                         : members[random_.Uniform(members.size())];
}

void AuthWorkload::Administer() {
  if (world_->failed() || world_->queue().now_us() >= until_us_) return;
  world_->queue().After(random_.Range(20'000, 300'000), [this] { Administer(); });
  // Grant, then revoke, a permission on a key nobody uses: each edit moves
  // the auth store's revision under every client's requests in flight.
  kvpb::Request request;
  std::string key = absl::StrCat("zz/", edits_ % kScratchKeys);
  if ((edits_ / kScratchKeys) % 2 == 0) {
    request.mutable_role_grant_permission()->set_name(kScratchRole);
    authpb::Permission* permission = request.mutable_role_grant_permission()->mutable_perm();
    permission->set_permtype(authpb::Permission::READWRITE);
    permission->set_key(key);
  } else {
    request.mutable_role_revoke_permission()->set_role(kScratchRole);
    request.mutable_role_revoke_permission()->set_key(key);
  }
  ++edits_;
  SendToAnyMember(admin_, std::move(request), [this](absl::StatusOr<kvpb::Response> r) {
    if (r.ok()) ++stats_.permission_edits;
  });
}

void AuthWorkload::SendToAnyMember(Session& session, kvpb::Request request, Done reply) {
  Process& process = world_->process(AnyMember());
  if (!process.up()) return;
  world_->RunOn(process, [this, &process, &session, request = std::move(request),
                          reply = std::move(reply)]() mutable {
    Send(process, session, std::move(request), Mode::kWrite, std::move(reply));
  });
}

void AuthWorkload::Intrude() {
  if (world_->failed() || world_->queue().now_us() >= until_us_) return;
  world_->queue().After(random_.Range(10'000, 100'000), [this] { Intrude(); });
  // As v3 puts and as v2 sets: both must be refused for its permissions.
  kvpb::Request request;
  std::string key = RegisterKey(random_.Uniform(2));
  if (random_.Chance(0.5)) {
    request.mutable_put()->set_key(key);
    request.mutable_put()->set_value("intruder");
  } else {
    request.mutable_tree_set()->set_path(key);
    request.mutable_tree_set()->set_value("intruder");
  }
  SendToAnyMember(intruder_, std::move(request), [this](absl::StatusOr<kvpb::Response> r) {
    if (r.ok()) {
      world_->Fail("auth", "a write by a read-only user was answered OK");
    } else if (r.status() == kv::PermissionDeniedError()) {
      ++stats_.intruder_refusals;
    }
  });
}

void AuthWorkload::OnApply(const kvpb::Request& request, const kvpb::Response& response) {
  if (!enabled() || response.error_code() != 0 || !Writes(request, response)) return;
  const std::string& user = request.header().username();
  if (user == kReaderUser) {
    world_->Fail("auth", absl::StrCat("a write by the read-only user was applied: ",
                                      request.ShortDebugString()));
  } else if (user.empty()) {
    world_->Fail("auth", absl::StrCat("a write by nobody was applied with auth on: ",
                                      request.ShortDebugString()));
  }
}

}  // namespace etc::sim
