// etcd's Watch service: one bidirectional stream per client, as a gRPC
// callback reactor (no thread per stream). The stream is a
// member::WatchSink: the member's watch streams (member/watch_streams.h,
// the policy the simulator runs too) push responses into it, and its
// reactor writes them one at a time, each write started by the one before.
#ifndef ETC_SERVER_WATCH_SERVICE_H_
#define ETC_SERVER_WATCH_SERVICE_H_

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"

namespace etc::server {

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(MemberHost* host) : host_(host) {}

  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;

 private:
  MemberHost* host_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_WATCH_SERVICE_H_
