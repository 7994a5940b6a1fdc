// The Tree service's unary calls: each a kvpb request on the member thread
// (the stream, WatchTree, is tree_watch.cc).
#include "server/tree_service.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "kv/keyspace.h"
#include "server/rpc.h"

namespace etc::server {

std::string NormalTreePath(std::string_view path) {
  if (path.empty()) return "/";
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string TreePrefix(std::string_view normal_path) {
  std::string prefix(normal_path);
  if (prefix.back() != '/') prefix.push_back('/');
  return prefix;
}

namespace {

// The KV service's words for what etcd's own range would take silently
// (a negative limit or revision): a tree call refuses them at the edge.
absl::Status CheckLimitAndRevision(int64_t limit, int64_t revision) {
  if (limit < 0) return absl::InvalidArgumentError("etcdserver: negative limit");
  if (revision < 0) return absl::InvalidArgumentError("etcdserver: negative revision");
  return absl::OkStatus();
}

Mode ReadMode(bool serializable) {
  return serializable ? Mode::kSerializableRead : Mode::kLinearizableRead;
}

// Runs `request` on the member thread and finishes the call with what
// `convert` makes of the key tree's answer (headers stamped), or with the
// key tree's error. The member thread finishes it; no thread waits.
template <typename Out>
grpc::ServerUnaryReactor* Run(MemberHost* host, grpc::CallbackServerContext* context,
                              absl::StatusOr<kvpb::Request> request, Mode mode,
                              void (*convert)(kvpb::Response&, Out*), Out* out) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!request.ok()) {
    reactor->Finish(ToGrpc(request.status()));
    return reactor;
  }
  Submit(host, TokenOf(context), std::move(*request), mode,
         [host, reactor, convert, out](absl::StatusOr<kvpb::Response> result) {
           if (!result.ok()) {
             reactor->Finish(ToGrpc(result.status()));
             return;
           }
           convert(*result, out);
           StampHeaders(out, *host);
           reactor->Finish(grpc::Status::OK);
         });
  return reactor;
}

absl::StatusOr<kvpb::Request> ListOf(const etcpb::ListRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(in.limit(), in.revision()); !s.ok()) return s;
  kvpb::Request request;
  kvpb::ListRequest* list = request.mutable_list();
  list->set_path(NormalTreePath(in.path()));
  list->set_revision(in.revision());
  list->set_limit(in.limit());
  list->set_keys_only(in.keys_only());
  list->set_after(in.after());
  list->set_child_counts(in.child_counts());
  return request;
}

void ConvertList(kvpb::Response& in, etcpb::ListResponse* out) {
  kvpb::ListResponse& list = *in.mutable_list();
  *out->mutable_header() = list.header();
  out->set_more(list.more());
  for (kvpb::ListEntry& entry : *list.mutable_entries()) {
    etcpb::Child* child = out->add_children();
    child->set_name(std::move(*entry.mutable_name()));
    child->set_is_key(entry.has_kv());
    child->set_is_dir(entry.is_dir());
    if (entry.has_kv()) *child->mutable_kv() = std::move(*entry.mutable_kv());
    child->set_child_count(entry.child_count());
  }
}

absl::StatusOr<kvpb::Request> StatOf(const etcpb::StatRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(0, in.revision()); !s.ok()) return s;
  kvpb::Request request;
  request.mutable_stat()->set_path(NormalTreePath(in.path()));
  request.mutable_stat()->set_revision(in.revision());
  request.mutable_stat()->set_subtree(in.subtree());
  return request;
}

void ConvertStat(kvpb::Response& in, etcpb::StatResponse* out) {
  kvpb::StatResponse& stat = *in.mutable_stat();
  *out->mutable_header() = stat.header();
  out->set_is_key(stat.is_key());
  if (stat.has_kv()) *out->mutable_kv() = std::move(*stat.mutable_kv());
  out->set_value_bytes(stat.value_bytes());
  out->set_is_dir(stat.is_dir());
  out->set_child_count(stat.child_count());
  out->set_subtree_keys(stat.subtree_keys());
  out->set_subtree_bytes(stat.subtree_bytes());
  out->set_subtree_mod_revision(stat.subtree_mod_revision());
}

// A page of a subtree is etcd's range from the later of the subtree's
// start and the key right after `after_key`, so the key tree's range
// checks (auth over what is read, limits, compaction) apply unchanged.
absl::StatusOr<kvpb::Request> GetTreeOf(const etcpb::GetTreeRequest& in) {
  if (absl::Status s = CheckLimitAndRevision(in.limit(), in.revision()); !s.ok()) return s;
  std::string prefix = TreePrefix(NormalTreePath(in.path()));
  std::string start = prefix;
  if (!in.after_key().empty()) start = std::max(prefix, in.after_key() + std::string(1, '\0'));
  kvpb::Request request;
  etcdserverpb::RangeRequest* range = request.mutable_range();
  range->set_key(start);
  range->set_range_end(kv::PrefixEnd(prefix));
  range->set_revision(in.revision());
  range->set_limit(in.limit());
  range->set_keys_only(in.keys_only());
  range->set_count_only(in.count_only());
  range->set_serializable(in.serializable());
  return request;
}

void ConvertRange(kvpb::Response& in, etcdserverpb::RangeResponse* out) {
  *out = std::move(*in.mutable_range());
}

void ConvertDelete(kvpb::Response& in, etcdserverpb::DeleteRangeResponse* out) {
  *out = std::move(*in.mutable_delete_range());
}

}  // namespace

grpc::ServerUnaryReactor* TreeService::List(grpc::CallbackServerContext* context,
                                            const etcpb::ListRequest* request,
                                            etcpb::ListResponse* response) {
  return Run(host_, context, ListOf(*request), ReadMode(request->serializable()), &ConvertList,
             response);
}

grpc::ServerUnaryReactor* TreeService::Stat(grpc::CallbackServerContext* context,
                                            const etcpb::StatRequest* request,
                                            etcpb::StatResponse* response) {
  return Run(host_, context, StatOf(*request), ReadMode(request->serializable()), &ConvertStat,
             response);
}

grpc::ServerUnaryReactor* TreeService::GetTree(grpc::CallbackServerContext* context,
                                               const etcpb::GetTreeRequest* request,
                                               etcdserverpb::RangeResponse* response) {
  return Run(host_, context, GetTreeOf(*request), ReadMode(request->serializable()),
             &ConvertRange, response);
}

grpc::ServerUnaryReactor* TreeService::DeleteTree(grpc::CallbackServerContext* context,
                                                  const etcpb::DeleteTreeRequest* request,
                                                  etcdserverpb::DeleteRangeResponse* response) {
  kvpb::Request r;
  r.mutable_delete_tree()->set_path(NormalTreePath(request->path()));
  r.mutable_delete_tree()->set_include_path_key(request->include_path_key());
  r.mutable_delete_tree()->set_prev_kv(request->prev_kv());
  return Run(host_, context, absl::StatusOr<kvpb::Request>(std::move(r)), Mode::kWrite,
             &ConvertDelete, response);
}

}  // namespace etc::server
