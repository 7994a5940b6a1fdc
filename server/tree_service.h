// etc's own Tree service (server/etcpb/tree.proto, issue 18) on the client
// port: a directory's children (List), what a path is (Stat), a subtree's
// keys (GetTree), a recursive delete (DeleteTree) and a watch of a
// directory's children or subtree (WatchTree). Each unary call becomes one
// kvpb request on the member thread, exactly as the KV service's Range and
// DeleteRange do: reads are linearizable unless `serializable`, the delete
// goes through the log, the caller's token and the key tree's auth checks,
// limits and errors are the KV service's. No thread waits on a call.
//
// Paths at the edge: "" is the root "/", and one trailing "/" (other than
// the root's) names the same directory ("/a/" is "/a"). A directory's
// children are the next components of the keys below path + "/" (the
// root's: below "/").
//
//   TreeService tree(host);
//   builder.RegisterService(&tree);
#ifndef ETC_SERVER_TREE_SERVICE_H_
#define ETC_SERVER_TREE_SERVICE_H_

#include <string>
#include <string_view>

#include "server/etcpb/tree.grpc.pb.h"
#include "server/member_host.h"

namespace etc::server {

// The path as the service reads it ("" -> "/", "/a/" -> "/a").
std::string NormalTreePath(std::string_view path);
// What is below a normal path: path + "/", or "/" for the root.
std::string TreePrefix(std::string_view normal_path);

class TreeService final : public etcpb::Tree::CallbackService {
 public:
  explicit TreeService(MemberHost* host) : host_(host) {}

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const etcpb::ListRequest* request,
                                 etcpb::ListResponse* response) override;
  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* context,
                                 const etcpb::StatRequest* request,
                                 etcpb::StatResponse* response) override;
  grpc::ServerUnaryReactor* GetTree(grpc::CallbackServerContext* context,
                                    const etcpb::GetTreeRequest* request,
                                    etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTree(grpc::CallbackServerContext* context,
                                       const etcpb::DeleteTreeRequest* request,
                                       etcdserverpb::DeleteRangeResponse* response) override;
  // tree_watch.cc.
  grpc::ServerWriteReactor<etcpb::WatchTreeResponse>* WatchTree(
      grpc::CallbackServerContext* context, const etcpb::WatchTreeRequest* request) override;

 private:
  MemberHost* host_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_TREE_SERVICE_H_
