#include "member/data_dir_log_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/memory_fs.h"

namespace etc::member {
namespace {

raftpb::Entry E(uint64_t index, uint64_t term = 1) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data("e" + std::to_string(index));
  return entry;
}

PersistRequest Request(uint64_t first, uint64_t last, bool must_sync = true) {
  PersistRequest request;
  for (uint64_t i = first; i <= last; ++i) request.entries.push_back(E(i));
  request.hard_state.emplace();
  request.hard_state->set_term(1);
  request.hard_state->set_commit(first - 1);
  request.must_sync = must_sync;
  return request;
}

std::shared_ptr<const raftpb::Snapshot> Snapshot(uint64_t index, std::string data) {
  auto snapshot = std::make_shared<raftpb::Snapshot>();
  snapshot->mutable_metadata()->set_index(index);
  snapshot->mutable_metadata()->set_term(1);
  snapshot->mutable_metadata()->mutable_conf_state()->add_voters(1);
  snapshot->set_data(std::move(data));
  return snapshot;
}

// A data directory on a crashable in-memory disk, bootstrapped at index 1,
// with a store over it that records what it reported.
class Fixture : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    store_.reset();
    dir_.reset();
    auto dir = storage::DataDir::Open(&fs_, "data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::move(*dir);
    if (dir_->fresh()) {
      raftpb::Snapshot boot = *Snapshot(1, "");
      ASSERT_TRUE(dir_->Write(&boot, {}, std::nullopt).ok());
      ASSERT_TRUE(dir_->Sync().ok());
    }
    DataDirLogStore::Hooks hooks;
    hooks.persisted = [this](const PersistRequest& request, uint64_t token) {
      reported_.push_back(token);
    };
    hooks.snapshot_saved = [this](const raftpb::Snapshot& s) {
      saved_.push_back(s.metadata().index());
    };
    hooks.log_compacted = [this](uint64_t index) { compacted_.push_back(index); };
    hooks.failed = [this](const absl::Status& status) { failures_.push_back(status); };
    store_ = std::make_unique<DataDirLogStore>(dir_.get(), hooks, options_);
  }

  // Power loss, then recovery with the real code: what came back.
  raft::DurableState CrashAndRecover() {
    store_.reset();
    dir_.reset();
    fs_.Crash([] { return false; }, [](uint64_t) { return 0; });
    Open();
    return dir_->recovered();
  }

  storage::MemoryFs fs_;
  DataDirLogStore::Options options_;
  std::unique_ptr<storage::DataDir> dir_;
  std::unique_ptr<DataDirLogStore> store_;
  std::vector<uint64_t> reported_;
  std::vector<uint64_t> saved_;
  std::vector<uint64_t> compacted_;
  std::vector<absl::Status> failures_;
};

using DataDirLogStoreTest = Fixture;

TEST_F(DataDirLogStoreTest, NothingIsReportedBeforeTheSyncThatMakesItDurable) {
  store_->Persist(Request(2, 3), 1);
  store_->Persist(Request(4, 4), 2);
  EXPECT_EQ(store_->WriteQueued(), 2u);
  EXPECT_TRUE(reported_.empty());
  EXPECT_EQ(store_->unreported(), 2u);
  // Written and not synced: a crash may lose both, and nothing promised
  // them.
  raft::DurableState lost = CrashAndRecover();
  EXPECT_TRUE(lost.entries.empty());
  EXPECT_TRUE(reported_.empty());

  store_->Persist(Request(2, 3), 1);
  store_->Persist(Request(4, 4), 2);
  store_->WriteQueued();
  uint64_t syncs_before = fs_.syncs();
  EXPECT_EQ(store_->SyncWritten().reported, 2u);
  EXPECT_EQ(fs_.syncs(), syncs_before + 1) << "one sync for the whole group";
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1, 2}));
  raft::DurableState kept = CrashAndRecover();
  ASSERT_EQ(kept.entries.size(), 3u);
  EXPECT_EQ(kept.entries.back().index(), 4u);
}

