// etcd's Watch service over real gRPC (loopback TCP) into a real
// single-member host: events in order, a client that stops reading holds
// up nobody else, a closed stream leaves no watchers behind, and ids that
// would collide with progress notifications are refused.
#include "server/watch_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "kv/store.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"
#include "server/testing/single_member.h"
#include "storage/posix_fs.h"

namespace etc::server {
namespace {

using Stream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

class WatchServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MemberHostOptions options = SingleMemberOptions("watch_service");
    auto host = MemberHost::Start(options, &fs_, &peers_);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    service_ = std::make_unique<WatchService>(host_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    // Over loopback TCP, not in-process: how gRPC's HTTP/2 transport
    // writes (and buffers) responses is part of what is tested.
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = etcdserverpb::Watch::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    host_->Stop();
  }

  void Put(const std::string& key, const std::string& value) {
    kvpb::Request request;
    request.mutable_put()->set_key(key);
    request.mutable_put()->set_value(value);
    std::promise<absl::StatusOr<kvpb::Response>> answered;
    host_->Write(std::move(request), [&answered](absl::StatusOr<kvpb::Response> r) {
      answered.set_value(std::move(r));
    });
    ASSERT_TRUE(answered.get_future().get().ok());
  }

  size_t Watchers() {
    absl::StatusOr<size_t> watchers = OnMember<absl::StatusOr<size_t>>(
        host_.get(), [](MemberHost::Context& c) -> absl::StatusOr<size_t> {
          return c.store().watches().watchers();
        });
    EXPECT_TRUE(watchers.ok()) << watchers.status();
    return watchers.value_or(0);
  }

  std::unique_ptr<Stream> Open(grpc::ClientContext* context) { return stub_->Watch(context); }

  static etcdserverpb::WatchRequest Create(const std::string& prefix, int64_t watch_id = 0) {
    etcdserverpb::WatchRequest request;
    request.mutable_create_request()->set_key(prefix);
    request.mutable_create_request()->set_range_end(kv::PrefixEnd(prefix));
    request.mutable_create_request()->set_watch_id(watch_id);
    return request;
  }

  // 1, 2, ..., last.
  static std::vector<int64_t> RevisionsThrough(int64_t last) {
    std::vector<int64_t> revisions;
    for (int64_t r = 1; r <= last; ++r) revisions.push_back(r);
    return revisions;
  }

  // Reads until `revisions` event revisions for watch `id` arrived.
  static std::vector<int64_t> ReadEvents(Stream* stream, int64_t id, size_t revisions) {
    std::vector<int64_t> seen;
    etcdserverpb::WatchResponse response;
    while (seen.size() < revisions && stream->Read(&response)) {
      if (response.watch_id() != id) continue;
      for (const auto& event : response.events()) seen.push_back(event.kv().mod_revision());
    }
    return seen;
  }

  storage::PosixFs fs_;
  NoPeers peers_;
  std::unique_ptr<MemberHost> host_;
  std::unique_ptr<WatchService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
};

TEST_F(WatchServiceTest, AWatcherSeesEveryRevisionOnceInOrderWithTheMembersHeader) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  ASSERT_TRUE(stream->Write(Create("/a/", 3)));
  etcdserverpb::WatchResponse created;
  ASSERT_TRUE(stream->Read(&created));
  EXPECT_TRUE(created.created());
  EXPECT_EQ(created.watch_id(), 3);
  EXPECT_EQ(created.header().member_id(), 1u);
  EXPECT_EQ(created.header().cluster_id(), 7u);
  for (int i = 1; i <= 50; ++i) Put("/a/" + std::to_string(i), "v");
  std::vector<int64_t> seen = ReadEvents(stream.get(), 3, 50);
  EXPECT_EQ(seen, RevisionsThrough(50));
  stream->WritesDone();
  context.TryCancel();
}

