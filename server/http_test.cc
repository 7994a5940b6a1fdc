#include "server/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
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
                          "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"}) {
    EXPECT_FALSE(ParseHttpRequest(bad, &request).ok()) << bad;
  }
  absl::StatusOr<size_t> huge =
      ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", &request);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(ParseHttpRequest(std::string(100000, 'a'), &request).ok());
}

TEST(ParseHttpRequest, ReadsAChunkedBodyOnlyOnceItIsComplete) {
  // As python-requests sends a generator body: chunks, an extension, a
  // trailer, and the next request behind it.
  std::string data =
      "POST /v3/watch HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "5\r\n{\"a\":\r\n"
      "A;name=value\r\n1234567890\r\n"
      "1 \r\n}\r\n"
      "0\r\nX-Trailer: t\r\n\r\n";
  HttpRequest request;
  for (size_t cut = 0; cut < data.size(); ++cut) {
    absl::StatusOr<size_t> partial = ParseHttpRequest(data.substr(0, cut), &request);
    ASSERT_TRUE(partial.ok()) << cut << ": " << partial.status();
    EXPECT_EQ(*partial, 0u) << cut;
  }
  absl::StatusOr<size_t> used = ParseHttpRequest(data + "GET /next HTTP/1.1\r\n\r\n", &request);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, data.size());
  EXPECT_EQ(request.body, "{\"a\":1234567890}");
}

