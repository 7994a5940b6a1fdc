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

namespace etc::server {

// What the Cluster service reports about the members (until membership
// metadata is replicated, the static --initial-cluster view).
struct MemberInfo {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool learner = false;
};

// Registers every service on a builder; owns them.
class Services {
 public:
  // `peers` (nullptr for a single member) forwards lease requests to the
  // leader.
  Services(MemberHost* host, std::vector<MemberInfo> members, Peers* peers);
  ~Services();
  void Register(grpc::ServerBuilder* builder);

 private:
  class KvService;
  class WatchService;
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
};

}  // namespace etc::server

#endif  // ETC_SERVER_SERVICES_H_
