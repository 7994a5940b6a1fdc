#include "server/lease_service.h"

#include "server/rpc.h"

namespace etc::server {

grpc::Status LeaseService::LeaseGrant(grpc::ServerContext* context,
                                      const etcdserverpb::LeaseGrantRequest* request,
                                      etcdserverpb::LeaseGrantResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_grant,
                 &kvpb::Response::lease_grant, Mode::kWrite, response);
}

grpc::Status LeaseService::LeaseRevoke(grpc::ServerContext* context,
                                       const etcdserverpb::LeaseRevokeRequest* request,
                                       etcdserverpb::LeaseRevokeResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_revoke,
                 &kvpb::Response::lease_revoke, Mode::kWrite, response);
}

grpc::Status LeaseService::LeaseKeepAlive(
    grpc::ServerContext*, grpc::ServerReaderWriter<etcdserverpb::LeaseKeepAliveResponse,
                                                   etcdserverpb::LeaseKeepAliveRequest>* stream) {
  etcdserverpb::LeaseKeepAliveRequest request;
  while (stream->Read(&request)) {
    kv::LeaseId id = request.id();
    absl::StatusOr<int64_t> ttl = host_->LeaderKeepAlive(id);
    if (!ttl.ok() && ttl.status().code() == absl::StatusCode::kFailedPrecondition) {
      // Only the leader's lessor may renew: forward.
      etcdserverpb::LeaseKeepAliveResponse forwarded;
      absl::Status status =
          CallLeader(host_, peers_, [&](peerpb::Peer::Stub* stub, grpc::ClientContext* context) {
            return stub->LeaseKeepAlive(context, request, &forwarded);
          });
      if (!status.ok()) return ToGrpc(status);
      ttl = forwarded.ttl();
    }
    // An unknown lease answers TTL 0: the client's sign that it expired.
    // Anything else (no leader, a leader not ready) ends the stream with
    // the error, and the client renews again on a new one.
    if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
      return ToGrpc(ttl.status());
    }
    etcdserverpb::LeaseKeepAliveResponse response;
    response.set_id(id);
    response.set_ttl(ttl.ok() ? *ttl : 0);
    StampHeaders(&response, *host_);
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseTimeToLive(grpc::ServerContext*,
                                           const etcdserverpb::LeaseTimeToLiveRequest* request,
                                           etcdserverpb::LeaseTimeToLiveResponse* response) {
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> local = host_->LeaderTimeToLive(*request);
  if (local.ok()) {
    *response = std::move(*local);
  } else if (local.status().code() == absl::StatusCode::kFailedPrecondition) {
    absl::Status status =
        CallLeader(host_, peers_, [&](peerpb::Peer::Stub* stub, grpc::ClientContext* context) {
          return stub->LeaseTimeToLive(context, *request, response);
        });
    if (!status.ok()) return ToGrpc(status);
  } else {
    return ToGrpc(local.status());
  }
  StampHeaders(response, *host_);
  return grpc::Status::OK;
}

grpc::Status LeaseService::LeaseLeases(grpc::ServerContext* context,
                                       const etcdserverpb::LeaseLeasesRequest* request,
                                       etcdserverpb::LeaseLeasesResponse* response) {
  return Forward(host_, context, *request, &kvpb::Request::mutable_lease_leases,
                 &kvpb::Response::lease_leases, Mode::kLinearizableRead, response);
}

}  // namespace etc::server
