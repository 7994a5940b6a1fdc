#include "client/tree_client.h"

#include <chrono>
#include <utility>

#include "client/tree_fallback.h"

namespace etc::client {
namespace {

std::unique_ptr<etcpb::Tree::Stub> TreeStubOn(grpc::Channel* channel) {
  return etcpb::Tree::NewStub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
}

// How long WatchTree waits for the created response.
constexpr std::chrono::seconds kCreatedWait(5);

}  // namespace

bool TreeClient::FallBack() {
  Mode probing = Mode::kProbe;
  mode_.compare_exchange_strong(probing, Mode::kFallback);
  return mode_.load() == Mode::kFallback;
}

template <typename Response>
absl::StatusOr<Response> TreeClient::Dispatch(
    bool repeatable,
    const std::function<grpc::Status(etcpb::Tree::Stub*, grpc::ClientContext*, Response*)>& call,
    const std::function<absl::StatusOr<Response>()>& fallback) {
  if (mode_.load() != Mode::kFallback) {
    Response response;
    absl::Status status = client_->CallService(
        repeatable, false, [&](grpc::Channel* channel, grpc::ClientContext* context) {
          return call(TreeStubOn(channel).get(), context, &response);
        });
    if (status.ok()) return response;
    // UNIMPLEMENTED: the service is unknown there, so nothing happened
    // (even for a delete), and prefix ranges may stand in.
    if (status.code() != absl::StatusCode::kUnimplemented || !FallBack()) return status;
  }
  return fallback();
}

absl::StatusOr<etcpb::ListResponse> TreeClient::List(const etcpb::ListRequest& request) {
  return Dispatch<etcpb::ListResponse>(
      true,
      [&](etcpb::Tree::Stub* stub, grpc::ClientContext* context, etcpb::ListResponse* out) {
        return stub->List(context, request, out);
      },
      [&] { return tree_internal::List(*client_, request); });
}

absl::StatusOr<etcpb::StatResponse> TreeClient::Stat(const etcpb::StatRequest& request) {
  return Dispatch<etcpb::StatResponse>(
      true,
      [&](etcpb::Tree::Stub* stub, grpc::ClientContext* context, etcpb::StatResponse* out) {
        return stub->Stat(context, request, out);
      },
      [&] { return tree_internal::Stat(*client_, request); });
}

absl::StatusOr<etcdserverpb::RangeResponse> TreeClient::GetTree(
    const etcpb::GetTreeRequest& request) {
  return Dispatch<etcdserverpb::RangeResponse>(
      true,
      [&](etcpb::Tree::Stub* stub, grpc::ClientContext* context,
          etcdserverpb::RangeResponse* out) { return stub->GetTree(context, request, out); },
      [&] { return tree_internal::GetTree(*client_, request); });
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> TreeClient::DeleteTree(
    const etcpb::DeleteTreeRequest& request) {
  return Dispatch<etcdserverpb::DeleteRangeResponse>(
      false,
      [&](etcpb::Tree::Stub* stub, grpc::ClientContext* context,
          etcdserverpb::DeleteRangeResponse* out) {
        return stub->DeleteTree(context, request, out);
      },
      [&] { return tree_internal::DeleteTree(*client_, request); });
}

// ------------------------------------------------------------ WatchTree --

std::unique_ptr<TreeWatcher> TreeClient::WatchTree(
    const etcpb::WatchTreeRequest& request,
    std::function<void(const etcpb::WatchTreeResponse&)> on_response) {
  std::unique_ptr<TreeWatcher> watcher(new TreeWatcher());
  watcher->tree_ = this;
  watcher->request_ = request;
  watcher->on_response_ = std::move(on_response);
  if (mode_.load() == Mode::kFallback) {
    watcher->StartFallback();
  } else {
    TreeWatcher* raw = watcher.get();
    watcher->thread_ = std::thread([raw] { raw->RunNative(); });
  }
  std::unique_lock<std::mutex> lock(watcher->mu_);
  watcher->created_cv_.wait_for(lock, kCreatedWait, [&] { return watcher->created_; });
  return watcher;
}

void TreeWatcher::Deliver(const etcpb::WatchTreeResponse& response) {
  on_response_(response);
  // After the callback: WatchTree's caller sees the created response handled.
  if (response.created() || response.canceled()) {
    std::lock_guard<std::mutex> lock(mu_);
    created_ = true;
    created_cv_.notify_all();
  }
}

void TreeWatcher::StartFallback() {
  std::string prefix = tree_internal::TreePrefix(tree_internal::NormalTreePath(request_.path()));
  bool children_only = request_.depth() == etcpb::WatchTreeRequest::CHILDREN;
  etcdserverpb::WatchCreateRequest create;
  create.set_key(prefix);
  create.set_range_end(PrefixEnd(prefix));
  create.set_start_revision(request_.start_revision());
  create.set_prev_kv(request_.prev_kv());
  create.set_progress_notify(request_.progress_notify());
  std::unique_ptr<Watcher> watcher = tree_->client()->Watch(
      create, [this, prefix, children_only](const etcdserverpb::WatchResponse& response) {
        std::optional<etcpb::WatchTreeResponse> out =
            tree_internal::TranslateWatch(response, prefix, children_only);
        if (out.has_value()) Deliver(*out);
      });
  std::lock_guard<std::mutex> lock(mu_);
  fallback_ = std::move(watcher);
}

void TreeWatcher::RunNative() {
  bool answered = false;  // any response, ever: the service exists
  bool created_delivered = false;
  bool ended = false;
  absl::Status status = tree_->client()->CallService(
      true, true, [&](grpc::Channel* channel, grpc::ClientContext* context) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopped");
          context_ = context;
        }
        etcpb::WatchTreeRequest request = request_;
        // Resume after what was delivered: nothing lost, nothing twice.
        if (last_revision_ > 0) request.set_start_revision(last_revision_ + 1);
        auto reader = TreeStubOn(channel)->WatchTree(context, request);
        etcpb::WatchTreeResponse response;
        while (reader->Read(&response)) {
          answered = true;
          if (response.created() && last_revision_ == 0 && request_.start_revision() == 0) {
            last_revision_ = response.header().revision();
          }
          for (const mvccpb::Event& event : response.events()) {
            last_revision_ = std::max(last_revision_, event.kv().mod_revision());
          }
          if (response.created() && created_delivered) continue;  // a resume's
          created_delivered = created_delivered || response.created();
          Deliver(response);
          ended = ended || response.canceled();
        }
        grpc::Status finished = reader->Finish();
        std::lock_guard<std::mutex> lock(mu_);
        context_ = nullptr;
        return finished;
      });
  if (status.code() == absl::StatusCode::kUnimplemented && !answered && tree_->FallBack()) {
    StartFallback();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (ended || stopping_ || status.ok()) return;
  // The stream broke for good: say so, as a cancel.
  etcpb::WatchTreeResponse canceled;
  canceled.set_canceled(true);
  canceled.set_cancel_reason(std::string(status.message()));
  created_ = true;
  created_cv_.notify_all();
  on_response_(canceled);
}

TreeWatcher::~TreeWatcher() { Stop(); }

void TreeWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  std::unique_ptr<Watcher> fallback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fallback = std::move(fallback_);
  }
  if (fallback != nullptr) fallback->Stop();
}

}  // namespace etc::client
