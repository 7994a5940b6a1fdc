#include "server/auth_service.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "kv/auth.h"
#include "kv/errors.h"
#include "kv/store.h"
#include "server/rpc.h"

namespace etc::server {
namespace {

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    // Without randomness no salt or token is safe to hand out.
    std::abort();
  }
  return bytes;
}

std::string Hash(const std::string& password) {
  return kv::HashPassword(password, RandomBytes(16));
}

}  // namespace

grpc::Status AuthService::Authenticate(grpc::ServerContext*,
                                       const etcdserverpb::AuthenticateRequest* r,
                                       etcdserverpb::AuthenticateResponse* response) {
  // The slow password check runs here, not on the member thread: fetch
  // the stored hash (KvMember::PasswordHashOf, as the simulator's clients
  // do), check, then propose the token.
  std::string name = r->name();
  auto hash = OnMember<absl::StatusOr<std::string>>(
      host_, [name](MemberHost::Context& c) { return c.kv().PasswordHashOf(name); });
  if (!hash.ok()) return ToGrpc(hash.status());
  if (!kv::CheckPasswordHash(r->password(), *hash)) return ToGrpc(kv::AuthFailedError());
  kvpb::Request request;
  request.mutable_authenticate()->set_name(name);
  request.mutable_authenticate()->set_token(NewAuthToken());
  return Reply(Call(host_, std::nullopt, std::move(request), Mode::kWrite),
               &kvpb::Response::authenticate, response, *host_);
}

grpc::Status AuthService::UserAdd(grpc::ServerContext* context,
                                  const etcdserverpb::AuthUserAddRequest* r,
                                  etcdserverpb::AuthUserAddResponse* response) {
  kvpb::UserAdd add;
  add.set_name(r->name());
  *add.mutable_options() = r->options();
  if (!r->options().no_password()) add.set_password_hash(Hash(r->password()));
  return Forward(host_, context, add, &kvpb::Request::mutable_user_add, &kvpb::Response::user_add,
                 Mode::kWrite, response);
}

grpc::Status AuthService::UserChangePassword(
    grpc::ServerContext* context, const etcdserverpb::AuthUserChangePasswordRequest* r,
    etcdserverpb::AuthUserChangePasswordResponse* response) {
  kvpb::UserChangePassword change;
  change.set_name(r->name());
  change.set_password_hash(Hash(r->password()));
  return Forward(host_, context, change, &kvpb::Request::mutable_user_change_password,
                 &kvpb::Response::user_change_password, Mode::kWrite, response);
}

#define ETC_AUTH_DEFINE(Method, Req, Resp, field, mode)                                         \
  grpc::Status AuthService::Method(grpc::ServerContext* context, const etcdserverpb::Req* r,    \
                                   etcdserverpb::Resp* response) {                              \
    return Forward(host_, context, *r, &kvpb::Request::mutable_##field, &kvpb::Response::field, \
                   Mode::mode, response);                                                       \
  }
ETC_AUTH_FORWARDED_CALLS(ETC_AUTH_DEFINE)
#undef ETC_AUTH_DEFINE

std::string NewAuthToken() {
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  static std::atomic<uint64_t> next_token{1};
  std::string random = RandomBytes(16);
  std::string token;
  for (char c : random) token.push_back(kLetters[static_cast<unsigned char>(c) % 52]);
  return absl::StrCat(token, ".", next_token.fetch_add(1));
}

}  // namespace etc::server
