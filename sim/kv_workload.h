// The simulator's register clients: concurrent clients issue etcd requests
// on a few keys (sim/registers.h): v3 linearizable ranges, puts, and
// compare-and-sets written as etcd clients write them, and, interleaved on
// the same keys, etcd v2 requests (sim/v2_requests.h: gets, sets, creates,
// compare-and-swaps on prevValue and prevIndex, listings and recursive
// deletes of the registers' directory), through the member's own request
// path (KvMember::Write/Read: validation, deadlines), retry certain failures
// on other members, and record invoke/return times. At the end the history
// is checked for linearizability, key by key; a request over every register
// (a listing, a recursive delete) is one history entry per key.
//
// Checks: every client attempt answered kUnavailable (a promise that it
// never takes effect) never changes the state; during the liveness phase
// every operation completes within the client timeout; the history is
// linearizable, and a key whose search gave up (Verdict::kUnknown) fails
// the seed: a checker that cannot decide has not shown anything. An
// operation whose client got no answer is resolved by what the simulator
// saw applied (see CheckHistory), so the search stays small.
#ifndef ETC_SIM_KV_WORKLOAD_H_
#define ETC_SIM_KV_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kv/kvpb/kvpb.pb.h"
#include "sim/auth_workload.h"
#include "sim/linearizability.h"
#include "sim/random.h"
#include "sim/registers.h"
#include "sim/v2_requests.h"
#include "sim/world.h"

namespace etc::sim {

struct KvWorkloadStats {
  size_t operations = 0;
  size_t operations_ok = 0;
  size_t operations_unknown = 0;
  // Unanswered operations the simulator saw take effect (and placed by
  // their first apply).
  size_t unknown_resolved = 0;
};

class KvWorkload {
 public:
  // `random` drives the clients; `latency` the client-to-member network;
  // clients log in through `auth`.
  KvWorkload(World* world, AuthWorkload* auth, Random random, Random latency);
  // Starts the clients.
  void Start();
  // When the liveness phase began (operations invoked after it plus a
  // grace period must complete).
  void set_liveness_deadline_us(Micros deadline_us) { liveness_deadline_us_ = deadline_us; }
  // Checks the history; on a violation, `timeline_html` gets the
  // offending key's timeline.
  void CheckHistory(std::string* timeline_html);
  KvWorkloadStats stats() const;

 private:
  struct Client {
    int id = 0;
    Random random{0};
    bool waiting = false;
    // The request in flight: its history entries (op .. op + ops - 1: one
    // per register key for a listing or recursive delete), its attempt
    // number (retries after a certain failure reuse the entries), its v2
    // shape (none: a v3 request) and the index a v2 CAS on prevIndex
    // compares.
    size_t op = 0;
    size_t ops = 1;
    uint64_t attempt = 0;
    std::optional<v2::Shape> v2;
    int64_t prev_index = 0;
    Micros deadline_us = 0;
    uint64_t writes = 0;
    std::map<std::string, SeenValue> last_seen;
    AuthWorkload::Session session;
  };

  Micros ClientLatency() { return 100 + static_cast<Micros>(latency_.Exponential(300)); }
  void IssueNext(Client& client);
  lincheck::Operation DrawV3(Client& client);
  // Records `ops` (the request's history entries) and sends the request.
  void Invoke(Client& client, std::vector<lincheck::Operation> ops);
  void SendAttempt(Client& client);
  kvpb::Request RequestFor(const Client& client, uint64_t tag) const;
  std::string DescribeRequest(const Client& client) const;
  void OnResponse(Client& client, uint64_t attempt, absl::StatusOr<kvpb::Response> result);
  void OnTimeout(Client& client, uint64_t attempt);
  void Finish(Client& client);
  void OnApply(Process& process, const kvpb::Request& request, const kvpb::Response& response);
  static uint64_t AttemptTag(size_t op, uint64_t attempt);
  static size_t OpOf(uint64_t tag);
  static kvpb::Request V3RequestFor(const lincheck::Operation& op);
  void FailCertainFailure(uint64_t tag, NodeId member);

  World* world_;
  AuthWorkload* auth_;
  Random random_;
  Random latency_;
  std::vector<Client> clients_;
  std::vector<lincheck::Operation> history_;
  // Which history entries are real operations (unanswered reads are not).
  std::vector<bool> recorded_;
  // Per history entry: the first entry of its request, which names the
  // request in its attempts' tags and in effect_time_ (all entries of a
  // request take effect together, when the member applies it).
  std::vector<size_t> request_of_;
  // Client attempts (see AttemptTag) answered Unavailable, which promises
  // they never take effect, and attempts that did take effect somewhere.
  std::set<uint64_t> certainly_failed_;
  // Every attempt's tag (a request's header id, which the member keeps).
  std::set<uint64_t> issued_;
  std::set<uint64_t> took_effect_;
  int64_t logical_time_ = 0;
  // Per request (its first history entry): the logical time its effect was
  // first applied.
  std::map<size_t, int64_t> effect_time_;
  size_t resolved_unknown_ = 0;
  Micros liveness_deadline_us_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_KV_WORKLOAD_H_
