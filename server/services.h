// etcd's v3 gRPC services over a MemberHost: each handler turns the
// client's request into a kvpb.Request, hands it to the member thread, and
// returns the key tree's answer with the response header filled in
// (cluster id, member id, revision, Raft term). Errors keep etcd's gRPC
// codes and messages.
#ifndef ETC_SERVER_SERVICES_H_
#define ETC_SERVER_SERVICES_H_

#include <memory>
#include <string>
#include <vector>

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"
#include "server/peers.h"
#include "server/recipes.h"
#include "server/watch_service.h"

namespace etc::server {

// Registers every service on a builder; owns them.
class Services {
 public:
  // `peers` forwards what only the leader answers (lease keep-alives,
  // learner promotion); `cluster_token` (--initial-cluster-token) goes
  // into the ids of added members.
  Services(MemberHost* host, Peers* peers, std::string cluster_token);
  ~Services();
  void Register(grpc::ServerBuilder* builder);
  // Once the server is built: the lock and election services use it
  // in-process as their client.
  void Connect(grpc::Server* server);

 private:
  class KvService;
  class LeaseService;
  class AuthService;
  class ClusterService;
  class MaintenanceService;
  std::unique_ptr<KvService> kv_;
  std::unique_ptr<WatchService> watch_;
  std::unique_ptr<LeaseService> lease_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<ClusterService> cluster_;
  std::unique_ptr<MaintenanceService> maintenance_;
  std::shared_ptr<Recipes> recipes_;
  std::unique_ptr<LockService> lock_;
  std::unique_ptr<ElectionService> election_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_SERVICES_H_
