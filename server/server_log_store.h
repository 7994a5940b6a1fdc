// The member's log store as the server runs it: the shared logic
// (member::DataDirLogStore, which the simulator runs too), its log writes
// made on the member's own thread and its snapshot files on a thread of
// their own.
//
// The member thread writes and syncs each Ready's obligations itself, after
// each step (WriteAndSync), as etcd's raft loop saves to its WAL: a writer
// thread of its own cost two thread hand-offs per Ready (wake the writer,
// wake the member with the result), and while the member waits for the
// sync, requests and messages gather into the next Ready, which is the
// batching that pays. A leader's appends leave before its own sync (they
// may), so its write and its followers' still overlap. Snapshot files can
// be hundreds of megabytes: the snapshot thread writes the member's own, so
// that neither the member nor the log waits for them. A snapshot a follower
// receives from its leader is part of a Ready and is written here, on the
// member thread, as etcd's raft loop saves it: that follower is silent
// meanwhile (the leader's quorum does not need it; once it is done, the
// leader's queued messages are stepped before the catch-up ticks, so it
// does not time out on its leader). A slow sync delays a leader's
// heartbeats as it does etcd's.
//
//   ServerLogStore store(dir, [&host](uint64_t token) { /* OnPersisted, posted */ }, metrics);
//   Member::Start(..., &store.store(), ...);
//   ... on the member thread, after each step: store.WriteAndSync();
//   store.Stop();   // after the member thread stopped: writes what is queued
#ifndef ETC_SERVER_SERVER_LOG_STORE_H_
#define ETC_SERVER_SERVER_LOG_STORE_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "member/data_dir_log_store.h"
#include "server/metrics.h"
#include "storage/data_dir.h"

namespace etc::server {

class ServerLogStore {
 public:
  // `persisted` runs inside WriteAndSync for each durable request, in
  // order; `metrics` (may be null) gets the fsync latencies. Below
  // `reserve_bytes` free on the disk the member raises NOSPACE.
  ServerLogStore(storage::DataDir* dir, std::function<void(uint64_t token)> persisted,
                 Metrics* metrics, uint64_t reserve_bytes);
  ~ServerLogStore() { Stop(); }
  ServerLogStore(const ServerLogStore&) = delete;
  ServerLogStore& operator=(const ServerLogStore&) = delete;

  member::DataDirLogStore& store() { return store_; }
  // Writes every queued request and syncs them (one fsync for all), on the
  // calling thread; does nothing if none is queued. A disk found full is
  // tried again at most every 200 ms (space comes back when someone frees
  // it; meanwhile the member raised NOSPACE, so little is queued).
  void WriteAndSync();
  // Writes what is queued, then stops the snapshot thread (call it after
  // the member thread stopped: nothing more will be queued).
  void Stop();

 private:
  void Snapshot();

  member::DataDirLogStore store_;
  Metrics* metrics_;
  // When a write last found the disk full (steady clock, ms).
  int64_t out_of_space_at_ms_ = 0;
  std::thread snapshotter_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_SERVER_LOG_STORE_H_