// etcd's Go client puts every watch of a client on one stream: each event
// queues one response per watcher at once, written back to back (all but
// the last with gRPC's buffer hint). Each watcher still gets every
// revision, once, in order.
TEST_F(WatchServiceTest, ManyWatchersOnOneStreamEachSeeEveryRevisionInOrder) {
  constexpr int64_t kWatchers = 25;
  constexpr int64_t kPuts = 40;
  grpc::ClientContext context;
  // A response held back for good fails the test rather than hanging it.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<Stream> stream = Open(&context);
  for (int64_t id = 1; id <= kWatchers; ++id) {
    ASSERT_TRUE(stream->Write(Create("/shared/", id)));
    etcdserverpb::WatchResponse created;
    ASSERT_TRUE(stream->Read(&created));
    ASSERT_TRUE(created.created());
  }
  std::thread writer([this] {
    for (int i = 1; i <= kPuts; ++i) Put("/shared/" + std::to_string(i), "v");
  });
  std::map<int64_t, std::vector<int64_t>> seen;
  size_t events = 0;
  etcdserverpb::WatchResponse response;
  while (events < kWatchers * kPuts && stream->Read(&response)) {
    for (const auto& event : response.events()) {
      seen[response.watch_id()].push_back(event.kv().mod_revision());
      ++events;
    }
  }
  writer.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kWatchers));
  for (const auto& [id, revisions] : seen) {
    EXPECT_EQ(revisions, RevisionsThrough(kPuts)) << "watch " << id;
  }
  stream->WritesDone();
  context.TryCancel();
}

// A watch from a past revision on a new stream: its created response is the
// stream's first write, and the catch-up queues behind it; everything
// arrives.
TEST_F(WatchServiceTest, AWatchFromAPastRevisionGetsItsWholeCatchUpOnANewStream) {
  for (int i = 1; i <= 60; ++i) Put("/past/" + std::to_string(i), std::string(2000, 'v'));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<Stream> stream = Open(&context);
  etcdserverpb::WatchRequest create = Create("/past/", 9);
  create.mutable_create_request()->set_start_revision(1);
  ASSERT_TRUE(stream->Write(create));
  etcdserverpb::WatchResponse created;
  ASSERT_TRUE(stream->Read(&created));
  EXPECT_TRUE(created.created());
  std::vector<int64_t> seen = ReadEvents(stream.get(), 9, 60);
  EXPECT_EQ(seen, RevisionsThrough(60));
  stream->WritesDone();
  context.TryCancel();
}

TEST_F(WatchServiceTest, AClientThatStopsReadingHoldsUpNoOtherWatcher) {
  grpc::ClientContext stalled_context, reader_context;
  std::unique_ptr<Stream> stalled = Open(&stalled_context);
  std::unique_ptr<Stream> reader = Open(&reader_context);
  ASSERT_TRUE(stalled->Write(Create("/big/", 1)));
  ASSERT_TRUE(reader->Write(Create("/big/", 1)));
  etcdserverpb::WatchResponse created;
  ASSERT_TRUE(reader->Read(&created));
  // Large values the stalled client never reads: gRPC's flow control fills
  // and its stream stops taking writes, while the other one keeps up.
  std::string value(16 * 1024, 'x');
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 1; i <= 400; ++i) Put("/big/" + std::to_string(i), value);
  });
  std::vector<int64_t> seen = ReadEvents(reader.get(), 1, 400);
  writer.get();
  ASSERT_EQ(seen.size(), 400u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i + 1));
  // The stalled client reads at last: every revision is still there, once.
  std::vector<int64_t> late = ReadEvents(stalled.get(), 1, 400);
  ASSERT_EQ(late.size(), 400u);
  for (size_t i = 0; i < late.size(); ++i) EXPECT_EQ(late[i], static_cast<int64_t>(i + 1));
  stalled_context.TryCancel();
  reader_context.TryCancel();
}

TEST_F(WatchServiceTest, AClosedStreamLeavesNoWatchersBehind) {
  {
    grpc::ClientContext context;
    std::unique_ptr<Stream> stream = Open(&context);
    ASSERT_TRUE(stream->Write(Create("/a/", 1)));
    ASSERT_TRUE(stream->Write(Create("/b/", 2)));
    etcdserverpb::WatchResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(Watchers(), 2u);
    stream->WritesDone();
    while (stream->Read(&response)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Watchers() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Watchers(), 0u);
}

TEST_F(WatchServiceTest, AWatchIdThatProgressNotificationsUseIsRefused) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = Open(&context);
  ASSERT_TRUE(stream->Write(Create("/a/", -1)));
  etcdserverpb::WatchResponse refused;
  ASSERT_TRUE(stream->Read(&refused));
  EXPECT_TRUE(refused.canceled());
  EXPECT_EQ(refused.cancel_reason(), "etcdserver: invalid watch ID");
  // A progress request answers with -1: no watcher of the stream has it.
  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(stream->Write(progress));
  etcdserverpb::WatchResponse notification;
  ASSERT_TRUE(stream->Read(&notification));
  EXPECT_EQ(notification.watch_id(), -1);
  EXPECT_EQ(Watchers(), 0u);
  context.TryCancel();
}

}  // namespace
}  // namespace etc::server
