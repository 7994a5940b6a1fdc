// A linearizable map of registers: the application state machine the
// simulator replicates until the real key tree (kv/) takes its place.
//
//   command = RegisterMachine::Put("x", "1")      -> result "ok"
//   command = RegisterMachine::Cas("x", "1", "2") -> result "ok" or "fail"
//   query   = "x"                                  -> "1<value>" or "0" if absent
#ifndef ETC_SIM_REGISTER_MACHINE_H_
#define ETC_SIM_REGISTER_MACHINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "member/interfaces.h"

namespace etc::sim {

class RegisterMachine : public member::StateMachine {
 public:
  // `attempt_tag` names the client attempt (see set_effect_observer).
  static std::string Put(const std::string& key, const std::string& value,
                         uint64_t attempt_tag = 0);
  // `expected` nullopt: succeed only if the key is absent.
  static std::string Cas(const std::string& key, const std::optional<std::string>& expected,
                         const std::string& value, uint64_t attempt_tag = 0);
  // Decodes a query answer into the value read (nullopt: absent).
  static absl::StatusOr<std::optional<std::string>> DecodeRead(std::string_view answer);

  std::string Apply(uint64_t index, std::string_view command) override;
  absl::StatusOr<std::string> Query(std::string_view key) const override;
  std::string Snapshot() const override;
  absl::Status Restore(std::string_view data) override;

  const std::map<std::string, std::string>& values() const { return values_; }
  // Called with the attempt tag of every command that changes the state.
  void set_effect_observer(std::function<void(uint64_t attempt_tag)> observer) {
    effect_observer_ = std::move(observer);
  }

 private:
  std::map<std::string, std::string> values_;
  std::function<void(uint64_t)> effect_observer_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_REGISTER_MACHINE_H_
