// The peer service's message stream, over real gRPC into a real member: a
// batch from another cluster is refused, a message that claims to be from
// a member other than the batch's sender is dropped, and the rest reach the
// member's Raft core.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "server/member_host.h"
#include "server/http.h"
#include "server/peers.h"
#include "server/raft_stream.h"
#include "server/testing/single_member.h"
#include "storage/posix_fs.h"

namespace etc::server {
namespace {

// A heartbeat from `from` at `term`: a member that hears it steps down to
// that term, which is how the test sees that it arrived.
peerpb::Batch HeartbeatBatch(uint64_t cluster_id, uint64_t batch_from, uint64_t message_from,
                             uint64_t term) {
  peerpb::Batch batch;
  batch.set_cluster_id(cluster_id);
  batch.set_from(batch_from);
  raftpb::Message* m = batch.add_messages();
  m->set_type(raftpb::MSG_HEARTBEAT);
  m->set_from(message_from);
  m->set_to(1);
  m->set_term(term);
  return batch;
}

bool AwaitTerm(const MemberHost& host, uint64_t term) {
  for (int i = 0; i < 500 && host.term() != term; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return host.term() == term;
}

// The single member's term once it has elected itself (0: it never did).
uint64_t AwaitFirstTerm(const MemberHost& host) {
  for (int i = 0; i < 500 && host.term() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return host.term();
}

// Serves `service` on a loopback port, with a client stub for it.
void Serve(PeerService* service, std::unique_ptr<grpc::Server>* server,
           std::unique_ptr<peerpb::Peer::Stub>* stub) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  *server = builder.BuildAndStart();
  *stub = peerpb::Peer::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

TEST(PeerService, RefusesOtherClustersDropsForgedSendersAndDeliversTheRest) {
  MemberHostOptions options = SingleMemberOptions("peer_service");
  storage::PosixFs fs;
  NoPeers peers;
  auto host = MemberHost::Start(options, &fs, &peers);
  ASSERT_TRUE(host.ok()) << host.status();
  uint64_t term = AwaitFirstTerm(**host);
  ASSERT_GT(term, 0u) << "the single member never elected itself";

  PeerService service(host->get(), options.cluster_id);
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<peerpb::Peer::Stub> stub;
  Serve(&service, &server, &stub);
  ASSERT_NE(server, nullptr);

  {
    // Another cluster's member: the stream is refused, nothing delivered.
    grpc::ClientContext context;
    peerpb::Ack ack;
    auto stream = stub->Stream(&context, &ack);
    stream->Write(HeartbeatBatch(/*cluster_id=*/8, 2, 2, term + 10));
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(status.error_message().find("another cluster"), std::string::npos)
        << status.error_message();
  }
  {
    // Our cluster: a message claiming another sender is dropped (had it
    // arrived, its higher term would stick); the sender's own arrives and
    // the member steps down to its term.
    grpc::ClientContext context;
    peerpb::Ack ack;
    auto stream = stub->Stream(&context, &ack);
    ASSERT_TRUE(stream->Write(HeartbeatBatch(7, /*batch_from=*/2, /*message_from=*/3, term + 40)));
    ASSERT_TRUE(stream->Write(HeartbeatBatch(7, 2, 2, term + 30)));
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  EXPECT_TRUE(AwaitTerm(**host, term + 30)) << "term " << (*host)->term();
  server->Shutdown();
  (*host)->Stop();
}

// Peers on plaintext use the raft stream where the peer port speaks it (a
// Listener handing raft streams over, with no gRPC server behind it, so
// nothing else could carry the message), and fall back to gRPC where it
// does not (a gRPC-only port, as an older member's).
TEST(PeerService, PeersUseTheRaftStreamWhereSpokenAndGrpcWhereNot) {
  MemberHostOptions options = SingleMemberOptions("peer_raft_stream");
  storage::PosixFs fs;
  NoPeers no_peers;
  auto host = MemberHost::Start(options, &fs, &no_peers);
  ASSERT_TRUE(host.ok()) << host.status();
  uint64_t term = AwaitFirstTerm(**host);
  ASSERT_GT(term, 0u) << "the single member never elected itself";

  RaftStreamServer raft_streams(options.cluster_id,
                                [h = host->get()](std::vector<raftpb::Message> m) {
                                  h->Receive(std::move(m));
                                });
  ListenerOptions listener_options;
  listener_options.raft_stream = [&raft_streams](int fd) { raft_streams.Serve(fd); };
  auto listener = Listener::Start(
      "127.0.0.1:0", /*grpc_server=*/nullptr,
      [](const HttpRequest&) { return HttpResponse{404, "text/plain", {}, ""}; }, listener_options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  {
    Peers peers(/*self=*/2, options.cluster_id,
                {{1, "127.0.0.1:" + std::to_string((*listener)->port())}},
                grpc::InsecureChannelCredentials(), /*raft_stream=*/true);
    peers.Send(HeartbeatBatch(options.cluster_id, 2, 2, term + 10).messages(0));
    EXPECT_TRUE(AwaitTerm(**host, term + 10)) << "term " << (*host)->term();
    peers.Stop();
  }

  PeerService service(host->get(), options.cluster_id);
  int grpc_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  {
    Peers peers(/*self=*/2, options.cluster_id, {{1, "127.0.0.1:" + std::to_string(grpc_port)}},
                grpc::InsecureChannelCredentials(), /*raft_stream=*/true);
    // The first batch finds out the port does not speak the raft stream
    // and goes over gRPC.
    peers.Send(HeartbeatBatch(options.cluster_id, 2, 2, term + 20).messages(0));
    EXPECT_TRUE(AwaitTerm(**host, term + 20)) << "term " << (*host)->term();
    peers.Stop();
  }
  server->Shutdown();
  (*listener)->Stop();
  raft_streams.Stop();
  (*host)->Stop();
}

// The first chunk of a snapshot transfer from member 2, announcing `total_bytes`.
peerpb::SnapshotChunk SnapshotHead(uint64_t cluster_id, uint64_t total_bytes) {
  peerpb::SnapshotChunk first;
  first.set_from(2);
  first.set_cluster_id(cluster_id);
  first.mutable_message()->set_type(raftpb::MSG_SNAP);
  first.mutable_message()->set_from(2);
  first.mutable_message()->set_to(1);
  first.set_total_bytes(total_bytes);
  return first;
}

TEST(PeerService, BoundsASnapshotByItsOwnLimitNotTheSendersWord) {
  MemberHostOptions options = SingleMemberOptions("peer_snapshot");
  storage::PosixFs fs;
  NoPeers peers;
  auto host = MemberHost::Start(options, &fs, &peers);
  ASSERT_TRUE(host.ok()) << host.status();
  PeerService service(host->get(), options.cluster_id, /*max_snapshot_bytes=*/1024);
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<peerpb::Peer::Stub> stub;
  Serve(&service, &server, &stub);
  ASSERT_NE(server, nullptr);
  auto send = [&stub](const std::vector<peerpb::SnapshotChunk>& chunks) {
    grpc::ClientContext context;
    peerpb::Ack ack;
    auto stream = stub->Snapshot(&context, &ack);
    for (const peerpb::SnapshotChunk& chunk : chunks) {
      if (!stream->Write(chunk)) break;
    }
    stream->WritesDone();
    return stream->Finish();
  };
  peerpb::SnapshotChunk kilobyte;
  kilobyte.set_data(std::string(1000, 'x'));

  // Announcing more than the member accepts: refused before any data.
  grpc::Status status = send({SnapshotHead(7, uint64_t{1} << 40), kilobyte});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  // Sending more than announced: refused at the chunk that overshoots.
  status = send({SnapshotHead(7, 500), kilobyte});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // Less than announced: dropped as cut short.
  status = send({SnapshotHead(7, 1010), kilobyte});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  server->Shutdown();
  (*host)->Stop();
}

}  // namespace
}  // namespace etc::server
