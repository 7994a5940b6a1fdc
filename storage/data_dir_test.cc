#include "storage/data_dir.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "raft/node.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "storage/memory_fs.h"
#include "storage/record.h"
#include "storage/testing/log_bytes.h"
#include "storage/vote_file.h"

namespace etc::storage {
namespace {

raftpb::Entry E(uint64_t index, uint64_t term) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data("e" + std::to_string(index) + "t" + std::to_string(term));
  return entry;
}

raftpb::HardState H(uint64_t term, uint64_t commit) {
  raftpb::HardState state;
  state.set_term(term);
  state.set_commit(commit);
  return state;
}

raftpb::Snapshot S(uint64_t index, uint64_t term, std::string data = "state") {
  raftpb::Snapshot snapshot;
  snapshot.mutable_metadata()->set_index(index);
  snapshot.mutable_metadata()->set_term(term);
  snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
  snapshot.set_data(std::move(data));
  return snapshot;
}

// An entry of 200 bytes: a few fill a small log segment.
raftpb::Entry Padded(uint64_t index, uint64_t term) {
  raftpb::Entry entry = E(index, term);
  entry.set_data(entry.data() + std::string(200, '.'));
  return entry;
}

// Cuts a file to half its size, durably (a disk that lost its tail).
void TruncateToHalf(MemoryFs& fs, const std::string& path) {
  auto file = fs.Open(path, {});
  ASSERT_TRUE(file.ok()) << file.status();
  uint64_t size = (*file)->Size().value();
  ASSERT_TRUE((*file)->Truncate(size / 2).ok());
  ASSERT_TRUE((*file)->Sync().ok());
}

TEST(DataDirTest, FreshThenRecovered) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    EXPECT_TRUE((*dir)->fresh());
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1)}, H(1, 3)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE((*dir)->fresh());
  const raft::DurableState& durable = (*dir)->recovered();
  EXPECT_EQ(durable.snapshot.metadata().index(), 1u);
  ASSERT_EQ(durable.entries.size(), 2u);
  EXPECT_EQ(durable.entries[1].index(), 3u);
  EXPECT_EQ(durable.hard_state.commit(), 3u);
}

TEST(DataDirTest, TwoProcessesNeverOpenTheSameData) {
  MemoryFs fs;
  auto first = DataDir::Open(&fs, "data");
  ASSERT_TRUE(first.ok());
  auto second = DataDir::Open(&fs, "data");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  first->reset();
  EXPECT_TRUE(DataDir::Open(&fs, "data").ok());
}

TEST(DataDirTest, AnotherVersionIsRefused) {
  MemoryFs fs;
  { ASSERT_TRUE(DataDir::Open(&fs, "data").ok()); }
  auto version = fs.Open("data/member/VERSION", {});
  ASSERT_TRUE((*version)->WriteAt(0, "etc-data 9\n").ok());
  auto dir = DataDir::Open(&fs, "data");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(dir.status().message().find("VERSION"), std::string::npos);
}

TEST(DataDirTest, ALeaderSnapshotVoidsTheConflictingLogEvenBeforeTheResetIsLogged) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1), E(5, 1)}, H(1, 2)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    // The leader of term 3 sends a snapshot at 4 (its entry 4 is of term
    // 3); the file is saved, the crash comes before the log is synced.
    raftpb::Snapshot from_leader = S(4, 3);
    ASSERT_TRUE((*dir)->Write(&from_leader, {}, H(3, 4)).ok());
  }
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const raft::DurableState& durable = (*dir)->recovered();
  EXPECT_EQ(durable.snapshot.metadata().index(), 4u);
  EXPECT_TRUE(durable.entries.empty()) << "entry 5 of term 1 belonged to the replaced log";
  raft::Config config;
  config.id = 1;
  EXPECT_TRUE(raft::Node::Start(config, durable).ok());
}

TEST(DataDirTest, ASnapshotFileWrittenBesideTheLogSurvivesACrashBeforeItIsRecorded) {
  // The server writes its own snapshots' files on one thread while another
  // goes on writing the log; a crash between the file and its record in
  // the log must recover either state, never lose entries.
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1)}, H(1, 4)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    ASSERT_TRUE((*dir)->WriteSnapshotFile(S(3, 1)).ok());
    ASSERT_TRUE((*dir)->Write(nullptr, {E(5, 1)}, H(1, 5)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    // Not recorded, so the log keeps what the snapshot covers.
    ASSERT_TRUE((*dir)->CompactLog(3).ok());
  }
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const raft::DurableState& durable = (*dir)->recovered();
  EXPECT_EQ(durable.snapshot.metadata().index(), 3u);
  ASSERT_FALSE(durable.entries.empty());
  EXPECT_EQ(durable.entries.front().index(), 4u);
  EXPECT_EQ(durable.entries.back().index(), 5u);
  EXPECT_EQ(durable.hard_state.commit(), 5u);
  raft::Config config;
  config.id = 1;
  EXPECT_TRUE(raft::Node::Start(config, durable).ok());
}

