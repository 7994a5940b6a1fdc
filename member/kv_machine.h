// The key tree as a member's replicated state machine: log entries are
// serialized kvpb.Requests, results serialized kvpb.Responses. The simulator
// and the server host the very same adapter, so the simulator's checkers
// see exactly what the server serves.
//
//   KvMachine machine;
//   auto member = Member::Start(config, durable, &transport, &store, &machine);
//   member->Write(request.SerializeAsString(), [](auto result) {
//     kvpb::Response response; response.ParseFromString(*result); ...
//   });
#ifndef ETC_MEMBER_KV_MACHINE_H_
#define ETC_MEMBER_KV_MACHINE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "kv/store.h"
#include "member/interfaces.h"

namespace etc::member {

class KvMachine : public StateMachine {
 public:
  explicit KvMachine(kv::StoreOptions options = {}) : options_(options), store_(options) {}

  // A command that does not parse is answered with an InvalidArgument
  // response (every member sees the same bytes, so all answer alike).
  std::string Apply(uint64_t index, std::string_view command) override;
  absl::StatusOr<std::string> Query(std::string_view query) const override;
  // A hash of the whole tree (HashKV) is computed on the background
  // runner, if there is one; every other query at once.
  void QueryAsync(std::string_view query, QueryDone done) override;
  std::string Snapshot() const override { return store_.Snapshot(); }
  // On the background runner, if there is one; else at once.
  void SnapshotAsync(SnapshotFinish finish, SnapshotDone done) override;
  absl::Status Restore(std::string_view data) override { return store_.Restore(data); }
  // Restores into a scratch key tree (the same validation, at the cost of
  // a second copy while it runs: snapshots from peers are rare).
  absl::Status CheckSnapshot(std::string_view data) const override;

  kv::Store& store() { return store_; }
  const kv::Store& store() const { return store_; }
  // Told about every applied request and its response (for checkers and
  // metrics; it must not call back into the machine).
  using ApplyObserver =
      std::function<void(uint64_t index, const kvpb::Request&, const kvpb::Response&)>;
  void set_apply_observer(ApplyObserver observer) { observer_ = std::move(observer); }
  // Where snapshots and whole-tree hashes are computed (null: at once, on
  // the member's thread). Must outlive the machine's use.
  void set_background_runner(BackgroundRunner* runner) { runner_ = runner; }

 private:
  kv::StoreOptions options_;
  kv::Store store_;
  ApplyObserver observer_;
  BackgroundRunner* runner_ = nullptr;
};

}  // namespace etc::member

#endif  // ETC_MEMBER_KV_MACHINE_H_
