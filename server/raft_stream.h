// Raft messages between members over plain TCP, without gRPC: the peer
// transport for plaintext peer URLs (https:// peers keep the gRPC stream,
// which carries their TLS). One connection per direction and peer, as
// etcd's rafthttp streams: the sender writes whole batches as frames with
// one send each, the receiver reads them on a thread of its own and hands
// the messages to the member. gRPC's stream cost a put about two futex
// calls on gRPC's threads per batch in each direction (docs/benchmarks.md).
//
// The connection shares the peer port with gRPC: it opens with
// kRaftStreamPreface, which the port's Listener tells apart from HTTP/2's
// "PRI" and HTTP/1.1, and the receiver answers one byte, so that a sender
// whose peer does not speak it (an older member, gRPC only) finds out at
// once and keeps to gRPC.
//
// A frame: the payload's length (4 bytes, little-endian), its CRC-32C
// (4 bytes, little-endian), the payload (a peerpb::Batch). A frame longer
// than kMaxRaftFrameBytes, one whose checksum fails or one that does not
// parse closes the connection (the sender reconnects; Raft retries what
// was lost), and the receiver checks each batch's cluster and sender as
// PeerService does.
#ifndef ETC_SERVER_RAFT_STREAM_H_
#define ETC_SERVER_RAFT_STREAM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/json_log.h"
#include "server/peerpb/peer.pb.h"

namespace etc::server {

inline constexpr std::string_view kRaftStreamPreface = "ETC-RAFT/1\n";
// The receiver's answer to the preface.
inline constexpr char kRaftStreamAccepted = 'K';
// gRPC's limit on the peer port, kept.
inline constexpr size_t kMaxRaftFrameBytes = 256 << 20;
inline constexpr size_t kRaftFrameHeaderBytes = 8;

std::string EncodeRaftFrame(const peerpb::Batch& batch);

// The messages of a received batch that its sender may send, moved out of
// it: a member speaks only for itself, so a message naming another sender
// is dropped (both the raft stream and the gRPC stream apply this).
std::vector<raftpb::Message> OwnMessages(peerpb::Batch* batch);

// The frame at the front of `buffer`: `consumed` is 0 while it is
// incomplete. Errors (kDataLoss): too long, checksum, unparsable payload.
struct RaftFrame {
  size_t consumed = 0;
  peerpb::Batch batch;
};
absl::StatusOr<RaftFrame> DecodeRaftFrame(std::string_view buffer);

// The receiving side: connections the peer port hands over (their preface
// not yet read), one thread each.
class RaftStreamServer {
 public:
  // `deliver` gets the messages of each batch from this cluster whose
  // sender is the batch's, together and in order (one hand-off to the
  // member per batch); it runs on the connection's thread.
  using Deliver = std::function<void(std::vector<raftpb::Message>)>;
  RaftStreamServer(uint64_t cluster_id, Deliver deliver);
  ~RaftStreamServer();
  RaftStreamServer(const RaftStreamServer&) = delete;
  RaftStreamServer& operator=(const RaftStreamServer&) = delete;

  // Takes `fd` (closed by this server). Thread-safe; after Stop, or with
  // 256 connections open already, it is closed at once.
  void Serve(int fd);
  // Closes every connection and waits for their threads.
  void Stop();

 private:
  void Run(int fd);
  // Reads the connection's frames until it closes or breaks.
  absl::Status ReadFrames(int fd);
  void Finished(int fd);

  uint64_t cluster_id_;
  Deliver deliver_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  // Threads whose connection ended, joined by the next Serve or by Stop.
  std::vector<std::thread> ended_ ABSL_GUARDED_BY(mu_);
  RateLimitedLog refused_log_{10'000};
};

// The sending side: one connection to one peer, written by one thread.
class RaftStreamConnection {
 public:
  // Connects to host:port, sends the preface and waits up to `timeout_ms`
  // for the answer. kUnimplemented: the peer closed the connection without
  // answering (it does not speak this; use gRPC). kUnavailable: no
  // connection.
  static absl::StatusOr<std::unique_ptr<RaftStreamConnection>> Dial(const std::string& host_port,
                                                                    int64_t timeout_ms);
  ~RaftStreamConnection();
  RaftStreamConnection(const RaftStreamConnection&) = delete;
  RaftStreamConnection& operator=(const RaftStreamConnection&) = delete;

  // The whole frame, or an error (the connection is then of no further
  // use). A peer that reads nothing for `timeout` fails it.
  absl::Status Write(const peerpb::Batch& batch);
  // All of `bytes` (part of a frame), waiting as Write does.
  absl::Status WriteBytes(std::string_view bytes);
  // As much of `bytes` as the socket takes without waiting: how many bytes
  // went (fewer, even 0, when its buffer is full), or an error (the
  // connection is then of no further use).
  absl::StatusOr<size_t> WriteNow(std::string_view bytes);
  // From any thread: a blocked Write fails at once.
  void Shutdown();

 private:
  explicit RaftStreamConnection(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_RAFT_STREAM_H_
