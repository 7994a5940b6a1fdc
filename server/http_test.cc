#include "server/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/testing/threads.h"

namespace etc::server {
namespace {

TEST(ParseHttpRequest, ReadsARequestOnlyOnceItIsComplete) {
  std::string data = "POST /v3/kv/put?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
  HttpRequest request;
  for (size_t cut = 0; cut < data.size(); ++cut) {
    absl::StatusOr<size_t> partial = ParseHttpRequest(data.substr(0, cut), &request);
    ASSERT_TRUE(partial.ok()) << cut;
    EXPECT_EQ(*partial, 0u) << cut;
  }
  absl::StatusOr<size_t> used = ParseHttpRequest(data + "GET /next", &request);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, data.size());
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/v3/kv/put");
  EXPECT_EQ(request.query, "x=1");
  EXPECT_EQ(request.headers.at("host"), "a");
  EXPECT_EQ(request.body, "body");
}

TEST(ParseHttpRequest, RefusesMalformedAndOversizedRequests) {
  HttpRequest request;
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET nopath HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nno colon\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    EXPECT_FALSE(ParseHttpRequest(bad, &request).ok()) << bad;
  }
  absl::StatusOr<size_t> huge =
      ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", &request);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(ParseHttpRequest(std::string(100000, 'a'), &request).ok());
}

TEST(ParseHttpRequest, ArbitraryBytesNeverCrash) {
  std::mt19937_64 random(7);
  HttpRequest request;
  for (int i = 0; i < 20000; ++i) {
    std::string data = "GET / HTTP/1.1\r\n";
    size_t length = random() % 64;
    for (size_t j = 0; j < length; ++j) data.push_back(static_cast<char>("\r\n: aZ0"[random() % 7]));
    data += "\r\n\r\n";
    (void)ParseHttpRequest(data, &request);
  }
}

// ---- the listener, over real sockets on loopback ----

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends a GET and returns the response's first line ("" if none came).
std::string Get(int fd, const std::string& path) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    return "";
  }
  std::string response;
  char chunk[4096];
  while (response.find("\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return "";
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return "";
    response.append(chunk, static_cast<size_t>(n));
  }
  return response.substr(0, response.find("\r\n"));
}

// Whether the peer closed the connection (within `timeout_ms`).
bool ClosedByPeer(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char byte;
  return recv(fd, &byte, 1, 0) == 0;
}

HttpHandler Ok() {
  return [](const HttpRequest& request) {
    HttpResponse response;
    response.body = "{\"path\":\"" + request.path + "\"}";
    return response;
  };
}

TEST(Listener, IdleConnectionsCostNoThreadsAndDoNotStopService) {
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Ok());
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  size_t threads_before = ThreadCount();
  // Half-open connections that never send a byte (what exhausted a
  // process limited in threads when each had its own).
  std::vector<int> idle;
  for (int i = 0; i < 500; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*listener)->connections() < 500 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*listener)->connections(), 500u);
  EXPECT_LE(ThreadCount(), threads_before + 2) << "a thread per connection";
  int fd = Connect(port);
  EXPECT_EQ(Get(fd, "/health"), "HTTP/1.1 200 OK");
  // Keep-alive: the same connection serves again.
  EXPECT_EQ(Get(fd, "/version"), "HTTP/1.1 200 OK");
  close(fd);
  for (int f : idle) close(f);
  (*listener)->Stop();
}

TEST(Listener, AtTheLimitANewConnectionTakesThePlaceOfOneThatNeverSpoke) {
  ListenerOptions options;
  options.max_connections = 3;
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Ok(), options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  // Until `n` connections wait on their clients: an answered one is back
  // from its worker only a moment after its client has the answer.
  auto await_waiting = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*listener)->waiting_connections() != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return (*listener)->waiting_connections() == n;
  };
  // Two that were answered and stay open between requests, one that never
  // sends a byte, opened last: the one that makes room all the same.
  int first = Connect((*listener)->port());
  int second = Connect((*listener)->port());
  EXPECT_EQ(Get(first, "/a"), "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(second, "/b"), "HTTP/1.1 200 OK");
  int silent = Connect((*listener)->port());
  ASSERT_TRUE(await_waiting(3));
  int fresh = Connect((*listener)->port());
  EXPECT_TRUE(ClosedByPeer(silent, 5000)) << "the silent connection was kept";
  EXPECT_EQ(Get(fresh, "/c"), "HTTP/1.1 200 OK") << "a new client was refused";
  EXPECT_EQ(Get(first, "/a"), "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(second, "/b"), "HTTP/1.1 200 OK");
  EXPECT_EQ((*listener)->connections(), 3u);
  ASSERT_TRUE(await_waiting(3));
  // With none that never spoke, the one idle longest makes room: `fresh`,
  // answered before the other two were answered again.
  int another = Connect((*listener)->port());
  EXPECT_TRUE(ClosedByPeer(fresh, 5000)) << "the connection idle longest was kept";
  EXPECT_EQ(Get(another, "/d"), "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(first, "/a"), "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(second, "/b"), "HTTP/1.1 200 OK");
  for (int f : {first, second, silent, fresh, another}) close(f);
  (*listener)->Stop();
}

TEST(Listener, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  ListenerOptions options;
  options.idle_timeout_ms = 200;
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Ok(), options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int silent = Connect((*listener)->port());
  int served = Connect((*listener)->port());
  EXPECT_EQ(Get(served, "/a"), "HTTP/1.1 200 OK");
  EXPECT_TRUE(ClosedByPeer(silent, 5000));
  EXPECT_TRUE(ClosedByPeer(served, 5000));
  close(silent);
  close(served);
  (*listener)->Stop();
}

TEST(Listener, RequestsPipelinedOnOneConnectionAreEachAnswered) {
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Ok());
  ASSERT_TRUE(listener.ok()) << listener.status();
  int fd = Connect((*listener)->port());
  std::string two = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
  std::string all;
  char chunk[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (all.find("/two") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    all.append(chunk, static_cast<size_t>(n));
  }
  EXPECT_NE(all.find("{\"path\":\"/one\"}"), std::string::npos);
  EXPECT_NE(all.find("{\"path\":\"/two\"}"), std::string::npos);
  close(fd);
  (*listener)->Stop();
}

}  // namespace
}  // namespace etc::server
