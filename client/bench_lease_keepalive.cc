#include "client/bench_lease_keepalive.h"

#include <thread>

#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::bench {
namespace {

// One client: grants its lease, then renews it while `more` says so.
void KeepAlive(const std::shared_ptr<grpc::Channel>& channel, const std::function<bool(int64_t*)>& more,
               Result* result) {
  int64_t n = 0;
  auto lease = etcdserverpb::Lease::NewStub(channel);
  grpc::ClientContext grant_context;
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  etcdserverpb::LeaseGrantResponse granted;
  grpc::Status s = lease->LeaseGrant(&grant_context, grant, &granted);
  if (!s.ok()) {
    Record(result, 0, s);
    return;
  }
  grpc::ClientContext context;
  auto stream = lease->LeaseKeepAlive(&context);
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(granted.id());
  etcdserverpb::LeaseKeepAliveResponse response;
  while (more(&n)) {
    int64_t start = NowMicros();
    if (!stream->Write(request) || !stream->Read(&response)) {
      Record(result, start, grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broke"));
      return;
    }
    Record(result, start, grpc::Status::OK);
  }
  stream->WritesDone();
  (void)stream->Finish();
}

}  // namespace

void RunKeepAlives(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const std::function<bool(int64_t*)>& more, std::vector<Result>* results) {
  std::vector<std::thread> threads;
  for (int c = 0; c < options.clients; ++c) {
    threads.emplace_back([&, c] { KeepAlive(channels[c % channels.size()], more, &(*results)[c]); });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace etc::bench
