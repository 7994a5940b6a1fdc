#include "client/bench_watch.h"

#include <chrono>

#include "absl/strings/numbers.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {

Watchers::Watchers(int count, const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  for (int w = 0; w < count; ++w) contexts_.push_back(std::make_unique<grpc::ClientContext>());
  for (int w = 0; w < count; ++w) {
    threads_.emplace_back([this, context = contexts_[w].get(), channel = channels[w % channels.size()]] {
      Watch(context, channel);
    });
  }
  while (created_.load() < count) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

Watchers::~Watchers() { CancelAndJoin(); }

Result Watchers::Stop() {
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CancelAndJoin();
  std::lock_guard<std::mutex> lock(mu_);
  return std::move(delivered_);
}

void Watchers::Watch(grpc::ClientContext* context, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = etcdserverpb::Watch::NewStub(channel);
  auto stream = stub->Watch(context);
  etcdserverpb::WatchRequest request;
  request.mutable_create_request()->set_key(kWatchedKey);
  stream->Write(request);
  etcdserverpb::WatchResponse response;
  bool counted = false;
  while (stream->Read(&response)) {
    if (response.created() && !counted) {
      counted = true;
      created_.fetch_add(1);
    }
    int64_t now = NowMicros();
    std::lock_guard<std::mutex> lock(mu_);
    for (const mvccpb::Event& event : response.events()) {
      int64_t sent = 0;
      if (absl::SimpleAtoi(event.kv().value().substr(0, 16), &sent)) {
        delivered_.latencies_us.push_back(now - sent);
      }
    }
  }
}

void Watchers::CancelAndJoin() {
  for (auto& context : contexts_) context->TryCancel();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace etc::bench
