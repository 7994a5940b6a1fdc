// etcd v2's long-poll watches (GET /v2/keys/<path>?wait=true): a watch
// stream of the member's own (member::WatchStreams, as gRPC watches use),
// whose first matching event answers the request; with stream=true every
// matching event goes out as a line until the client leaves. The answer's
// head (X-Etcd-Index: the index when the watch began) goes out at once and
// the event when it comes. No thread waits: the member thread writes the
// event to the exchange, and a client that leaves cancels the watch.
//
// etcd keeps only its last 1,000 events; a waitIndex here is served from
// the key tree's history back to the compacted revision (401 below it).
// Events are v3's: a put is "set", a deletion "delete", or "expire" when
// the deleted key's lease is gone (its TTL ran out or it was revoked).
#ifndef ETC_SERVER_V2_WATCH_H_
#define ETC_SERVER_V2_WATCH_H_

#include <memory>
#include <optional>
#include <string>

#include "server/http.h"
#include "server/v2_keys.h"
#include "server/v2_request.h"

namespace etc::server {

// Starts the watch `key` asks for (key.wait) as `token`'s user; answers
// through `exchange`, now (a refusal) or later.
void StartV2Watch(V2Api* api, V2KeyRequest key, std::optional<std::string> token,
                  std::shared_ptr<HttpExchange> exchange);

}  // namespace etc::server

#endif  // ETC_SERVER_V2_WATCH_H_
