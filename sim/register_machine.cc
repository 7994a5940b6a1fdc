#include "sim/register_machine.h"

#include "sim/register.pb.h"

namespace etc::sim {

std::string RegisterMachine::Put(const std::string& key, const std::string& value,
                                 uint64_t attempt_tag) {
  simpb::RegisterCommand command;
  command.set_kind(simpb::RegisterCommand::PUT);
  command.set_key(key);
  command.set_value(value);
  command.set_attempt_tag(attempt_tag);
  return command.SerializeAsString();
}

std::string RegisterMachine::Cas(const std::string& key, const std::optional<std::string>& expected,
                                 const std::string& value, uint64_t attempt_tag) {
  simpb::RegisterCommand command;
  command.set_kind(simpb::RegisterCommand::CAS);
  command.set_key(key);
  command.set_value(value);
  command.set_attempt_tag(attempt_tag);
  command.set_expect_absent(!expected.has_value());
  if (expected.has_value()) command.set_expected(*expected);
  return command.SerializeAsString();
}

absl::StatusOr<std::optional<std::string>> RegisterMachine::DecodeRead(std::string_view answer) {
  if (answer == "0") return std::optional<std::string>();
  if (!answer.empty() && answer[0] == '1') return std::optional<std::string>(std::string(answer.substr(1)));
  return absl::InvalidArgumentError("malformed register read answer");
}

std::string RegisterMachine::Apply(uint64_t index, std::string_view bytes) {
  simpb::RegisterCommand command;
  if (!command.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return "malformed";
  switch (command.kind()) {
    case simpb::RegisterCommand::PUT:
      values_[command.key()] = command.value();
      if (effect_observer_) effect_observer_(command.attempt_tag());
      return "ok";
    case simpb::RegisterCommand::CAS: {
      auto it = values_.find(command.key());
      bool matches = command.expect_absent() ? it == values_.end()
                                             : it != values_.end() && it->second == command.expected();
      if (!matches) return "fail";
      values_[command.key()] = command.value();
      if (effect_observer_) effect_observer_(command.attempt_tag());
      return "ok";
    }
    default:
      return "malformed";
  }
}

absl::StatusOr<std::string> RegisterMachine::Query(std::string_view key) const {
  auto it = values_.find(std::string(key));
  if (it == values_.end()) return std::string("0");
  return "1" + it->second;
}

std::string RegisterMachine::Snapshot() const {
  simpb::RegisterSnapshot snapshot;
  for (const auto& [key, value] : values_) {
    simpb::RegisterSnapshot::Pair* pair = snapshot.add_pairs();
    pair->set_key(key);
    pair->set_value(value);
  }
  return snapshot.SerializeAsString();
}

absl::Status RegisterMachine::Restore(std::string_view data) {
  simpb::RegisterSnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::DataLossError("register snapshot does not parse");
  }
  values_.clear();
  for (const auto& pair : snapshot.pairs()) values_[pair.key()] = pair.value();
  return absl::OkStatus();
}

}  // namespace etc::sim
