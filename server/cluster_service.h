// etcd's Cluster service: listing, adding, removing, updating and
// promoting members, each a configuration change (or attribute update)
// through the log. Only the leader knows how far a learner's log is, so a
// follower forwards promotions to it.
//
//   ClusterService cluster(host, &peers, "etcd-cluster");
//   builder.RegisterService(&cluster);
#ifndef ETC_SERVER_CLUSTER_SERVICE_H_
#define ETC_SERVER_CLUSTER_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"
#include "server/peers.h"

namespace etc::server {

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  // `cluster_token` (--initial-cluster-token) goes into the ids of added
  // members.
  ClusterService(MemberHost* host, Peers* peers, std::string cluster_token)
      : host_(host), peers_(peers), cluster_token_(std::move(cluster_token)) {}

  grpc::Status MemberList(grpc::ServerContext* context,
                          const etcdserverpb::MemberListRequest* request,
                          etcdserverpb::MemberListResponse* response) override;
  grpc::Status MemberAdd(grpc::ServerContext* context,
                         const etcdserverpb::MemberAddRequest* request,
                         etcdserverpb::MemberAddResponse* response) override;
  grpc::Status MemberRemove(grpc::ServerContext* context,
                            const etcdserverpb::MemberRemoveRequest* request,
                            etcdserverpb::MemberRemoveResponse* response) override;
  grpc::Status MemberUpdate(grpc::ServerContext* context,
                            const etcdserverpb::MemberUpdateRequest* request,
                            etcdserverpb::MemberUpdateResponse* response) override;
  grpc::Status MemberPromote(grpc::ServerContext* context,
                             const etcdserverpb::MemberPromoteRequest* request,
                             etcdserverpb::MemberPromoteResponse* response) override;

 private:
  // Valid peer URLs that no other member than `self` uses.
  absl::Status CheckPeerUrls(const std::vector<std::string>& urls, uint64_t self);
  // An id for a member with these peer URLs that no member had.
  uint64_t NewMemberId(const std::vector<std::string>& urls, const Membership& current) const;

  MemberHost* host_;
  Peers* peers_;
  std::string cluster_token_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_CLUSTER_SERVICE_H_
