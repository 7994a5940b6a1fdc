// Code a user of etc writes, against client::ClientInterface only: the
// same functions run against a real cluster (client::Client) and, in the
// tests beside this file, on a simulated one (sim/testing.h).
//   - IncrementUnderLock: a counter guarded by etcd's lock, used naively
//     (hold the lock, write) or fenced (the write is a transaction on the
//     lock key's create revision).
//   - LeaderWorker: a worker that does work only while elected.
//   - WatchedCache: a local copy of a prefix kept by a watch.
#ifndef ETC_SIM_EXAMPLES_RECIPES_H_
#define ETC_SIM_EXAMPLES_RECIPES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/client_interface.h"

namespace etc::examples {

enum class Guard {
  // Hold the lock, then write: unsafe when the holder pauses past its
  // lease (Jepsen, etcd 3.4.3: "etcd locks are not safe").
  kNaive,
  // The write commits only if the lock key is still the one this holder
  // created (its create revision is the fencing token).
  kFenced,
};

struct Increment {
  bool acknowledged = false;  // the write was answered OK
  int64_t read = 0;           // the counter as read under the lock
  int64_t wrote = 0;          // read + 1
};

// Takes `lock` with `lease`, reads `counter`, writes counter + 1 and
// unlocks. Errors: the lock, the read or the write failed (the write's
// outcome may then be unknown).
absl::StatusOr<Increment> IncrementUnderLock(client::ClientInterface& etc, const std::string& lock,
                                             int64_t lease, const std::string& counter,
                                             Guard guard);

// Campaigns in `election`; once elected, writes numbered work items under
// `work_prefix` ("<prefix><leader rev>/<n>", value `name`) until its
// leadership is lost or `stop()`; then resigns. Returns the number of
// items it wrote (acknowledged).
absl::StatusOr<int> LeaderWorker(client::ClientInterface& etc, const std::string& election,
                                 const std::string& name, int64_t lease,
                                 const std::string& work_prefix, Guard guard,
                                 const std::function<bool()>& stop);

// Everything under a prefix, kept up to date by a watch: loaded by a
// range read, then changed by the events after that read's revision. A
// watch the server cancels (its start revision was compacted) is replaced
// by a fresh load at the next Refresh.
class WatchedCache {
 public:
  WatchedCache(client::ClientInterface* etc, std::string prefix)
      : etc_(etc), prefix_(std::move(prefix)) {}
  // Loads and starts watching (again, if the watch was cancelled).
  absl::Status Refresh();
  bool needs_reload() const { return state_->cancelled || watcher_ == nullptr; }
  const std::map<std::string, std::string>& values() const { return state_->values; }
  // Everything through this revision is in values().
  int64_t revision() const { return state_->revision; }
  // An event at or below a revision already applied (a repeat), if any.
  const std::string& anomaly() const { return state_->anomaly; }
  int reloads() const { return reloads_; }

 private:
  struct State {
    std::map<std::string, std::string> values;
    int64_t revision = 0;
    bool cancelled = false;
    std::string anomaly;
  };
  client::ClientInterface* etc_;
  std::string prefix_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::unique_ptr<client::Watcher> watcher_;
  int reloads_ = 0;
};

}  // namespace etc::examples

#endif  // ETC_SIM_EXAMPLES_RECIPES_H_
