#include "server/gateway_stream.h"

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "server/gateway_codec.h"

namespace etc::server {
namespace {

struct StreamMethod {
  const char* method;
  const google::protobuf::Message* request;
  const google::protobuf::Message* response;
  // Half-closed once the body's requests are sent, as etcd's gateway does:
  // etcd's keep-alive stream then ends, its watch stream stays open. Our
  // Watch service ends a half-closed stream, so the watch is not.
  bool half_close;
};

const StreamMethod& MethodOf(GatewayStream stream) {
  static const StreamMethod kWatch{"/etcdserverpb.Watch/Watch",
                                   &etcdserverpb::WatchRequest::default_instance(),
                                   &etcdserverpb::WatchResponse::default_instance(), false};
  static const StreamMethod kKeepAlive{"/etcdserverpb.Lease/LeaseKeepAlive",
                                       &etcdserverpb::LeaseKeepAliveRequest::default_instance(),
                                       &etcdserverpb::LeaseKeepAliveResponse::default_instance(),
                                       true};
  return stream == GatewayStream::kWatch ? kWatch : kKeepAlive;
}

// The body's requests, read one at a time as the call takes them: a body
// of many small requests costs its own bytes, not a message each.
class RequestReader {
 public:
  RequestReader(std::string body, const google::protobuf::Message* prototype)
      : body_(std::move(body)), prototype_(prototype) {}

  // The next request as gRPC bytes: nullopt once there is none, an error
  // for one that is not a request.
  absl::StatusOr<std::optional<grpc::ByteBuffer>> Next() {
    absl::StatusOr<absl::string_view> json = NextJsonValue(body_, &cursor_);
    if (!json.ok()) return json.status();
    if (json->empty()) return std::nullopt;
    std::unique_ptr<google::protobuf::Message> request(prototype_->New());
    if (absl::Status status = GatewayFromJson(*json, request.get()); !status.ok()) return status;
    return ToByteBuffer(*request);
  }

 private:
  const std::string body_;
  const google::protobuf::Message* const prototype_;
  size_t cursor_ = 0;
};

// One streaming call, as a gRPC callback reactor: writes go out one at a
// time, each started by the one before; every response read is written to
// the exchange at once (the exchange cuts off a client that falls behind).
// It owns itself until gRPC is done with it (OnDone); the exchange's
// OnClose cancels the call.
class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `first` is the body's first request (nullopt if it has none), `rest`
  // reads the others.
  static void Start(const StreamMethod& method, grpc::GenericStub* stub,
                    const HttpRequest& request, std::optional<grpc::ByteBuffer> first,
                    std::unique_ptr<RequestReader> rest, std::shared_ptr<HttpExchange> exchange) {
    std::shared_ptr<StreamCall> call(
        new StreamCall(method, std::move(rest), std::move(exchange)));
    call->self_ = call;
    auto authorization = request.headers.find("authorization");
    if (authorization != request.headers.end()) {
      call->context_.AddMetadata("authorization", authorization->second);
    }
    stub->PrepareBidiStreamingCall(&call->context_, method.method, grpc::StubOptions(), call.get());
    call->StartRead(&call->read_);
    if (first.has_value()) {
      call->writing_ = std::move(*first);
      call->StartWrite(&call->writing_);
    } else if (method.half_close) {
      call->StartWritesDone();
    }
    call->StartCall();
    std::weak_ptr<StreamCall> weak = call;
    call->exchange_->OnClose([weak] {
      if (std::shared_ptr<StreamCall> live = weak.lock()) live->Cancel();
    });
  }

 private:
  StreamCall(const StreamMethod& method, std::unique_ptr<RequestReader> rest,
             std::shared_ptr<HttpExchange> exchange)
      : method_(method),
        rest_(std::move(rest)),
        exchange_(std::move(exchange)),
        response_(method.response->New()) {}

  void OnWriteDone(bool ok) override {
    if (!ok) return;  // the call is ending; OnDone says how
    absl::StatusOr<std::optional<grpc::ByteBuffer>> next = rest_->Next();
    if (next.ok() && next->has_value()) {
      writing_ = std::move(**next);
      StartWrite(&writing_);
      return;
    }
    // The end of the body, or a request that is not one: etcd's gateway
    // stops sending there, and half-closes.
    writing_.Clear();
    if (method_.half_close) StartWritesDone();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!FromByteBuffer(read_, response_.get())) {
      Cancel();
      return;
    }
    std::string line = absl::StrCat("{\"result\":", GatewayToJson(*response_), "}\n");
    if (!streaming_) {
      streaming_ = true;
      HttpResponse head;
      head.body = std::move(line);
      exchange_->StartStream(std::move(head));
    } else if (!exchange_->Send(std::move(line))) {
      return;  // gone or cut off: its OnClose cancelled the call
    }
    StartRead(&read_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    // After a cancel the exchange is over already, and these do nothing.
    if (!status.ok() && !streaming_) {
      // grpc-gateway writes the status line only with the first chunk: an
      // error before any result gets its own HTTP status.
      HttpResponse head;
      head.status = HttpStatusOf(status.error_code());
      head.body = GatewayStreamError(status);
      exchange_->StartStream(std::move(head));
    } else if (!status.ok()) {
      exchange_->Send(GatewayStreamError(status));
    } else if (!streaming_) {
      exchange_->StartStream(HttpResponse{});
    }
    exchange_->Finish();
    std::shared_ptr<StreamCall> last = std::move(self_);  // may free this
  }

  void Cancel() {
    absl::MutexLock lock(&mu_);
    if (!done_) context_.TryCancel();
  }

  const StreamMethod& method_;
  grpc::ClientContext context_;
  const std::unique_ptr<RequestReader> rest_;  // the write side's
  grpc::ByteBuffer writing_;                   // the write side's
  grpc::ByteBuffer read_;                      // the read side's
  const std::shared_ptr<HttpExchange> exchange_;
  const std::unique_ptr<google::protobuf::Message> response_;  // the read side's
  bool streaming_ = false;  // the read side's (then OnDone's): a result went out
  std::shared_ptr<StreamCall> self_;  // until OnDone
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::optional<GatewayStream> GatewayStreamAt(absl::string_view path) {
  if (path == "/v3/watch") return GatewayStream::kWatch;
  if (path == "/v3/lease/keepalive") return GatewayStream::kLeaseKeepAlive;
  return std::nullopt;
}

void ServeGatewayStream(GatewayStream stream, grpc::GenericStub* stub, const HttpRequest& request,
                        std::shared_ptr<HttpExchange> exchange) {
  const StreamMethod& method = MethodOf(stream);
  auto rest = std::make_unique<RequestReader>(request.body, method.request);
  absl::StatusOr<std::optional<grpc::ByteBuffer>> first = rest->Next();
  if (!first.ok()) {
    // grpc-gateway returns the first request's decoding error as it is, not
    // as a gRPC status: code 2 (UNKNOWN), HTTP 500.
    exchange->Respond(
        GatewayError(grpc::Status(grpc::StatusCode::UNKNOWN, std::string(first.status().message()))));
    return;
  }
  StreamCall::Start(method, stub, request, std::move(*first), std::move(rest), std::move(exchange));
}

}  // namespace etc::server