TEST(DataDirTest, ASnapshotLargerThanAFileCanHoldIsRefusedBeforeAnythingIsWritten) {
  // The reader refuses a snapshot file past its limit: a larger file would
  // be written and synced, then refused at the next start. The limit is an
  // option so that the test need not hold gigabytes; the default is
  // kMaxSnapshotPayloadBytes.
  MemoryFs fs;
  DataDirOptions options;
  options.max_snapshot_bytes = 1000;
  auto dir = DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  raftpb::Snapshot boot = S(1, 1, "");
  ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1)}, H(1, 3)).ok());
  ASSERT_TRUE((*dir)->Sync().ok());
  auto files_before = fs.List("data/member/snap");
  absl::Status refused = (*dir)->WriteSnapshotFile(S(3, 1, std::string(2000, 'x')));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_EQ(fs.List("data/member/snap").value(), files_before.value());
  EXPECT_TRUE((*dir)->WriteSnapshotFile(S(3, 1, std::string(500, 'x'))).ok());
  // Past protobuf's 2 GiB message limit (the data is read apart).
  EXPECT_GT(kMaxSnapshotPayloadBytes, uint64_t{INT32_MAX});
}

TEST(DataDirTest, AReadyWithAnEntryTheLogCannotHoldIsRefusedBeforeItsSnapshotIsSaved) {
  // The log's reader takes a record over kMaxRecordPayloadBytes for damage.
  // A Ready's snapshot is saved before its entries are logged, so the
  // entries are checked first: a refused Ready writes nothing at all.
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1)}, H(1, 2)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    auto files_before = fs.List("data/member/snap");
    raftpb::Entry too_large = E(6, 2);
    too_large.set_data(std::string(kMaxRecordPayloadBytes, 'x'));
    raftpb::Snapshot from_leader = S(5, 2);
    absl::Status refused = (*dir)->Write(&from_leader, {too_large}, H(2, 6));
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_EQ(fs.List("data/member/snap").value(), files_before.value());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->recovered().snapshot.metadata().index(), 1u);
  ASSERT_EQ((*dir)->recovered().entries.size(), 1u);
  EXPECT_EQ((*dir)->recovered().hard_state.term(), 1u);
}

TEST(DataDirTest, ASnapshotFileHoldsItsMessageSerializedWhole) {
  // Written in pieces (the data from where it is), read back as one.
  for (std::string data : {std::string(), std::string("state"), std::string(300000, 'x')}) {
    raftpb::Snapshot snapshot = S(7, 2, data);
    std::string bytes = EncodeSnapshotFile(snapshot);
    ASSERT_GE(bytes.size(), 20u);
    EXPECT_TRUE(bytes.substr(20) == snapshot.SerializeAsString()) << data.size();
    absl::StatusOr<raftpb::Snapshot> decoded = DecodeSnapshotFile(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->data(), data);
    EXPECT_EQ(decoded->metadata().index(), 7u);
  }
}

// A snapshot file gone without a trace is a storage bug, never passed over
// (kDataLoss); with repair the member starts from the older snapshot and
// the log, and the log no longer records the vanished one, so the next
// recovery agrees.
TEST(DataDirTest, ALostSnapshotFileIsDataLossUnlessRepaired) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1)}, H(1, 3)).ok());
    ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1)).ok());
  }
  auto files = fs.List("data/member/snap");
  ASSERT_EQ(files->size(), 2u);
  ASSERT_TRUE(fs.Remove("data/member/snap/" + files->back()).ok());
  ASSERT_TRUE(fs.SyncDir("data/member/snap").ok());
  auto dir = DataDir::Open(&fs, "data");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << dir.status();

  DataDirOptions repair;
  repair.repair_damage = true;
  dir = DataDir::Open(&fs, "data", repair);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE((*dir)->recovered().damaged);
  EXPECT_EQ((*dir)->recovered().snapshot.metadata().index(), 1u);
  EXPECT_EQ((*dir)->recovered().entries.size(), 2u);
  dir->reset();
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_TRUE((*dir)->recovered().damaged) << "until the member says it repaired";
  EXPECT_EQ((*dir)->recovered().entries.size(), 2u);
  ASSERT_TRUE((*dir)->FinishRepair().ok());
  dir->reset();
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE((*dir)->recovered().damaged);
  EXPECT_EQ((*dir)->recovered().entries.size(), 2u);
}

TEST(DataDirTest, ADamagedSnapshotFileIsDataLossNamingIt) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {}, H(1, 1)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  auto files = fs.List("data/member/snap");
  fs.FlipBit("data/member/snap/" + files->back(), 8 * 30);
  auto dir = DataDir::Open(&fs, "data");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(dir.status().message().find(files->back()), std::string::npos) << dir.status();
  EXPECT_NE(dir.status().message().find("no older snapshot file reads back whole"),
            std::string::npos)
      << dir.status();
  // Refused, nothing changed: the file stays where it is for the operator.
  EXPECT_EQ(fs.List("data/member/snap").value(), files.value());
}

