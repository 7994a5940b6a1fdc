#include "server/grpc_metrics.h"

#include <chrono>
#include <string>

namespace etc::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

const char* TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY: return "unary";
    case Type::CLIENT_STREAMING: return "client_stream";
    case Type::SERVER_STREAMING: return "server_stream";
    case Type::BIDI_STREAMING: return "bidi_stream";
  }
  return "unknown";
}

// gRPC's canonical code names, as Prometheus labels carry them.
const char* CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
                                 "NotFound", "AlreadyExists", "PermissionDenied",
                                 "ResourceExhausted", "FailedPrecondition", "Aborted",
                                 "OutOfRange", "Unimplemented", "Internal", "Unavailable",
                                 "DataLoss", "Unauthenticated"};
  int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "Unknown";
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info, Metrics* metrics)
      : metrics_(metrics), start_(std::chrono::steady_clock::now()) {
    // "/etcdserverpb.KV/Range"
    std::string method = info->method() == nullptr ? "" : info->method();
    size_t slash = method.rfind('/');
    std::string service = slash == std::string::npos ? method : method.substr(1, slash - 1);
    std::string name = slash == std::string::npos ? method : method.substr(slash + 1);
    labels_ = Labels({{"grpc_method", name},
                      {"grpc_service", service},
                      {"grpc_type", TypeName(info->type())}});
    metrics_->grpc_started.Add(labels_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      metrics_->grpc_handled.Add(labels_ + "," + Labels({{"grpc_code", CodeName(status.error_code())}}));
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_->grpc_handling_seconds.Observe(labels_, seconds);
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::chrono::steady_clock::time_point start_;
  std::string labels_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, metrics_);
  }

 private:
  Metrics* metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MetricsInterceptorFactory(
    Metrics* metrics) {
  return std::make_unique<Factory>(metrics);
}

}  // namespace etc::server
