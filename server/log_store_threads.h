// The member's log store as the server runs it: the shared logic
// (member::DataDirLogStore, which the simulator runs too) on two threads of
// its own. The writer writes and syncs each Ready's obligations (one fsync
// per group of requests) while the member thread goes on stepping messages
// and taking requests, which gather into the next Ready; the snapshot
// thread writes snapshot files, which can be hundreds of megabytes, so that
// neither the member nor the log waits for them.
//
//   LogStoreThreads store(dir, [&host](uint64_t token) { /* OnPersisted on the member thread */ },
//                         metrics);
//   Member::Start(..., &store.store(), ...);
//   ...
//   store.Stop();   // after the member thread stopped: writes what is queued
#ifndef ETC_SERVER_LOG_STORE_THREADS_H_
#define ETC_SERVER_LOG_STORE_THREADS_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "member/data_dir_log_store.h"
#include "server/metrics.h"
#include "storage/data_dir.h"

namespace etc::server {

class LogStoreThreads {
 public:
  // `persisted` runs on the writer thread for each durable request, in
  // order; `metrics` (may be null) gets the fsync latencies. Below
  // `reserve_bytes` free on the disk the member raises NOSPACE.
  LogStoreThreads(storage::DataDir* dir, std::function<void(uint64_t token)> persisted,
                  Metrics* metrics, uint64_t reserve_bytes);
  ~LogStoreThreads() { Stop(); }
  LogStoreThreads(const LogStoreThreads&) = delete;
  LogStoreThreads& operator=(const LogStoreThreads&) = delete;

  member::DataDirLogStore& store() { return store_; }
  // Writes what is queued, then stops the threads (call it after the
  // member thread stopped: nothing more will be queued).
  void Stop();

 private:
  void Write();
  void Snapshot();

  member::DataDirLogStore store_;
  Metrics* metrics_;
  std::thread writer_;
  std::thread snapshotter_;
};

}  // namespace etc::server

#endif  // ETC_SERVER_LOG_STORE_THREADS_H_
