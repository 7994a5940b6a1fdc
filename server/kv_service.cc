#include "server/kv_service.h"

#include "kv/store.h"
#include "server/rpc.h"

namespace etc::server {

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return Start(
      host_, context, in, out, &kvpb::Request::mutable_range, &kvpb::Response::mutable_range,
      +[](const kvpb::Request& r) {
        return r.range().serializable() ? Mode::kSerializableRead : Mode::kLinearizableRead;
      });
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return Start(host_, context, in, out, &kvpb::Request::mutable_put, &kvpb::Response::mutable_put,
               &WriteMode);
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const grpc::ByteBuffer* in,
                                                 grpc::ByteBuffer* out) {
  return Start(host_, context, in, out, &kvpb::Request::mutable_delete_range,
               &kvpb::Response::mutable_delete_range, &WriteMode);
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  // A read-only txn is a linearizable read; anything else goes through the log.
  return Start(
      host_, context, in, out, &kvpb::Request::mutable_txn, &kvpb::Response::mutable_txn,
      +[](const kvpb::Request& r) {
        return kv::Store::IsReadOnly(r) ? Mode::kLinearizableRead : Mode::kWrite;
      });
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  return Start(host_, context, in, out, &kvpb::Request::mutable_compaction,
               &kvpb::Response::mutable_compaction, &WriteMode);
}

}  // namespace etc::server
