// What the simulated clients of sim/testing.h did, as histories for the
// linearizability checker (sim/linearizability.h). Every KV call is
// recorded as it was invoked and answered; those the register model can
// express become per-key operations:
//   Range of one key (linearizable, current revision)  -> read
//   Put without a lease                                -> write
//   DeleteRange of one key                             -> delete
//   Txn: If(the key's value == v, or the key absent) Then(Put the same key)
//        [Else(Get it)]                                -> compare-and-set
//   any other Txn: the branch that ran, op by op (both branches' puts and
//        deletes, each maybe-applied, when the outcome is unknown)
// A key the model cannot follow is left out of the check: one written
// with a lease (it may expire), or inside a range a request deleted.
// An answer that promises no effect (kUnavailable; kResourceExhausted, a
// refusal for space or load) drops the operation; no
// answer (a timeout) makes it unknown: it may take effect at any later
// time, or never.
#ifndef ETC_SIM_CLIENT_HISTORY_H_
#define ETC_SIM_CLIENT_HISTORY_H_

#include <cstdint>
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
  bool Untracked(const std::string& key) const;

  std::vector<Call> calls_;
  int64_t logical_time_ = 0;
  // Keys and ranges the register model cannot follow.
  std::set<std::string> leased_keys_;
  std::vector<std::pair<std::string, std::string>> deleted_ranges_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_CLIENT_HISTORY_H_