// The newest snapshot file lost its tail (a disk that dropped writes it had
// acknowledged); the one before it and the log still hold everything: the
// member restarts from them, as etcd does, and the damaged file is kept
// aside. The log segments are small, so releasing the log after each
// snapshot really removes files: without the log kept back to the snapshot
// before the newest, the entries between them would be gone.
TEST(DataDirTest, ADamagedNewestSnapshotIsRebuiltFromTheOneBeforeAndTheLogAndSetAside) {
  MemoryFs fs;
  DataDirOptions options;
  options.wal.segment_bytes = 1024;
  {
    auto dir = DataDir::Open(&fs, "data", options);
    ASSERT_TRUE(dir.ok()) << dir.status();
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {}, H(1, 1)).ok());
    for (uint64_t i = 2; i <= 45; ++i) {
      ASSERT_TRUE((*dir)->Write(nullptr, {Padded(i, 1)}, H(1, i)).ok());
      ASSERT_TRUE((*dir)->Sync().ok());
      if (i == 20 || i == 40) {
        ASSERT_TRUE((*dir)->SaveSnapshot(S(i, 1, "at " + std::to_string(i))).ok());
        ASSERT_TRUE((*dir)->CompactLog(i).ok());
      }
    }
    EXPECT_GT((*dir)->wal().segments().size(), 1u);
    ASSERT_TRUE((*dir)->CompactLog(45).ok());
  }
  auto files = fs.List("data/member/snap");
  ASSERT_EQ(files->back(), "0000000000000028-0000000000000001.snap");
  std::string newest = "data/member/snap/" + files->back();
  TruncateToHalf(fs, newest);
  std::string damaged_bytes = fs.Contents(newest);

  auto dir = DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  const raft::DurableState& durable = (*dir)->recovered();
  EXPECT_EQ(durable.snapshot.metadata().index(), 20u);
  EXPECT_EQ(durable.snapshot.data(), "at 20");
  ASSERT_EQ(durable.entries.size(), 25u);
  EXPECT_EQ(durable.entries.front().index(), 21u);
  EXPECT_EQ(durable.entries.back().index(), 45u);
  raft::Config config;
  config.id = 1;
  EXPECT_TRUE(raft::Node::Start(config, durable).ok());
  // Set aside, whole, with why, never deleted; out of the snapshot list.
  ASSERT_EQ((*dir)->set_aside().size(), 1u);
  EXPECT_EQ((*dir)->set_aside()[0].name, files->back());
  EXPECT_EQ((*dir)->set_aside()[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE((*dir)->set_aside()[0].status.message().find(newest), std::string::npos);
  EXPECT_FALSE(fs.Exists(newest));
  EXPECT_EQ(fs.Contents(newest + ".broken"), damaged_bytes);
  EXPECT_EQ((*dir)->LoadSnapshot(S(40, 1).metadata()).status().code(),
            absl::StatusCode::kNotFound);
  dir->reset();

  // The next restart finds the same, with nothing more to set aside: the
  // log still records the snapshot at 40, whose file was set aside.
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  dir = DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->recovered().snapshot.metadata().index(), 20u);
  EXPECT_EQ((*dir)->recovered().entries.size(), 25u);
  EXPECT_TRUE((*dir)->set_aside().empty());
}

// What nothing intact covers is refused, naming the damaged file, and the
// directory is left as it is.
TEST(DataDirTest, ADamagedNewestSnapshotNothingCoversIsDataLossNamingIt) {
  struct Case {
    const char* name;
    int snapshots_retained;
    bool newest_from_leader;
    const char* reason;
  };
  for (const Case& c : {Case{"one file kept", 1, false, "no older snapshot file"},
                        Case{"the newest from the leader", 5, true, "the log starts at entry"}}) {
    MemoryFs fs;
    DataDirOptions options;
    options.snapshots_retained = c.snapshots_retained;
    {
      auto dir = DataDir::Open(&fs, "data", options);
      ASSERT_TRUE(dir.ok()) << dir.status();
      raftpb::Snapshot boot = S(1, 1, "");
      ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1)}, H(1, 4)).ok());
      ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1)).ok());
      if (c.newest_from_leader) {
        // Its log reset voids the entries before it.
        raftpb::Snapshot leader = S(9, 2);
        ASSERT_TRUE((*dir)->Write(&leader, {E(10, 2)}, H(2, 10)).ok());
        ASSERT_TRUE((*dir)->Sync().ok());
      }
    }
    auto files = fs.List("data/member/snap");
    TruncateToHalf(fs, "data/member/snap/" + files->back());
    auto dir = DataDir::Open(&fs, "data", options);
    EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_NE(dir.status().message().find(files->back()), std::string::npos) << dir.status();
    EXPECT_NE(dir.status().message().find(c.reason), std::string::npos) << dir.status();
    EXPECT_EQ(fs.List("data/member/snap").value(), files.value()) << c.name;
  }
}

TEST(DataDirTest, LoadsASavedSnapshotByItsMetadataUntilNewerOnesReplaceIt) {
  MemoryFs fs;
  DataDirOptions options;
  options.snapshots_retained = 2;
  auto dir = DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  raftpb::Snapshot boot = S(1, 1, "");
  ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 2)}, H(2, 4)).ok());
  ASSERT_TRUE((*dir)->Sync().ok());
  ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1, "at three")).ok());
  auto loaded = (*dir)->LoadSnapshot(S(3, 1).metadata());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->data(), "at three");
  EXPECT_EQ((*loaded)->metadata().conf_state().voters_size(), 1);
  // The bootstrap snapshot (written with the log) is a file too.
  EXPECT_TRUE((*dir)->LoadSnapshot(boot.metadata()).ok());
  // Another term at the same index is another snapshot.
  EXPECT_EQ((*dir)->LoadSnapshot(S(3, 2).metadata()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*dir)->SaveSnapshot(S(4, 2, "at four")).ok());
  // Two are kept: the one at index 1 is gone.
  EXPECT_EQ((*dir)->LoadSnapshot(boot.metadata()).status().code(), absl::StatusCode::kNotFound);
  auto four = (*dir)->LoadSnapshot(S(4, 2).metadata());
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ((*four)->data(), "at four");
  // A damaged file is reported, never handed out.
  auto files = fs.List("data/member/snap");
  fs.FlipBit("data/member/snap/" + files->back(), 8 * 40);
  EXPECT_EQ((*dir)->LoadSnapshot(S(4, 2).metadata()).status().code(), absl::StatusCode::kDataLoss);
}

