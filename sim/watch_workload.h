// Watch clients in the simulator: each opens a stream on a member
// (member::WatchStreams, as the server's Watch service does), watches the
// register keys, one of them, or the lease keys (some with prev_kv or a
// filter, some from a past revision), reads its stream at its own pace
// (stalling now and then, so the member's backpressure and the key tree's
// catch-up from history run), asks for progress, and when its member dies
// or leaves the cluster resumes on another one from the revision after the
// last it saw, as etcd's clients do.
//
// Checks, against the revisions as the first member to apply each one
// recorded them (Keyspace changes, not the watch code):
//  - every watcher sees each matching event of each revision once, in
//    revision order, with no gap, across failovers; only a cancellation
//    with a compact revision excuses the revisions below it (etcd #18089,
//    #15271);
//  - a progress notification never claims a revision whose matching events
//    the watcher has not seen (etcd #15220);
//  - prev_kv, when sent, is the key's previous value;
//  - a stream never holds more than the member's bound, however long its
//    client stalls;
//  - after healing, a watcher on a running member has seen, by the end,
//    everything that member had applied half a second before.
#ifndef ETC_SIM_WATCH_WORKLOAD_H_
#define ETC_SIM_WATCH_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv/kvpb/kvpb.pb.h"
#include "member/watch_streams.h"
#include "sim/auth_workload.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {

struct WatchWorkloadStats {
  uint64_t events = 0;
  uint64_t progress = 0;
  uint64_t failovers = 0;
  uint64_t compacted = 0;
  // The most responses any stream held at once.
  size_t max_pending = 0;
};

class WatchWorkload {
 public:
  // Clients log in through `auth`.
  WatchWorkload(World* world, AuthWorkload* auth, Random random);
  // Starts `clients` watch clients; stalls end by `stalls_end_us`; the run
  // ends at `end_us`.
  void Start(int clients, Micros stalls_end_us, Micros end_us);
  // At the end of the run: the liveness check.
  void CheckEnd();
  const WatchWorkloadStats& stats() const { return stats_; }

 private:
  // The revision's changes as the first member to apply it recorded them.
  struct Change {
    std::string key;
    bool deleted = false;
    std::string value;
    std::optional<std::string> previous;
  };
  // A watcher as its client sees it, across the streams it moves through.
  struct Watcher {
    std::string key;
    std::string range_end;
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    // The next revision whose events it must see; 0 until the first
    // created response says where "now" was.
    int64_t next_revision = 0;
    // Its id on the current stream (-1: not created there yet).
    int64_t local_id = -1;
    bool creating = false;
  };
  class Sink;
  struct Client {
    int id = 0;
    Random random{0};
    std::vector<Watcher> watchers;
    // The current stream: its member, that member's incarnation, the sink.
    NodeId member = 0;
    uint64_t generation = 0;
    member::WatchStreams::StreamId stream = 0;
    std::shared_ptr<Sink> sink;
    Micros stalled_until_us = 0;
    Micros period_us = 0;
    // Shortly before the end: the stream's member and its revision then,
    // which the watchers must have seen by the end.
    NodeId mark_member = 0;
    uint64_t mark_generation = 0;
    int64_t mark_revision = 0;
    AuthWorkload::Session session;
    // A create was refused for the stream's token: close it and reconnect.
    bool reopen = false;
  };

  void OnApply(Process& process);
  void Mark();
  void Connect(Client& client);
  void CreateOn(Client& client, size_t watcher);
  void Drain(Client& client);
  void Check(Client& client, const etcdserverpb::WatchResponse& response);
  // The answer to a create: the watcher's id, or its refusal.
  void OnCreated(Client& client, const etcdserverpb::WatchResponse& response);
  void CheckEvents(Client& client, Watcher& watcher, const etcdserverpb::WatchResponse& response);
  // No matching event in [from, through]; the checker's name on failure.
  bool NoneBetween(const Watcher& watcher, int64_t from, int64_t through, const char* what,
                   Client& client);
  bool Matches(const Watcher& watcher, const Change& change) const;
  bool StreamAlive(Client& client);
  Watcher* ByLocalId(Client& client, int64_t local_id);

  World* world_;
  AuthWorkload* auth_;
  Random random_;
  std::vector<Client> clients_;
  // Revision -> its changes, from the first member to reach it.
  std::map<int64_t, std::vector<Change>> revisions_;
  int64_t recorded_through_ = 0;
  Micros stalls_end_us_ = 0;
  WatchWorkloadStats stats_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_WATCH_WORKLOAD_H_