TEST_F(DataDirLogStoreTest, ReportsInOrderAtMostAsManyAsAsked) {
  for (uint64_t token = 1; token <= 3; ++token) {
    store_->Persist(Request(token + 1, token + 1), token);
  }
  store_->WriteQueued();
  EXPECT_EQ(store_->SyncWritten(1).reported, 1u);
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1}));
  EXPECT_EQ(store_->SyncWritten(5).reported, 2u);
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(store_->SyncWritten().reported, 0u);
}

TEST_F(DataDirLogStoreTest, ARequestThatMayBeLostIsReportedWithoutASync) {
  PersistRequest commit_only;
  commit_only.hard_state.emplace();
  commit_only.hard_state->set_term(1);
  commit_only.hard_state->set_commit(1);
  commit_only.must_sync = false;
  store_->Persist(std::move(commit_only), 7);
  store_->WriteQueued();
  uint64_t syncs_before = fs_.syncs();
  DataDirLogStore::Synced synced = store_->SyncWritten();
  EXPECT_EQ(synced.reported, 1u);
  EXPECT_FALSE(synced.synced);
  EXPECT_EQ(fs_.syncs(), syncs_before);
  EXPECT_EQ(reported_, (std::vector<uint64_t>{7}));
}

TEST_F(DataDirLogStoreTest, ASnapshotIsServedFromMemoryUntilItsFileIsInPlace) {
  store_->Persist(Request(2, 9), 1);
  store_->WriteQueued();
  store_->SyncWritten();
  auto snapshot = Snapshot(9, "the state at 9");
  store_->SaveSnapshot(snapshot);
  store_->CompactLog(9);
  // Queued: from memory (the very object), the file does not exist yet.
  auto queued = store_->LoadSnapshot(snapshot->metadata());
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->get(), snapshot.get());
  EXPECT_EQ(dir_->LoadSnapshot(snapshot->metadata()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->queued_snapshot_jobs(), 2u);

  ASSERT_TRUE(store_->RunSnapshotJob());
  EXPECT_EQ(saved_, (std::vector<uint64_t>{9}));
  EXPECT_TRUE(compacted_.empty()) << "the release runs after the snapshot, as its own job";
  auto from_file = store_->LoadSnapshot(snapshot->metadata());
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_NE(from_file->get(), snapshot.get());
  EXPECT_EQ((*from_file)->data(), "the state at 9");

  ASSERT_TRUE(store_->RunSnapshotJob());
  EXPECT_EQ(compacted_, (std::vector<uint64_t>{9}));
  EXPECT_FALSE(store_->RunSnapshotJob());
  raft::DurableState recovered = CrashAndRecover();
  EXPECT_EQ(recovered.snapshot.metadata().index(), 9u);
  EXPECT_EQ(recovered.snapshot.data(), "the state at 9");
}

TEST_F(DataDirLogStoreTest, TheSnapshotFileIsWrittenWhereTheHostSaysAndTheLogStaysWritable) {
  // The server writes the file at idle priority on another thread; only
  // the copying goes there, never the log's lock (an idle thread holding
  // it would hold up every write).
  int runs = 0;
  bool file_before = true, file_after = false, saved_after = true;
  options_.run_snapshot_file_write = [&](const std::function<void()>& write) {
    ++runs;
    raftpb::SnapshotMetadata metadata = Snapshot(9, "")->metadata();
    file_before = dir_->LoadSnapshot(metadata).ok();
    write();
    file_after = dir_->LoadSnapshot(metadata).ok();
    saved_after = !saved_.empty();
    // The log takes writes meanwhile: this would deadlock if the log's
    // lock were held around the write.
    store_->Persist(Request(10, 10), 2);
    store_->WriteQueued();
    store_->SyncWritten();
  };
  Open();
  store_->Persist(Request(2, 9), 1);
  store_->WriteQueued();
  store_->SyncWritten();
  store_->SaveSnapshot(Snapshot(9, "the state at 9"));
  ASSERT_TRUE(store_->RunSnapshotJob());
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(file_before);
  EXPECT_TRUE(file_after);
  EXPECT_FALSE(saved_after) << "recorded in the log after the write, outside it";
  EXPECT_EQ(saved_, (std::vector<uint64_t>{9}));
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(failures_.empty());
  raft::DurableState recovered = CrashAndRecover();
  EXPECT_EQ(recovered.snapshot.metadata().index(), 9u);
  EXPECT_EQ(recovered.snapshot.data(), "the state at 9");
  EXPECT_EQ(recovered.entries.back().index(), 10u);
}

