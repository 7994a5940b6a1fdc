// etc-bench --workload=lease-keepalive: each client (a thread) grants a
// lease of 60 s and renews it over a keep-alive stream of its own, one
// renewal at a time; a request is a renewal's round trip.
//
//   std::vector<Result> results(options.clients);
//   RunKeepAlives(options, channels, more, &results);  // blocks until `more` says stop
#ifndef ETC_CLIENT_BENCH_LEASE_KEEPALIVE_H_
#define ETC_CLIENT_BENCH_LEASE_KEEPALIVE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "client/bench_common.h"

namespace etc::bench {

// Runs options.clients clients over `channels` in turn, client c recording
// into (*results)[c]; `more` hands out the next renewal's number, or says
// the run is over. A client whose grant fails, or whose stream breaks,
// records the error and stops. Blocks until every client has stopped.
void RunKeepAlives(const Options& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const std::function<bool(int64_t*)>& more, std::vector<Result>* results);

}  // namespace etc::bench

#endif  // ETC_CLIENT_BENCH_LEASE_KEEPALIVE_H_
