#include "server/v2_watch.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kv/keyspace.h"
#include "kv/store.h"
#include "kv/tree.h"
#include "member/watch_streams.h"
#include "server/v2_json.h"

namespace etc::server {
namespace {

// The watch's own ids on its stream: the whole range, and the subtree
// alone for a user who may read below the path but not the path's key.
constexpr int64_t kWholeWatch = 1;
constexpr int64_t kSubtreeWatch = 2;


// The keys a v2 watch of `path` sees: the node and its marker, and with
// `recursive` everything below.
std::pair<std::string, std::string> WatchRange(const std::string& path, bool recursive) {
  if (path == "/") return {"/", recursive ? kv::PrefixEnd("/") : std::string("/\0", 2)};
  std::string below = kv::DirMarker(path);
  return {path, recursive ? kv::PrefixEnd(below) : below + '\0'};
}

class V2WatchSink : public member::WatchSink {
 public:
  V2WatchSink(V2Api* api, V2KeyRequest key, std::shared_ptr<HttpExchange> exchange)
      : api_(api), key_(std::move(key)), exchange_(std::move(exchange)) {}

  // On the member thread, once the stream is open.
  void Begin(MemberHost::Context& c, member::WatchStreams::StreamId id) {
    store_ = &c.store();
    streams_ = &c.kv().watch_streams();
    id_ = id;
    raft_index_ = c.member().applied_index();
    raft_term_ = c.host().term();
    int64_t wait_index = static_cast<int64_t>(key_.wait_index);
    if (wait_index > 0 && wait_index < store_->keyspace().compact_revision()) {
      // Compacted away: said at once, before any head goes out.
      return Fail({401,
                   absl::StrCat("the requested history has been cleared [",
                                store_->keyspace().compact_revision(), "/", wait_index, "]"),
                   store_->revision()});
    }
    streams_->Create(id_, CreateRequest(kWholeWatch, key_.path));
  }

  size_t Pending() override { return 0; }  // every response is taken at once
  size_t PendingBytes() override { return 0; }
  void Blocked() override {}

  // On the member thread.
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t) override {
    for (const etcdserverpb::WatchResponse& response : responses) {
      if (over_) return;
      if (response.canceled()) {
        Canceled(response);
      } else if (response.created()) {
        Started();
      } else {
        Events(response);
      }
    }
  }

 private:
  etcdserverpb::WatchCreateRequest CreateRequest(int64_t id, const std::string& from) {
    auto [key, end] = WatchRange(key_.path, key_.recursive);
    etcdserverpb::WatchCreateRequest create;
    create.set_watch_id(id);
    create.set_key(from == key_.path ? key : kv::DirMarker(key_.path));
    create.set_range_end(end);
    create.set_prev_kv(true);
    create.set_start_revision(static_cast<int64_t>(key_.wait_index));
    return create;
  }

  void Started() {
    if (started_) return;
    started_ = true;
    HttpResponse head;
    api_->AddHeaders(store_->revision(), &head);
    head.headers.emplace_back("X-Raft-Index", absl::StrCat(raft_index_));
    head.headers.emplace_back("X-Raft-Term", absl::StrCat(raft_term_));
    exchange_->StartStream(std::move(head));
  }

  void Canceled(const etcdserverpb::WatchResponse& response) {
    std::string reason = response.cancel_reason();
    if (response.compact_revision() > 0) {
      Fail({401,
            absl::StrCat("the requested history has been cleared [", response.compact_revision(), "/",
                         key_.wait_index, "]"),
            store_->revision()});
    } else if (reason.find("permission denied") != std::string::npos &&
               response.watch_id() == kWholeWatch && key_.path != "/") {
      // The path's own key is not the user's; what is below may be.
      streams_->Create(id_, CreateRequest(kSubtreeWatch, kv::DirMarker(key_.path)));
    } else if (reason.find("permission denied") != std::string::npos ||
               reason.find("auth token") != std::string::npos) {
      Fail({110, "Insufficient credentials", 0});
    } else {
      Fail({300, reason.empty() ? "the watch was canceled" : reason, store_->revision()});
    }
  }

  // The exchange is over (answered): its watch goes too. Later, on the
  // member thread: the streams are being walked now.
  void End() {
    over_ = true;
    api_->host()->Post([id = id_](MemberHost::Context& c) { c.kv().watch_streams().Close(id); });
  }

  // An answer that is an error: whole if nothing was sent yet.
  void Fail(const V2Error& error) {
    End();
    if (!started_) {
      HttpResponse response;
      response.status = V2ErrorHttpStatus(error.code);
      response.body = V2ErrorBody(error);
      api_->AddHeaders(error.index, &response);
      exchange_->Respond(std::move(response));
    } else {
      exchange_->Send(V2ErrorBody(error));
      exchange_->Finish();
    }
  }

  bool Matches(std::string_view key) const {
    std::string_view node = kv::NodePathOf(key);
    if (node == key_.path) return true;
    if (!key_.recursive) return false;
    std::string prefix = kv::DirMarker(key_.path);
    if (node.substr(0, prefix.size()) != prefix) return false;
    // Hidden names below the path are not a recursive watcher's business.
    std::string_view below = node.substr(prefix.size());
    return !kv::IsHiddenName(below) && below.find("/_") == std::string_view::npos;
  }

