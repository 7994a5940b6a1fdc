// Private to the client's sources (client.cc, client_admin.cc): a stub on
// a channel the caller keeps alive, and Client::Unary, one unary call of a
// service through Client::Call (failover, deadline, re-login).
#ifndef ETC_CLIENT_CLIENT_UNARY_H_
#define ETC_CLIENT_CLIENT_UNARY_H_

#include <memory>

#include "client/client.h"

namespace etc::client {
namespace internal {

template <typename Service>
std::unique_ptr<typename Service::Stub> StubOn(grpc::Channel* channel) {
  return Service::NewStub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
}

}  // namespace internal

template <typename Service, typename Request, typename Response>
absl::StatusOr<Response> Client::Unary(
    Safety safety, std::chrono::milliseconds timeout,
    grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  Response response;
  absl::Status status =
      Call(safety, timeout, [&](grpc::Channel* channel, grpc::ClientContext* context) {
        return (internal::StubOn<Service>(channel).get()->*method)(context, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

template <typename Service, typename Request, typename Response>
absl::StatusOr<Response> Client::Unary(
    Safety safety,
    grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  return Unary<Service>(safety, options_.request_timeout, method, request);
}

}  // namespace etc::client

#endif  // ETC_CLIENT_CLIENT_UNARY_H_
