// The peer transport: Raft messages between the members of a cluster, over
// a raft stream of etc's own for plaintext peers (server/raft_stream.h) or
// gRPC (TLS peers, and peers that do not speak it). One long-lived stream
// per peer, fed by a sender thread; each write
// carries every message queued at that moment (batching), a full queue
// drops the oldest (Raft tolerates loss; memory does not grow), and a
// broken connection is retried with backoff. Snapshot messages go on their
// own thread and stream, in 1 MiB chunks, so a large one never delays
// heartbeats. The receiving side is PeerService.
//
// Out of threads (a task limit), a peer's link cannot start its two
// threads: messages to it are dropped (Raft retries what matters), the
// link is tried again at most once a second as messages come, and that is
// logged at most once every 10 s; it never aborts the member (a
// std::thread that threw on a membership change did, on every member).
#ifndef ETC_SERVER_PEERS_H_
#define ETC_SERVER_PEERS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "member/interfaces.h"
#include "server/json_log.h"
#include "server/member_host.h"
#include "server/peerpb/peer.grpc.pb.h"
#include "server/raft_stream.h"
#include "storage/snapshotter.h"

namespace etc::server {

class Peers : public member::Transport {
 public:
  // `addresses`: host:port of every other member's peer URL;
  // `credentials`: how to connect (TLS for https:// peer URLs);
  // `raft_stream`: send Raft messages over a raft stream (plaintext peers,
  // server/raft_stream.h) rather than the gRPC stream, to each peer that
  // speaks it.
  Peers(uint64_t self, uint64_t cluster_id, std::map<uint64_t, std::string> addresses,
        std::shared_ptr<grpc::ChannelCredentials> credentials, bool raft_stream = false);
  ~Peers() override;

  // Thread-safe; never blocks on the network. A MSG_SNAP (metadata only)
  // goes to the snapshot sender, which reads the data with the loader.
  void Send(raftpb::Message message) override;
  // Each peer's share leaves as one batch: written from the calling thread
  // when that peer's raft stream is idle (no thread to wake; what the
  // socket does not take at once is left to the sender), otherwise queued
  // with one wake of its sender.
  void SendAll(std::vector<raftpb::Message> messages) override;
  // Where the snapshot sender gets snapshots' data (the member's store);
  // until it is set, snapshot messages are dropped.
  using SnapshotLoader = std::function<absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>>(
      const raftpb::SnapshotMetadata&)>;
  void set_snapshot_loader(SnapshotLoader loader);
  // Points the transport at exactly these members (host:port of each
  // one's peer URL): links to new ones open, links to members no longer
  // listed close, a changed address reconnects.
  void SetAddresses(const std::map<uint64_t, std::string>& addresses);
  // A stub for peer `id` (for forwarding requests to the leader), or
  // nullptr for an unknown member.
  std::shared_ptr<peerpb::Peer::Stub> Stub(uint64_t id);
  void Stop();

  // Batches the calling thread wrote to a raft stream itself, and those of
  // them the socket took only part of (the sender finished them).
  uint64_t direct_writes() const { return direct_writes_.load(std::memory_order_relaxed); }
  uint64_t partial_writes() const { return partial_writes_.load(std::memory_order_relaxed); }
  // Whether the next batch to `id` would be written by the caller: its raft
  // stream is open and no thread is writing to it or has anything queued.
  // (The peer may hold a batch before its sender has let go of the stream.)
  bool StreamIdle(uint64_t id);