raftpb::HardState HV(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState state = H(term, commit);
  state.set_vote(vote);
  return state;
}

void PowerLoss(MemoryFs& fs) { fs.Crash([] { return false; }, [](uint64_t) { return 0; }); }

// ---- the vote file ----

TEST(DataDirVoteTest, ATermAndVoteWhoseLogRecordWasLostComeBackFromTheVoteFile) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1)}, HV(1, 0, 2)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    // A vote in term 2, and the crash before the log's sync: the vote
    // message never left, yet the member is at term 2 having voted.
    ASSERT_TRUE((*dir)->Write(nullptr, {}, HV(2, 3, 2)).ok());
  }
  PowerLoss(fs);
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const raftpb::HardState& recovered = (*dir)->recovered().hard_state;
  EXPECT_EQ(recovered.term(), 2u);
  EXPECT_EQ(recovered.vote(), 3u);
  EXPECT_EQ(recovered.commit(), 2u) << "the commit index is the log's";
  EXPECT_FALSE((*dir)->recovered().damaged);
}

TEST(DataDirVoteTest, TheVoteFileIsWrittenOnlyWhenTheTermOrVoteChanges) {
  MemoryFs fs;
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  raftpb::Snapshot boot = S(1, 1, "");
  ASSERT_TRUE((*dir)->Write(&boot, {}, HV(1, 0, 1)).ok());
  EXPECT_TRUE(fs.Exists("data/member/vote"));
  uint64_t syncs = fs.syncs();
  // Commits and entries: the log's own (unsynced) writes only.
  for (uint64_t i = 2; i <= 5; ++i) {
    ASSERT_TRUE((*dir)->Write(nullptr, {E(i, 1)}, HV(1, 0, i)).ok());
  }
  EXPECT_EQ(fs.syncs(), syncs);
  ASSERT_TRUE((*dir)->Write(nullptr, {}, HV(2, 1, 5)).ok());
  EXPECT_EQ(fs.syncs(), syncs + 2) << "both slots, each synced";
  ASSERT_TRUE((*dir)->Write(nullptr, {E(6, 2)}, HV(2, 1, 6)).ok());
  EXPECT_EQ(fs.syncs(), syncs + 2);
}

TEST(DataDirVoteTest, AReadyRefusedForAnEntryTooLargeSavesNoVote) {
  // Refused whole, vote included: the member did not take that term.
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {}, HV(1, 0, 1)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    raftpb::Entry too_large = E(2, 2);
    too_large.set_data(std::string(kMaxRecordPayloadBytes, 'x'));
    absl::Status refused = (*dir)->Write(nullptr, {too_large}, HV(2, 1, 1));
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  }
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->recovered().hard_state.term(), 1u);
  EXPECT_EQ((*dir)->recovered().hard_state.vote(), 0u);
}

TEST(DataDirVoteTest, ADirectoryWrittenWithoutAVoteFileOpensAndGetsOne) {
  // What the previous version wrote: the same, without the vote file.
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 4), E(3, 4)}, HV(4, 2, 3)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  ASSERT_TRUE(fs.Remove("data/member/vote").ok());
  ASSERT_TRUE(fs.SyncDir("data/member").ok());
  {
    auto dir = DataDir::Open(&fs, "data");
    ASSERT_TRUE(dir.ok()) << dir.status();
    EXPECT_EQ((*dir)->recovered().hard_state.term(), 4u);
    EXPECT_EQ((*dir)->recovered().hard_state.vote(), 2u);
    EXPECT_EQ((*dir)->recovered().entries.size(), 2u);
    EXPECT_FALSE(fs.Exists("data/member/vote")) << "opening writes no vote file";
    // The first hard state written makes it, even with the same term and
    // vote as the log's.
    ASSERT_TRUE((*dir)->Write(nullptr, {E(4, 4)}, HV(4, 2, 4)).ok());
    EXPECT_TRUE(fs.Exists("data/member/vote"));
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  PowerLoss(fs);
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->recovered().hard_state.vote(), 2u);
  EXPECT_EQ((*dir)->recovered().entries.size(), 3u);
}

TEST(DataDirVoteTest, AVoteFileWithBothSlotsDamagedIsRefusedEvenWithRepair) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {}, HV(3, 1, 1)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  fs.FlipBit("data/member/vote", 8 * 14);
  // One slot damaged: the other holds it, and the host hears of it.
  auto one = DataDir::Open(&fs, "data");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)->recovered().hard_state.vote(), 1u);
  ASSERT_EQ((*one)->damage().size(), 1u);
  EXPECT_EQ((*one)->damage()[0].file, "data/member/vote");
  EXPECT_FALSE((*one)->recovered().damaged) << "nothing was lost";
  one->reset();
  fs.FlipBit("data/member/vote", 8 * (kVoteSlotBytes + 14));
  for (bool repair : {false, true}) {
    DataDirOptions options;
    options.repair_damage = repair;
    auto dir = DataDir::Open(&fs, "data", options);
    EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << dir.status();
    EXPECT_NE(dir.status().message().find("data/member/vote"), std::string::npos) << dir.status();
  }
}

TEST(DataDirVoteTest, TheLogAndTheVoteFileVotingForTwoInOneTermIsRefused) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {}, HV(5, 2, 1)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  // Only a bug or an older version running in between could do this.
  ASSERT_TRUE(fs.Remove("data/member/vote").ok());
  auto votes = VoteFile::Open(&fs, "data/member");
  ASSERT_TRUE((*votes)->Write({5, 3}).ok());
  auto dir = DataDir::Open(&fs, "data");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << dir.status();
}

