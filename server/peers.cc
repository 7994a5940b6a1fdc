#include "server/peers.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <new>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/steady_clock.h"
#include "server/grpc_status.h"

namespace etc::server {
namespace {

using base::SteadyMs;

// A link whose threads could not start is tried again after this.
constexpr int64_t kRetryOpenMs = 1000;
// Messages queued per peer before the oldest are dropped.
constexpr size_t kMaxQueuedMessages = 8192;
constexpr auto kReconnectBackoff = std::chrono::milliseconds(100);
constexpr auto kForwardTimeout = std::chrono::seconds(5);
// How long a raft stream's dial waits to connect and for the peer's answer.
constexpr int64_t kRaftStreamDialTimeoutMs = 1000;

// One peer's stream of message batches: each batch read goes to the member,
// then the next read starts; the reactor deletes itself when the call ends.
class BatchReader final : public grpc::ServerReadReactor<peerpb::Batch> {
 public:
  BatchReader(MemberHost* host, uint64_t cluster_id) : host_(host), cluster_id_(cluster_id) {
    StartRead(&batch_);
  }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the sender closed its side, or the call broke
      return;
    }
    if (batch_.cluster_id() != cluster_id_) {
      Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("member ", absl::Hex(batch_.from()),
                                       " belongs to another cluster (", absl::Hex(batch_.cluster_id()),
                                       ", this is ", absl::Hex(cluster_id_), ")")));
      return;
    }
    std::vector<raftpb::Message> messages = OwnMessages(&batch_);
    if (!messages.empty()) host_->Receive(std::move(messages));
    batch_.Clear();
    StartRead(&batch_);
  }
  void OnDone() override { delete this; }

  MemberHost* host_;
  uint64_t cluster_id_;
  peerpb::Batch batch_;
};

}  // namespace

Peers::Peers(uint64_t self, uint64_t cluster_id, std::map<uint64_t, std::string> addresses,
             std::shared_ptr<grpc::ChannelCredentials> credentials, bool raft_stream)
    : self_(self),
      cluster_id_(cluster_id),
      credentials_(std::move(credentials)),
      raft_stream_(raft_stream) {
  SetAddresses(addresses);
}

Peers::~Peers() { Stop(); }

absl::StatusOr<std::shared_ptr<Peers::Link>> Peers::Open(uint64_t id, const std::string& address) {
  auto link = std::make_shared<Link>();
  link->id = id;
  link->address = address;
  Link* raw = link.get();
  // The threads first, so that a link that cannot have them never makes a
  // channel (gRPC's teardown of a channel made while no thread can start
  // waits for threads that never ran). They touch the stub only for a
  // message, which comes after Open returns.
  try {
    link->sender = std::thread([this, id, raw] { RunSender(id, raw); });
    link->snapshot_sender = std::thread([this, raw] { RunSnapshotSender(raw); });
  } catch (const std::system_error& e) {
    // Out of threads: the one that started (it holds none of our locks)
    // ends at once.
    Close(*link);
    if (link->sender.joinable()) link->sender.join();
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start its sender threads: ", e.what()));
  }
  pthread_setname_np(link->sender.native_handle(), "etc-peer-send");
  pthread_setname_np(link->snapshot_sender.native_handle(), "etc-peer-snap");
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(256 << 20);
  args.SetMaxReceiveMessageSize(256 << 20);
  // Reconnect quickly after a peer restarts.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  {
    std::lock_guard<std::mutex> lock(link->mu);
    link->channel = grpc::CreateCustomChannel(address, credentials_, args);
    link->stub = peerpb::Peer::NewStub(link->channel);
  }
  return link;
}

std::shared_ptr<Peers::Link> Peers::LinkTo(uint64_t id, bool retry_now) {
  auto open = links_.find(id);
  if (open != links_.end()) return open->second;
  auto wanted = wanted_.find(id);
  if (wanted == wanted_.end()) return nullptr;  // not a member we know
  int64_t now_ms = SteadyMs();
  auto retry = retry_open_at_ms_.find(id);
  if (!retry_now && retry != retry_open_at_ms_.end() && now_ms < retry->second) return nullptr;
  absl::StatusOr<std::shared_ptr<Link>> link = Open(id, wanted->second);
  if (!link.ok()) {
    retry_open_at_ms_[id] = now_ms + kRetryOpenMs;
    if (uint64_t failures = open_failed_log_.Count(now_ms)) {
      LogJson("warn", absl::StrCat("no link to peer ", absl::Hex(id), " (", wanted->second, "): ",
                                   link.status().message(), "; messages to it are dropped and ",
                                   "it is tried again every ", kRetryOpenMs, " ms (", failures,
                                   " failure(s))"));
    }
    return nullptr;
  }
  retry_open_at_ms_.erase(id);
  links_[id] = *link;
  return *link;
}

