// etcd's Lease service over real gRPC (a loopback port) into a real
// single-member host: keep-alive streams cost no thread each (etcd clients
// hold one open per client for their whole life), every request on a
// stream is answered with its lease's TTL, a client that writes faster
// than it reads is held back by flow control rather than queued for (and
// is still answered everything), and open streams end when the client
// half-closes, cancels or the server stops.
#include "server/lease_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/testing/single_member.h"
#include "server/testing/threads.h"
#include "storage/posix_fs.h"

namespace etc::server {
namespace {

using Stream = grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                        etcdserverpb::LeaseKeepAliveResponse>;

etcdserverpb::LeaseKeepAliveRequest KeepAlive(int64_t id) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(id);
  return request;
}

// One client's keep-alive stream, with the context it lives in.
struct OpenStream {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream;
};

class LeaseServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MemberHostOptions options = SingleMemberOptions("lease_service");
    auto host = MemberHost::Start(options, &fs_, &peers_);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    for (int i = 0; i < 500 && host_->leader() != options.member_id; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(host_->leader(), options.member_id) << "the single member never elected itself";
    // A single member never forwards: it is the leader.
    service_ = std::make_unique<LeaseService>(host_.get(), nullptr);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    // Flow-control windows stay at their first size (no bandwidth probes
    // growing them), so a client that does not read fills them soon.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    stub_ = etcdserverpb::Lease::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), arguments));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    if (host_ != nullptr) host_->Stop();
  }