// ---- a log voided by a leader's snapshot ----

// A snapshot from the leader is saved before the log records that it
// replaced the log; a crash between them leaves recovery to void the old
// log. The log must then say so itself: else the entries after recovery
// follow old ones the next recovery voids again (losing the new ones), or
// a gap.
TEST(DataDirTest, ALogVoidedForALeaderSnapshotStaysVoidWithTheEntriesAfterIt) {
  struct Case {
    const char* name;
    uint64_t snapshot_index;  // the leader's, at term 3
  };
  for (const Case& c : {Case{"conflicting", 4}, Case{"past the log", 8}}) {
    MemoryFs fs;
    {
      auto dir = DataDir::Open(&fs, "data");
      raftpb::Snapshot boot = S(1, 1, "");
      ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1), E(5, 1)}, H(1, 2)).ok());
      ASSERT_TRUE((*dir)->Sync().ok());
      raftpb::Snapshot from_leader = S(c.snapshot_index, 3);
      ASSERT_TRUE((*dir)->Write(&from_leader, {}, H(3, c.snapshot_index)).ok());
    }
    PowerLoss(fs);
    uint64_t next = c.snapshot_index + 1;
    {
      auto dir = DataDir::Open(&fs, "data");
      ASSERT_TRUE(dir.ok()) << c.name << ": " << dir.status();
      EXPECT_EQ((*dir)->recovered().snapshot.metadata().index(), c.snapshot_index);
      EXPECT_TRUE((*dir)->recovered().entries.empty()) << c.name;
      ASSERT_TRUE((*dir)->Write(nullptr, {E(next, 3), E(next + 1, 3)}, H(3, next)).ok());
      ASSERT_TRUE((*dir)->Sync().ok());
    }
    PowerLoss(fs);
    auto dir = DataDir::Open(&fs, "data");
    ASSERT_TRUE(dir.ok()) << c.name << ": " << dir.status();
    const raft::DurableState& durable = (*dir)->recovered();
    EXPECT_EQ(durable.snapshot.metadata().index(), c.snapshot_index) << c.name;
    ASSERT_EQ(durable.entries.size(), 2u) << c.name;
    EXPECT_EQ(durable.entries[0].index(), next);
    raft::Config config;
    config.id = 1;
    EXPECT_TRUE(raft::Node::Start(config, durable).ok()) << c.name;
  }
}

// ---- repair ----

DataDirOptions Repairing(DataDirOptions options = {}) {
  options.repair_damage = true;
  return options;
}

std::vector<uint64_t> Indexes(const std::vector<raftpb::Entry>& entries) {
  std::vector<uint64_t> out;
  for (const raftpb::Entry& e : entries) out.push_back(e.index());
  return out;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(i);
  return out;
}

