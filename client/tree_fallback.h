// The Tree service's calls as etcd's own prefix ranges (client/tree_client.h
// explains when): the same answers as etc's Tree service gives, header
// aside. Internal to //client:tree_client.
#ifndef ETC_CLIENT_TREE_FALLBACK_H_
#define ETC_CLIENT_TREE_FALLBACK_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "server/etcpb/tree.pb.h"

namespace etc::client::tree_internal {

// As the server reads a path: "" -> "/", "/a/" -> "/a".
std::string NormalTreePath(std::string_view path);
// What is below a normal path: path + "/", or "/" for the root.
std::string TreePrefix(std::string_view normal_path);
// Whether a watched key is directly in the directory `prefix`.
bool IsChild(std::string_view key, std::string_view prefix);
// The server's refusals at the edge (what etcd's range takes silently).
absl::Status CheckLimitAndRevision(int64_t limit, int64_t revision);

absl::StatusOr<etcpb::ListResponse> List(Client& client, const etcpb::ListRequest& request);
absl::StatusOr<etcpb::StatResponse> Stat(Client& client, const etcpb::StatRequest& request);
absl::StatusOr<etcdserverpb::RangeResponse> GetTree(Client& client,
                                                    const etcpb::GetTreeRequest& request);
absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteTree(
    Client& client, const etcpb::DeleteTreeRequest& request);

// A prefix watch's response as WatchTree's: nothing for an event response
// whose events all fall outside the depth.
std::optional<etcpb::WatchTreeResponse> TranslateWatch(const etcdserverpb::WatchResponse& in,
                                                       std::string_view prefix,
                                                       bool children_only);

}  // namespace etc::client::tree_internal

#endif  // ETC_CLIENT_TREE_FALLBACK_H_
