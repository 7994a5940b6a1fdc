// etc's directory calls (the Tree service, server/etcpb/tree.proto) for a
// Client, against etc and etcd alike: List a page of a directory's
// children, Stat a path, GetTree (recursive get), DeleteTree (recursive
// delete, with the directory's own key if asked) and WatchTree (a
// directory's children or its whole subtree).
//
//   auto client = etc::client::Client::Connect({.endpoints = {"127.0.0.1:2379"}}).value();
//   etc::client::TreeClient tree(client.get());
//   etcpb::ListRequest list;
//   list.set_path("/services");
//   list.set_limit(100);
//   auto page = tree.List(list);          // then again with after = the last name
//
// A server without the Tree service (etcd answers UNIMPLEMENTED) gets the
// same calls as etcd's own prefix ranges, with the same results except the
// header: List scans the subtree keys-only from `after` and skips each
// subdirectory with one seek (a range starting past it); Stat is a get,
// a count and a listing at one revision; GetTree a range; DeleteTree a
// delete range (in one txn with the delete of the key, with
// include_path_key); WatchTree a prefix watch, filtered by depth here as
// the server filters it. One UNIMPLEMENTED is enough: the client remembers.
//
// Paths: "" is the root "/"; one trailing "/" (other than the root's)
// names the same directory. Thread-safe, as Client is.
#ifndef ETC_CLIENT_TREE_CLIENT_H_
#define ETC_CLIENT_TREE_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "server/etcpb/tree.grpc.pb.h"

namespace etc::client {

// A running WatchTree; stops when destroyed. Over etc's Tree service it
// resumes on the next endpoint after the one it used fails (from the
// revision after the last it delivered); over a prefix watch, as Watcher.
class TreeWatcher {
 public:
  ~TreeWatcher();
  void Stop();

 private:
  friend class TreeClient;
  TreeWatcher() = default;
  // The native stream, on thread_; falls back if the server has no Tree service.
  void RunNative();
  void Deliver(const etcpb::WatchTreeResponse& response);
  void StartFallback();

  class TreeClient* tree_ = nullptr;
  etcpb::WatchTreeRequest request_;
  std::function<void(const etcpb::WatchTreeResponse&)> on_response_;
  std::mutex mu_;
  std::condition_variable created_cv_;
  bool created_ = false;                    // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_: the stream's, for Stop
  std::unique_ptr<Watcher> fallback_;       // guarded by mu_
  int64_t last_revision_ = 0;               // thread_'s
  std::thread thread_;
};

class TreeClient {
 public:
  // kProbe: the Tree service until a server answers UNIMPLEMENTED, then
  // prefix ranges. The others force one way (tests and benchmarks compare
  // both against etc).
  enum class Mode { kProbe, kNative, kFallback };

  explicit TreeClient(Client* client, Mode mode = Mode::kProbe) : client_(client), mode_(mode) {}

  absl::StatusOr<etcpb::ListResponse> List(const etcpb::ListRequest& request);
  absl::StatusOr<etcpb::StatResponse> Stat(const etcpb::StatRequest& request);
  absl::StatusOr<etcdserverpb::RangeResponse> GetTree(const etcpb::GetTreeRequest& request);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteTree(
      const etcpb::DeleteTreeRequest& request);
  // Returns once the server confirmed the watch (its created response was
  // delivered), or after 5 s; keeps trying in the background either way.
  std::unique_ptr<TreeWatcher> WatchTree(
      const etcpb::WatchTreeRequest& request,
      std::function<void(const etcpb::WatchTreeResponse&)> on_response);

  // Whether calls go to prefix ranges (forced, or a server had no Tree service).
  bool falls_back() const { return mode_.load() == Mode::kFallback; }
  Client* client() const { return client_; }

 private:
  friend class TreeWatcher;
  // The native call through `call`, or `fallback` if the server has no
  // Tree service (now or earlier).
  template <typename Response>
  absl::StatusOr<Response> Dispatch(
      bool repeatable,
      const std::function<grpc::Status(etcpb::Tree::Stub*, grpc::ClientContext*, Response*)>& call,
      const std::function<absl::StatusOr<Response>()>& fallback);
  // A server said UNIMPLEMENTED: true if prefix ranges may stand in.
  bool FallBack();

  Client* client_;
  std::atomic<Mode> mode_;
};

}  // namespace etc::client

#endif  // ETC_CLIENT_TREE_CLIENT_H_