// A member bootstrapped at index 1 whose log holds entries 2..`last`, a
// batch each with its hard state (term 1; the vote changes with the last
// batch, to term 2 voting for 3), in small segments.
void WriteMember(MemoryFs& fs, const DataDirOptions& options, uint64_t last) {
  auto dir = DataDir::Open(&fs, "data", options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  raftpb::Snapshot boot = S(1, 1, "");
  ASSERT_TRUE((*dir)->Write(&boot, {}, H(1, 1)).ok());
  for (uint64_t i = 2; i <= last; ++i) {
    raftpb::HardState state = i == last ? HV(2, 3, i - 1) : H(1, i - 1);
    ASSERT_TRUE((*dir)->Write(nullptr, {Padded(i, 1)}, state).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
}

// A bit flipped in the entry at `index` (in whichever segment holds it),
// repaired: exactly the entries before it come back, the damage is
// reported and set aside, the term and vote come from the vote file (the
// log's record of them was after the damage), new entries go on from the
// last one kept, and the next recovery finds a clean log.
void RepairsDamagedEntry(uint64_t last, uint64_t index, bool expect_later_segments) {
  MemoryFs fs;
  DataDirOptions options;
  options.wal.segment_bytes = 1024;
  WriteMember(fs, options, last);
  std::string segment;
  size_t offset = 0;
  std::vector<std::string> before = fs.List("data/member/wal").value();
  for (const std::string& name : before) {
    size_t at = OffsetOfEntry(fs.Contents("data/member/wal/" + name), index);
    if (at != 0) segment = name, offset = at;
  }
  ASSERT_FALSE(segment.empty());
  bool later_segments = before.back() != segment;
  EXPECT_EQ(later_segments, expect_later_segments);
  std::string path = "data/member/wal/" + segment;
  fs.FlipBit(path, 8 * (offset + kRecordHeaderBytes + 30));

  auto refused = DataDir::Open(&fs, "data", options);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_EQ(fs.List("data/member/wal").value(), before) << "refusing changes nothing";

  raft::Config config;
  config.id = 1;
  {
    auto dir = DataDir::Open(&fs, "data", Repairing(options));
    ASSERT_TRUE(dir.ok()) << dir.status();
    const raft::DurableState& durable = (*dir)->recovered();
    EXPECT_TRUE(durable.damaged);
    EXPECT_EQ(Indexes(durable.entries), Range(2, index - 1));
    EXPECT_EQ(durable.hard_state.term(), 2u) << "from the vote file";
    EXPECT_EQ(durable.hard_state.vote(), 3u) << "from the vote file";
    EXPECT_LE(durable.hard_state.commit(), index - 1);
    ASSERT_EQ((*dir)->damage().size(), 1u);
    EXPECT_EQ((*dir)->damage()[0].file, path);
    EXPECT_EQ((*dir)->damage()[0].offset, offset);
    EXPECT_NE((*dir)->damage()[0].what.find(segment + ".broken"), std::string::npos)
        << (*dir)->damage()[0].what;
    EXPECT_TRUE(raft::Node::Start(config, durable).ok());
    // Set aside whole: the damaged segment and every one after it.
    for (auto it = std::find(before.begin(), before.end(), segment); it != before.end(); ++it) {
      EXPECT_TRUE(fs.Exists("data/member/wal/" + *it + ".broken")) << *it;
    }
    // What the leader sends next, at term 2.
    ASSERT_TRUE((*dir)->Write(nullptr, {E(index, 2), E(index + 1, 2)}, HV(2, 3, index)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  PowerLoss(fs);
  {
    // The member never said it had its data back: the log is whole again,
    // but recovery still reports damage (the marker), so the member
    // repairs again instead of serving as if nothing was lost.
    auto dir = DataDir::Open(&fs, "data", Repairing(options));
    ASSERT_TRUE(dir.ok()) << dir.status();
    EXPECT_TRUE((*dir)->recovered().damaged);
    ASSERT_EQ((*dir)->damage().size(), 1u);
    EXPECT_EQ((*dir)->damage()[0].file, "data/member/REPAIRING");
    EXPECT_EQ(Indexes((*dir)->recovered().entries), Range(2, index + 1));
    ASSERT_TRUE((*dir)->FinishRepair().ok());
  }
  PowerLoss(fs);
  for (bool repair : {false, true}) {
    auto dir = DataDir::Open(&fs, "data", repair ? Repairing(options) : options);
    ASSERT_TRUE(dir.ok()) << dir.status();
    const raft::DurableState& durable = (*dir)->recovered();
    EXPECT_FALSE(durable.damaged);
    EXPECT_TRUE((*dir)->damage().empty());
    EXPECT_EQ(Indexes(durable.entries), Range(2, index + 1));
    EXPECT_EQ(durable.entries.back().term(), 2u);
    EXPECT_EQ(durable.hard_state.commit(), index);
    EXPECT_TRUE(raft::Node::Start(config, durable).ok());
  }
}

TEST(DataDirRepairTest, ALogDamagedInTheFirstOfSeveralSegmentsKeepsWhatCameBefore) {
  RepairsDamagedEntry(/*last=*/30, /*index=*/3, /*expect_later_segments=*/true);
}

TEST(DataDirRepairTest, ALogDamagedInItsLastSegmentBeforeItsLastRecordKeepsWhatCameBefore) {
  RepairsDamagedEntry(/*last=*/30, /*index=*/29, /*expect_later_segments=*/false);
}

// The newest snapshot came from the leader (its log reset voided the log
// before it) and is damaged: nothing covers it. With repair the member
// starts from the older snapshot with no log (the entries after the
// leader's snapshot cannot follow the older one), and the log records
// that, so the next recovery starts there too.
TEST(DataDirRepairTest, ADamagedSnapshotNothingCoversFallsBackToTheNewestIntactOne) {
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1)}, H(1, 4)).ok());
    ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1, "at 3")).ok());
    raftpb::Snapshot leader = S(9, 2, "at 9");
    ASSERT_TRUE((*dir)->Write(&leader, {E(10, 2)}, HV(2, 5, 10)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
  }
  std::string newest = "data/member/snap/" + fs.List("data/member/snap")->back();
  TruncateToHalf(fs, newest);
  ASSERT_EQ(DataDir::Open(&fs, "data").status().code(), absl::StatusCode::kDataLoss);
  raft::Config config;
  config.id = 1;
  {
    auto dir = DataDir::Open(&fs, "data", Repairing());
    ASSERT_TRUE(dir.ok()) << dir.status();
    const raft::DurableState& durable = (*dir)->recovered();
    EXPECT_TRUE(durable.damaged);
    EXPECT_EQ(durable.snapshot.metadata().index(), 3u);
    EXPECT_EQ(durable.snapshot.data(), "at 3");
    EXPECT_TRUE(durable.entries.empty());
    EXPECT_EQ(durable.hard_state.term(), 2u);
    EXPECT_EQ(durable.hard_state.vote(), 5u);
    EXPECT_EQ(durable.hard_state.commit(), 3u) << "no further than what is left";
    ASSERT_FALSE((*dir)->damage().empty());
    EXPECT_EQ((*dir)->damage()[0].file, newest);
    ASSERT_EQ((*dir)->set_aside().size(), 1u);
    EXPECT_TRUE(fs.Exists(newest + ".broken"));
    EXPECT_TRUE(raft::Node::Start(config, durable).ok());
    ASSERT_TRUE((*dir)->Write(nullptr, {E(4, 2), E(5, 2)}, HV(2, 5, 5)).ok());
    ASSERT_TRUE((*dir)->Sync().ok());
    ASSERT_TRUE((*dir)->FinishRepair().ok());
  }
  PowerLoss(fs);
  auto dir = DataDir::Open(&fs, "data");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const raft::DurableState& durable = (*dir)->recovered();
  EXPECT_FALSE(durable.damaged);
  EXPECT_EQ(durable.snapshot.metadata().index(), 3u);
  EXPECT_EQ(Indexes(durable.entries), Range(4, 5));
  EXPECT_TRUE(raft::Node::Start(config, durable).ok());
}

