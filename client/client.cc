#include "client/client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client_unary.h"
#include "server/grpc_status.h"

namespace etc::client {
namespace {

using internal::StubOn;
using server::FromGrpc;

std::chrono::system_clock::time_point After(std::chrono::milliseconds duration) {
  return std::chrono::system_clock::now() + duration;
}

}  // namespace

// ---------------------------------------------------------------- Client --

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.credentials == nullptr) options_.credentials = grpc::InsecureChannelCredentials();
  for (const std::string& address : options_.endpoints) {
    Endpoint endpoint;
    endpoint.address = address;
    for (int i = 0; i < std::max(1, options_.connections_per_endpoint); ++i) {
      grpc::ChannelArguments args;
      // Distinct channels get distinct connections.
      args.SetInt("etc.client.connection", i);
      args.SetMaxReceiveMessageSize(64 << 20);
      args.SetMaxSendMessageSize(64 << 20);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      endpoint.channels.push_back(grpc::CreateCustomChannel(address, options_.credentials, args));
    }
    endpoints_.push_back(std::move(endpoint));
  }
}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no endpoints");
  std::unique_ptr<Client> client(new Client(std::move(options)));
  if (!client->options_.user.empty()) {
    if (absl::Status s = client->Authenticate(); !s.ok()) return s;
  }
  return client;
}

std::string Client::current_endpoint() const {
  return endpoints_[current_.load() % endpoints_.size()].address;
}

std::shared_ptr<grpc::Channel> Client::Channel(size_t endpoint) {
  const Endpoint& e = endpoints_[endpoint % endpoints_.size()];
  return e.channels[next_channel_.fetch_add(1, std::memory_order_relaxed) % e.channels.size()];
}

void Client::MoveOn(size_t from) {
  size_t expected = from;
  current_.compare_exchange_strong(expected, (from + 1) % endpoints_.size());
}

std::unique_ptr<grpc::ClientContext> Client::NewContext(std::chrono::milliseconds timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout.count() > 0) context->set_deadline(After(timeout));
  std::lock_guard<std::mutex> lock(token_mu_);
  if (!token_.empty()) context->AddMetadata("token", token_);
  return context;
}

absl::Status Client::Authenticate() {
  etcdserverpb::AuthenticateRequest request;
  request.set_name(options_.user);
  request.set_password(options_.password);
  etcdserverpb::AuthenticateResponse response;
  {
    std::lock_guard<std::mutex> lock(token_mu_);
    token_.clear();
  }
  absl::Status status = Call(Safety::kRepeatable, options_.request_timeout,
                             [&](grpc::Channel* channel, grpc::ClientContext* context) {
                               return etcdserverpb::Auth::NewStub(
                                          std::shared_ptr<grpc::Channel>(channel, [](auto*) {}))
                                   ->Authenticate(context, request, &response);
                             });
  if (!status.ok()) return status;
  std::lock_guard<std::mutex> lock(token_mu_);
  token_ = response.token();
  return absl::OkStatus();
}

absl::Status Client::Call(
    Safety safety, std::chrono::milliseconds timeout,
    const std::function<grpc::Status(grpc::Channel*, grpc::ClientContext*)>& call) {
  absl::Status last = absl::UnavailableError("no endpoint answered");
  bool reauthenticated = false;
  size_t attempts = 2 * endpoints_.size();
  for (size_t attempt = 0; attempt < attempts; ++attempt) {
    size_t index = current_.load() % endpoints_.size();
    std::shared_ptr<grpc::Channel> channel = Channel(index);
    // Connected first: a request that was never sent may go elsewhere.
    if (!channel->WaitForConnected(After(options_.dial_timeout))) {
      last = absl::UnavailableError(
          absl::StrCat("cannot connect to ", endpoints_[index].address));
      MoveOn(index);
      continue;
    }
    std::unique_ptr<grpc::ClientContext> context = NewContext(timeout);
    grpc::Status status = call(channel.get(), context.get());
    if (status.ok()) return absl::OkStatus();
    last = FromGrpc(status);
    // A refused token was refused before anything happened: log in again
    // and retry, once.
    if (!options_.user.empty() && !reauthenticated &&
        absl::StrContains(status.error_message(), "invalid auth token")) {
      reauthenticated = true;
      if (absl::Status s = Authenticate(); !s.ok()) return s;
      continue;
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && safety == Safety::kRepeatable) {
      MoveOn(index);
      continue;
    }
    return last;
  }
  return last;
}

absl::StatusOr<etcdserverpb::RangeResponse> Client::Range(
    const etcdserverpb::RangeRequest& request) {
  return Unary<etcdserverpb::KV>(Safety::kRepeatable, &etcdserverpb::KV::Stub::Range, request);
}

absl::StatusOr<etcdserverpb::PutResponse> Client::PutRaw(const etcdserverpb::PutRequest& request) {
  return Unary<etcdserverpb::KV>(Safety::kOnce, &etcdserverpb::KV::Stub::Put, request);
}

