#include "server/server_log_store.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/steady_clock.h"
#include "server/idle_priority.h"

namespace etc::server {
namespace {

using base::SteadyMs;

// The data directory failed a write or an fsync. Going on would promise
// what the disk may not hold (after a failed fsync the kernel may have
// dropped the pages it covered), and trying again could "succeed" over
// lost data: the member stops serving at once, with a clear message and
// exit status 1, not a crash dump. A restart recovers from what is durable.
void StopOnDiskFailure(const absl::Status& status) {
  std::string message = absl::StrCat(
      status.message(), "; stopping: nothing written since the last good sync counts as "
                        "durable, and a restart recovers from what is");
  for (char& c : message) {
    if (c == '"' || c == '\\') c = '\'';
  }
  std::fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"%s\"}\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

// How often a write that found the disk full is tried again.
constexpr int64_t kNoSpaceRetryMs = 200;

}  // namespace

ServerLogStore::ServerLogStore(storage::DataDir* dir,
                               std::function<void(uint64_t token)> persisted, Metrics* metrics,
                               uint64_t reserve_bytes)
    : store_(dir, member::DataDirLogStore::Hooks{
                      .persisted = [persisted = std::move(persisted)](
                                       const member::PersistRequest&,
                                       uint64_t token) { persisted(token); },
                      .failed = &StopOnDiskFailure,
                  },
             member::DataDirLogStore::Options{
                 .reserve_bytes = reserve_bytes,
                 // Copying hundreds of megabytes into the page cache takes
                 // only the CPU requests leave; the record in the log that
                 // follows runs at this thread's own priority.
                 .run_snapshot_file_write = RunAtIdlePriority,
             }),
      metrics_(metrics) {
  snapshotter_ = std::thread([this] { Snapshot(); });
  // Named, so that top -H and perf tell the member's threads apart.
  pthread_setname_np(snapshotter_.native_handle(), "etc-snapshot");
}

void ServerLogStore::Stop() {
  if (!snapshotter_.joinable()) return;
  WriteAndSync();
  store_.Close();
  snapshotter_.join();
}

void ServerLogStore::WriteAndSync() {
  if (store_.failed()) return;
  if (store_.out_of_space() && SteadyMs() - out_of_space_at_ms_ < kNoSpaceRetryMs) return;
  // Each call syncs and reports everything it wrote, so nothing written is
  // left unreported between calls (and an idle step takes no lock the
  // snapshot thread may hold).
  size_t written = store_.WriteQueued();
  if (store_.out_of_space()) out_of_space_at_ms_ = SteadyMs();
  if (written == 0) return;
  auto start = std::chrono::steady_clock::now();
  member::DataDirLogStore::Synced synced = store_.SyncWritten();
  if (synced.synced && metrics_ != nullptr) {
    metrics_->wal_fsync_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

void ServerLogStore::Snapshot() {
  while (store_.AwaitSnapshotJob()) store_.RunSnapshotJob();
}

}  // namespace etc::server