TEST_F(DataDirLogStoreTest, ACrashBeforeTheSnapshotJobRanKeepsTheWholeLog) {
  store_->Persist(Request(2, 9), 1);
  store_->WriteQueued();
  store_->SyncWritten();
  store_->SaveSnapshot(Snapshot(9, "s"));
  store_->CompactLog(9);
  raft::DurableState recovered = CrashAndRecover();
  EXPECT_EQ(recovered.snapshot.metadata().index(), 1u);
  ASSERT_EQ(recovered.entries.size(), 8u);
  EXPECT_EQ(recovered.entries.front().index(), 2u);
}

TEST_F(DataDirLogStoreTest, ALeadersSnapshotInAPersistIsWrittenInOrder) {
  store_->Persist(Request(2, 3), 1);
  PersistRequest install;
  install.snapshot = Snapshot(20, "from the leader");
  install.hard_state.emplace();
  install.hard_state->set_term(1);
  install.hard_state->set_commit(20);
  store_->Persist(std::move(install), 2);
  store_->WriteQueued();
  store_->SyncWritten();
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1, 2}));
  raft::DurableState recovered = CrashAndRecover();
  EXPECT_EQ(recovered.snapshot.metadata().index(), 20u);
  EXPECT_TRUE(recovered.entries.empty()) << "the snapshot replaced the older log";
}

TEST_F(DataDirLogStoreTest, TheAwaitCallsEndOnceClosedAndDrained) {
  store_->Persist(Request(2, 2), 1);
  store_->SaveSnapshot(Snapshot(2, "s"));
  store_->Close();
  EXPECT_TRUE(store_->AwaitWrites()) << "closed, but a write is still queued";
  store_->WriteQueued();
  store_->SyncWritten();
  EXPECT_FALSE(store_->AwaitWrites());
  EXPECT_TRUE(store_->AwaitSnapshotJob());
  store_->RunSnapshotJob();
  EXPECT_FALSE(store_->AwaitSnapshotJob());
}

// Writes on one thread and snapshot jobs on another (the server writes on
// its member thread, which also persists), while requests are persisted
// one at a time (each waits to be reported, as Member does) and snapshots
// saved.
TEST_F(DataDirLogStoreTest, AWriterAndASnapshotThreadKeepEveryRule) {
  std::atomic<uint64_t> reported{0};
  DataDirLogStore::Hooks hooks;
  hooks.persisted = [&reported](const PersistRequest&, uint64_t token) {
    EXPECT_EQ(token, reported.load() + 1) << "reports out of order";
    reported.store(token);
  };
  DataDirLogStore store(dir_.get(), hooks);
  std::thread writer([&store] {
    while (store.AwaitWrites()) {
      store.WriteQueued();
      store.SyncWritten();
    }
  });
  std::thread snapshotter([&store] {
    while (store.AwaitSnapshotJob()) store.RunSnapshotJob();
  });
  constexpr uint64_t kRequests = 300;
  for (uint64_t token = 1; token <= kRequests; ++token) {
    store.Persist(Request(token + 1, token + 1), token);
    while (reported.load() < token) std::this_thread::yield();
    if (token % 50 == 0) {
      auto snapshot = Snapshot(token + 1, "s" + std::to_string(token));
      store.SaveSnapshot(snapshot);
      // Always readable: from memory, then from its file.
      auto loaded = store.LoadSnapshot(snapshot->metadata());
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_EQ((*loaded)->data(), snapshot->data());
      store.CompactLog(token - 10);
    }
  }
  store.Close();
  writer.join();
  snapshotter.join();
  EXPECT_EQ(reported.load(), kRequests);
  store_.reset();
  raft::DurableState recovered = CrashAndRecover();
  EXPECT_EQ(recovered.snapshot.metadata().index(), kRequests + 1);
}

