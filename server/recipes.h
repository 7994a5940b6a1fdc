// etcd's v3lock Lock and v3election Election services: the lock and
// election recipes (clientv3/concurrency) run on the server, as etcd runs
// them, as a client of this server's own KV and Watch services over an
// in-process channel. A lock or a candidacy is a key "<name>/<lease in
// hex>" tied to the caller's lease; the holder (leader) is the key with the
// smallest create revision, and a waiter waits for the deletion of the key
// created just before its own.
#ifndef ETC_SERVER_RECIPES_H_
#define ETC_SERVER_RECIPES_H_

#include <memory>

#include <grpcpp/grpcpp.h>

#include "server/v3electionpb/v3election.grpc.pb.h"
#include "server/v3lockpb/v3lock.grpc.pb.h"

namespace etc::server {

class Recipes;

class LockService final : public v3lockpb::Lock::Service {
 public:
  explicit LockService(std::shared_ptr<Recipes> recipes) : recipes_(std::move(recipes)) {}
  grpc::Status Lock(grpc::ServerContext* context, const v3lockpb::LockRequest* request,
                    v3lockpb::LockResponse* response) override;
  grpc::Status Unlock(grpc::ServerContext* context, const v3lockpb::UnlockRequest* request,
                      v3lockpb::UnlockResponse* response) override;

 private:
  std::shared_ptr<Recipes> recipes_;
};

class ElectionService final : public v3electionpb::Election::Service {
 public:
  explicit ElectionService(std::shared_ptr<Recipes> recipes) : recipes_(std::move(recipes)) {}
  grpc::Status Campaign(grpc::ServerContext* context, const v3electionpb::CampaignRequest* request,
                        v3electionpb::CampaignResponse* response) override;
  grpc::Status Proclaim(grpc::ServerContext* context, const v3electionpb::ProclaimRequest* request,
                        v3electionpb::ProclaimResponse* response) override;
  grpc::Status Leader(grpc::ServerContext* context, const v3electionpb::LeaderRequest* request,
                      v3electionpb::LeaderResponse* response) override;
  grpc::Status Observe(grpc::ServerContext* context, const v3electionpb::LeaderRequest* request,
                       grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) override;
  grpc::Status Resign(grpc::ServerContext* context, const v3electionpb::ResignRequest* request,
                      v3electionpb::ResignResponse* response) override;

 private:
  std::shared_ptr<Recipes> recipes_;
};

// The shared client side. Connect() must be called once the gRPC server
// is built; until then the services answer UNAVAILABLE.
std::shared_ptr<Recipes> MakeRecipes();
void ConnectRecipes(Recipes* recipes, std::shared_ptr<grpc::Channel> channel);
// Before the server shuts down: the recipes make no new calls.
void DisconnectRecipes(Recipes* recipes);

}  // namespace etc::server

#endif  // ETC_SERVER_RECIPES_H_
