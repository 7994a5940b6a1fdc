// etcd 3.4's grpc-gateway streaming calls over HTTP/1.1: POST /v3/watch and
// POST /v3/lease/keepalive. The body is one or more JSON requests, one
// after another ({"create_request":{...}} {"cancel_request":{...}}, or
// {"ID":"..."}); they are sent in order on one bidirectional call to the
// gRPC service over the gateway's in-process channel, so each meets
// exactly gRPC's validation, auth (the Authorization header is the token),
// limits and errors. The answer is chunked, one chunk per response as the
// service gives it: {"result":<response>}\n. An error from the service
// ends it with {"error":{"grpc_code":..,"http_code":..,"message":..,
// "http_status":..}} (before any result, that is the whole answer, with the
// error's HTTP status); a first request that is not JSON is answered 500
// with the unary error shape, and one later stops the requests there, as
// etcd's gateway does.
//
// As etcd's: a keep-alive stream ends once each of its requests is
// answered (the call is half-closed after the body); a watch stream stays
// open until the client goes away, which cancels the call. No thread
// waits on either; a client that reads too slowly is cut off at the
// listener's cap (ListenerOptions::max_stream_buffered_bytes).
//
//   if (std::optional<GatewayStream> stream = GatewayStreamAt(path)) {
//     ServeGatewayStream(*stream, stub, request, std::move(exchange));
//   }
#ifndef ETC_SERVER_GATEWAY_STREAM_H_
#define ETC_SERVER_GATEWAY_STREAM_H_

#include <memory>
#include <optional>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/string_view.h"
#include "server/http.h"

namespace etc::server {

enum class GatewayStream { kWatch, kLeaseKeepAlive };

// The streaming call a gateway path (with /v3beta/ already made /v3/)
// names, if any.
std::optional<GatewayStream> GatewayStreamAt(absl::string_view path);

// Starts the call and returns; `exchange` is answered from gRPC's threads.
// `stub` is needed only until this returns.
void ServeGatewayStream(GatewayStream stream, grpc::GenericStub* stub, const HttpRequest& request,
                        std::shared_ptr<HttpExchange> exchange);

}  // namespace etc::server

#endif  // ETC_SERVER_GATEWAY_STREAM_H_
