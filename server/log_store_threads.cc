#include "server/log_store_threads.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace etc::server {
namespace {

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

// How often a writer that found the disk full tries again.
constexpr std::chrono::milliseconds kNoSpaceRetry{200};

}  // namespace

LogStoreThreads::LogStoreThreads(storage::DataDir* dir,
                                 std::function<void(uint64_t token)> persisted, Metrics* metrics,
                                 uint64_t reserve_bytes)
    : store_(dir, member::DataDirLogStore::Hooks{
                      .persisted = [persisted = std::move(persisted)](
                                       const member::PersistRequest&,
                                       uint64_t token) { persisted(token); },
                      .failed = &StopOnDiskFailure,
                  },
             member::DataDirLogStore::Options{.reserve_bytes = reserve_bytes}),
      metrics_(metrics) {
  writer_ = std::thread([this] { Write(); });
  snapshotter_ = std::thread([this] { Snapshot(); });
  // Named, so that top -H and perf tell the member's threads apart.
  pthread_setname_np(writer_.native_handle(), "etc-wal");
  pthread_setname_np(snapshotter_.native_handle(), "etc-snapshot");
}

void LogStoreThreads::Stop() {
  store_.Close();
  if (writer_.joinable()) writer_.join();
  if (snapshotter_.joinable()) snapshotter_.join();
}

void LogStoreThreads::Write() {
  while (store_.AwaitWrites()) {
    store_.WriteQueued();
    auto start = std::chrono::steady_clock::now();
    member::DataDirLogStore::Synced synced = store_.SyncWritten();
    if (synced.synced && metrics_ != nullptr) {
      metrics_->wal_fsync_seconds.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    // The disk is full: space comes back when someone frees it, not at
    // once; meanwhile the member raised NOSPACE, so little is queued.
    if (store_.out_of_space()) std::this_thread::sleep_for(kNoSpaceRetry);
  }
}

void LogStoreThreads::Snapshot() {
  while (store_.AwaitSnapshotJob()) store_.RunSnapshotJob();
}

}  // namespace etc::server
