// etcd's Lease service. Grants, revocations and listings go through the
// log; keep-alives and time-to-live are answered by the leader's lessor,
// so a follower forwards them to the leader's peer service.
//
// LeaseKeepAlive is a stream each etcd client holds open for its whole
// life, so it is a gRPC callback reactor: an open stream holds no thread,
// and neither does a renewal in flight (the member thread, or the
// forwarded call's completion, answers it).
//
//   LeaseService lease(host, &peers);
//   builder.RegisterService(&lease);
#ifndef ETC_SERVER_LEASE_SERVICE_H_
#define ETC_SERVER_LEASE_SERVICE_H_

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"
#include "server/peers.h"

namespace etc::server {

class LeaseService final
    : public etcdserverpb::Lease::WithCallbackMethod_LeaseKeepAlive<etcdserverpb::Lease::Service> {
 public:
  // `peers` reaches the leader for what only it answers.
  LeaseService(MemberHost* host, Peers* peers) : host_(host), peers_(peers) {}

  grpc::Status LeaseGrant(grpc::ServerContext* context,
                          const etcdserverpb::LeaseGrantRequest* request,
                          etcdserverpb::LeaseGrantResponse* response) override;
  grpc::Status LeaseRevoke(grpc::ServerContext* context,
                           const etcdserverpb::LeaseRevokeRequest* request,
                           etcdserverpb::LeaseRevokeResponse* response) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* context) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* context,
                               const etcdserverpb::LeaseTimeToLiveRequest* request,
                               etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::Status LeaseLeases(grpc::ServerContext* context,
                           const etcdserverpb::LeaseLeasesRequest* request,
                           etcdserverpb::LeaseLeasesResponse* response) override;

 private:
  MemberHost* host_;
  Peers* peers_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_LEASE_SERVICE_H_