TEST_F(DataDirLogStoreTest, AFailedSyncIsNeverRetriedOrReportedAndStopsTheStore) {
  store_->Persist(Request(2, 3), 1);
  store_->WriteQueued();
  store_->SyncWritten();
  ASSERT_EQ(reported_, (std::vector<uint64_t>{1}));

  fs_.set_fail_syncs(true);
  store_->Persist(Request(4, 4), 2);
  store_->WriteQueued();
  EXPECT_EQ(store_->SyncWritten().reported, 0u);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(failures_[0].message(),
            "syncing the write-ahead log failed: fsync: input/output error");
  // The disk works again, but the store does not try again: what the
  // failed sync covered may be gone, and a retry would call it durable.
  fs_.set_fail_syncs(false);
  store_->Persist(Request(5, 5), 3);
  EXPECT_EQ(store_->WriteQueued(), 0u);
  EXPECT_EQ(store_->SyncWritten().reported, 0u);
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1}));
  EXPECT_EQ(failures_.size(), 1u) << "told once";

  // A restart recovers what was durable: what was reported, and no more.
  raft::DurableState recovered = CrashAndRecover();
  ASSERT_FALSE(recovered.entries.empty());
  EXPECT_EQ(recovered.entries.back().index(), 3u);
}

TEST_F(DataDirLogStoreTest, AFsyncThatFailsOnceIsNotRetriedThoughARetryWouldSucceed) {
  store_->Persist(Request(2, 3), 1);
  store_->WriteQueued();
  store_->SyncWritten();
  // As Linux: the failed writeback is reported once and its pages are
  // dropped; the next fsync "succeeds" over the loss.
  fs_.fail_next_syncs(1);
  store_->Persist(Request(4, 4), 2);
  store_->WriteQueued();
  EXPECT_EQ(store_->SyncWritten().reported, 0u);
  EXPECT_EQ(failures_.size(), 1u);
  EXPECT_TRUE(store_->failed());
  EXPECT_EQ(reported_, (std::vector<uint64_t>{1})) << "entry 4 was dropped, never durable";
}