TEST(DataDirRepairTest, ADamagedSnapshotTheLogCoversLosesNothing) {
  // The older snapshot and the log rebuild it: repaired as without repair,
  // nothing lost, so nothing to fetch.
  MemoryFs fs;
  {
    auto dir = DataDir::Open(&fs, "data");
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1), E(4, 1)}, H(1, 4)).ok());
    ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1)).ok());
  }
  TruncateToHalf(fs, "data/member/snap/" + fs.List("data/member/snap")->back());
  auto dir = DataDir::Open(&fs, "data", Repairing());
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE((*dir)->recovered().damaged);
  EXPECT_TRUE((*dir)->damage().empty());
  EXPECT_EQ((*dir)->set_aside().size(), 1u);
  EXPECT_EQ(Indexes((*dir)->recovered().entries), Range(2, 4));
}

TEST(DataDirRepairTest, NoIntactSnapshotAndALogThatCannotRebuildTheStateIsStillRefused) {
  MemoryFs fs;
  DataDirOptions options = Repairing();
  options.snapshots_retained = 1;
  {
    auto dir = DataDir::Open(&fs, "data", options);
    raftpb::Snapshot boot = S(1, 1, "");
    ASSERT_TRUE((*dir)->Write(&boot, {E(2, 1), E(3, 1)}, H(1, 3)).ok());
    ASSERT_TRUE((*dir)->SaveSnapshot(S(3, 1)).ok());
  }
  auto files = fs.List("data/member/snap");
  ASSERT_EQ(files->size(), 1u);
  TruncateToHalf(fs, "data/member/snap/" + files->back());
  auto wal_before = fs.List("data/member/wal");
  auto dir = DataDir::Open(&fs, "data", options);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << dir.status();
  EXPECT_NE(dir.status().message().find(files->back()), std::string::npos) << dir.status();
  EXPECT_EQ(fs.List("data/member/snap").value(), files.value());
  EXPECT_EQ(fs.List("data/member/wal").value(), wal_before.value());
}

TEST(DataDirRepairTest, DamageInTheLogAndTheSnapshotRefusedTogetherChangesNothing) {
  // The log is damaged too, but the snapshot refusal comes first: neither
  // is set aside, so the operator finds the directory as it was.
  MemoryFs fs;
  DataDirOptions options = Repairing();
  options.snapshots_retained = 1;
  options.wal.segment_bytes = 1024;
  WriteMember(fs, options, 20);
  std::vector<std::string> segments = fs.List("data/member/wal").value();
  ASSERT_GT(segments.size(), 1u);
  fs.FlipBit("data/member/wal/" + segments.front(), 8 * 200);
  auto snap = fs.List("data/member/snap").value();
  TruncateToHalf(fs, "data/member/snap/" + snap.back());
  auto dir = DataDir::Open(&fs, "data", options);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kDataLoss) << dir.status();
  EXPECT_EQ(fs.List("data/member/wal").value(), segments);
  EXPECT_EQ(fs.List("data/member/snap").value(), snap);
}

