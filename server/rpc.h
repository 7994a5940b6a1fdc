// What every etcd gRPC handler of the server shares: status and header
// conversion, the caller's token and user, running a request on the member
// thread (blocking, or finished by the member thread on a callback
// reactor), and reaching the leader's peer service.
#ifndef ETC_SERVER_RPC_H_
#define ETC_SERVER_RPC_H_

#include <functional>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kv/kvpb/kvpb.pb.h"
#include "server/grpc_status.h"
#include "server/member_host.h"
#include "server/peerpb/peer.grpc.pb.h"
#include "server/peers.h"

namespace etc::server {

// How a request reaches the key tree.
enum class Mode { kWrite, kLinearizableRead, kSerializableRead };

// Sets the member's part of a response header: cluster id, member id, Raft
// term (the revision is the key tree's).
void StampHeader(etcdserverpb::ResponseHeader* header, const MemberHost& host);

// StampHeader on `message`'s own header (a txn's inner responses keep
// the key tree's bare header, the revision alone, as etcd's do).
void StampHeaders(google::protobuf::Message* message, const MemberHost& host);

// The token the client sent: etcd clients send it as "token" metadata after
// Authenticate; the JSON gateway passes an HTTP Authorization header on.
std::optional<std::string> TokenOf(const grpc::ServerContextBase* context);

// Runs a request on the member thread: finds who asks (from the token),
// then proposes it or reads. `done` runs on the member thread exactly once
// (MemberHost answers every request within its request timeout).
void Submit(MemberHost* host, std::optional<std::string> token, kvpb::Request request, Mode mode,
            MemberHost::Done done);

// Submit, waiting for the answer (for the handlers that still block).
absl::StatusOr<kvpb::Response> Call(MemberHost* host, std::optional<std::string> token,
                                    kvpb::Request request, Mode mode);

// Who is asking: the user the request's token was issued to, checked on
// the member that applied the Authenticate. Without a token, or with auth
// disabled, nobody.
absl::StatusOr<kv::AuthInfo> Who(MemberHost* host, grpc::ServerContext* context);

// With auth on, the caller's token must belong to a user with the root
// role (membership, maintenance and other admin calls).
absl::Status RequireAdmin(MemberHost* host, grpc::ServerContext* context);

// Calls the leader's peer service (for what only the leader can answer).
absl::Status CallLeader(
    MemberHost* host, Peers* peers,
    const std::function<grpc::Status(peerpb::Peer::Stub*, grpc::ClientContext*)>& call);

// CallLeader without waiting: `start` begins a callback-API call on the
// leader's stub with the context given and the completion it is handed;
// `done` gets the call's status, once, on a gRPC thread (or at once, on
// this one, when no leader is known). What the call reads and writes must
// live until `done`.
using LeaderCallStart = std::function<void(peerpb::Peer::Stub*, grpc::ClientContext*,
                                           std::function<void(grpc::Status)>)>;
void StartCallLeader(MemberHost* host, Peers* peers, const LeaderCallStart& start,
                     std::function<void(absl::Status)> done);

// Copies the result of `response` into `out` with headers stamped.
template <typename Out>
grpc::Status Reply(const absl::StatusOr<kvpb::Response>& response,
                   const Out& (kvpb::Response::*get)() const, Out* out, const MemberHost& host) {
  if (!response.ok()) return ToGrpc(response.status());
  *out = ((*response).*get)();
  StampHeaders(out, host);
  return grpc::Status::OK;
}

// A blocking unary handler's answer that the member builds from its own
// state: `read` runs on the member thread, its result goes out with
// headers stamped.
template <typename Response>
grpc::Status ReplyOnMember(MemberHost* host,
                           std::function<absl::StatusOr<Response>(MemberHost::Context&)> read,
                           Response* out) {
  absl::StatusOr<Response> response = OnMember<absl::StatusOr<Response>>(host, std::move(read));
  if (!response.ok()) return ToGrpc(response.status());
  *out = std::move(*response);
  StampHeaders(out, *host);
  return grpc::Status::OK;
}

// The whole of a blocking unary handler: wrap the client's request in a
// kvpb.Request, run it, unwrap and stamp the answer.
template <typename Request, typename Response>
grpc::Status Forward(MemberHost* host, grpc::ServerContext* context, const Request& request,
                     Request* (kvpb::Request::*wrap)(),
                     const Response& (kvpb::Response::*unwrap)() const, Mode mode,
                     Response* response) {
  kvpb::Request r;
  *(r.*wrap)() = request;
  return Reply(Call(host, TokenOf(context), std::move(r), mode), unwrap, response, *host);
}

// The same for a callback handler on raw bytes: no thread waits (the
// member thread finishes the call), the request is parsed straight into
// the kvpb.Request and the answer serialized straight from the key tree's
// response. Raw bytes also let a malformed request get etcd's INTERNAL
// (gRPC C++'s typed callback handlers answer it UNIMPLEMENTED).
template <typename Request, typename Response>
grpc::ServerUnaryReactor* Start(MemberHost* host, grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* raw, grpc::ByteBuffer* out,
                                Request* (kvpb::Request::*wrap)(),
                                Response* (kvpb::Response::*unwrap)(),
                                Mode (*mode_of)(const kvpb::Request&)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  kvpb::Request r;
  grpc::ByteBuffer bytes(*raw);
  grpc::Status parsed = grpc::SerializationTraits<Request>::Deserialize(&bytes, (r.*wrap)());
  if (!parsed.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                 "grpc: error unmarshalling request: " + parsed.error_message()));
    return reactor;
  }
  Mode mode = mode_of(r);
  Submit(host, TokenOf(context), std::move(r), mode,
         [host, reactor, unwrap, out](absl::StatusOr<kvpb::Response> result) {
           if (!result.ok()) {
             reactor->Finish(ToGrpc(result.status()));
             return;
           }
           Response* response = ((*result).*unwrap)();
           StampHeaders(response, *host);
           bool own_buffer = false;
           grpc::Status serialized =
               grpc::SerializationTraits<Response>::Serialize(*response, out, &own_buffer);
           reactor->Finish(serialized);
         });
  return reactor;
}

inline Mode WriteMode(const kvpb::Request&) { return Mode::kWrite; }

}  // namespace etc::server

#endif  // ETC_SERVER_RPC_H_
