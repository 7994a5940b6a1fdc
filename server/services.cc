#include "server/services.h"

#include <utility>

namespace etc::server {

Services::Services(MemberHost* host, Peers* peers, std::string cluster_token)
    : kv_(host),
      watch_(host),
      lease_(host, peers),
      auth_(host),
      cluster_(host, peers, std::move(cluster_token)),
      maintenance_(host),
      recipes_(MakeRecipes()),
      lock_(recipes_),
      election_(recipes_),
      tree_(host) {}

Services::~Services() = default;

void Services::Disconnect() { DisconnectRecipes(recipes_.get()); }

void Services::Connect(grpc::Server* server) {
  ConnectRecipes(recipes_.get(), server->InProcessChannel(grpc::ChannelArguments()));
}

void Services::Register(grpc::ServerBuilder* builder) {
  builder->RegisterService(&kv_);
  builder->RegisterService(&watch_);
  builder->RegisterService(&lease_);
  builder->RegisterService(&auth_);
  builder->RegisterService(&cluster_);
  builder->RegisterService(&maintenance_);
  builder->RegisterService(&lock_);
  builder->RegisterService(&election_);
  builder->RegisterService(&tree_);
}

}  // namespace etc::server
