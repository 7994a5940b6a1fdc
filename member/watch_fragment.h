// Shaping watch responses for the wire.
//
// Fragmenting (etcd's): a watcher created with `fragment` gets a response
// whose events exceed the request size limit split into several, each
// flagged `fragment` except the last, so no message outgrows what clients
// accept. Each piece keeps the header and watch id; a single event larger
// than the limit travels alone.
//
// Merging: event responses of one watcher that wait for the same stream
// may go out as one message, as etcd's own catch-up sends several
// revisions at once. Clients see the same events in the same order with
// fewer messages (one write, one completion, one send instead of many
// while the stream is behind).
#ifndef ETC_MEMBER_WATCH_FRAGMENT_H_
#define ETC_MEMBER_WATCH_FRAGMENT_H_

#include <cstddef>
#include <vector>

#include "kv/etcdserverpb/rpc.pb.h"

namespace etc::member {

std::vector<etcdserverpb::WatchResponse> FragmentWatchResponse(
    etcdserverpb::WatchResponse response, size_t max_bytes);

// Whether `response` only carries events (no created, canceled, compaction
// or fragment flag, and not a progress notification): only those merge.
bool IsPlainEventResponse(const etcdserverpb::WatchResponse& response);

// Appends `next`'s events to `into` and takes its header (the later
// revision) when both are plain event responses of the same watcher and
// the result stays within `max_bytes`; `into_bytes` is `into`'s size,
// kept up to date. Returns false (and changes nothing) otherwise.
bool MergeWatchResponse(etcdserverpb::WatchResponse* into, size_t* into_bytes,
                        etcdserverpb::WatchResponse* next, size_t max_bytes);

}  // namespace etc::member

#endif  // ETC_MEMBER_WATCH_FRAGMENT_H_