void Peers::Close(Link& link) {
  {
    std::lock_guard<std::mutex> lock(link.mu);
    link.stopping = true;
    if (link.raft_stream != nullptr) link.raft_stream->Shutdown();
  }
  link.cv.notify_all();
  link.snapshot_cv.notify_all();
}

void Peers::SetAddresses(const std::map<uint64_t, std::string>& addresses) {
  absl::MutexLock lock(&mu_);
  wanted_ = addresses;
  wanted_.erase(self_);
  retry_open_at_ms_.clear();
  for (auto it = links_.begin(); it != links_.end();) {
    auto wanted = addresses.find(it->first);
    if (wanted != addresses.end() && wanted->second == it->second->address) {
      ++it;
      continue;
    }
    Close(*it->second);
    closed_.push_back(std::move(it->second));
    it = links_.erase(it);
  }
  for (const auto& [id, address] : wanted_) LinkTo(id, /*retry_now=*/true);
}

void Peers::Stop() {
  std::map<uint64_t, std::shared_ptr<Link>> links;
  std::vector<std::shared_ptr<Link>> closed;
  {
    absl::MutexLock lock(&mu_);
    wanted_.clear();  // nothing opens again
    links.swap(links_);
    closed.swap(closed_);
  }
  for (auto& [id, link] : links) {
    Close(*link);
    closed.push_back(link);
  }
  for (auto& link : closed) {
    if (link->sender.joinable()) link->sender.join();
    if (link->snapshot_sender.joinable()) link->snapshot_sender.join();
  }
}

void Peers::Send(raftpb::Message message) {
  std::vector<raftpb::Message> one;
  one.push_back(std::move(message));
  SendAll(std::move(one));
}

void Peers::SendAll(std::vector<raftpb::Message> messages) {
  // Each peer's share, in order (a Ready names few peers).
  std::vector<std::pair<std::shared_ptr<Link>, std::vector<raftpb::Message>>> shares;
  {
    absl::MutexLock lock(&mu_);
    for (raftpb::Message& message : messages) {
      auto share = std::find_if(shares.begin(), shares.end(),
                                [&](const auto& s) { return s.first->id == message.to(); });
      if (share == shares.end()) {
        std::shared_ptr<Link> link = LinkTo(message.to(), /*retry_now=*/false);
        if (link == nullptr) continue;  // not a member we know, or no link yet: dropped
        share = shares.emplace(shares.end(), std::move(link), std::vector<raftpb::Message>{});
      }
      share->second.push_back(std::move(message));
    }
  }
  for (auto& [link, share] : shares) {
    // Snapshots go to the snapshot sender; the newest supersedes the rest.
    auto snapshot = std::stable_partition(share.begin(), share.end(), [](const auto& m) {
      return m.type() != raftpb::MSG_SNAP;
    });
    if (snapshot != share.end()) {
      {
        std::lock_guard<std::mutex> lock(link->mu);
        link->snapshots.clear();
        link->snapshots.push_back(std::move(share.back()));
      }
      link->snapshot_cv.notify_one();
      share.erase(snapshot, share.end());
    }
    if (share.empty() || WriteNow(*link, share)) continue;
    bool was_empty = false;
    {
      std::lock_guard<std::mutex> lock(link->mu);
      was_empty = link->queue.empty();
      for (raftpb::Message& message : share) {
        if (link->queue.size() >= kMaxQueuedMessages) link->queue.pop_front();
        link->queue.push_back(std::move(message));
      }
    }
    // A non-empty queue means the sender was already woken and takes the
    // whole queue when it runs: one wake per batch, not per message.
    if (was_empty) link->cv.notify_one();
  }
}

