// The register clients' etcd v2 requests (kv/tree.h): how a register
// operation is asked as a v2 keys request on the register keys
// (sim/registers.h), and how the answer reads back in the register model's
// terms, so that v2 requests go into the same per-key history as the v3
// ranges, puts and txns on the same keys:
//
//   kGet            TreeGet of /kv/kI                 a read (100: absent)
//   kSet            TreeSet SET                       a write
//   kCreate         TreeSet CREATE (prevExist=false)  a CAS from absent
//   kCasValue       COMPARE_AND_SWAP on prev_value    a CAS from that value
//   kCasIndex       COMPARE_AND_SWAP on prev_index    a CAS from the value the
//                                                     client saw at that index
//   kList           TreeGet of /kv (recursive or not) a read of every register
//   kDeleteAll      recursive TreeDelete of /kv       a delete of every register
//
// A CAS on prev_index I is, in the register model, a CAS expecting the
// value V the client saw with modified index I. That is sound because every
// written value is unique per write (client id and counter) and a write
// takes effect at most once: the version written at revision I is the only
// one that ever holds V, so "the key's modified index is I" and "the key
// holds V" are the same condition.
//
// A listing or a recursive delete is one request over every register key,
// recorded as one history entry per key, all with the request's invoke and
// return times. Splitting it is sound for a per-key checker: each key's
// value was current (or deleted) at the one moment the request took
// effect, which lies between those times.
//
//   v2::Call call = v2::DrawCall(random, registers, client.last_seen, value);
//   kvpb::Request request = v2::RequestFor(call.shape, call.ops[0], call.prev_index);
//   absl::Status read = v2::ReadAnswer(call.shape, response, ops, &client.last_seen);
#ifndef ETC_SIM_V2_REQUESTS_H_
#define ETC_SIM_V2_REQUESTS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kv/kvpb/kvpb.pb.h"
#include "sim/linearizability.h"
#include "sim/random.h"
#include "sim/registers.h"

namespace etc::sim::v2 {

enum class Shape { kGet, kList, kListRecursive, kSet, kCreate, kCasValue, kCasIndex, kDeleteAll };

const char* ShapeName(Shape shape);

// A v2 request a client draws: its shape, the history entries it adds (key,
// kind, value, expected; the caller sets the client and the times), and for
// kCasIndex the index it compares.
struct Call {
  Shape shape = Shape::kGet;
  std::vector<lincheck::Operation> ops;
  int64_t prev_index = 0;
};

// Draws a request on `registers` register keys; a write or CAS writes
// `new_value`, a CAS expects what `last_seen` says the client saw last.
Call DrawCall(Random& random, int registers, const std::map<std::string, SeenValue>& last_seen,
              const std::string& new_value);

// The request (header aside) for `first`, the first of its history entries.
kvpb::Request RequestFor(Shape shape, const lincheck::Operation& first, int64_t prev_index);

// Reads the answer to a request of `shape` into its history entries `ops`
// (results; a recursive delete that found nothing becomes reads of absent
// keys) and into what the client saw. A failure is an answer the request
// cannot get from a correct key tree (another v2 error, a node that is no
// register key, a listing without one of the keys' ...): a bug.
absl::Status ReadAnswer(Shape shape, const kvpb::Response& response,
                        std::span<lincheck::Operation> ops,
                        std::map<std::string, SeenValue>* last_seen);

}  // namespace etc::sim::v2

#endif  // ETC_SIM_V2_REQUESTS_H_
