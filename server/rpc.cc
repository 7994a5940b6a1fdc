#include "server/rpc.h"

#include <chrono>
#include <memory>

#include "absl/synchronization/notification.h"
#include "google/protobuf/descriptor.h"
#include "member/errors.h"

namespace etc::server {

void StampHeader(etcdserverpb::ResponseHeader* header, const MemberHost& host) {
  header->set_cluster_id(host.options().cluster_id);
  header->set_member_id(host.options().member_id);
  header->set_raft_term(host.term());
}

void StampHeaders(google::protobuf::Message* message, const MemberHost& host) {
  // Only the response's own header: a txn's inner responses keep the bare
  // header the key tree gave them (the revision alone), as etcd's do.
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  const google::protobuf::Reflection* reflection = message->GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_repeated() || field->message_type() != etcdserverpb::ResponseHeader::descriptor()) {
      continue;
    }
    StampHeader(static_cast<etcdserverpb::ResponseHeader*>(reflection->MutableMessage(message, field)),
                host);
  }
}

std::optional<std::string> TokenOf(const grpc::ServerContextBase* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("token");
  if (it == metadata.end()) it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

void Submit(MemberHost* host, std::optional<std::string> token, kvpb::Request request, Mode mode,
            MemberHost::Done done) {
  if (mode != Mode::kSerializableRead && host->learner()) {
    // A learner's state may lag any amount; etcd refuses the same.
    done(absl::UnavailableError("etcdserver: rpc not supported for learner"));
    return;
  }
  host->Post([token = std::move(token), request = std::move(request), mode,
              done = std::move(done)](MemberHost::Context& c) mutable {
    // A token just issued through another member may not have reached
    // this one yet: the member looks again once it caught up.
    c.kv().AuthorizeWhenApplied(
        std::move(token), std::move(request),
        [host = &c.host(), mode, done = std::move(done)](
            absl::StatusOr<kvpb::Request> authorized) mutable {
          if (!authorized.ok()) {
            done(authorized.status());
          } else if (mode == Mode::kWrite) {
            host->StartWrite(*std::move(authorized), std::move(done));
          } else {
            host->StartRead(*std::move(authorized), mode == Mode::kSerializableRead,
                            std::move(done));
          }
        });
  });
}

absl::StatusOr<kvpb::Response> Call(MemberHost* host, std::optional<std::string> token,
                                    kvpb::Request request, Mode mode) {
  struct Pending {
    absl::Notification done;
    absl::StatusOr<kvpb::Response> result;
  };
  auto pending = std::make_shared<Pending>();
  Submit(host, std::move(token), std::move(request), mode,
         [pending](absl::StatusOr<kvpb::Response> response) {
           pending->result = std::move(response);
           pending->done.Notify();
         });
  // The member answers within its request timeout; a host that stopped
  // runs nothing more, so the wait has a deadline of its own.
  absl::Duration timeout = absl::Milliseconds(host->options().request_timeout_ms) + absl::Seconds(1);
  if (!pending->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::UnavailableError(member::kRequestTimedOut);
  }
  return std::move(pending->result);
}

absl::StatusOr<kv::AuthInfo> Who(MemberHost* host, grpc::ServerContext* context) {
  std::optional<std::string> token = TokenOf(context);
  if (!token.has_value()) return kv::AuthInfo{};
  return OnMember<absl::StatusOr<kv::AuthInfo>>(
      host, [&token](MemberHost::Context& c) { return c.kv().Resolve(token); });
}

absl::Status RequireAdmin(MemberHost* host, grpc::ServerContext* context) {
  absl::StatusOr<kv::AuthInfo> who = Who(host, context);
  if (!who.ok()) return who.status();
  return OnMember<absl::Status>(host, [&who](MemberHost::Context& c) {
    return c.store().auth().CheckAdmin(*who);
  });
}

namespace {

// The leader's peer stub, or kUnavailable when there is none to reach.
absl::StatusOr<std::shared_ptr<peerpb::Peer::Stub>> LeaderStub(MemberHost* host, Peers* peers) {
  uint64_t leader = host->leader();
  std::shared_ptr<peerpb::Peer::Stub> stub =
      leader == 0 || peers == nullptr ? nullptr : peers->Stub(leader);
  if (stub == nullptr) return absl::UnavailableError("etcdserver: no leader");
  return stub;
}

// A forwarded call is answered within this, or fails.
std::chrono::system_clock::time_point LeaderCallDeadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(5);
}

}  // namespace

absl::Status CallLeader(
    MemberHost* host, Peers* peers,
    const std::function<grpc::Status(peerpb::Peer::Stub*, grpc::ClientContext*)>& call) {
  absl::StatusOr<std::shared_ptr<peerpb::Peer::Stub>> stub = LeaderStub(host, peers);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext context;
  context.set_deadline(LeaderCallDeadline());
  return FromGrpc(call(stub->get(), &context));
}

void StartCallLeader(MemberHost* host, Peers* peers, const LeaderCallStart& start,
                     std::function<void(absl::Status)> done) {
  absl::StatusOr<std::shared_ptr<peerpb::Peer::Stub>> stub = LeaderStub(host, peers);
  if (!stub.ok()) {
    done(stub.status());
    return;
  }
  auto context = std::make_shared<grpc::ClientContext>();
  context->set_deadline(LeaderCallDeadline());
  // The stub and the context live until the call completes (gRPC moves the
  // completion out before running it, so it may free them).
  start(stub->get(), context.get(),
        [stub = *stub, context, done = std::move(done)](grpc::Status status) {
          done(FromGrpc(status));
        });
}

}  // namespace etc::server