bool Peers::WriteNow(Link& link, std::vector<raftpb::Message>& messages) {
  RaftStreamConnection* connection = nullptr;
  {
    std::lock_guard<std::mutex> lock(link.mu);
    if (link.raft_stream == nullptr || link.writing || link.stopping || link.raft_stream_failed ||
        !link.queue.empty() || !link.unsent.empty()) {
      return false;
    }
    link.writing = true;
    connection = link.raft_stream;
  }
  peerpb::Batch batch;
  batch.set_from(self_);
  batch.set_cluster_id(cluster_id_);
  for (raftpb::Message& message : messages) *batch.add_messages() = std::move(message);
  std::string frame = EncodeRaftFrame(batch);
  absl::StatusOr<size_t> written = connection->WriteNow(frame);
  direct_writes_.fetch_add(1, std::memory_order_relaxed);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(link.mu);
    link.writing = false;
    if (!written.ok()) {
      // These messages are lost, as on any broken connection (Raft retries
      // what matters); the sender dials again with the next batch.
      link.raft_stream_failed = true;
    } else if (*written < frame.size()) {
      frame.erase(0, *written);
      link.unsent = std::move(frame);
      partial_writes_.fetch_add(1, std::memory_order_relaxed);
    }
    wake = link.raft_stream_failed || !link.unsent.empty() || !link.queue.empty() || link.stopping;
  }
  if (wake) link.cv.notify_one();
  return true;
}

bool Peers::StreamIdle(uint64_t id) {
  std::shared_ptr<Link> link;
  {
    absl::MutexLock lock(&mu_);
    auto it = links_.find(id);
    if (it == links_.end()) return false;
    link = it->second;
  }
  std::lock_guard<std::mutex> lock(link->mu);
  return link->raft_stream != nullptr && !link->writing && !link->stopping &&
         !link->raft_stream_failed && link->queue.empty() && link->unsent.empty();
}

void Peers::set_snapshot_loader(SnapshotLoader loader) {
  absl::MutexLock lock(&mu_);
  snapshot_loader_ = std::move(loader);
}

std::shared_ptr<peerpb::Peer::Stub> Peers::Stub(uint64_t id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Link> link = LinkTo(id, /*retry_now=*/false);
  return link == nullptr ? nullptr : link->stub;
}