  // The first revision with a matching event answers (every one, streaming).
  void Events(const etcdserverpb::WatchResponse& response) {
    const auto& events = response.events();
    for (int i = 0; i < events.size() && !over_;) {
      int64_t revision = events[i].kv().mod_revision();
      const mvccpb::Event* chosen = nullptr;
      for (; i < events.size() && events[i].kv().mod_revision() == revision; ++i) {
        if (!Matches(events[i].kv().key())) continue;
        if (chosen == nullptr || Better(events[i], *chosen)) chosen = &events[i];
      }
      if (chosen == nullptr) continue;
      const kv::Store::TreeNote* note = store_->TreeNoteAt(revision);
      if (note != nullptr && note->action == "refresh") continue;  // v2 tells no watcher
      Deliver(*chosen, note);
    }
  }

  // Of one revision's events: a deletion whose key is shortest (a
  // recursive delete is its directory's), else a key's put before a
  // directory marker's (a marker made on the way).
  static bool Better(const mvccpb::Event& a, const mvccpb::Event& b) {
    bool a_delete = a.type() == mvccpb::Event::DELETE, b_delete = b.type() == mvccpb::Event::DELETE;
    if (a_delete != b_delete) return a_delete;
    if (a_delete) return a.kv().key().size() < b.kv().key().size();
    return kv::IsDirMarker(b.kv().key()) && !kv::IsDirMarker(a.kv().key());
  }

  // Whether `path` is `dir` or below it.
  static bool Below(std::string_view path, std::string_view dir) {
    return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir &&
                           (dir == "/" || path[dir.size()] == '/'));
  }

  static kvpb::TreeNode NodeOf(const mvccpb::KeyValue& kv) {
    return kv::IsDirMarker(kv.key()) ? kv::DirNode(kv::NodePathOf(kv.key()), &kv) : kv::FileNode(kv);
  }

  // The v2 event for `event`: the action the v2 call that made it had
  // (`note`; v3's writes are "set" and "delete"), and for a directory's
  // deletion the directory, whichever key below it is watched.
  void Deliver(const mvccpb::Event& event, const kv::Store::TreeNote* note) {
    kvpb::TreeResponse tree;
    if (event.has_prev_kv()) *tree.mutable_prev_node() = NodeOf(event.prev_kv());
    bool put = event.type() == mvccpb::Event::PUT;
    tree.set_action(note != nullptr ? note->action : put ? "set" : "delete");
    if (put) {
      *tree.mutable_node() = NodeOf(event.kv());
    } else {
      kvpb::TreeNode* node = tree.mutable_node();
      node->set_key(std::string(kv::NodePathOf(event.kv().key())));
      node->set_dir(kv::IsDirMarker(event.kv().key()));
      node->set_modified_index(event.kv().mod_revision());
      node->set_created_index(event.prev_kv().create_revision());
      if (note != nullptr && note->dir && Below(node->key(), note->path)) {
        node->set_key(note->path);
        node->set_dir(true);
        if (tree.prev_node().key() != note->path) {
          *tree.mutable_prev_node() = kv::DirNode(note->path, nullptr);
        }
      }
    }
    int64_t now_ms = SteadyNowMs();
    ExpiryOf expiry = [&](int64_t id) -> std::optional<NodeExpiry> {
      std::optional<int64_t> left = store_->lessor().RemainingMs(id, now_ms);
      if (!left) return std::nullopt;
      return NodeExpiry{*left, UnixNsOfSteadyMs(now_ms + *left)};
    };
    Started();
    if (!exchange_->Send(V2EventBody(tree, expiry))) {
      End();  // the client is gone
    } else if (!key_.stream) {
      End();
      exchange_->Finish();
    }
  }

  V2Api* api_;
  V2KeyRequest key_;
  std::shared_ptr<HttpExchange> exchange_;
  kv::Store* store_ = nullptr;
  member::WatchStreams* streams_ = nullptr;
  member::WatchStreams::StreamId id_ = 0;
  uint64_t raft_index_ = 0;
  uint64_t raft_term_ = 0;
  bool started_ = false;
  bool over_ = false;
};

}  // namespace

void StartV2Watch(V2Api* api, V2KeyRequest key, std::optional<std::string> token,
                  std::shared_ptr<HttpExchange> exchange) {
  auto sink = std::make_shared<V2WatchSink>(api, std::move(key), exchange);
  MemberHost* host = api->host();
  host->Post([sink, token = std::move(token), exchange, host](MemberHost::Context& c) mutable {
    member::WatchStreams& streams = c.kv().watch_streams();
    member::WatchStreams::StreamId id = streams.Open(sink, std::move(token));
    // The client leaves before its answer: the watch goes.
    exchange->OnClose([host, id] {
      host->Post([id](MemberHost::Context& c) { c.kv().watch_streams().Close(id); });
    });
    sink->Begin(c, id);
  });
}

}  // namespace etc::server
