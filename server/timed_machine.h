// The key tree as the server applies it: every apply's latency goes into
// the metrics (etcd_server_apply_duration_seconds); everything else is the
// machine's own, its background work included.
#ifndef ETC_SERVER_TIMED_MACHINE_H_
#define ETC_SERVER_TIMED_MACHINE_H_

#include <chrono>
#include <string>
#include <string_view>

#include "member/interfaces.h"
#include "server/metrics.h"

namespace etc::server {

class TimedMachine : public member::StateMachine {
 public:
  TimedMachine(member::StateMachine* machine, Metrics* metrics)
      : machine_(machine), metrics_(metrics) {}

  std::string Apply(uint64_t index, std::string_view command) override {
    auto start = std::chrono::steady_clock::now();
    std::string result = machine_->Apply(index, command);
    metrics_->apply_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return result;
  }
  // Every other call goes to the machine as it is, so its own choices
  // (what runs in the background) stand.
  absl::StatusOr<std::string> Query(std::string_view query) const override {
    return machine_->Query(query);
  }
  void QueryAsync(std::string_view query, QueryDone done) override {
    machine_->QueryAsync(query, std::move(done));
  }
  std::string Snapshot() const override { return machine_->Snapshot(); }
  void SnapshotAsync(SnapshotFinish finish, SnapshotDone done) override {
    machine_->SnapshotAsync(std::move(finish), std::move(done));
  }
  absl::Status Restore(std::string_view data) override { return machine_->Restore(data); }
  absl::Status CheckSnapshot(std::string_view data) const override {
    return machine_->CheckSnapshot(data);
  }

 private:
  member::StateMachine* machine_;
  Metrics* metrics_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_TIMED_MACHINE_H_