void Peers::RunSender(uint64_t to, Link* link) {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientWriter<peerpb::Batch>> stream;
  peerpb::Ack ack;
  std::unique_ptr<RaftStreamConnection> raft_stream;
  // Until the peer shows it does not speak the raft stream (an older
  // member); then gRPC for as long as this link lasts.
  bool use_raft_stream = raft_stream_;
  auto set_raft_stream = [&](std::unique_ptr<RaftStreamConnection> connection) {
    std::lock_guard<std::mutex> lock(link->mu);
    link->raft_stream = connection.get();
    raft_stream = std::move(connection);
    // Close may have run before the stream was there to shut down.
    if (link->stopping && raft_stream != nullptr) raft_stream->Shutdown();
  };
  // One round: what a caller's write left, then the queued batch. Runs
  // while this thread is the link's writer.
  auto send = [&](peerpb::Batch& batch, const std::string& unsent, bool failed) {
    if (failed) set_raft_stream(nullptr);
    if (!unsent.empty() && raft_stream != nullptr && !raft_stream->WriteBytes(unsent).ok()) {
      set_raft_stream(nullptr);
      std::this_thread::sleep_for(kReconnectBackoff);
    }
    if (batch.messages_size() == 0) return;
    batch.set_from(self_);
    batch.set_cluster_id(cluster_id_);
    if (use_raft_stream && raft_stream == nullptr) {
      absl::StatusOr<std::unique_ptr<RaftStreamConnection>> dialed =
          RaftStreamConnection::Dial(link->address, kRaftStreamDialTimeoutMs);
      if (dialed.ok()) {
        set_raft_stream(std::move(*dialed));
      } else if (dialed.status().code() == absl::StatusCode::kUnimplemented) {
        use_raft_stream = false;
        if (uint64_t events = no_raft_stream_log_.Count(SteadyMs())) {
          LogJson("info", absl::StrCat("peer ", absl::Hex(to), " (", link->address, "): ",
                                       dialed.status().message(), "; using gRPC (", events,
                                       " time(s))"));
        }
      } else {
        // The peer is down or restarting: these messages are lost (Raft
        // retries what matters), and the next batch dials again.
        std::this_thread::sleep_for(kReconnectBackoff);
        return;
      }
    }
    if (raft_stream != nullptr) {
      if (!raft_stream->Write(batch).ok()) {
        set_raft_stream(nullptr);
        std::this_thread::sleep_for(kReconnectBackoff);
      }
      return;
    }
    if (stream == nullptr) {
      context = std::make_unique<grpc::ClientContext>();
      stream = link->stub->Stream(context.get(), &ack);
    }
    if (!stream->Write(batch)) {
      // The peer is down or restarting: these messages are lost (Raft
      // retries what matters), and the next batch reconnects.
      stream->Finish();
      stream.reset();
      context.reset();
      std::this_thread::sleep_for(kReconnectBackoff);
    }
  };
  for (;;) {
    peerpb::Batch batch;
    std::string unsent;
    bool failed = false;
    {
      std::unique_lock<std::mutex> lock(link->mu);
      link->cv.wait(lock, [&] {
        return link->stopping || (!link->writing && (!link->queue.empty() || !link->unsent.empty() ||
                                                     link->raft_stream_failed));
      });
      if (link->stopping) break;
      link->writing = true;
      unsent.swap(link->unsent);
      failed = std::exchange(link->raft_stream_failed, false);
      for (raftpb::Message& m : link->queue) *batch.add_messages() = std::move(m);
      link->queue.clear();
    }
    send(batch, unsent, failed);
    std::lock_guard<std::mutex> lock(link->mu);
    link->writing = false;
  }
  {
    // A caller may be writing to the stream: it is destroyed after.
    std::unique_lock<std::mutex> lock(link->mu);
    link->cv.wait(lock, [&] { return !link->writing; });
  }
  set_raft_stream(nullptr);
  if (stream != nullptr) {
    stream->WritesDone();
    context->TryCancel();
    stream->Finish();
  }
}

void Peers::RunSnapshotSender(Link* link) {
  constexpr size_t kChunkBytes = 1 << 20;
  for (;;) {
    raftpb::Message message;
    {
      std::unique_lock<std::mutex> lock(link->mu);
      link->snapshot_cv.wait(lock, [&] { return link->stopping || !link->snapshots.empty(); });
      if (link->stopping) return;
      message = std::move(link->snapshots.front());
      link->snapshots.pop_front();
    }
    // Raft keeps only the snapshot's metadata: the data comes from the
    // store (memory while it is being saved, then its file), read here so
    // that the member thread never waits for it.
    SnapshotLoader loader;
    {
      absl::MutexLock lock(&mu_);
      loader = snapshot_loader_;
    }
    absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> snapshot =
        loader ? loader(message.snapshot().metadata())
               : absl::UnavailableError("no snapshot loader yet");
    if (!snapshot.ok()) {
      // Lost, as if the network dropped it: the leader sends a newer
      // snapshot when the follower still needs one.
      std::fprintf(stderr,
                   "{\"level\":\"warn\",\"msg\":\"cannot send the snapshot at index %llu to "
                   "%llx: %s\"}\n",
                   static_cast<unsigned long long>(message.snapshot().metadata().index()),
                   static_cast<unsigned long long>(message.to()),
                   std::string(snapshot.status().message()).c_str());
      continue;
    }
    std::string_view data = (*snapshot)->data();
    grpc::ClientContext context;
    // Five minutes, and a second more per 8 MiB: a snapshot of an 8 GiB
    // key tree (10 GiB) gets 26 minutes, 6.5 MB/s at least.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5) +
                         std::chrono::seconds(data.size() >> 23));
    peerpb::Ack ack;
    std::unique_ptr<grpc::ClientWriter<peerpb::SnapshotChunk>> stream =
        link->stub->Snapshot(&context, &ack);
    peerpb::SnapshotChunk first;
    first.set_from(self_);
    first.set_cluster_id(cluster_id_);
    *first.mutable_message() = std::move(message);
    first.set_total_bytes(data.size());
    bool ok = stream->Write(first);
    for (size_t sent = 0; ok && sent < data.size(); sent += kChunkBytes) {
      peerpb::SnapshotChunk chunk;
      chunk.set_data(std::string(data.substr(sent, kChunkBytes)));
      ok = stream->Write(chunk);
    }
    if (ok) stream->WritesDone();
    // A failed transfer is a lost message: the leader sends the snapshot
    // again when the follower still needs it.
    (void)stream->Finish();
  }
}

