// The simulated client's watches and keep-alive loops: they live in the
// simulation (events on the client process), not in the program.
#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "member/watch_streams.h"
#include "sim/sim_client.h"

namespace etc::sim {
namespace {

// How often a watch checks that its member is still there, and how long
// it waits before reconnecting elsewhere (the gRPC client's 100 ms).
constexpr Micros kWatchHealthCheckUs = 100'000;
constexpr Micros kReconnectDelayUs = 100'000;

// One watch's state, shared by the handle and the simulation's events.
struct WatchState {
  SimClient* client = nullptr;
  std::shared_ptr<bool> client_alive;
  etcdserverpb::WatchCreateRequest create;
  std::function<void(const etcdserverpb::WatchResponse&)> on_response;
  client::WatchProgress progress{0};
  bool stopped = false;
  // Set once the first created (or refused) response arrived.
  std::shared_ptr<SimClient::Signal> created = std::make_shared<SimClient::Signal>();
  // The stream now: its member, that member's life, and the stream's id
  // there; `connection` changes at every reconnect, so that responses of
  // an old stream still in flight are dropped.
  NodeId member = 0;
  uint64_t generation = 0;
  member::WatchStreams::StreamId stream = 0;
  uint64_t connection = 0;
  // Responses in flight to the client, and whether the member waits for
  // room.
  size_t in_flight = 0;
  size_t in_flight_bytes = 0;
  bool member_blocked = false;
  Micros last_arrival_us = 0;
};

void Connect(const std::shared_ptr<WatchState>& state);

// The client reads one response of connection `connection` (unless that
// connection was replaced or the watch stopped since).
void Read(const std::shared_ptr<WatchState>& state, uint64_t connection,
          const etcdserverpb::WatchResponse& response) {
  if (connection != state->connection || state->stopped) return;
  --state->in_flight;
  state->in_flight_bytes -= response.ByteSizeLong();
  if (state->in_flight == 0 && state->member_blocked) {
    // The client read everything: wake the member to send more.
    state->member_blocked = false;
    World* world = state->client->world();
    Process& process = world->process(state->member);
    if (process.up() && process.generation == state->generation) world->RunOn(process, [] {});
  }
  if (response.created() || response.canceled()) state->created->Set();
  if (!state->progress.Observe(response)) return;
  if (response.canceled()) state->stopped = true;
  state->on_response(response);
}

// The member's end of the stream: what it pushes travels to the client in
// order (one stream is one connection), and a frozen client reads it when
// it wakes.
class SimWatchSink : public member::WatchSink {
 public:
  SimWatchSink(std::shared_ptr<WatchState> state, uint64_t connection)
      : state_(std::move(state)), connection_(connection) {}
  size_t Pending() override { return state_->in_flight; }
  size_t PendingBytes() override { return state_->in_flight_bytes; }
  void Push(std::vector<etcdserverpb::WatchResponse> responses, size_t) override {
    WatchState& state = *state_;
    Micros now_us = state.client->world()->queue().now_us();
    for (etcdserverpb::WatchResponse& response : responses) {
      ++state.in_flight;
      state.in_flight_bytes += response.ByteSizeLong();
      state.last_arrival_us = std::max(state.last_arrival_us, now_us + state.client->Latency());
      state.client->AfterOnClient(state.last_arrival_us - now_us,
                                  [state = state_, connection = connection_,
                                   response = std::move(response)] {
                                    Read(state, connection, response);
                                  });
    }
  }
  void Blocked() override { state_->member_blocked = true; }

