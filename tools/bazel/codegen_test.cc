// A real gRPC round trip (in-process channel, no ports) through code that
// etc_proto_library generated, with a message type imported from //raft.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tools/bazel/codegen_test.grpc.pb.h"

namespace etc::codegen_test {
namespace {

class EchoService final : public Echo::Service {
  grpc::Status Say(grpc::ServerContext*, const SayRequest* request,
                   SayResponse* response) override {
    response->set_text("echo: " + request->text());
    response->set_entry_index(request->entry().index());
    return grpc::Status::OK;
  }
};

TEST(ProtoCodegen, GeneratedServiceAnswersOverAnInProcessChannel) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<Echo::Stub> stub = Echo::NewStub(server->InProcessChannel({}));
  SayRequest request;
  request.set_text("hello");
  request.mutable_entry()->set_index(42);
  SayResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub->Say(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "echo: hello");
  EXPECT_EQ(response.entry_index(), 42u);
  server->Shutdown();
}

}  // namespace
}  // namespace etc::codegen_test
