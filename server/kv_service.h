// etcd's KV service (Range, Put, DeleteRange, Txn, Compact) as gRPC
// callback handlers on raw bytes: a request in flight holds no thread (the
// member thread finishes it), so thousands of concurrent clients cost no
// threads.
//
//   KvService kv(host);
//   builder.RegisterService(&kv);
#ifndef ETC_SERVER_KV_SERVICE_H_
#define ETC_SERVER_KV_SERVICE_H_

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"

namespace etc::server {

using KvCallbackBase = etcdserverpb::KV::WithRawCallbackMethod_Range<
    etcdserverpb::KV::WithRawCallbackMethod_Put<etcdserverpb::KV::WithRawCallbackMethod_DeleteRange<
        etcdserverpb::KV::WithRawCallbackMethod_Txn<
            etcdserverpb::KV::WithRawCallbackMethod_Compact<etcdserverpb::KV::Service>>>>>;

class KvService final : public KvCallbackBase {
 public:
  explicit KvService(MemberHost* host) : host_(host) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                  grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context, const grpc::ByteBuffer* in,
                                grpc::ByteBuffer* out) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* in, grpc::ByteBuffer* out) override;

 private:
  MemberHost* host_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_KV_SERVICE_H_
