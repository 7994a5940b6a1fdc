// The three things a member needs from its host: a way to send messages, a
// durable log store, and the application state machine. The simulator
// implements the first two with simulated latency and faults; the server with
// sockets and a write-ahead log. Neither the member nor the Raft core ever
// does I/O itself.
#ifndef ETC_MEMBER_INTERFACES_H_
#define ETC_MEMBER_INTERFACES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/raftpb.pb.h"

namespace etc::member {

class Transport {
 public:
  virtual ~Transport() = default;
  // Best effort: the message may be lost, delayed, duplicated or reordered.
  // A MSG_SNAP arrives with the snapshot's metadata only (Raft keeps no
  // snapshot data): the transport attaches the data, from
  // LogStore::LoadSnapshot, before it leaves, or drops the message if the
  // store no longer has that snapshot (the leader sends a newer one later).
  virtual void Send(raftpb::Message message) = 0;
  // The messages one Ready lets go, in order. A transport may hand each
  // peer's share to the network as one batch, with one wake of whatever
  // sends it rather than one per message.
  virtual void SendAll(std::vector<raftpb::Message> messages) {
    for (raftpb::Message& message : messages) Send(std::move(message));
  }
};

// One Ready's persistence obligations, applied in this order: the snapshot,
// then the entries (replacing every persisted entry from entries[0].index()
// on), then the hard state. They become durable together.
struct PersistRequest {
  std::shared_ptr<const raftpb::Snapshot> snapshot;
  std::vector<raftpb::Entry> entries;
  std::optional<raftpb::HardState> hard_state;
  // False when only the commit index changed: a crash may lose it. A
  // synced request makes every request before it durable too.
  bool must_sync = true;
  // Repair of damaged storage finished (raft::Ready::repair_finished):
  // once the rest is durable, the store records durably that the data is
  // whole again, before it reports the request persisted.
  bool repair_finished = false;
};

class LogStore {
 public:
  virtual ~LogStore() = default;
  // Starts persisting `request`. The host calls Member::OnPersisted(token)
  // once it is durable; until then the member sends none of the messages
  // that depend on it. A crash before that may lose the request entirely
  // (or, for a torn write, leave a prefix of its entries).
  virtual void Persist(PersistRequest request, uint64_t token) = 0;
  // Durably stores a snapshot the application made (atomically: a crash
  // leaves either the old or the new snapshot). It may finish later, in
  // the background: nothing waits for it, and nothing depends on it but
  // the CompactLog calls after it.
  virtual void SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) = 0;
  // Drops persisted entries up to `index` once a saved snapshot covers
  // them (it may do so later, after the SaveSnapshot before it finished).
  virtual void CompactLog(uint64_t index) = 0;
  // The snapshot with this metadata's index and term, with its data, as
  // given to SaveSnapshot or to Persist (for the transport: see
  // Transport::Send). It may read a file of hundreds of megabytes, so it
  // must be safe to call from any thread, off the member's. kNotFound once
  // newer snapshots replaced it.
  virtual absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) = 0;
  // The disk is (nearly) full: the member raises the NOSPACE alarm, which
  // stops the writes that would grow the log, until this is false again.
  // Safe to call from the member's thread at any time.
  virtual bool low_on_space() const { return false; }
};

// Where a state machine's long reads run (a snapshot's serialization, a
// hash of the whole key tree): over the state as it is at the call, off
// the thread that drives the member, which goes on applying meanwhile.
// The server runs them in a forked child process (the state as of the
// fork, copy-on-write); the simulator computes at once and hands the
// result over after a drawn delay, so that it interleaves with applies,
// configuration changes, restarts and crashes as the server's does.
class BackgroundRunner {
 public:
  using Done = std::function<void(absl::StatusOr<std::string>)>;
  virtual ~BackgroundRunner() = default;
  // Runs `compute` over the state as it is now, elsewhere, and calls
  // `done` with its result (or why it could not run) on the thread that
  // drives the member, or never, if the member is gone by then. `compute`
  // may run in another process: it must only read the state and return.
  // `size_hint_bytes`: about how large the result will be (0: small), so
  // a host copying it can reserve the room once.
  virtual void Run(std::function<std::string()> compute, size_t size_hint_bytes, Done done) = 0;
};

// The replicated state machine. Apply must be deterministic: every member
// applies the same commands in the same order and must end in the same state.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies a committed command and returns its result for the client.
  virtual std::string Apply(uint64_t index, std::string_view command) = 0;
  // Answers a read-only query against the current state.
  virtual absl::StatusOr<std::string> Query(std::string_view query) const = 0;
  // The same, for the member: the answer reflects the state at the call,
  // but a long one may be computed in the background (BackgroundRunner)
  // and reach `done` later, on the member's thread. The default answers at
  // once.
  using QueryDone = std::function<void(absl::StatusOr<std::string>)>;
  virtual void QueryAsync(std::string_view query, QueryDone done) { done(Query(query)); }
  virtual std::string Snapshot() const = 0;
  // Takes a snapshot of the state as it is now, possibly in the background
  // while later commands are applied: `done` gets `finish` applied to what
  // Snapshot() returns now (unset: the snapshot itself), or why it could
  // not be taken. `finish` runs where the snapshot is taken (in the
  // server, a child process), so that wrapping hundreds of megabytes costs
  // the member's thread nothing: it may use only what it captured. `done`
  // runs on the thread that drives the member (a host taking it elsewhere
  // posts the result there), or not at all if the member is gone by then.
  // The default takes it at once.
  using SnapshotFinish = std::function<std::string(std::string snapshot)>;
  using SnapshotDone = std::function<void(absl::StatusOr<std::string>)>;
  virtual void SnapshotAsync(SnapshotFinish finish, SnapshotDone done) {
    done(WrapSnapshot(finish, Snapshot()));
  }
  static std::string WrapSnapshot(const SnapshotFinish& finish, std::string snapshot) {
    return finish ? finish(std::move(snapshot)) : std::move(snapshot);
  }
  // Replaces the whole state; a malformed snapshot is an error.
  virtual absl::Status Restore(std::string_view data) = 0;
  // Whether Restore would accept `data`, changing nothing: a snapshot from a
  // peer is checked before it is persisted, so that no bytes on the wire
  // can leave a member with a snapshot it cannot restore. The default
  // accepts everything (for state machines whose Restore cannot fail).
  virtual absl::Status CheckSnapshot(std::string_view data) const { return absl::OkStatus(); }
};

}  // namespace etc::member

#endif  // ETC_MEMBER_INTERFACES_H_