absl::StatusOr<etcdserverpb::TxnResponse> Client::TxnRaw(const etcdserverpb::TxnRequest& request) {
  // A transaction that only reads may be repeated.
  bool read_only = true;
  for (const auto* ops : {&request.success(), &request.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) read_only = read_only && op.has_request_range();
  }
  return Unary<etcdserverpb::KV>(read_only ? Safety::kRepeatable : Safety::kOnce,
                                 &etcdserverpb::KV::Stub::Txn, request);
}

absl::Status Client::CallService(
    bool repeatable, bool stream,
    const std::function<grpc::Status(grpc::Channel*, grpc::ClientContext*)>& call) {
  return Call(repeatable ? Safety::kRepeatable : Safety::kOnce,
              stream ? std::chrono::milliseconds(0) : options_.request_timeout, call);
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> Client::DeleteRaw(
    const etcdserverpb::DeleteRangeRequest& request) {
  return Unary<etcdserverpb::KV>(Safety::kOnce, &etcdserverpb::KV::Stub::DeleteRange, request);
}

absl::StatusOr<etcdserverpb::CompactionResponse> Client::Compact(int64_t revision,
                                                                 bool physical) {
  etcdserverpb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(physical);
  return Unary<etcdserverpb::KV>(Safety::kOnce, &etcdserverpb::KV::Stub::Compact, request);
}

// ---------------------------------------------------------------- leases --

absl::StatusOr<etcdserverpb::LeaseGrantResponse> Client::Grant(int64_t ttl_seconds, int64_t id) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  request.set_id(id);
  return Unary<etcdserverpb::Lease>(Safety::kOnce, &etcdserverpb::Lease::Stub::LeaseGrant,
                                    request);
}

absl::StatusOr<etcdserverpb::LeaseRevokeResponse> Client::RevokeRaw(int64_t id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::Lease>(Safety::kRepeatable, &etcdserverpb::Lease::Stub::LeaseRevoke,
                                    request);
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> Client::TimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(id);
  request.set_keys(keys);
  return Unary<etcdserverpb::Lease>(Safety::kRepeatable,
                                    &etcdserverpb::Lease::Stub::LeaseTimeToLive, request);
}

absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> Client::KeepAliveOnceResponse(int64_t id) {
  etcdserverpb::LeaseKeepAliveResponse response;
  absl::Status status = Call(
      Safety::kRepeatable, options_.request_timeout,
      [&](grpc::Channel* channel, grpc::ClientContext* context) {
        auto stream = StubOn<etcdserverpb::Lease>(channel)->LeaseKeepAlive(context);
        etcdserverpb::LeaseKeepAliveRequest request;
        request.set_id(id);
        if (!stream->Write(request) || !stream->Read(&response)) {
          grpc::Status finished = stream->Finish();
          return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream ended")
                               : finished;
        }
        stream->WritesDone();
        return stream->Finish();
      });
  if (!status.ok()) return status;
  return response;
}

std::unique_ptr<KeepAlive> Client::KeepAliveForever(int64_t id, int64_t ttl_seconds) {
  std::unique_ptr<GrpcKeepAlive> keep(new GrpcKeepAlive());
  keep->ttl_.store(ttl_seconds);
  GrpcKeepAlive* raw = keep.get();
  keep->thread_ = std::thread([this, raw, id, ttl_seconds] {
    for (;;) {
      absl::StatusOr<int64_t> ttl = KeepAliveOnce(id);
      if (ttl.ok()) {
        raw->ttl_.store(*ttl);
        if (*ttl <= 0) return;  // the lease is gone
      }
      std::unique_lock<std::mutex> lock(raw->mu_);
      if (raw->cv_.wait_for(lock, KeepAlivePeriod(ttl_seconds, ttl.ok()),
                            [raw] { return raw->stopping_; })) {
        return;
      }
    }
  });
  return keep;
}

GrpcKeepAlive::~GrpcKeepAlive() { Stop(); }

void GrpcKeepAlive::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// ----------------------------------------------------------------- watch --

std::unique_ptr<Watcher> Client::Watch(
    etcdserverpb::WatchCreateRequest create,
    std::function<void(const etcdserverpb::WatchResponse&)> on_response) {
  std::unique_ptr<GrpcWatcher> watcher(new GrpcWatcher(create.start_revision()));
  watcher->client_ = this;
  watcher->create_ = std::move(create);
  watcher->on_response_ = std::move(on_response);
  GrpcWatcher* raw = watcher.get();
  watcher->thread_ = std::thread([raw] { raw->Run(); });
  std::unique_lock<std::mutex> lock(watcher->mu_);
  watcher->created_cv_.wait_for(lock, options_.dial_timeout, [raw] { return raw->created_; });
  return watcher;
}