// A disk with small segments that the test fills: ENOSPC where the log
// needs a new segment.
TEST(DataDirLogStoreSpaceTest, AFullDiskHoldsWritesInOrderUntilThereIsSpaceAndLosesNone) {
  constexpr uint64_t kSegmentBytes = 4096;
  storage::MemoryFs fs;
  storage::DataDirOptions options;
  options.wal.segment_bytes = kSegmentBytes;
  auto open = [&] {
    auto dir = storage::DataDir::Open(&fs, "data", options);
    EXPECT_TRUE(dir.ok()) << dir.status();
    return std::move(*dir);
  };
  std::unique_ptr<storage::DataDir> dir = open();
  raftpb::Snapshot boot = *Snapshot(1, "");
  ASSERT_TRUE(dir->Write(&boot, {}, std::nullopt).ok());
  ASSERT_TRUE(dir->Sync().ok());
  std::vector<uint64_t> reported;
  std::vector<absl::Status> failures;
  DataDirLogStore::Hooks hooks;
  hooks.persisted = [&](const PersistRequest&, uint64_t token) { reported.push_back(token); };
  hooks.failed = [&](const absl::Status& status) { failures.push_back(status); };
  DataDirLogStore store(dir.get(), hooks, {.reserve_bytes = kSegmentBytes});
  EXPECT_FALSE(store.low_on_space());

  // Half a segment free: not low while the segment being written has more
  // than half a segment of room (the two make a segment)...
  fs.set_capacity_bytes(fs.used_bytes() + kSegmentBytes / 2);
  EXPECT_FALSE(store.low_on_space());
  PersistRequest first;
  raftpb::Entry big = E(2);
  big.set_data(std::string(kSegmentBytes / 2, 'v'));
  first.entries.push_back(big);
  store.Persist(std::move(first), 1);
  ASSERT_EQ(store.WriteQueued(), 1u);
  store.SyncWritten();
  // ...and low once it has less: when it fills, the next one will not fit.
  EXPECT_TRUE(store.low_on_space());
  EXPECT_FALSE(store.out_of_space());

  // Entries of 1 KiB: a few fit in the segment being written, then the
  // next segment does not fit on the disk.
  constexpr uint64_t kRequests = 10;
  for (uint64_t token = 2; token <= kRequests; ++token) {
    PersistRequest request;
    raftpb::Entry entry = E(token + 1);
    entry.set_data(std::string(1024, 'v'));
    request.entries.push_back(entry);
    store.Persist(std::move(request), token);
  }
  size_t written = store.WriteQueued() + 1;  // with the first
  ASSERT_GT(written, 1u);
  ASSERT_LT(written, kRequests);
  EXPECT_TRUE(store.out_of_space());
  EXPECT_TRUE(store.low_on_space());
  EXPECT_TRUE(failures.empty()) << "a full disk does not stop the store";
  EXPECT_EQ(store.SyncWritten().reported, written - 1);
  auto names = fs.List("data/member/wal");
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "the half-made segment is removed";
  }
  // Still full: tried again, nothing moves, nothing is reported.
  EXPECT_EQ(store.WriteQueued(), 0u);
  EXPECT_EQ(store.SyncWritten().reported, 0u);
  EXPECT_EQ(reported.size(), written);

  // Space comes back: the held requests go in, in order.
  fs.set_capacity_bytes(UINT64_MAX);
  EXPECT_EQ(store.WriteQueued(), kRequests - written);
  EXPECT_FALSE(store.out_of_space());
  EXPECT_FALSE(store.low_on_space());
  EXPECT_EQ(store.SyncWritten().reported, kRequests - written);
  std::vector<uint64_t> in_order;
  for (uint64_t token = 1; token <= kRequests; ++token) in_order.push_back(token);
  EXPECT_EQ(reported, in_order);
  EXPECT_TRUE(failures.empty());

  // Every entry is in the log, once, in order.
  dir.reset();
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  dir = open();
  const raft::DurableState& recovered = dir->recovered();
  ASSERT_EQ(recovered.entries.size(), kRequests);
  for (uint64_t i = 0; i < kRequests; ++i) EXPECT_EQ(recovered.entries[i].index(), i + 2);
}

TEST(DataDirLogStoreSpaceTest, ClosedWhileTheDiskIsFullTheWriterMayEnd) {
  storage::MemoryFs fs;
  storage::DataDirOptions options;
  options.wal.segment_bytes = 4096;
  auto dir = storage::DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  DataDirLogStore::Hooks hooks;
  hooks.failed = [](const absl::Status& status) { ADD_FAILURE() << status; };
  DataDirLogStore store(dir->get(), hooks);
  fs.set_capacity_bytes(fs.used_bytes());
  PersistRequest request;
  raftpb::Entry entry = E(2);
  entry.set_data(std::string(8192, 'v'));
  request.entries.push_back(entry);
  store.Persist(std::move(request), 1);
  EXPECT_EQ(store.WriteQueued(), 0u);
  EXPECT_TRUE(store.out_of_space());
  EXPECT_TRUE(store.low_on_space()) << "without a reserve, a write that found no space counts";
  store.Close();
  EXPECT_FALSE(store.AwaitWrites());
}

}  // namespace
}  // namespace etc::member
