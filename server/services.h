// etcd's v3 gRPC services over a MemberHost, one file each (kv_service.h,
// watch_service.h, lease_service.h, auth_service.h, cluster_service.h,
// maintenance_service.h, the lock and election recipes, and etc's own
// tree_service.h): each handler
// turns the client's request into a kvpb.Request, hands it to the member
// thread, and returns the key tree's answer with the response header
// filled in (cluster id, member id, revision, Raft term). Errors keep
// etcd's gRPC codes and messages. Services owns them all and registers
// them on the client server.
//
//   Services services(host, &peers, config.initial_cluster_token);
//   services.Register(&builder);
//   std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
//   services.Connect(server.get());
#ifndef ETC_SERVER_SERVICES_H_
#define ETC_SERVER_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "server/auth_service.h"
#include "server/cluster_service.h"
#include "server/kv_service.h"
#include "server/lease_service.h"
#include "server/maintenance_service.h"
#include "server/member_host.h"
#include "server/peers.h"
#include "server/recipes.h"
#include "server/tree_service.h"
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
  // Before the server shuts down (see DisconnectRecipes).
  void Disconnect();

 private:
  KvService kv_;
  WatchService watch_;
  LeaseService lease_;
  AuthService auth_;
  ClusterService cluster_;
  MaintenanceService maintenance_;
  // Shared by the lock and election services (declared before them).
  std::shared_ptr<Recipes> recipes_;
  LockService lock_;
  ElectionService election_;
  TreeService tree_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_SERVICES_H_