grpc::Status PeerService::Snapshot(grpc::ServerContext*,
                                   grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                                   peerpb::Ack*) {
  peerpb::SnapshotChunk first;
  if (!reader->Read(&first)) return grpc::Status::OK;
  if (first.cluster_id() != cluster_id_) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "member of another cluster");
  }
  if (first.message().from() != first.from() || first.message().type() != raftpb::MSG_SNAP) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a snapshot message");
  }
  // The size is the sender's word: bounded by ours, then the data is
  // collected as it comes, never past the size announced, and a transfer
  // that does not add up is dropped.
  if (first.total_bytes() > max_snapshot_bytes_) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("a snapshot of ", first.total_bytes(),
                                     " bytes is larger than this member accepts (",
                                     max_snapshot_bytes_, ")"));
  }
  std::string data;
  // Reserved whole (the size is bounded above): growing by doubling would
  // hold up to twice the snapshot for a moment.
  try {
    data.reserve(first.total_bytes());
  } catch (const std::bad_alloc&) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("no memory for a snapshot of ", first.total_bytes(), " bytes"));
  }
  peerpb::SnapshotChunk chunk;
  while (data.size() < first.total_bytes() && reader->Read(&chunk)) {
    if (chunk.data().size() > first.total_bytes() - data.size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the snapshot transfer is longer than announced");
    }
    data += chunk.data();
  }
  if (data.size() != first.total_bytes()) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "the snapshot transfer was cut short");
  }
  std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"received a snapshot at index %llu (%zu bytes) from %llx\"}\n",
               static_cast<unsigned long long>(first.message().snapshot().metadata().index()),
               data.size(), static_cast<unsigned long long>(first.from()));
  raftpb::Message message = std::move(*first.mutable_message());
  message.mutable_snapshot()->set_data(std::move(data));
  host_->Receive(std::move(message));
  return grpc::Status::OK;
}

grpc::ServerReadReactor<peerpb::Batch>* PeerService::Stream(grpc::CallbackServerContext*,
                                                            peerpb::Ack*) {
  return new BatchReader(host_, cluster_id_);
}

grpc::ServerUnaryReactor* PeerService::LeaseKeepAlive(
    grpc::CallbackServerContext* context, const etcdserverpb::LeaseKeepAliveRequest* request,
    etcdserverpb::LeaseKeepAliveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  int64_t id = request->id();
  // gRPC keeps the call, and `response`, until Finish.
  host_->LeaderKeepAlive(id, [reactor, response, id](absl::StatusOr<int64_t> ttl) {
    if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
      reactor->Finish(ToGrpc(ttl.status()));
      return;
    }
    response->set_id(id);
    response->set_ttl(ttl.ok() ? *ttl : 0);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::Status PeerService::LeaseTimeToLive(grpc::ServerContext*,
                                          const etcdserverpb::LeaseTimeToLiveRequest* request,
                                          etcdserverpb::LeaseTimeToLiveResponse* response) {
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> result = host_->LeaderTimeToLive(*request);
  if (!result.ok()) return ToGrpc(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace etc::server

namespace etc::server {

grpc::Status PeerService::Members(grpc::ServerContext*, const peerpb::MembersRequest*,
                                  peerpb::MembersResponse* response) {
  response->set_cluster_id(cluster_id_);
  ListMembers(host_->membership(), response->mutable_members());
  return grpc::Status::OK;
}

grpc::Status PeerService::MemberPromote(grpc::ServerContext*,
                                        const etcdserverpb::MemberPromoteRequest* request,
                                        etcdserverpb::MemberPromoteResponse*) {
  absl::Status status = Await(absl::Seconds(5), [&](std::function<void(absl::Status)> done) {
    host_->PromoteLearner(request->id(), std::move(done));
  });
  return ToGrpc(status);
}

}  // namespace etc::server
