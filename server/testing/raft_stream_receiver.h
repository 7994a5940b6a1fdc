// For tests of what travels on raft streams: a loopback listening port and
// a record of what a RaftStreamServer delivered.
#ifndef ETC_SERVER_TESTING_RAFT_STREAM_RECEIVER_H_
#define ETC_SERVER_TESTING_RAFT_STREAM_RECEIVER_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/raft_stream.h"

namespace etc::server {

// A loopback listening socket on a port of its own; Accept returns the
// next connection.
class Port {
 public:
  Port() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t size = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
  }
  ~Port() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int Accept() { return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// What a RaftStreamServer delivered.
struct Received {
  std::mutex mu;
  std::vector<raftpb::Message> messages;
  // How many messages each hand-off carried.
  std::vector<size_t> deliveries;
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return messages.size();
  }
  RaftStreamServer::Deliver Deliver() {
    return [this](std::vector<raftpb::Message> batch) {
      std::lock_guard<std::mutex> lock(mu);
      deliveries.push_back(batch.size());
      for (raftpb::Message& m : batch) messages.push_back(std::move(m));
    };
  }
};

// Whether `received` holds `size` messages within 5 s.
inline bool AwaitSize(Received& received, size_t size) {
  for (int i = 0; i < 500 && received.size() < size; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return received.size() == size;
}

}  // namespace etc::server

#endif  // ETC_SERVER_TESTING_RAFT_STREAM_RECEIVER_H_
