#include "server/peers.h"

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "server/testing/out_of_tasks.h"
#include "server/testing/raft_stream_receiver.h"

namespace etc::server {
namespace {

raftpb::Message HeartbeatTo(uint64_t to) {
  raftpb::Message message;
  message.set_type(raftpb::MSG_HEARTBEAT);
  message.set_from(1);
  message.set_to(to);
  return message;
}

// Waits up to 5 s until the raft streams to `ids` are open and idle (the
// next batch to them is written by the caller).
bool AwaitStreamsIdle(Peers& peers, std::initializer_list<uint64_t> ids) {
  auto idle = [&] {
    for (uint64_t id : ids) {
      if (!peers.StreamIdle(id)) return false;
    }
    return true;
  };
  for (int i = 0; i < 500 && !idle(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return idle();
}

// A membership change names a new peer while no thread can start (a task
// limit): the member goes on without a link to it (messages to it are
// dropped, as the network may drop them) and opens the link once threads
// can start again, without another membership change. Exit codes: 10 the
// limit could not be set, 11 a link opened without its threads, 12 the
// link never opened after the limit was lifted, 13 the first link did not
// open.
int PeerAddedWhileOutOfThreads() {
  // A member's gRPC runs before any limit bites: a link to peer 3 first.
  Peers peers(/*self=*/1, /*cluster_id=*/7, {{3, "127.0.0.1:1"}},
              grpc::InsecureChannelCredentials());
  if (peers.Stub(3) == nullptr) return 13;
  {
    NoNewThreads no_threads;
    if (!no_threads.ok()) return 10;
    peers.SetAddresses({{1, "127.0.0.1:1"}, {2, "127.0.0.1:1"}, {3, "127.0.0.1:1"}});
    peers.Send(HeartbeatTo(2));
    if (peers.Stub(2) != nullptr) return 11;
  }
  peers.Send(HeartbeatTo(2));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (peers.Stub(2) == nullptr) {
    if (std::chrono::steady_clock::now() > deadline) return 12;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  peers.Stop();
  return 0;
}

TEST(Peers, APeerAddedWhileOutOfThreadsIsLinkedLaterInsteadOfAbortingTheMember) {
  ExpectChildSucceeds("a peer added with no thread to spare", PeerAddedWhileOutOfThreads);
}

// A Ready's messages to two peers, interleaved: each peer's share leaves as
// one batch, in order, and reaches that peer's member as one hand-off:
// through the senders while the streams are being opened, then written
// from the caller's thread once they are open and idle.
TEST(Peers, EachPeersShareOfAReadyTravelsAsOneBatch) {
  Port port2, port3;
  Received received2, received3;
  RaftStreamServer server2(/*cluster_id=*/7, received2.Deliver());
  RaftStreamServer server3(/*cluster_id=*/7, received3.Deliver());
  std::thread accept2([&] { server2.Serve(port2.Accept()); });
  std::thread accept3([&] { server3.Serve(port3.Accept()); });
  Peers peers(/*self=*/1, /*cluster_id=*/7, {{2, port2.address()}, {3, port3.address()}},
              grpc::InsecureChannelCredentials(), /*raft_stream=*/true);
  std::vector<raftpb::Message> ready;
  for (uint64_t term = 1; term <= 3; ++term) {
    for (uint64_t to : {2, 3}) {
      ready.push_back(HeartbeatTo(to));
      ready.back().set_term(term);
    }
  }
  peers.SendAll(std::move(ready));
  accept2.join();
  accept3.join();
  ASSERT_TRUE(AwaitSize(received2, 3));
  ASSERT_TRUE(AwaitSize(received3, 3));
  // A peer can hold the batch before the sender has let go of its stream.
  ASSERT_TRUE(AwaitStreamsIdle(peers, {2, 3}));
  // Again, with both streams open and idle: now written by this thread.
  ready.clear();
  for (uint64_t term = 4; term <= 6; ++term) {
    for (uint64_t to : {2, 3}) {
      ready.push_back(HeartbeatTo(to));
      ready.back().set_term(term);
    }
  }
  peers.SendAll(std::move(ready));
  ASSERT_TRUE(AwaitSize(received2, 6));
  ASSERT_TRUE(AwaitSize(received3, 6));
  EXPECT_EQ(peers.direct_writes(), 2u);
  for (Received* received : {&received2, &received3}) {
    std::lock_guard<std::mutex> lock(received->mu);
    EXPECT_EQ(received->deliveries, (std::vector<size_t>{3, 3}));
    for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(received->messages[i].term(), i + 1);
  }
  peers.Stop();
  server2.Stop();
  server3.Stop();
}

// A peer that stops reading for a while: with the stream idle, batches are
// written from the caller's thread until the socket's buffers fill; one is
// left half sent for the sender to finish, later batches queue behind it,
// and once the peer reads again every message arrives, whole and in order.
TEST(Peers, ABatchTheSocketTakesOnlyPartOfIsFinishedInOrder) {
  Port port;
  Received received;
  std::mutex stall;
  RaftStreamServer::Deliver deliver = received.Deliver();
  RaftStreamServer server(/*cluster_id=*/7, [&](std::vector<raftpb::Message> batch) {
    std::lock_guard<std::mutex> wait(stall);  // blocks the reader while stalled
    deliver(std::move(batch));
  });
  std::thread accept([&] { server.Serve(port.Accept()); });
  Peers peers(/*self=*/1, /*cluster_id=*/7, {{2, port.address()}},
              grpc::InsecureChannelCredentials(), /*raft_stream=*/true);
  // The first batch makes the sender dial; once it arrived the stream is
  // idle, and what follows is written by this thread.
  std::vector<raftpb::Message> first;
  first.push_back(HeartbeatTo(2));
  first.back().set_term(1);
  peers.SendAll(std::move(first));
  accept.join();
  ASSERT_TRUE(AwaitSize(received, 1));
  ASSERT_TRUE(AwaitStreamsIdle(peers, {2}));
  std::unique_lock<std::mutex> stalled(stall);
  // 40 MiB: more than a loopback connection's buffers can hold (on this
  // project's machines at most 4 MiB sending and 32 MiB receiving).
  constexpr uint64_t kBatches = 160;
  auto context_of = [](uint64_t term) {
    return std::string(256 << 10, static_cast<char>('a' + term % 26));
  };
  for (uint64_t term = 2; term <= kBatches; ++term) {
    std::vector<raftpb::Message> ready;
    ready.push_back(HeartbeatTo(2));
    ready.back().set_term(term);
    ready.back().set_context(context_of(term));
    peers.SendAll(std::move(ready));
  }
  EXPECT_GE(peers.direct_writes(), 1u);
  EXPECT_EQ(peers.partial_writes(), 1u) << "the socket's buffers never filled";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stalled.unlock();
  ASSERT_TRUE(AwaitSize(received, kBatches));
  std::lock_guard<std::mutex> lock(received.mu);
  for (uint64_t i = 1; i < kBatches; ++i) {
    EXPECT_EQ(received.messages[i].term(), i + 1);
    EXPECT_EQ(received.messages[i].context(), context_of(i + 1));
  }
  peers.Stop();
  server.Stop();
}

}  // namespace
}  // namespace etc::server
