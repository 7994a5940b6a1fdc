// The simulated disk and network, and the register machine, on their own.
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "sim/disk.h"
#include "sim/network.h"

namespace etc::sim {
namespace {

raftpb::Entry E(uint64_t index, uint64_t term) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  return entry;
}

member::PersistRequest Write(std::vector<raftpb::Entry> entries, uint64_t term) {
  member::PersistRequest request;
  request.entries = std::move(entries);
  raftpb::HardState hs;
  hs.set_term(term);
  request.hard_state = hs;
  return request;
}

class DiskTest : public ::testing::Test {
 protected:
  DiskTest() : trace_(&queue_), disk_(1, &queue_, &trace_, Random(3), DiskOptions{100, 100, 0}) {
    disk_.set_on_persisted([this](uint64_t token) { completed_.push_back(token); });
    disk_.Bootstrap(raft::MemoryStorage());
    EXPECT_TRUE(disk_.Recover().ok());
  }
  void RunAll() {
    while (queue_.RunNext()) {
    }
  }

  EventQueue queue_;
  Trace trace_;
  Disk disk_;
  std::vector<uint64_t> completed_;
};

TEST_F(DiskTest, WritesCompleteInOrderAfterTheirLatency) {
  disk_.Persist(Write({E(1, 1), E(2, 1)}, 1), 1);
  disk_.Persist(Write({E(3, 1)}, 1), 2);
  EXPECT_TRUE(disk_.durable().entries.empty()) << "nothing is durable before fsync";
  RunAll();
  EXPECT_EQ(completed_, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(disk_.durable().entries.size(), 3u);
  EXPECT_GE(queue_.now_us(), 100);
}

TEST_F(DiskTest, AStalledDiskCompletesNothingUntilTheStallEnds) {
  disk_.StallUntil(80'000);
  disk_.Persist(Write({E(1, 1)}, 1), 1);
  disk_.Persist(Write({E(2, 1)}, 1), 2);
  RunAll();
  EXPECT_EQ(completed_, (std::vector<uint64_t>{1, 2}));
  EXPECT_GE(queue_.now_us(), 80'000);
  disk_.StallUntil(0);
  Micros before_us = queue_.now_us();
  disk_.Persist(Write({E(3, 1)}, 1), 3);
  RunAll();
  EXPECT_LT(queue_.now_us() - before_us, 80'000);
}

TEST_F(DiskTest, ACrashLosesUnfinishedWritesAndTheirCompletions) {
  disk_.Persist(Write({E(1, 1)}, 1), 1);
  RunAll();
  disk_.Persist(Write({E(2, 1)}, 1), 2);
  disk_.Crash();
  RunAll();
  EXPECT_EQ(completed_, (std::vector<uint64_t>{1}));
  auto recovered = disk_.Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->entries.size(), 1u);
  EXPECT_EQ(disk_.durable().entries.size(), 1u);
}

TEST(DiskTorn, ATornWriteKeepsAPrefixOfEntriesButNotTheHardState) {
  bool some_partial = false;
  for (int round = 0; round < 40; ++round) {
    EventQueue queue;
    Trace trace(&queue);
    Disk disk(1, &queue, &trace, Random(5 + round), DiskOptions{100, 100, /*torn=*/1.0});
    disk.Bootstrap(raft::MemoryStorage());
    ASSERT_TRUE(disk.Recover().ok());
    // Entries spanning several sectors, so a tear can fall between them.
    std::vector<raftpb::Entry> entries;
    for (uint64_t i = 1; i <= 3; ++i) {
      raftpb::Entry entry = E(i, 2);
      entry.set_data(std::string(700, 'x'));
      entries.push_back(entry);
    }
    disk.Persist(Write(entries, 2), 1);
    disk.Crash();
    auto recovered = disk.Recover();
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    size_t kept = recovered->entries.size();
    EXPECT_LE(kept, 3u);
    for (size_t i = 0; i < kept; ++i) EXPECT_EQ(recovered->entries[i].index(), i + 1);
    if (kept < 3) {
      // The log's hard state record comes after the entries and is lost
      // with them, but the term was in the vote file, synced first.
      EXPECT_EQ(recovered->hard_state.term(), 2u) << "the vote file is written first";
    }
    some_partial |= kept > 0 && kept < 3;
  }
  EXPECT_TRUE(some_partial);
}

std::shared_ptr<const raftpb::Snapshot> SnapshotAt(uint64_t index, uint64_t term) {
  auto snapshot = std::make_shared<raftpb::Snapshot>();
  snapshot->mutable_metadata()->set_index(index);
  snapshot->mutable_metadata()->set_term(term);
  snapshot->mutable_metadata()->mutable_conf_state()->add_voters(1);
  snapshot->set_data(absl::StrCat("the state through entry ", index));
  return snapshot;
}

TEST(DiskSnapshotFlip, RecoveryPassesOverAFlippedNewestSnapshotThatTheLogCovers) {
  for (int round = 0; round < 20; ++round) {
    EventQueue queue;
    Trace trace(&queue);
    Disk disk(1, &queue, &trace, Random(11 + round), DiskOptions{100, 100, 0});
    disk.Bootstrap(raft::MemoryStorage());
    ASSERT_TRUE(disk.Recover().ok());
    std::vector<raftpb::Entry> entries;
    for (uint64_t i = 1; i <= 10; ++i) entries.push_back(E(i, 2));
    disk.Persist(Write(entries, 2), 1);
    disk.SaveSnapshot(SnapshotAt(4, 2));
    disk.SaveSnapshot(SnapshotAt(8, 2));
    while (queue.RunNext()) {
    }
    ASSERT_EQ(disk.durable().snapshot.metadata().index(), 8u);
    disk.Crash();
    std::string file = disk.FlipBitInSnapshot();
    EXPECT_TRUE(absl::StrContains(file, "0000000000000008-0000000000000002.snap")) << file;
    absl::StatusOr<raft::DurableState> recovered = disk.Recover();
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_EQ(recovered->snapshot.metadata().index(), 4u);
    ASSERT_EQ(recovered->entries.size(), 6u);
    EXPECT_EQ(recovered->entries.back().index(), 10u);
    EXPECT_FALSE(recovered->damaged) << "the log rebuilds what the damaged file held";
  }
}

class NetworkTest : public ::testing::Test {
 protected:
  NetworkTest()
      : trace_(&queue_),
        network_(&queue_, &trace_, Random(7), NetworkOptions{100, 1000, 0, 0, false},
                 [this](raftpb::Message m) { delivered_.push_back(m); }) {}
  void Send(uint64_t from, uint64_t to, uint64_t index) {
    raftpb::Message m;
    m.set_from(from);
    m.set_to(to);
    m.set_index(index);
    network_.Send(m);
  }
  void RunAll() {
    while (queue_.RunNext()) {
    }
  }

  EventQueue queue_;
  Trace trace_;
  Network network_;
  std::vector<raftpb::Message> delivered_;
};

TEST_F(NetworkTest, LinksAreFifoUnlessReorderingIsOn) {
  for (uint64_t i = 0; i < 50; ++i) Send(1, 2, i);
  RunAll();
  ASSERT_EQ(delivered_.size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(delivered_[i].index(), i);
  delivered_.clear();
  network_.set_options(NetworkOptions{100, 1000, 0, 0, /*reorder=*/true});
  for (uint64_t i = 0; i < 50; ++i) Send(1, 2, i);
  RunAll();
  bool reordered = false;
  for (size_t i = 1; i < delivered_.size(); ++i) reordered |= delivered_[i].index() < delivered_[i - 1].index();
  EXPECT_TRUE(reordered);
}

TEST_F(NetworkTest, PartitionsDropBothNewAndInFlightMessagesAndCount) {
  Send(1, 2, 1);  // in flight when the partition starts
  network_.Block(1, 2);
  network_.Block(1, 2);  // a second, overlapping partition
  Send(1, 2, 2);
  Send(2, 1, 3);  // the other direction still works
  RunAll();
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].index(), 3u);
  network_.Unblock(1, 2);
  Send(1, 2, 4);
  RunAll();
  EXPECT_EQ(delivered_.size(), 1u) << "still blocked by the other partition";
  network_.Unblock(1, 2);
  Send(1, 2, 5);
  RunAll();
  EXPECT_EQ(delivered_.back().index(), 5u);
}

TEST_F(NetworkTest, DuplicatesArriveTwiceAndMayArriveLate) {
  NetworkOptions options{100, 100, 0, /*duplicate_probability=*/1, /*reorder=*/true};
  options.duplicate_delay_mean_us = 100'000;
  network_.set_options(options);
  for (uint64_t i = 0; i < 20; ++i) Send(1, 2, i);
  RunAll();
  ASSERT_EQ(delivered_.size(), 40u);
  // Some copy of an early message arrives after every first copy did.
  size_t last_first_copy = 0;
  std::set<uint64_t> seen;
  for (size_t i = 0; i < delivered_.size(); ++i) {
    if (seen.insert(delivered_[i].index()).second) last_first_copy = i;
  }
  EXPECT_LT(last_first_copy, delivered_.size() - 1);
  EXPECT_GE(queue_.now_us(), 10'000) << "late copies lag by tens of milliseconds";
}

TEST_F(NetworkTest, ClogsHoldMessagesUntilTheyClear) {
  network_.Clog(2, 50'000);
  Send(1, 2, 1);
  RunAll();
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_GE(queue_.now_us(), 50'000);
}

}  // namespace
}  // namespace etc::sim
