#include "server/maintenance_service.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/backup.h"
#include "server/rpc.h"

namespace etc::server {
namespace {

// On the member thread: what etcd's Status reports.
etcdserverpb::StatusResponse StatusOf(MemberHost::Context& context) {
  etcdserverpb::StatusResponse out;
  const raft::Raft& raft = context.member().node().raft();
  // The etcd API version this server speaks (clients compare it).
  out.set_version("3.4.23");
  out.set_dbsize(context.store().keyspace().size_bytes());
  out.set_dbsizeinuse(context.store().keyspace().size_bytes());
  out.set_leader(raft.leader());
  out.set_raftindex(raft.log().committed());
  out.set_raftterm(raft.term());
  out.set_raftappliedindex(context.member().applied_index());
  out.mutable_header()->set_revision(context.store().revision());
  for (const auto& [member, type] : context.store().alarms()) {
    out.add_errors(absl::StrCat(
        "memberID:", member,
        " alarm:", etcdserverpb::AlarmType_Name(static_cast<etcdserverpb::AlarmType>(type))));
  }
  out.set_islearner(context.kv().is_learner());
  return out;
}

// The key tree's bytes as of now, serialized by the snapshot child
// process, off the member thread (a large key tree takes seconds).
absl::StatusOr<std::string> SnapshotKeyTree(MemberHost* host) {
  // The callback may outlive this call (Await gives up after a minute).
  auto state = std::make_shared<absl::StatusOr<std::string>>(absl::UnknownError("not taken"));
  absl::Status waited = Await(absl::Seconds(60), [&](std::function<void(absl::Status)> done) {
    host->SnapshotKeyTree([state, done = std::move(done)](absl::StatusOr<std::string> data) {
      *state = std::move(data);
      done(state->status());
    });
  });
  if (!waited.ok()) return waited;
  return std::move(*state);
}

}  // namespace

grpc::Status MaintenanceService::Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                                        etcdserverpb::StatusResponse* response) {
  return ReplyOnMember<etcdserverpb::StatusResponse>(host_, &StatusOf, response);
}

grpc::Status MaintenanceService::Alarm(grpc::ServerContext* context,
                                       const etcdserverpb::AlarmRequest* request,
                                       etcdserverpb::AlarmResponse* response) {
  Mode mode =
      request->action() == etcdserverpb::AlarmRequest::GET ? Mode::kLinearizableRead : Mode::kWrite;
  return Forward(host_, context, *request, &kvpb::Request::mutable_alarm, &kvpb::Response::alarm,
                 mode, response);
}

grpc::Status MaintenanceService::Hash(grpc::ServerContext* context,
                                      const etcdserverpb::HashRequest*,
                                      etcdserverpb::HashResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  // The key tree's running digest: equal on members that applied the
  // same log, and no walk of the tree on the member thread.
  return ReplyOnMember<etcdserverpb::HashResponse>(
      host_,
      [](MemberHost::Context& context) {
        etcdserverpb::HashResponse out;
        uint64_t digest = context.store().StateDigest();
        out.set_hash(static_cast<uint32_t>(digest ^ (digest >> 32)));
        out.mutable_header()->set_revision(context.store().revision());
        return out;
      },
      response);
}

grpc::Status MaintenanceService::HashKV(grpc::ServerContext* context,
                                        const etcdserverpb::HashKVRequest* request,
                                        etcdserverpb::HashKVResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_hash_kv,
                 &kvpb::Response::hash_kv, Mode::kLinearizableRead, response);
}

grpc::Status MaintenanceService::Defragment(grpc::ServerContext* context,
                                            const etcdserverpb::DefragmentRequest*,
                                            etcdserverpb::DefragmentResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  // The key tree lives in memory and compaction frees its space at once;
  // what can be compacted is the files: a snapshot now (taken in the
  // background, unless one is already being taken) lets the log release
  // its segments once it is saved.
  return ReplyOnMember<etcdserverpb::DefragmentResponse>(
      host_,
      [](MemberHost::Context& c) {
        c.member().SnapshotNow();
        etcdserverpb::DefragmentResponse out;
        out.mutable_header()->set_revision(c.store().revision());
        return out;
      },
      response);
}

grpc::Status MaintenanceService::Snapshot(
    grpc::ServerContext* context, const etcdserverpb::SnapshotRequest*,
    grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  absl::StatusOr<std::string> state = SnapshotKeyTree(host_);
  if (!state.ok()) return ToGrpc(state.status());
  std::string data = EncodeBackup(*state);
  // The digest travels last, apart from the data (etcdctl checks it is
  // there; `etc snapshot restore` checks it matches).
  std::string digest = data.substr(data.size() - kBackupDigestBytes);
  data.resize(data.size() - kBackupDigestBytes);
  constexpr size_t kChunkBytes = 32 * 1024;
  for (size_t sent = 0; sent < data.size();) {
    size_t n = std::min(kChunkBytes, data.size() - sent);
    etcdserverpb::SnapshotResponse response;
    response.set_blob(data.substr(sent, n));
    sent += n;
    response.set_remaining_bytes(data.size() - sent);
    if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
  }
  etcdserverpb::SnapshotResponse last;
  last.set_blob(digest);
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::MoveLeader(grpc::ServerContext* context,
                                            const etcdserverpb::MoveLeaderRequest* request,
                                            etcdserverpb::MoveLeaderResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  uint64_t target = request->targetid();
  absl::Status status = OnMember<absl::Status>(host_, [target](MemberHost::Context& context) {
    return context.member().TransferLeadership(target);
  });
  if (!status.ok()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: bad leader transferee");
  }
  StampHeaders(response, *host_);
  return grpc::Status::OK;
}

}  // namespace etc::server
