// etcd's watch response fragmenting: a watcher created with `fragment`
// gets a response whose events exceed the request size limit split into
// several, each flagged `fragment` except the last, so no message outgrows
// what clients accept. Each piece keeps the header and watch id; a single
// event larger than the limit travels alone.
#ifndef ETC_SERVER_FRAGMENT_H_
#define ETC_SERVER_FRAGMENT_H_

#include <cstddef>
#include <vector>

#include "kv/etcdserverpb/rpc.pb.h"

namespace etc::server {

std::vector<etcdserverpb::WatchResponse> FragmentWatchResponse(
    etcdserverpb::WatchResponse response, size_t max_bytes);

}  // namespace etc::server

#endif  // ETC_SERVER_FRAGMENT_H_
