// What the simulated clients of sim/testing.h did, as histories for the
// linearizability checker (sim/linearizability.h). Every KV call is
// recorded as it was invoked and answered; those the register model can
// express become per-key operations:
//   Range of one key (linearizable, current revision)  -> read
//   Range of many keys (linearizable, current revision, whole: no limit
//        cut it short, no filter)                      -> a read of every
//        key the history names inside it (absent if not returned)
//   Put (with or without a lease)                      -> write
//   DeleteRange                                        -> delete, of every
//        key the history names inside the range
//   Txn: If(the key's value == v, or the key absent) Then(Put the same key)
//        [Else(Get it)]                                -> compare-and-set
//   any other Txn: the branch that ran, op by op (both branches' puts and
//        deletes, each maybe-applied, when the outcome is unknown)
// A range is checked key by key: each key is a register on its own, and a
// request over many keys is, for each, the same operation at the same
// point (a necessary condition of the whole being linearizable).
// A key attached to a lease vanishes when the lease is revoked or expires:
// the cluster reports it (LeaseDeleted), and it becomes a delete that
// happened between the first put that attached the key to a lease (the
// attachment was applied before the revoke, so the revoke committed after
// that put was invoked) and the revoke's first apply on any member (it
// committed before).
// A key written with ignore_value or ignore_lease (what it then holds
// depends on what it held) is left out of the check.
// An answer that promises no effect (kUnavailable; kResourceExhausted, a
// refusal for space or load) drops the operation; no
// answer (a timeout) makes it unknown: it may take effect at any later
// time, or never.
#ifndef ETC_SIM_CLIENT_HISTORY_H_
#define ETC_SIM_CLIENT_HISTORY_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kv/etcdserverpb/rpc.pb.h"
#include "sim/linearizability.h"

namespace etc::sim {

class ClientHistory {
 public:
  // A call begins: returns its handle for Finish.
  size_t Invoke(int client, etcdserverpb::RequestOp request);
  // Its answer (an error: the call failed; kUnavailable and
  // kResourceExhausted promise that it had no effect, any other error
  // leaves the outcome unknown).
  void Finish(size_t call, const absl::StatusOr<etcdserverpb::ResponseOp>& answer);
  // A lease was revoked (by a client or on expiry) and took `keys` with it:
  // called when the revoke is first applied by any member.
  void LeaseDeleted(const std::vector<std::string>& keys);

  // The per-key operations the checker can judge, with invoke and return
  // times in call order.
  std::vector<lincheck::Operation> Operations() const;
  size_t calls() const { return calls_.size(); }
  size_t unknown() const;

 private:
  struct Call {
    int client = 0;
    etcdserverpb::RequestOp request;
    bool finished = false;
    bool no_effect = false;  // certainly not applied
    bool known = false;      // answered: `response` holds the answer
    etcdserverpb::ResponseOp response;
    int64_t invoke_time = 0;
    int64_t return_time = 0;
  };
  void Expand(const Call& call, std::vector<lincheck::Operation>* out) const;
  void ExpandTxn(const Call& call, lincheck::Operation base,
                 std::vector<lincheck::Operation>* out) const;
  // One op of a request (response: null when the outcome is unknown).
  void ExpandOp(const etcdserverpb::RequestOp& request, const etcdserverpb::ResponseOp* response,
                lincheck::Operation base, std::vector<lincheck::Operation>* out) const;
  // The keys the history names, inside [key, range_end).
  std::vector<std::string> KeysIn(const std::string& key, const std::string& range_end) const;

  std::vector<Call> calls_;
  int64_t logical_time_ = 0;
  // Every single key a request named (a put's, a one-key read's or
  // delete's, a compare's): what a range request is expanded to.
  std::set<std::string> named_keys_;
  // Keys written with ignore_value or ignore_lease: the model cannot follow.
  std::set<std::string> untracked_keys_;
  // For each key a put attached to a lease, when the first such put was
  // invoked: a lease's delete of the key cannot have committed earlier.
  std::map<std::string, int64_t> first_leased_put_;
  // The deletes LeaseDeleted reported.
  std::vector<lincheck::Operation> lease_deletes_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_CLIENT_HISTORY_H_