void GrpcWatcher::Run() {
  while (!stopping_.load()) {
    size_t index = client_->current_.load() % client_->endpoints_.size();
    std::shared_ptr<grpc::Channel> channel = client_->Channel(index);
    if (!channel->WaitForConnected(After(client_->options_.dial_timeout))) {
      client_->MoveOn(index);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    std::unique_ptr<grpc::ClientContext> context = client_->NewContext(std::chrono::milliseconds(0));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_.load()) return;
      context_ = context.get();
    }
    auto stream = etcdserverpb::Watch::NewStub(channel)->Watch(context.get());
    etcdserverpb::WatchRequest request;
    *request.mutable_create_request() = create_;
    // Resume after what was delivered: nothing lost, nothing twice.
    request.mutable_create_request()->set_start_revision(progress_.resume_revision());
    bool ended = false;
    if (stream->Write(request)) {
      etcdserverpb::WatchResponse response;
      while (stream->Read(&response)) {
        if (response.created() || response.canceled()) {
          // The server answered the create: Watch() may return.
          std::lock_guard<std::mutex> lock(mu_);
          created_ = true;
          created_cv_.notify_all();
        }
        bool news = progress_.Observe(response);
        last_revision_.store(progress_.last_revision());
        if (!news) continue;
        on_response_(response);
        if (response.canceled()) {
          ended = true;
          break;
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      context_ = nullptr;
    }
    context->TryCancel();
    (void)stream->Finish();
    if (ended) return;
    if (stopping_.load()) return;
    client_->MoveOn(index);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

GrpcWatcher::~GrpcWatcher() { Stop(); }

void GrpcWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.store(true);
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

// ------------------------------------------------------ lock and election --

// ------------------------------------------------------------------ time --

void Client::SleepFor(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

int64_t Client::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::string> Client::Lock(const std::string& name, int64_t lease,
                                         std::chrono::milliseconds timeout) {
  v3lockpb::LockRequest request;
  request.set_name(name);
  request.set_lease(lease);
  // Locking again with the same lease is the same key: repeatable.
  absl::StatusOr<v3lockpb::LockResponse> response =
      Unary<v3lockpb::Lock>(Safety::kRepeatable, timeout, &v3lockpb::Lock::Stub::Lock, request);
  if (!response.ok()) return response.status();
  return response->key();
}

absl::Status Client::Unlock(const std::string& key) {
  v3lockpb::UnlockRequest request;
  request.set_key(key);
  return Unary<v3lockpb::Lock>(Safety::kRepeatable, &v3lockpb::Lock::Stub::Unlock, request)
      .status();
}

absl::StatusOr<v3electionpb::LeaderKey> Client::Campaign(const std::string& name, int64_t lease,
                                                         const std::string& value,
                                                         std::chrono::milliseconds timeout) {
  v3electionpb::CampaignRequest request;
  request.set_name(name);
  request.set_lease(lease);
  request.set_value(value);
  absl::StatusOr<v3electionpb::CampaignResponse> response = Unary<v3electionpb::Election>(
      Safety::kRepeatable, timeout, &v3electionpb::Election::Stub::Campaign, request);
  if (!response.ok()) return response.status();
  return response->leader();
}

absl::Status Client::Proclaim(const v3electionpb::LeaderKey& leader, const std::string& value) {
  v3electionpb::ProclaimRequest request;
  *request.mutable_leader() = leader;
  request.set_value(value);
  return Unary<v3electionpb::Election>(Safety::kRepeatable,
                                       &v3electionpb::Election::Stub::Proclaim, request)
      .status();
}

absl::StatusOr<mvccpb::KeyValue> Client::Leader(const std::string& name) {
  v3electionpb::LeaderRequest request;
  request.set_name(name);
  absl::StatusOr<v3electionpb::LeaderResponse> response = Unary<v3electionpb::Election>(
      Safety::kRepeatable, &v3electionpb::Election::Stub::Leader, request);
  if (!response.ok()) return response.status();
  return response->kv();
}

absl::Status Client::Resign(const v3electionpb::LeaderKey& leader) {
  v3electionpb::ResignRequest request;
  *request.mutable_leader() = leader;
  return Unary<v3electionpb::Election>(Safety::kRepeatable, &v3electionpb::Election::Stub::Resign,
                                       request)
      .status();
}

// --------------------------------------------------------------- cluster --

absl::StatusOr<etcdserverpb::MemberListResponse> Client::MemberList() {
  return Unary<etcdserverpb::Cluster>(Safety::kRepeatable, &etcdserverpb::Cluster::Stub::MemberList,
                                      etcdserverpb::MemberListRequest());
}

absl::StatusOr<etcdserverpb::StatusResponse> Client::Status() {
  return Unary<etcdserverpb::Maintenance>(Safety::kRepeatable,
                                          &etcdserverpb::Maintenance::Stub::Status,
                                          etcdserverpb::StatusRequest());
}

}  // namespace etc::client
