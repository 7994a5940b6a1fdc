// The raft stream: frames decode only whole and intact (every split point,
// a flipped bit, a length past the limit, a payload that is not a batch),
// and a real connection over loopback carries batches to the receiver,
// which drops forged senders, refuses other clusters, tells an older peer
// (one that closes without answering) from one that is down, and stops
// with connections open.
#include "server/raft_stream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/crc32c.h"
#include "base/little_endian.h"
#include "server/testing/raft_stream_receiver.h"

namespace etc::server {
namespace {

peerpb::Batch Batch(uint64_t cluster_id, uint64_t from, std::vector<uint64_t> message_froms) {
  peerpb::Batch batch;
  batch.set_cluster_id(cluster_id);
  batch.set_from(from);
  uint64_t term = 1;
  for (uint64_t message_from : message_froms) {
    raftpb::Message* m = batch.add_messages();
    m->set_type(raftpb::MSG_APP);
    m->set_from(message_from);
    m->set_to(1);
    m->set_term(term++);
    m->add_entries()->set_data(std::string(100, 'x'));
  }
  return batch;
}

TEST(RaftFrame, DecodesOnlyWholeFrames) {
  std::string frame = EncodeRaftFrame(Batch(7, 2, {2, 2, 2}));
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    absl::StatusOr<RaftFrame> decoded = DecodeRaftFrame(std::string_view(frame).substr(0, cut));
    ASSERT_TRUE(decoded.ok()) << cut;
    EXPECT_EQ(decoded->consumed, 0u) << cut;
  }
  std::string two = frame + EncodeRaftFrame(Batch(7, 3, {3}));
  absl::StatusOr<RaftFrame> first = DecodeRaftFrame(two);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->consumed, frame.size());
  EXPECT_EQ(first->batch.messages_size(), 3);
  absl::StatusOr<RaftFrame> second = DecodeRaftFrame(std::string_view(two).substr(frame.size()));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->batch.from(), 3u);
}

TEST(RaftFrame, RefusesDamagedOversizedAndUnparsableFrames) {
  std::string frame = EncodeRaftFrame(Batch(7, 2, {2}));
  for (size_t byte = kRaftFrameHeaderBytes; byte < frame.size(); byte += 7) {
    std::string flipped = frame;
    flipped[byte] ^= 0x10;
    absl::StatusOr<RaftFrame> decoded = DecodeRaftFrame(flipped);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << byte;
  }
  std::string oversized = frame;
  base::PutLittleEndian32(static_cast<uint32_t>(kMaxRaftFrameBytes) + 1, oversized.data());
  EXPECT_EQ(DecodeRaftFrame(oversized).status().code(), absl::StatusCode::kDataLoss);
  // Intact (its checksum matches), but not a batch: field number 0 never
  // parses.
  std::string payload("\x00\x01", 2);
  std::string garbage(kRaftFrameHeaderBytes, '\0');
  base::PutLittleEndian32(static_cast<uint32_t>(payload.size()), garbage.data());
  base::PutLittleEndian32(base::Crc32c(payload), garbage.data() + 4);
  garbage += payload;
  absl::StatusOr<RaftFrame> decoded = DecodeRaftFrame(garbage);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("not a batch"), std::string::npos) << decoded.status();
}

// Dials `port` and hands the connection it accepts to `server`.
absl::StatusOr<std::unique_ptr<RaftStreamConnection>> Connect(Port& port,
                                                              RaftStreamServer& server) {
  std::thread acceptor([&] { server.Serve(port.Accept()); });
  auto connection = RaftStreamConnection::Dial(port.address(), 1000);
  acceptor.join();
  return connection;
}

TEST(RaftStream, CarriesBatchesAndDropsForgedSenders) {
  Port port;
  Received received;
  RaftStreamServer server(/*cluster_id=*/7, received.Deliver());
  auto connection = Connect(port, server);
  ASSERT_TRUE(connection.ok()) << connection.status();
  // Member 2's batch with a message claiming to be from member 3: dropped.
  ASSERT_TRUE((*connection)->Write(Batch(7, 2, {2, 3, 2})).ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*connection)->Write(Batch(7, 2, {2})).ok());
  ASSERT_TRUE(AwaitSize(received, 102));
  std::lock_guard<std::mutex> lock(received.mu);
  for (const raftpb::Message& m : received.messages) EXPECT_EQ(m.from(), 2u);
  EXPECT_EQ(received.messages[1].term(), 3u);  // the forged one (term 2) is gone
  EXPECT_EQ(received.messages[0].entries(0).data(), std::string(100, 'x'));
  // Each batch reaches the member as one hand-off, its messages in order.
  ASSERT_EQ(received.deliveries.size(), 101u);
  EXPECT_EQ(received.deliveries[0], 2u);
}

TEST(RaftStream, RefusesAnotherClusterByClosing) {
  Port port;
  Received received;
  RaftStreamServer server(/*cluster_id=*/7, received.Deliver());
  auto connection = Connect(port, server);
  ASSERT_TRUE(connection.ok()) << connection.status();
  ASSERT_TRUE((*connection)->Write(Batch(8, 2, {2})).ok());
  // The receiver closed the connection: writes soon fail.
  bool failed = false;
  for (int i = 0; i < 500 && !failed; ++i) {
    failed = !(*connection)->Write(Batch(8, 2, {2})).ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(failed);
  EXPECT_EQ(received.size(), 0u);
}

TEST(RaftStream, TellsAnOlderPeerFromOneThatIsDown) {
  {
    // A port that reads the preface and closes (as gRPC does with what is
    // not HTTP/2): the peer does not speak the raft stream.
    Port port;
    std::thread closer([&] {
      int fd = port.Accept();
      char buffer[64];
      (void)recv(fd, buffer, sizeof(buffer), 0);
      close(fd);
    });
    auto connection = RaftStreamConnection::Dial(port.address(), 1000);
    closer.join();
    EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnimplemented) << connection.status();
  }
  std::string closed_address;
  {
    Port port;
    closed_address = port.address();
  }
  auto connection = RaftStreamConnection::Dial(closed_address, 1000);
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable) << connection.status();
}

TEST(RaftStream, StopsWithConnectionsOpenAndRefusesNewOnes) {
  Port port;
  RaftStreamServer server(/*cluster_id=*/7, [](std::vector<raftpb::Message>) {});
  auto connection = Connect(port, server);
  ASSERT_TRUE(connection.ok()) << connection.status();
  server.Stop();  // returns although the sender keeps its side open
  // A connection handed over after Stop is closed at once: the dial sees
  // it close without an answer.
  EXPECT_FALSE(Connect(port, server).ok());
}

}  // namespace
}  // namespace etc::server
