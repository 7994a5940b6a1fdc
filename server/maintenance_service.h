// etcd's Maintenance service: status, alarms, hashes, defragmentation,
// backups (Snapshot) and leadership transfer. With auth on, everything
// but Status and alarm listing is for the root role.
//
//   MaintenanceService maintenance(host);
//   builder.RegisterService(&maintenance);
#ifndef ETC_SERVER_MAINTENANCE_SERVICE_H_
#define ETC_SERVER_MAINTENANCE_SERVICE_H_

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/member_host.h"

namespace etc::server {

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  explicit MaintenanceService(MemberHost* host) : host_(host) {}

  grpc::Status Status(grpc::ServerContext* context, const etcdserverpb::StatusRequest* request,
                      etcdserverpb::StatusResponse* response) override;
  grpc::Status Alarm(grpc::ServerContext* context, const etcdserverpb::AlarmRequest* request,
                     etcdserverpb::AlarmResponse* response) override;
  grpc::Status Hash(grpc::ServerContext* context, const etcdserverpb::HashRequest* request,
                    etcdserverpb::HashResponse* response) override;
  grpc::Status HashKV(grpc::ServerContext* context, const etcdserverpb::HashKVRequest* request,
                      etcdserverpb::HashKVResponse* response) override;
  grpc::Status Defragment(grpc::ServerContext* context,
                          const etcdserverpb::DefragmentRequest* request,
                          etcdserverpb::DefragmentResponse* response) override;
  // A consistent copy of the key tree (kv::Store::Snapshot, taken on the
  // member thread) in a backup file's framing (server/backup.h), streamed
  // in 32 KiB pieces and followed, as etcd's is, by a last message holding
  // its SHA-256.
  grpc::Status Snapshot(grpc::ServerContext* context, const etcdserverpb::SnapshotRequest* request,
                        grpc::ServerWriter<etcdserverpb::SnapshotResponse>* writer) override;
  grpc::Status MoveLeader(grpc::ServerContext* context,
                          const etcdserverpb::MoveLeaderRequest* request,
                          etcdserverpb::MoveLeaderResponse* response) override;

 private:
  MemberHost* host_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_MAINTENANCE_SERVICE_H_