TEST(ParseHttpRequest, RefusesMalformedAndOversizedChunkedBodies) {
  std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  HttpRequest request;
  for (const char* bad : {"x\r\n", "-1\r\n", "+5\r\nhello\r\n", "5\r\nhelloXX", "\r\n",
                          "123456789\r\n"}) {
    EXPECT_EQ(ParseHttpRequest(head + bad, &request).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  // Declared larger than a request may be: refused before it arrives.
  EXPECT_EQ(ParseHttpRequest(head + "900000\r\n", &request).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::string many = head;
  many.reserve(13 << 20);
  const std::string chunk = "fff\r\n" + std::string(0xfff, 'x') + "\r\n";
  for (int i = 0; i < 3000; ++i) many += chunk;
  EXPECT_EQ(ParseHttpRequest(many, &request).status().code(), absl::StatusCode::kResourceExhausted);
  // A chunk-size line without end is not waited for.
  EXPECT_FALSE(ParseHttpRequest(head + std::string(5000, '0'), &request).ok());
  EXPECT_FALSE(ParseHttpRequest(head + "0\r\n" + std::string(100000, 'a'), &request).ok());
}

TEST(ParseHttpRequest, ArbitraryChunkedBodiesNeverCrash) {
  std::mt19937_64 random(11);
  HttpRequest request;
  for (int i = 0; i < 20000; ++i) {
    std::string data = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t length = random() % 48;
    for (size_t j = 0; j < length; ++j) data.push_back("\r\n;0123aF x"[random() % 12]);
    (void)ParseHttpRequest(data, &request);
  }
}

TEST(FormatHttpResponse, WritesHeadersInOrderAndDropsOnesThatWouldSplitIt) {
  HttpResponse response;
  response.status = 201;
  response.headers = {{"X-Etcd-Index", "12"}, {"X-Bad", "a\r\nSet-Cookie: x"}, {"X-Raft-Term", "2"}};
  response.body = "{}";
  EXPECT_EQ(FormatHttpResponse(response, false),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Etcd-Index: 12\r\n"
            "X-Raft-Term: 2\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(FormatHttpStreamHead(response, true),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Etcd-Index: 12\r\n"
            "X-Raft-Term: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n");
  EXPECT_EQ(FormatHttpChunk(std::string(26, 'z')), "1a\r\n" + std::string(26, 'z') + "\r\n");
  EXPECT_EQ(FormatHttpChunk(""), "");
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

// Connects a socket made before (so that a test out of descriptors can
// still open one); false if it did not connect.
bool ConnectSocket(int fd, int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  return connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!ConnectSocket(fd, port)) {
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

// Answers the request's body, in brackets.
HttpHandler Echo() {
  return [](const HttpRequest& request) {
    HttpResponse response;
    response.body = "[" + request.body + "]";
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

// ---- answers given later, or streamed ----

// Reads from `fd` until `done` holds for what came (or the peer closes, or
// `timeout_ms` passes); returns all of it.
std::string ReadUntil(int fd, const std::function<bool(const std::string&)>& done,
                      int timeout_ms = 5000) {
  std::string received;
  char chunk[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done(received) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    received.append(chunk, static_cast<size_t>(n));
  }
  return received;
}

std::function<bool(const std::string&)> Has(std::string text) {
  return [text](const std::string& received) { return received.find(text) != std::string::npos; };
}

bool SendRequest(int fd, const std::string& path) {
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  return send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(request.size());
}

// Until `condition` holds (checked every 10 ms, for at most 5 s).
bool Eventually(const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!condition() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// A listener whose handler answers nothing itself: it keeps every exchange
// for the test to answer, from the test's thread, after the worker
// returned. The clients a test opens are closed at its end.
class HeldExchanges : public ::testing::Test {
 protected:
  void TearDown() override {
    if (listener_ != nullptr) listener_->Stop();
    for (int fd : clients_) close(fd);
    std::lock_guard<std::mutex> lock(mu_);
    exchanges_.clear();
  }

  void Start(ListenerOptions options = {}) {
    auto started = Listener::Start(
        "127.0.0.1:0", nullptr,
        [this](const HttpRequest& request, std::shared_ptr<HttpExchange> exchange) {
          std::lock_guard<std::mutex> lock(mu_);
          paths_.push_back(request.path);
          exchanges_.push_back(std::move(exchange));
          arrived_.notify_all();
        },
        options);
    ASSERT_TRUE(started.ok()) << started.status();
    listener_ = std::move(*started);
  }

  // A new connection; with a path, it asks for it.
  int Client(const std::string& path = "") {
    if (listener_ == nullptr) return -1;
    int fd = Connect(listener_->port());
    clients_.push_back(fd);
    if (!path.empty()) {
      EXPECT_TRUE(SendRequest(fd, path));
    }
    return fd;
  }

  void Hangup(int fd) {
    close(fd);
    clients_.erase(std::find(clients_.begin(), clients_.end(), fd));
  }

  // The i-th exchange, once it arrived (nullptr if it did not within 5 s).
  std::shared_ptr<HttpExchange> Await(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_.wait_for(lock, std::chrono::seconds(5), [&] { return exchanges_.size() > i; });
    return exchanges_.size() > i ? exchanges_[i] : nullptr;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return exchanges_.size();
  }
  std::string path(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_.at(i);
  }

  std::unique_ptr<Listener> listener_;

 private:
  std::vector<int> clients_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<std::string> paths_;
  std::vector<std::shared_ptr<HttpExchange>> exchanges_;
};

TEST_F(HeldExchanges, AnAnswerGivenLaterFromAnotherThreadReachesTheClient) {
  ListenerOptions options;
  options.workers = 1;
  Start(options);
  int fd = Client("/v2/keys/x");
  std::shared_ptr<HttpExchange> exchange = Await(0);
  ASSERT_NE(exchange, nullptr);
  // The worker returned long ago: the one worker serves another client.
  int other = Client("/other");
  std::shared_ptr<HttpExchange> second = Await(1);
  ASSERT_NE(second, nullptr);
  second->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(other, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_EQ(ReadUntil(fd, Has("\r\n\r\n"), 100), "") << "answered before the answer was given";
  // Answered in full: OnClose never runs, given before or after.
  std::atomic<int> closed{0};
  exchange->OnClose([&closed] { closed.fetch_add(1); });
  std::thread([exchange] {
    HttpResponse response;
    response.headers = {{"X-Etcd-Index", "12"}};
    response.body = "{\"action\":\"set\"}";
    exchange->Respond(std::move(response));
  }).join();
  std::string answer = ReadUntil(fd, Has("{\"action\":\"set\"}"));
  EXPECT_EQ(answer.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(answer.find("\r\nX-Etcd-Index: 12\r\n"), std::string::npos) << answer;
  exchange->OnClose([&closed] { closed.fetch_add(1); });
  EXPECT_EQ(closed.load(), 0);
  // Over: a second answer is ignored, and keep-alive serves the next one.
  exchange->Respond(HttpResponse{});
  EXPECT_FALSE(exchange->Send("late"));
  ASSERT_TRUE(SendRequest(fd, "/again"));
  ASSERT_NE(Await(2), nullptr);
  Await(2)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(fd, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
}

TEST_F(HeldExchanges, AStreamReachesTheClientChunkByChunkAsItIsSent) {
  Start();
  int fd = Client("/v3/watch");
  std::shared_ptr<HttpExchange> exchange = Await(0);
  ASSERT_NE(exchange, nullptr);
  HttpResponse head;
  head.headers = {{"X-Stream", "yes"}};
  head.body = "{\"n\":1}\n";
  exchange->StartStream(head);
  std::string first = ReadUntil(fd, Has("{\"n\":1}\n\r\n"));
  EXPECT_EQ(first.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(first.find("\r\nX-Stream: yes\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"n\":1}\n\r\n"),
            std::string::npos)
      << first;
  // Each chunk comes as it is sent, not at the end.
  for (int n = 2; n <= 4; ++n) {
    std::string line = "{\"n\":" + std::to_string(n) + "}\n";
    ASSERT_TRUE(exchange->Send(line));
    EXPECT_EQ(ReadUntil(fd, Has(line)), "8\r\n" + line + "\r\n");
  }
  EXPECT_TRUE(exchange->Send(""));  // skipped: it would end the body
  bool closed = false;
  exchange->OnClose([&closed] { closed = true; });
  exchange->Finish();
  EXPECT_FALSE(closed) << "OnClose ran for a stream finished in full";
  EXPECT_EQ(ReadUntil(fd, Has("0\r\n\r\n")), "0\r\n\r\n");
  EXPECT_FALSE(exchange->Send("after the end"));
  // The connection serves its next request.
  ASSERT_TRUE(SendRequest(fd, "/next"));
  ASSERT_NE(Await(1), nullptr);
  Await(1)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(fd, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
}

TEST_F(HeldExchanges, AClientThatLeavesWhileWaitingRunsOnCloseAndFreesItsConnection) {
  Start();
  int waiting = Client("/v2/keys/x?wait=true");
  int streaming = Client("/v3/watch");
  std::shared_ptr<HttpExchange> long_poll = Await(0);
  std::shared_ptr<HttpExchange> watch = Await(1);
  ASSERT_NE(long_poll, nullptr);
  ASSERT_NE(watch, nullptr);
  std::atomic<int> closed{0};
  long_poll->OnClose([&closed] { closed.fetch_add(1); });
  watch->StartStream(HttpResponse{});
  watch->OnClose([&closed] { closed.fetch_add(10); });
  ASSERT_TRUE(Eventually([&] { return listener_->connections() == 2; }));
  Hangup(waiting);
  Hangup(streaming);
  EXPECT_TRUE(Eventually([&] { return closed.load() == 11; })) << closed.load();
  EXPECT_TRUE(Eventually([&] { return listener_->connections() == 0; }));
  // What comes after the client left goes nowhere, and OnClose does not
  // run again (a callback given now runs at once).
  long_poll->Respond(HttpResponse{});
  EXPECT_FALSE(watch->Send("event"));
  watch->Finish();
  bool late = false;
  watch->OnClose([&late] { late = true; });
  EXPECT_TRUE(late);
  EXPECT_EQ(closed.load(), 11);
}

TEST_F(HeldExchanges, AStreamWhoseClientReadsNothingIsCutOffAtTheCap) {
  ListenerOptions options;
  options.max_stream_buffered_bytes = 256 << 10;
  Start(options);
  Client("/v3/watch");
  std::shared_ptr<HttpExchange> exchange = Await(0);
  ASSERT_NE(exchange, nullptr);
  std::atomic<bool> closed{false};
  exchange->OnClose([&closed] { closed = true; });
  exchange->StartStream(HttpResponse{});
  const std::string chunk(64 << 10, 'e');
  size_t sent_bytes = 0;
  size_t max_buffered_bytes = 0;
  // The kernel's socket buffers take a few MiB; past them, the server's
  // own queue may hold only the cap (and the chunk that crossed it).
  while (sent_bytes < (64u << 20) && exchange->Send(chunk)) {
    sent_bytes += chunk.size();
    max_buffered_bytes = std::max(max_buffered_bytes, exchange->buffered_bytes());
  }
  EXPECT_LT(sent_bytes, 64u << 20) << "never cut off";
  EXPECT_LE(max_buffered_bytes, options.max_stream_buffered_bytes + chunk.size() + 16);
  EXPECT_TRUE(closed.load());
  EXPECT_EQ(exchange->buffered_bytes(), 0u);
  EXPECT_TRUE(Eventually([&] { return listener_->connections() == 0; }));
}

TEST_F(HeldExchanges, MoreWaitingExchangesThanWorkersAreAllAnsweredWithoutAThreadEach) {
  ListenerOptions options;
  options.workers = 2;
  Start(options);
  size_t threads_before = ThreadCount();
  constexpr int kClients = 50;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(Client("/wait/" + std::to_string(i)));
  ASSERT_NE(Await(kClients - 1), nullptr) << "workers held by the waiting ones";
  EXPECT_LE(ThreadCount(), threads_before);
  EXPECT_EQ(listener_->waiting_connections(), 0u);
  std::vector<std::thread> answerers;
  for (int i = 0; i < kClients; ++i) {
    answerers.emplace_back([this, i] {
      HttpResponse response;
      response.body = path(i);
      Await(i)->Respond(std::move(response));
    });
  }
  for (std::thread& t : answerers) t.join();
  for (int i = 0; i < kClients; ++i) {
    std::string path = "/wait/" + std::to_string(i);
    EXPECT_NE(ReadUntil(clients[i], Has(path)).find(path), std::string::npos) << i;
  }
  EXPECT_TRUE(Eventually([&] { return listener_->waiting_connections() == kClients; }));
}

TEST_F(HeldExchanges, AnAnswerRacingTheClientsHangupEndsTheExchangeOnce) {
  Start();
  constexpr int kRounds = 200;
  std::atomic<int> closed{0};
  for (int i = 0; i < kRounds; ++i) {
    int fd = Client("/race");
    std::shared_ptr<HttpExchange> exchange = Await(i);
    ASSERT_NE(exchange, nullptr);
    // Shared: the callback may run just after the connection is counted
    // closed.
    auto runs = std::make_shared<std::atomic<int>>(0);
    exchange->OnClose([runs, &closed] {
      runs->fetch_add(1);
      closed.fetch_add(1);
    });
    // The answer from one thread, as from the member's; the hang-up, seen
    // by the poller, at the same moment; a stream in between, sometimes.
    std::thread answerer([exchange, i] {
      if (i % 2 == 0) {
        exchange->Respond(HttpResponse{});
      } else {
        exchange->StartStream(HttpResponse{});
        exchange->Send("event\n");
        exchange->Finish();
      }
    });
    Hangup(fd);
    answerer.join();
    ASSERT_TRUE(Eventually([&] { return listener_->connections() == 0; })) << i;
    EXPECT_LE(runs->load(), 1) << i;
  }
  listener_->Stop();  // every callback has run
  EXPECT_LE(closed.load(), kRounds);
}

TEST_F(HeldExchanges, StopEndsWaitingExchangesWhichMayOutliveIt) {
  Start();
  // One after the other: two connections' requests may reach the handler
  // in either order, and `waiting` must be the long poll's.
  int waiting = Client("/wait");
  std::shared_ptr<HttpExchange> long_poll = Await(0);
  Client("/watch");
  std::shared_ptr<HttpExchange> watch = Await(1);
  ASSERT_NE(long_poll, nullptr);
  ASSERT_NE(watch, nullptr);
  watch->StartStream(HttpResponse{});
  std::atomic<int> closed{0};
  long_poll->OnClose([&closed] { closed.fetch_add(1); });
  watch->OnClose([&closed] { closed.fetch_add(1); });
  // An answer racing the stop, from another thread.
  std::thread racer([watch] {
    for (int i = 0; i < 1000 && watch->Send("event\n"); ++i) {
    }
  });
  listener_->Stop();
  racer.join();
  EXPECT_EQ(closed.load(), 2);
  EXPECT_TRUE(ClosedByPeer(waiting, 5000));
  listener_.reset();  // the exchanges outlive their listener
  long_poll->Respond(HttpResponse{});
  EXPECT_FALSE(watch->Send("event"));
  watch->Finish();
  EXPECT_EQ(watch->buffered_bytes(), 0u);
}

TEST_F(HeldExchanges, APipelinedRequestWaitsUntilTheOneBeforeItIsAnswered) {
  Start();
  int fd = Client();
  std::string two = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
  ASSERT_NE(Await(0), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(count(), 1u) << "the second request ran before the first was answered";
  HttpResponse one;
  one.body = "first";
  Await(0)->Respond(one);
  ASSERT_NE(Await(1), nullptr);
  EXPECT_EQ(path(1), "/two");
  HttpResponse second;
  second.body = "second";
  Await(1)->Respond(second);
  std::string both = ReadUntil(fd, Has("second"));
  EXPECT_LT(both.find("first"), both.find("second")) << both;
}

TEST_F(HeldExchanges, AtTheLimitAConnectionWaitingForItsAnswerIsNeverTheOneClosed) {
  ListenerOptions options;
  options.max_connections = 2;
  Start(options);
  // A long poll, silent since its request (and so silent longest), and a
  // connection that never spoke.
  int long_poll = Client("/v2/keys/x?wait=true");
  ASSERT_NE(Await(0), nullptr);
  int silent = Client();
  ASSERT_TRUE(Eventually([&] { return listener_->connections() == 2; }));
  int fresh = Client();
  EXPECT_TRUE(ClosedByPeer(silent, 5000));
  ASSERT_TRUE(SendRequest(fresh, "/fresh"));
  ASSERT_NE(Await(1), nullptr);
  // Both now wait for answers: a new connection is refused instead.
  int refused = Client();
  EXPECT_TRUE(ClosedByPeer(refused, 5000));
  Await(0)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(long_poll, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
  Await(1)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(fresh, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
}

TEST(Listener, AnExchangeDroppedWithoutAnAnswerIsAnswered500AndClosed) {
  auto listener = Listener::Start(
      "127.0.0.1:0", nullptr, [](const HttpRequest&, std::shared_ptr<HttpExchange>) {});
  ASSERT_TRUE(listener.ok()) << listener.status();
  int fd = Connect((*listener)->port());
  ASSERT_TRUE(SendRequest(fd, "/forgotten"));
  EXPECT_EQ(ReadUntil(fd, Has("\r\n\r\n")).substr(0, 34), "HTTP/1.1 500 Internal Server Error");
  EXPECT_TRUE(ClosedByPeer(fd, 5000));
  close(fd);
  (*listener)->Stop();
}

TEST(Listener, AChunkedRequestBodyReachesTheHandlerWhole) {
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Echo());
  ASSERT_TRUE(listener.ok()) << listener.status();
  int fd = Connect((*listener)->port());
  std::string request =
      "POST /v3/kv/put HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string rest = "2\r\nde\r\n0\r\n\r\n";
  ASSERT_EQ(send(fd, rest.data(), rest.size(), MSG_NOSIGNAL), static_cast<ssize_t>(rest.size()));
  EXPECT_NE(ReadUntil(fd, Has("[abcde]")).find("[abcde]"), std::string::npos);
  close(fd);
  (*listener)->Stop();
}

TEST(Listener, ABodyAwaitedWithExpectContinueIsAskedFor) {
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Echo());
  ASSERT_TRUE(listener.ok()) << listener.status();
  int fd = Connect((*listener)->port());
  // As curl sends a body over 1 MiB: it waits a second for "100 Continue".
  std::string head =
      "POST /v3/kv/put HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  EXPECT_EQ(ReadUntil(fd, Has("\r\n\r\n"), 500), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(send(fd, "hello", 5, MSG_NOSIGNAL), 5);
  std::string answer = ReadUntil(fd, Has("[hello]"));
  EXPECT_EQ(answer.substr(0, 15), "HTTP/1.1 200 OK") << answer;
  close(fd);
  (*listener)->Stop();
}

// ---- out of descriptors ----

// Lowers this process's descriptor limit to the descriptors it holds now,
// so that the listener's next accept(2) fails with EMFILE, as a member's
// does when silent connections took every descriptor its limit allows;
// the limit comes back at the end of the scope. Sockets a test connects
// while it holds must be made before.
class OutOfDescriptors {
 public:
  OutOfDescriptors() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    int lowest_free = dup(0);  // every lower number is taken
    close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free);
    ok_ = setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~OutOfDescriptors() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

TEST(Listener, OutOfDescriptorsANewConnectionTakesThePlaceOfTheOneSilentLongest) {
  auto listener = Listener::Start("127.0.0.1:0", nullptr, Ok());
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  std::vector<int> silent;
  for (int i = 0; i < 20; ++i) silent.push_back(Connect(port));
  ASSERT_TRUE(Eventually([&] { return (*listener)->connections() == 20; }));
  int fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int another = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  testing::internal::CaptureStderr();  // opens a file: before the limit
  {
    OutOfDescriptors out;
    ASSERT_TRUE(out.ok());
    ASSERT_TRUE(ConnectSocket(fresh, port));
    // Accepted in the place of the connection silent longest, and served;
    // without room made it would wait in the backlog (and the poller spin
    // on it) until a connection closed.
    EXPECT_TRUE(ClosedByPeer(silent[0], 5000)) << "no room was made";
    EXPECT_EQ(Get(fresh, "/health"), "HTTP/1.1 200 OK");
    ASSERT_TRUE(ConnectSocket(another, port));
    EXPECT_TRUE(ClosedByPeer(silent[1], 5000)) << "no room was made";
    EXPECT_EQ(Get(another, "/health"), "HTTP/1.1 200 OK");
    EXPECT_EQ((*listener)->connections(), 20u);
  }
  std::string log = testing::internal::GetCapturedStderr();
  // Two made room: the first is told at once, the second held back by the
  // rate limit (told with any later ones after 10 s).
  EXPECT_NE(log.find("\"level\":\"warn\""), std::string::npos) << log;
  EXPECT_NE(log.find("accept failed (Too many open files): closed 1 connection(s) waiting on "
                     "silent clients to make room"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("closed 2"), std::string::npos) << log;
  for (int fd : silent) close(fd);
  close(fresh);
  close(another);
  (*listener)->Stop();
}

TEST_F(HeldExchanges, OutOfDescriptorsWithNoSilentConnectionANewOneIsRefusedAtOnce) {
  Start();
  // Waiting for its answer: never the one that makes room.
  int waiting = Client("/long-poll");
  ASSERT_NE(Await(0), nullptr);
  int refused = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  testing::internal::CaptureStderr();
  {
    OutOfDescriptors out;
    ASSERT_TRUE(out.ok());
    ASSERT_TRUE(ConnectSocket(refused, listener_->port()));
    // Closed at once with the descriptor kept in reserve, not left hanging.
    EXPECT_TRUE(ClosedByPeer(refused, 5000)) << "the new connection was left pending";
  }
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("refused 1 new connection(s) (closed at once): accept failed: Too many "
                     "open files"),
            std::string::npos)
      << log;
  // The reserve is taken again, and the port serves as before.
  Await(0)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(waiting, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
  int after = Client("/after");
  ASSERT_NE(Await(1), nullptr);
  Await(1)->Respond(HttpResponse{});
  EXPECT_EQ(ReadUntil(after, Has("\r\n\r\n")).substr(0, 15), "HTTP/1.1 200 OK");
  close(refused);
}

}  // namespace
}  // namespace etc::server
