// Linearizable-by-construction client histories, for testing and measuring
// the linearizability checker: operations run one at a time against real
// registers (the true order), then each gets an interval around its
// execution point that overlaps its neighbours', as concurrent clients'
// operations would.
//
//   // `draw(lo, hi)` returns an integer in [lo, hi): a RapidCheck generator
//   // in the property test, a seeded sim::Random in the benchmark.
//   auto history = GenerateLinearizableHistory(draw, /*clients=*/16,
//                                              /*operations=*/10'000, /*keys=*/8,
//                                              /*with_unknown=*/true);
#ifndef ETC_SIM_HISTORY_GENERATOR_H_
#define ETC_SIM_HISTORY_GENERATOR_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/linearizability.h"

namespace etc::sim::lincheck {

template <typename Draw>
std::vector<Operation> GenerateLinearizableHistory(Draw&& draw, int clients, int operations,
                                                   int keys, bool with_unknown) {
  std::map<std::string, std::optional<std::string>> registers;
  std::vector<Operation> history;
  int64_t now = 0;
  // Each client's last return time: its next operation starts after it.
  std::vector<int64_t> client_free(static_cast<size_t>(clients), 0);
  for (int i = 0; i < operations; ++i) {
    int client = static_cast<int>(draw(0, clients));
    Operation op;
    op.client = client;
    op.key = absl::StrCat("/kv/k", draw(0, keys));
    now += 2;
    int64_t execute = now;
    op.invoke_time = std::max<int64_t>(client_free[client] + 1, execute - draw(0, 20));
    if (op.invoke_time > execute) {
      // The client was busy: run this one a little later.
      execute = op.invoke_time;
      now = execute;
    }
    op.return_time = execute + draw(0, 20) + 1;
    client_free[client] = op.return_time;
    std::optional<std::string>& value = registers[op.key];
    int64_t kind = draw(0, 100);
    if (kind < 50) {
      op.kind = OpKind::kRead;
      op.read_result = value;
    } else if (kind < 85) {
      op.kind = OpKind::kWrite;
      op.value = absl::StrCat("w", i);
      value = op.value;
    } else if (kind < 97) {
      op.kind = OpKind::kCas;
      op.value = absl::StrCat("c", i);
      op.expected = draw(0, 2) == 0 ? value : std::optional<std::string>("nope");
      op.cas_succeeded = op.expected == value;
      if (op.cas_succeeded) value = op.value;
    } else {
      // The clients' v2 recursive delete empties the register keys.
      op.kind = OpKind::kDelete;
      value = std::nullopt;
    }
    // A write whose client never heard back: it did take effect, but the
    // checker must find that out on its own.
    if (with_unknown && op.kind != OpKind::kRead && draw(0, 10) == 0) {
      op.outcome = Outcome::kUnknown;
    }
    history.push_back(op);
  }
  return history;
}

}  // namespace etc::sim::lincheck

#endif  // ETC_SIM_HISTORY_GENERATOR_H_
