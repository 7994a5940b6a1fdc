// Auth on, as a deployment runs it (drawn per seed): the key tree starts
// with users and roles and auth enabled, every client logs in and sends
// its requests with a token, through the member's own path (the password
// check between KvMember::PasswordHashOf and IssueToken, tokens issued
// through the log and resolved on the member's clock, KvMember::Authorize
// stamping each request), and two more actors run beside the workloads:
//
// - an administrator (root) who keeps editing a role's permissions on
//   keys nobody uses, so the auth store's revision moves under the
//   clients: a request proposed before an edit and applied after it is
//   refused ("revision of auth store is old"), never applied, and retried;
// - an intruder, a user with read-only rights, who keeps trying to write
//   the register keys (v3 puts and v2 sets).
//
// Checks: every intruder write is refused (answered "permission denied",
// or unknown) and none is ever applied on any member; every applied
// client write carries its client's user; a request refused for its token
// or an auth change never takes effect (the workloads' certain-failure
// checks, since such refusals reach them as kUnavailable).
//
//   AuthWorkload auth(&world, random);
//   world.set_bootstrap_key_tree(auth.BootstrapKeyTree());   // "" when off
//   AuthWorkload::Session session = auth.NewSession("client");
//   world.RunOn(process, [&] { auth.Send(process, session, request, Mode::kWrite, reply); });
#ifndef ETC_SIM_AUTH_WORKLOAD_H_
#define ETC_SIM_AUTH_WORKLOAD_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kv/auth.h"
#include "kv/kvpb/kvpb.pb.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {

class AuthWorkload {
 public:
  // The users the key tree starts with (auth on).
  static constexpr char kClientUser[] = "client";  // readwrite on every key
  static constexpr char kReaderUser[] = "reader";  // read-only on every key

  enum class Mode { kWrite, kLinearizableRead, kSerializableRead };
  using Done = std::function<void(absl::StatusOr<kvpb::Response>)>;

  // A client's login: who it is and the token it holds (issued through the
  // log, so it works on any member until it expires or the member forgets
  // it in a restart).
  struct Session {
    std::string user;
    std::optional<std::string> token;
    uint64_t logins = 0;
    uint64_t id = 0;
    // A login in flight until then (its answer may never come, if its
    // member dies): no second one meanwhile, as a client waits for its
    // Authenticate call.
    Micros login_until_us = 0;
  };

  AuthWorkload(World* world, Random random);
  bool enabled() const { return world_->swarm().auth; }
  // The key tree's first state: users root, client and reader, their
  // roles, auth enabled ("" with auth off). Passwords are hashed with one
  // PBKDF2 round: the simulation checks the path, not the cost.
  std::string BootstrapKeyTree() const;

  Session NewSession(std::string user);
  // Sends `request` to `process` as `session`'s user; call it inside
  // World::RunOn. With auth off, the request goes as it is. Without a
  // token, the client logs in first and the request is answered
  // kUnavailable (the caller retries, as a client does once logged in). A
  // request refused for its token (unknown, expired) or for an auth change
  // between its proposal and its apply is answered kUnavailable too, with
  // the token dropped: neither took effect.
  void Send(Process& process, Session& session, kvpb::Request request, Mode mode, Done reply);
  // Who `session` is on `process`, for a watch stream (call inside RunOn).
  // Errors as Send's (kUnavailable: log in and try again).
  absl::StatusOr<kv::AuthInfo> Who(Process& process, Session& session);

  // Starts the administrator and the intruder (auth on only); both stop at
  // `until_us`.
  void Start(Micros until_us);

  struct Stats {
    uint64_t logins = 0;
    uint64_t old_revision_refusals = 0;
    uint64_t intruder_refusals = 0;
    uint64_t permission_edits = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  void LogIn(Process& process, Session& session);
  void Administer();
  void Intrude();
  NodeId AnyMember();
  // A write as `session`'s user, to a member of the cluster (none if it
  // is down).
  void SendToAnyMember(Session& session, kvpb::Request request, Done reply);
  void OnApply(const kvpb::Request& request, const kvpb::Response& response);

  World* world_;
  Random random_;
  Micros until_us_ = 0;
  Session admin_;
  Session intruder_;
  uint64_t next_session_id_ = 1;
  uint64_t edits_ = 0;
  Stats stats_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_AUTH_WORKLOAD_H_
