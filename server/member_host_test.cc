// The member host on a real data directory: snapshots taken by the forked
// child end up in files, and the data a MSG_SNAP leaves with comes back from
// there (the Raft core keeps only the metadata), also after a restart.
#include "server/member_host.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "member/member.pb.h"
#include "server/testing/single_member.h"
#include "storage/posix_fs.h"

namespace etc::server {
namespace {

absl::StatusOr<kvpb::Response> Put(MemberHost& host, const std::string& key,
                                   const std::string& value) {
  kvpb::Request request;
  request.mutable_put()->set_key(key);
  request.mutable_put()->set_value(value);
  std::promise<absl::StatusOr<kvpb::Response>> answered;
  host.Write(std::move(request),
             [&answered](absl::StatusOr<kvpb::Response> r) { answered.set_value(std::move(r)); });
  return answered.get_future().get();
}

// The Raft core's snapshot as the member thread sees it (metadata only).
raftpb::Snapshot CoreSnapshot(MemberHost& host) {
  std::promise<raftpb::Snapshot> seen;
  host.Post([&seen](MemberHost::Context& context) {
    auto snapshot = context.member().node().raft().snapshot();
    seen.set_value(snapshot == nullptr ? raftpb::Snapshot() : *snapshot);
  });
  return seen.get_future().get();
}

class MemberHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "/member_host_XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    options_.member_id = 1;
    options_.cluster_id = 7;
    options_.initial_voters = {1};
    options_.data_dir = dir + "/data";
    options_.tick_ms = 10;
    options_.snapshot_count = 10;
  }

  absl::StatusOr<std::unique_ptr<MemberHost>> StartHost() {
    return MemberHost::Start(options_, &fs_, &peers_);
  }

  // Waits (up to 30 s) until the core holds a snapshot above `index`.
  raftpb::Snapshot AwaitSnapshotAbove(MemberHost& host, uint64_t index) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    raftpb::Snapshot snapshot = CoreSnapshot(host);
    while (snapshot.metadata().index() <= index && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      snapshot = CoreSnapshot(host);
    }
    return snapshot;
  }

  MemberHostOptions options_;
  storage::PosixFs fs_;
  NoPeers peers_;
};

TEST_F(MemberHostTest, SnapshotDataComesFromTheStoreNotTheRaftCore) {
  auto host = StartHost();
  ASSERT_TRUE(host.ok()) << host.status();
  for (int i = 0; i < 30; ++i) {
    auto put = Put(**host, "/k/" + std::to_string(i), std::string(100, 'v'));
    ASSERT_TRUE(put.ok()) << put.status();
  }
  raftpb::Snapshot core = AwaitSnapshotAbove(**host, 1);
  ASSERT_GT(core.metadata().index(), 1u) << "no snapshot was taken";
  EXPECT_TRUE(core.data().empty()) << "the Raft core keeps snapshot data";

  auto loaded = (*host)->LoadSnapshot(core.metadata());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->metadata().index(), core.metadata().index());
  EXPECT_EQ((*loaded)->metadata().term(), core.metadata().term());
  memberpb::MemberSnapshot member_snapshot;
  ASSERT_TRUE(member_snapshot.ParseFromString((*loaded)->data()));
  // The key tree's part holds the values written before it.
  EXPECT_NE(member_snapshot.application().find(std::string(100, 'v')), std::string::npos);

  raftpb::SnapshotMetadata other = core.metadata();
  other.set_term(other.term() + 1);
  EXPECT_EQ((*host)->LoadSnapshot(other).status().code(), absl::StatusCode::kNotFound);

  // After a restart the snapshot is still there to send, and the member
  // came back with the keys (restored from it and the log after it).
  (*host)->Stop();
  host->reset();
  auto again = StartHost();
  ASSERT_TRUE(again.ok()) << again.status();
  raftpb::Snapshot recovered = CoreSnapshot(**again);
  EXPECT_GE(recovered.metadata().index(), core.metadata().index());
  EXPECT_TRUE(recovered.data().empty());
  EXPECT_TRUE((*again)->LoadSnapshot(recovered.metadata()).ok());
  kvpb::Request range;
  range.mutable_range()->set_key("/k/");
  range.mutable_range()->set_range_end("/k0");
  range.mutable_range()->set_count_only(true);
  std::promise<absl::StatusOr<kvpb::Response>> answered;
  (*again)->Read(std::move(range), /*serializable=*/true,
                 [&answered](absl::StatusOr<kvpb::Response> r) { answered.set_value(std::move(r)); });
  absl::StatusOr<kvpb::Response> counted = answered.get_future().get();
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_EQ(counted->range().count(), 30);
  (*again)->Stop();
}

TEST_F(MemberHostTest, EachStartHasAnIncarnationOfItsOwnCountedOnDisk) {
  uint64_t first = 0;
  {
    auto host = StartHost();
    ASSERT_TRUE(host.ok()) << host.status();
    first = (*host)->incarnation();
    (*host)->Stop();
  }
  auto host = StartHost();
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ((*host)->incarnation(), first + 1);
  (*host)->Stop();
}

TEST_F(MemberHostTest, WaitingOnAStoppedHostEndsAtTheRequestTimeout) {
  options_.request_timeout_ms = 200;
  auto host = StartHost();
  ASSERT_TRUE(host.ok()) << host.status();
  (*host)->Stop();
  bool ran = false;
  auto started = std::chrono::steady_clock::now();
  absl::Status status = OnMember<absl::Status>(host->get(), [&ran](MemberHost::Context&) {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

}  // namespace
}  // namespace etc::server
