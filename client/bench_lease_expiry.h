// etc-bench --workload=lease-expiry: a mass lease expiry under a steady
// put load, to show that a cluster flooded with revocations does not collapse.
//
//   etc-bench --endpoints=A,B,C --workload=lease-expiry --target=leader
//     --leases=100000 --lease-ttl=45 --lease-keys=10000 --clients=16 --after=10s --duration=400s
//
// First, with no other load: --leases leases are granted with --lease-ttl
// seconds, --lease-keys of them (spread evenly) get a key under
// /overload/lease/, and then every lease is renewed once in a burst over
// keep-alive streams and never again, so all of them expire within about
// the burst's length of each other (the grants take longer than that: the
// TTL must exceed them, or the first leases expire before the renewal).
// Then --clients chains put without pause (--target=leader: to the
// leader), and once a second the run counts the leases left (LeaseLeases,
// on a member that does not lead, so the count does not run on the
// leader's thread) and asks every member its leader and Raft term; a watch
// counts the keys' deletions. The put load goes on until no lease is left
// and --after more (or until --duration after the renewal).
//
// Output: one JSON line per second since the renewal, {"second":...}
// (puts, errors, p50 and p99 of the puts completed in that second, leases
// left at its end, keys deleted in it, the highest term, the leader, the
// phase), and a summary line {"workload":"lease-expiry",...}. Phases:
// before (until the first renewed lease's TTL is up), expiry (until no
// lease is left), after.
#ifndef ETC_CLIENT_BENCH_LEASE_EXPIRY_H_
#define ETC_CLIENT_BENCH_LEASE_EXPIRY_H_

#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "client/bench_common.h"

namespace etc::bench {

// `channels` lead to the targets (the leader with --target=leader); the
// monitoring goes to options.endpoints. Returns the process's exit code.
int RunLeaseExpiry(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const std::vector<std::string>& targets);

}  // namespace etc::bench

#endif  // ETC_CLIENT_BENCH_LEASE_EXPIRY_H_