// A member's life in random steps: appends (sometimes replacing a suffix),
// syncs, snapshots made and compactions, snapshots from a leader, and power
// losses. After each loss: the data directory opens, Raft accepts what it
// recovered, and every entry that was synced (and not replaced since) is
// there, or covered by the snapshot. With `damage_snapshots`, a loss may
// also cut the newest snapshot file in half: recovery must then start from
// the file before it and the log when the model says they cover it (the
// newest was the member's own, an older file is kept, and no release of
// the log may have gone past it: after one fallback, a second damaged file
// before the next snapshot may find the log released), and otherwise
// refuse with kDataLoss, changing nothing. Releases go by whole segments,
// so past that bound the model cannot tell: then either is right.
void LivesThroughCrashes(bool damage_snapshots) {
  MemoryFs fs;
  uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  auto chooser = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  DataDirOptions options;
  options.wal.segment_bytes = *rc::gen::element<uint64_t>(1024, 4096, 1 << 20);
  options.snapshots_retained = *rc::gen::inRange(1, 4);
  std::map<uint64_t, uint64_t> synced;  // index -> term, not yet replaced
  // The snapshot files, oldest first: index, and whether a log reset came
  // with it (the bootstrap snapshot's and the leader's).
  std::vector<std::pair<uint64_t, bool>> files;
  auto saved = [&](uint64_t index, bool reset) {
    files.emplace_back(index, reset);
    while (files.size() > static_cast<size_t>(options.snapshots_retained)) files.erase(files.begin());
  };
  // How far releasing the log may have gone (DataDir::CompactLog's bound).
  uint64_t released_up_to = 0;
  uint64_t term = 1;
  {
    auto dir = DataDir::Open(&fs, "data", options);
    RC_ASSERT(dir.ok());
    raftpb::Snapshot boot = S(1, 1, "");
    RC_ASSERT((*dir)->Write(&boot, {}, H(1, 1)).ok());
    RC_ASSERT((*dir)->Sync().ok());
    saved(1, true);
  }
  int lives = *rc::gen::inRange(1, 5);
  for (int life = 0; life <= lives; ++life) {
    std::optional<uint64_t> fall_back_to;
    std::optional<absl::StatusOr<std::unique_ptr<DataDir>>> opened_already;
    if (damage_snapshots && life > 0 && *rc::gen::arbitrary<bool>()) {
      auto names = fs.List("data/member/snap");
      std::string newest;
      for (const std::string& name : *names) {
        if (name.ends_with(".snap")) newest = name;  // sorted: the last is the newest
      }
      RC_ASSERT(!newest.empty());
      TruncateToHalf(fs, "data/member/snap/" + newest);
      bool covered = files.size() >= 2 && !files.back().second;
      if (covered) fall_back_to = files[files.size() - 2].first;
      if (!covered || released_up_to > *fall_back_to) {
        auto opened = DataDir::Open(&fs, "data", options);
        if (!covered || !opened.ok()) {
          RC_ASSERT(opened.status().code() == absl::StatusCode::kDataLoss);
          RC_ASSERT(opened.status().message().find(newest) != std::string::npos);
          RC_ASSERT(fs.Exists("data/member/snap/" + newest));
          RC_TAG("refused");
          return;
        }
        opened_already = std::move(opened);
      }
    }
    auto dir = opened_already.has_value() ? std::move(*opened_already)
                                          : DataDir::Open(&fs, "data", options);
    if (!dir.ok()) {
      std::string model;
      for (const auto& [index, reset] : files) absl::StrAppend(&model, " ", index, reset ? "r" : "");
      RC_FAIL(absl::StrCat(dir.status().ToString(), "; snapshot files in the model:", model));
    }
    const raft::DurableState& durable = (*dir)->recovered();
    raft::Config config;
    config.id = 1;
    RC_ASSERT(raft::Node::Start(config, durable).ok());
    uint64_t snapshot_index = durable.snapshot.metadata().index();
    if (fall_back_to.has_value()) {
      RC_TAG("fell back");  // the run says how often each outcome came
      RC_ASSERT(snapshot_index == *fall_back_to);
      RC_ASSERT((*dir)->set_aside().size() == 1u);
      files.pop_back();
    } else {
      RC_ASSERT((*dir)->set_aside().empty());
    }
    std::map<uint64_t, uint64_t> recovered;
    for (const auto& e : durable.entries) recovered[e.index()] = e.term();
    for (const auto& [index, t] : synced) {
      if (index <= snapshot_index) continue;
      RC_ASSERT(recovered.count(index) > 0);
      RC_ASSERT(recovered[index] == t);
    }
    if (life == lives) break;
    std::map<uint64_t, uint64_t> log = recovered;
    synced = recovered;
    uint64_t base = snapshot_index;
    uint64_t commit = std::max<uint64_t>(durable.hard_state.commit(), snapshot_index);
    term = std::max<uint64_t>(term, durable.hard_state.term()) + 1;
    int steps = *rc::gen::inRange(1, 12);
    for (int step = 0; step < steps; ++step) {
      uint64_t last = log.empty() ? base : log.rbegin()->first;
      // With damage to recover from, more of the member's own snapshots.
      int own = damage_snapshots ? 5 : 1;
      switch (*rc::gen::weightedElement<int>({{own, 0}, {1, 1}, {8, 2}})) {
        case 0: {
          // A snapshot the application made at the commit index.
          if (commit > base && log.count(commit)) {
            RC_ASSERT((*dir)->SaveSnapshot(S(commit, log[commit])).ok());
            uint64_t previous = files.back().first;
            saved(commit, false);
            base = commit;
            for (auto it = synced.begin(); it != synced.end() && it->first <= base;) it = synced.erase(it);
            RC_ASSERT((*dir)->CompactLog(base).ok());
            uint64_t kept_from = options.snapshots_retained >= 2 ? previous : base;
            released_up_to = std::max(released_up_to, kept_from);
          }
          break;
        }
        case 1: {
          // A snapshot from a leader of a newer term, past our log.
          ++term;
          uint64_t at = last + 1 + *rc::gen::inRange<uint64_t>(0, 3);
          raftpb::Snapshot leader = S(at, term);
          RC_ASSERT((*dir)->Write(&leader, {}, H(term, at)).ok());
          saved(at, true);
          log.clear();
          base = at;
          commit = at;
          synced.clear();
          RC_ASSERT((*dir)->Sync().ok());
          break;
        }
        default: {
          uint64_t from = last + 1;
          if (last > commit && *rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
            from = *rc::gen::inRange<uint64_t>(commit + 1, last + 1);
            ++term;
          }
          std::vector<raftpb::Entry> entries;
          int count = *rc::gen::inRange(1, 5);
          // A few fill a small segment: releasing the log removes files.
          for (int i = 0; i < count; ++i) entries.push_back(Padded(from + i, term));
          log.erase(log.lower_bound(from), log.end());
          for (const auto& e : entries) log[e.index()] = e.term();
          for (auto it = synced.lower_bound(from); it != synced.end();) it = synced.erase(it);
          uint64_t new_last = log.rbegin()->first;
          commit = std::max(commit, *rc::gen::inRange<uint64_t>(commit, new_last + 1));
          RC_ASSERT((*dir)->Write(nullptr, entries, H(term, commit)).ok());
          if (*rc::gen::weightedElement<bool>({{1, false}, {2, true}})) {
            RC_ASSERT((*dir)->Sync().ok());
            synced = log;
          }
        }
      }
    }
    dir->reset();
    fs.Crash([&] { return chooser(2) == 1; }, chooser);
  }
}

RC_GTEST_PROP(DataDirProperty, RecoversWhatWasSyncedThroughCrashes, ()) {
  LivesThroughCrashes(/*damage_snapshots=*/false);
}

RC_GTEST_PROP(DataDirProperty, FallsBackFromADamagedNewestSnapshotExactlyWhenTheLogCoversIt, ()) {
  LivesThroughCrashes(/*damage_snapshots=*/true);
}

}  // namespace
}  // namespace etc::storage