  int64_t Grant(int64_t ttl_seconds) {
    grpc::ClientContext context;
    etcdserverpb::LeaseGrantRequest request;
    request.set_ttl(ttl_seconds);
    etcdserverpb::LeaseGrantResponse response;
    grpc::Status status = stub_->LeaseGrant(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.id();
  }

  std::unique_ptr<OpenStream> Open() {
    auto open = std::make_unique<OpenStream>();
    open->stream = stub_->LeaseKeepAlive(&open->context);
    return open;
  }

  // One keep-alive on `stream`: the TTL it answers (-1: no answer).
  static int64_t Renew(Stream* stream, int64_t id) {
    if (!stream->Write(KeepAlive(id))) return -1;
    etcdserverpb::LeaseKeepAliveResponse response;
    if (!stream->Read(&response)) return -1;
    EXPECT_EQ(response.id(), id);
    EXPECT_EQ(response.header().member_id(), 1u);
    EXPECT_EQ(response.header().cluster_id(), 7u);
    return response.ttl();
  }

  // Opens streams until there are `count`, each renewing `id` once.
  void OpenRenewing(std::vector<std::unique_ptr<OpenStream>>* streams, size_t count, int64_t id,
                    int64_t ttl_seconds) {
    while (streams->size() < count) {
      streams->push_back(Open());
      ASSERT_EQ(Renew(streams->back()->stream.get(), id), ttl_seconds)
          << "stream " << streams->size();
    }
  }

  storage::PosixFs fs_;
  NoPeers peers_;
  std::unique_ptr<MemberHost> host_;
  std::unique_ptr<LeaseService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
};

TEST_F(LeaseServiceTest, OpenKeepAliveStreamsCostNoThreadEach) {
  int64_t id = Grant(60);
  std::vector<std::unique_ptr<OpenStream>> streams;
  // A few first, so that gRPC's own threads (pollers, executors) are up.
  OpenRenewing(&streams, 10, id, 60);
  size_t threads_with_10 = ThreadCount();
  OpenRenewing(&streams, 300, id, 60);
  size_t threads_with_300 = ThreadCount();
  std::printf("threads: %zu with 10 open keep-alive streams, %zu with 300\n", threads_with_10,
              threads_with_300);
  EXPECT_LE(threads_with_300, threads_with_10 + 8) << "a thread per keep-alive stream";
  // Every stream still serves, and ends cleanly when its client half-closes.
  for (auto& open : streams) {
    EXPECT_EQ(Renew(open->stream.get(), id), 60);
    open->stream->WritesDone();
    etcdserverpb::LeaseKeepAliveResponse extra;
    EXPECT_FALSE(open->stream->Read(&extra));
    grpc::Status status = open->stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

TEST_F(LeaseServiceTest, EachRequestIsAnsweredWithItsLeasesTtlEvenWhenTheClientReadsLate) {
  int64_t short_lease = Grant(30);
  int64_t long_lease = Grant(90);
  std::unique_ptr<OpenStream> open = Open();
  // More requests than a stream queues answers for: the server stops
  // reading until the client reads, and nothing is lost.
  constexpr int kRequests = 500;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(open->stream->Write(KeepAlive(i % 2 == 0 ? short_lease : long_lease)));
  }
  int answered_short = 0, answered_long = 0;
  for (int i = 0; i < kRequests; ++i) {
    etcdserverpb::LeaseKeepAliveResponse response;
    ASSERT_TRUE(open->stream->Read(&response)) << "answer " << i;
    if (response.id() == short_lease) {
      EXPECT_EQ(response.ttl(), 30);
      ++answered_short;
    } else {
      EXPECT_EQ(response.id(), long_lease);
      EXPECT_EQ(response.ttl(), 90);
      ++answered_long;
    }
  }
  EXPECT_EQ(answered_short, kRequests / 2);
  EXPECT_EQ(answered_long, kRequests / 2);
  // An unknown lease answers TTL 0, the client's sign that it expired.
  EXPECT_EQ(Renew(open->stream.get(), 12345), 0);
  open->stream->WritesDone();
  EXPECT_TRUE(open->stream->Finish().ok());
}

TEST_F(LeaseServiceTest, AClientThatDoesNotReadIsHeldBackNotQueuedFor) {
  int64_t id = Grant(60);
  std::unique_ptr<OpenStream> open = Open();
  // Far more requests than the windows and buffers between the client and
  // the service hold: a service that read them all without being read
  // from would queue their answers in its memory and let the writer finish.
  constexpr int kRequests = 20000;
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kRequests && open->stream->Write(KeepAlive(id)); ++i) written.fetch_add(1);
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (written.load() < kRequests && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int written_unread = written.load();
  std::printf("a client that does not read got %d of %d keep-alives out\n", written_unread,
              kRequests);
  EXPECT_LT(written_unread, kRequests) << "the stream read on without anyone reading its answers";
  // Once the client reads, everything is answered.
  for (int i = 0; i < kRequests; ++i) {
    etcdserverpb::LeaseKeepAliveResponse response;
    ASSERT_TRUE(open->stream->Read(&response)) << "answer " << i;
    ASSERT_EQ(response.ttl(), 60) << "answer " << i;
  }
  writer.join();
  EXPECT_EQ(written.load(), kRequests);
  open->stream->WritesDone();
  EXPECT_TRUE(open->stream->Finish().ok());
}

TEST_F(LeaseServiceTest, ACancelledStreamEndsAndOthersGoOn) {
  int64_t id = Grant(60);
  std::unique_ptr<OpenStream> cancelled = Open();
  std::unique_ptr<OpenStream> other = Open();
  ASSERT_EQ(Renew(cancelled->stream.get(), id), 60);
  ASSERT_EQ(Renew(other->stream.get(), id), 60);
  // Requests still in flight when the client gives up.
  for (int i = 0; i < 20; ++i) cancelled->stream->Write(KeepAlive(id));
  cancelled->context.TryCancel();
  EXPECT_EQ(cancelled->stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(Renew(other->stream.get(), id), 60);
  other->stream->WritesDone();
  EXPECT_TRUE(other->stream->Finish().ok());
}

TEST_F(LeaseServiceTest, StoppingTheServerEndsOpenStreams) {
  int64_t id = Grant(60);
  std::vector<std::unique_ptr<OpenStream>> streams;
  OpenRenewing(&streams, 20, id, 60);
  auto start = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Each client hears the end (whatever status the cancellation gives it).
  for (auto& open : streams) (void)open->stream->Finish();
}

}  // namespace
}  // namespace etc::server