 private:
  struct Link {
    uint64_t id = 0;
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::shared_ptr<peerpb::Peer::Stub> stub;
    std::mutex mu;
    // One each for the sender and the snapshot sender, so that a message
    // wakes only the thread that sends it.
    std::condition_variable cv;
    std::condition_variable snapshot_cv;
    std::deque<raftpb::Message> queue;
    // Snapshot messages waiting for the snapshot sender (at most one is
    // kept: a newer snapshot supersedes an unsent older one).
    std::deque<raftpb::Message> snapshots;
    bool stopping = false;
    // The sender's raft stream while it has one (Close shuts it down, so
    // that a write blocked on the peer ends).
    RaftStreamConnection* raft_stream = nullptr;
    // A thread is writing to raft_stream: the sender, or a caller of
    // SendAll writing its batch itself (WriteNow). One at a time; the
    // sender replaces or destroys the stream only while it is the writer.
    bool writing = false;
    // The rest of a frame a caller's write could not finish (the socket's
    // buffer was full): the sender writes it before anything else.
    std::string unsent;
    // A caller's write found raft_stream broken: the sender drops it.
    bool raft_stream_failed = false;
    std::thread sender;
    std::thread snapshot_sender;
  };
  void RunSender(uint64_t to, Link* link);
  // Writes `messages` to the link's raft stream from the calling thread
  // when the sender is idle with nothing queued; false (messages untouched)
  // when they must be queued for the sender instead.
  bool WriteNow(Link& link, std::vector<raftpb::Message>& messages);
  void RunSnapshotSender(Link* link);
  // kResourceExhausted if its threads cannot start.
  absl::StatusOr<std::shared_ptr<Link>> Open(uint64_t id, const std::string& address);
  // The link to `id`, opened now if it is wanted and not open (at most
  // once per kRetryOpenMs after a failure); nullptr if there is none.
  std::shared_ptr<Link> LinkTo(uint64_t id, bool retry_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Close(Link& link);

  uint64_t self_;
  uint64_t cluster_id_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  bool raft_stream_;
  RateLimitedLog no_raft_stream_log_{10'000};
  absl::Mutex mu_;
  // Every other member SetAddresses named, and the links open to them.
  std::map<uint64_t, std::string> wanted_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<Link>> links_ ABSL_GUARDED_BY(mu_);
  // A wanted link that could not open: when to try again (steady ms).
  std::map<uint64_t, int64_t> retry_open_at_ms_ ABSL_GUARDED_BY(mu_);
  RateLimitedLog open_failed_log_{10'000};
  SnapshotLoader snapshot_loader_ ABSL_GUARDED_BY(mu_);
  // Closed links whose sender threads are joined at Stop (a sender may be
  // blocked on the network for a while; the caller must not wait for it).
  std::vector<std::shared_ptr<Link>> closed_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> direct_writes_{0};
  std::atomic<uint64_t> partial_writes_{0};
};

// Receives other members' messages (and forwarded lease requests). The
// message streams are callback reactors: a batch is handed to the member
// from the gRPC thread that read it, with no thread of its own per stream
// to wake in between. Forwarded keep-alives are callback handlers too,
// answered from the member thread: every client keep-alive through a
// follower comes here, and none holds a thread while it waits.
class PeerService final
    : public peerpb::Peer::WithCallbackMethod_Stream<
          peerpb::Peer::WithCallbackMethod_LeaseKeepAlive<peerpb::Peer::Service>> {
 public:
  // A snapshot a peer announces as larger than `max_snapshot_bytes` is
  // refused before a byte of it is kept (the size is the sender's word, so
  // the bound is ours: about what the key tree at its quota serializes to).
  PeerService(MemberHost* host, uint64_t cluster_id,
              uint64_t max_snapshot_bytes = storage::kMaxSnapshotPayloadBytes)
      : host_(host), cluster_id_(cluster_id), max_snapshot_bytes_(max_snapshot_bytes) {}
  grpc::ServerReadReactor<peerpb::Batch>* Stream(grpc::CallbackServerContext* context,
                                                 peerpb::Ack* ack) override;
  grpc::ServerUnaryReactor* LeaseKeepAlive(grpc::CallbackServerContext* context,
                                           const etcdserverpb::LeaseKeepAliveRequest* request,
                                           etcdserverpb::LeaseKeepAliveResponse* response) override;
  grpc::Status LeaseTimeToLive(grpc::ServerContext* context,
                               const etcdserverpb::LeaseTimeToLiveRequest* request,
                               etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::Status Snapshot(grpc::ServerContext* context,
                        grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                        peerpb::Ack* ack) override;
  grpc::Status Members(grpc::ServerContext* context, const peerpb::MembersRequest* request,
                       peerpb::MembersResponse* response) override;
  grpc::Status MemberPromote(grpc::ServerContext* context,
                             const etcdserverpb::MemberPromoteRequest* request,
                             etcdserverpb::MemberPromoteResponse* response) override;

 private:
  MemberHost* host_;
  uint64_t cluster_id_;
  uint64_t max_snapshot_bytes_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_PEERS_H_