 private:
  std::shared_ptr<WatchState> state_;
  uint64_t connection_;
};

void CheckHealth(const std::shared_ptr<WatchState>& state, uint64_t connection) {
  World* world = state->client->world();
  world->queue().After(kWatchHealthCheckUs, [state, connection, world] {
    if (!*state->client_alive || state->stopped || connection != state->connection) return;
    Process& process = world->process(state->member);
    if (process.up() && process.generation == state->generation) {
      CheckHealth(state, connection);
      return;
    }
    // The stream broke with its member: go on through another one.
    state->client->MoveOn(state->member);
    ++state->connection;
    state->in_flight = 0;
  state->in_flight_bytes = 0;
    state->client->AfterOnClient(kReconnectDelayUs, [state] { Connect(state); });
  });
}

void Connect(const std::shared_ptr<WatchState>& state) {
  if (state->stopped || !*state->client_alive) return;
  SimClient* client = state->client;
  World* world = client->world();
  NodeId target = client->Target();
  uint64_t connection = ++state->connection;
  state->in_flight = 0;
  state->in_flight_bytes = 0;
  state->member_blocked = false;
  world->queue().After(client->Latency(), [state, target, connection, world] {
    if (state->stopped || !*state->client_alive || connection != state->connection) return;
    Process& process = world->process(target);
    if (!process.up()) {
      state->client->MoveOn(target);
      state->client->AfterOnClient(kReconnectDelayUs, [state] { Connect(state); });
      return;
    }
    state->member = target;
    state->generation = process.generation;
    world->RunOn(process, [state, connection, &process] {
      if (connection != state->connection || state->stopped) return;
      auto sink = std::make_shared<SimWatchSink>(state, connection);
      state->stream = process.kv->watch_streams().Open(sink, std::nullopt);
      etcdserverpb::WatchCreateRequest create = state->create;
      // Resume after what was delivered: nothing lost, nothing twice.
      create.set_start_revision(state->progress.resume_revision());
      process.kv->watch_streams().Create(state->stream, create);
    });
    CheckHealth(state, connection);
  });
}

class SimWatcher final : public client::Watcher {
 public:
  explicit SimWatcher(std::shared_ptr<WatchState> state) : state_(std::move(state)) {}
  ~SimWatcher() override { Stop(); }
  void Stop() override {
    if (state_->stopped) return;
    state_->stopped = true;
    if (!*state_->client_alive || state_->member == 0) return;
    World* world = state_->client->world();
    Process& process = world->process(state_->member);
    if (process.up() && process.generation == state_->generation) {
      world->RunOn(process, [&process, stream = state_->stream] {
        process.kv->watch_streams().Close(stream);
      });
    }
  }
  int64_t last_revision() const override { return state_->progress.last_revision(); }

 private:
  std::shared_ptr<WatchState> state_;
};

class SimKeepAlive final : public client::KeepAlive {
 public:
  struct State {
    bool stopped = false;
    int64_t ttl = 0;
  };
  explicit SimKeepAlive(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~SimKeepAlive() override { Stop(); }
  void Stop() override { state_->stopped = true; }
  int64_t ttl() const override { return state_->ttl; }

 private:
  std::shared_ptr<State> state_;
};

void Renew(SimClient* client, std::shared_ptr<SimKeepAlive::State> state, int64_t id,
           int64_t ttl_seconds, Micros delay_us) {
  client->AfterOnClient(delay_us, [client, state, id, ttl_seconds] {
    if (state->stopped) return;
    kvpb::Request request;
    request.mutable_lease_time_to_live()->set_id(id);
    Micros timeout_us = client->options().request_timeout_us;
    Micros deadline_us = client->world()->queue().now_us() + timeout_us;
    auto answered = std::make_shared<bool>(false);
    auto next = [client, state, id, ttl_seconds, answered](bool ok) {
      if (*answered) return;
      *answered = true;
      auto period = client::KeepAlivePeriod(ttl_seconds, ok);
      Renew(client, state, id, ttl_seconds, period.count() * 1000);
    };
    client->Send(std::move(request), SimClient::Mode::kKeepAlive, deadline_us,
                 [state, next](absl::StatusOr<kvpb::Response> answer) {
                   if (answer.ok()) {
                     state->ttl = answer->lease_time_to_live().ttl();
                     if (state->ttl <= 0) {
                       state->stopped = true;  // the lease is gone
                       return;
                     }
                   }
                   next(answer.ok());
                 });
    client->world()->queue().After(timeout_us, [next] { next(false); });
  });
}

}  // namespace

std::unique_ptr<client::Watcher> SimClient::Watch(
    etcdserverpb::WatchCreateRequest create,
    std::function<void(const etcdserverpb::WatchResponse&)> on_response) {
  auto state = std::make_shared<WatchState>();
  state->client = this;
  state->client_alive = alive_;
  state->progress = client::WatchProgress(create.start_revision());
  state->create = std::move(create);
  state->on_response = std::move(on_response);
  auto watcher = std::make_unique<SimWatcher>(state);
  if (!Enter().ok()) {
    state->stopped = true;
    return watcher;
  }
  Connect(state);
  AwaitSignal(state->created, world_->queue().now_us() + options_.dial_timeout_us);
  return watcher;
}

std::unique_ptr<client::KeepAlive> SimClient::KeepAliveForever(int64_t id, int64_t ttl_seconds) {
  auto state = std::make_shared<SimKeepAlive::State>();
  state->ttl = ttl_seconds;
  // The first renewal goes at once, as the gRPC client's does.
  Renew(this, state, id, ttl_seconds, 0);
  return std::make_unique<SimKeepAlive>(state);
}

void SimClient::AwaitSignal(const std::shared_ptr<Signal>& signal, Micros deadline_us) {
  signal->notify = [this] { WakeProgram(); };
  Micros now_us = world_->queue().now_us();
  if (!signal->set && now_us < deadline_us) {
    AfterOnClient(deadline_us - now_us, [this] { program_->Resume(); });
  }
  while (!signal->set && world_->queue().now_us() < deadline_us) program_->Block();
  signal->notify = nullptr;
}

}  // namespace etc::sim
