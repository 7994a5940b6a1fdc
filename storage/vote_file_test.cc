#include "storage/vote_file.h"

#include <algorithm>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/memory_fs.h"
#include "storage/testing/dying_fs.h"

namespace etc::storage {

void PrintTo(const TermAndVote& value, std::ostream* out) {
  *out << "term " << value.term << " vote " << value.vote;
}

namespace {

constexpr char kDir[] = "member";
constexpr char kPath[] = "member/vote";

TermAndVote Read(MemoryFs& fs) {
  absl::StatusOr<std::unique_ptr<VoteFile>> votes = VoteFile::Open(&fs, kDir);
  EXPECT_TRUE(votes.ok()) << votes.status();
  return votes.ok() ? (*votes)->held() : TermAndVote{999, 999};
}

void WriteThrough(MemoryFs& fs, const TermAndVote& value) {
  absl::StatusOr<std::unique_ptr<VoteFile>> votes = VoteFile::Open(&fs, kDir);
  ASSERT_TRUE(votes.ok()) << votes.status();
  absl::Status written = (*votes)->Write(value);
  ASSERT_TRUE(written.ok()) << written;
}

// The file's bytes with one slot's sector taken from another file (what
// a crash between the two slot writes leaves, or two writers never could).
std::string Spliced(const std::string& slot0_from, const std::string& slot1_from) {
  return slot0_from.substr(0, kVoteSlotBytes) + slot1_from.substr(kVoteSlotBytes);
}

void Replace(MemoryFs& fs, const std::string& bytes) {
  auto file = fs.Open(kPath, {.create = true});
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Truncate(0).ok());
  ASSERT_TRUE((*file)->WriteAt(0, bytes).ok());
  ASSERT_TRUE((*file)->Sync().ok());
}

// The file holding `value` in both slots.
std::string FileHolding(const TermAndVote& value) {
  MemoryFs fs;
  EXPECT_TRUE(fs.MakeDir(kDir).ok());
  WriteThrough(fs, value);
  return fs.Contents(kPath);
}

class VoteFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.MakeDir(kDir).ok()); }
  MemoryFs fs_;
};

TEST_F(VoteFileTest, AMissingFileHoldsTermZeroAndIsCreatedAtTheFirstWrite) {
  EXPECT_EQ(Read(fs_), (TermAndVote{0, 0}));
  EXPECT_FALSE(fs_.Exists(kPath)) << "opening writes nothing";
  WriteThrough(fs_, {.term = 1, .vote = 0});
  EXPECT_TRUE(fs_.Exists(kPath));
  EXPECT_EQ(fs_.Contents(kPath).size(), 2 * kVoteSlotBytes);
  // Durable: name and contents survive a power loss.
  fs_.Crash([] { return false; }, [](uint64_t) { return 0; });
  EXPECT_EQ(Read(fs_), (TermAndVote{1, 0}));
}

TEST_F(VoteFileTest, RoundTripsEveryChangeAndWritesNothingWhenNothingChanged) {
  for (TermAndVote value : {TermAndVote{1, 0}, TermAndVote{1, 3}, TermAndVote{2, 0},
                            TermAndVote{7, 2}, TermAndVote{1ull << 40, 1ull << 33}}) {
    WriteThrough(fs_, value);
    fs_.Crash([] { return false; }, [](uint64_t) { return 0; });
    EXPECT_EQ(Read(fs_), value);
    // In both slots: either alone holds it.
    std::string bytes = fs_.Contents(kPath);
    EXPECT_TRUE(bytes.substr(0, kVoteSlotBytes) == bytes.substr(kVoteSlotBytes));
  }
  auto votes = VoteFile::Open(&fs_, kDir);
  ASSERT_TRUE(votes.ok()) << votes.status();
  uint64_t syncs_before = fs_.syncs();
  ASSERT_TRUE((*votes)->Write({1ull << 40, 1ull << 33}).ok());
  EXPECT_EQ(fs_.syncs(), syncs_before) << "the same term and vote again: no fsync";
  ASSERT_TRUE((*votes)->Write({(1ull << 40) + 1, 0}).ok());
  EXPECT_EQ(fs_.syncs(), syncs_before + 2) << "one sync per slot";
}

TEST_F(VoteFileTest, GoingBackIsRefusedAndChangesNothing) {
  WriteThrough(fs_, {.term = 5, .vote = 2});
  std::string bytes = fs_.Contents(kPath);
  auto votes = VoteFile::Open(&fs_, kDir);
  ASSERT_TRUE(votes.ok()) << votes.status();
  for (TermAndVote back : {TermAndVote{4, 0}, TermAndVote{4, 2}, TermAndVote{5, 0},
                           TermAndVote{5, 3}}) {
    absl::Status refused = (*votes)->Write(back);
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
    EXPECT_EQ((*votes)->held(), (TermAndVote{5, 2}));
  }
  EXPECT_TRUE(fs_.Contents(kPath) == bytes);
  EXPECT_TRUE((*votes)->Write({6, 0}).ok());
}

TEST_F(VoteFileTest, EitherSlotDamagedAloneGivesTheOthersValue) {
  // After a crash between the slot writes slot 0 holds the new value and
  // slot 1 the old one: each slot's own value must come back when the
  // other is damaged (and a whole file holds the same in both).
  std::string before_crash = Spliced(FileHolding({7, 3}), FileHolding({6, 2}));
  struct Case {
    uint64_t damaged_byte;
    TermAndVote expected;
  };
  // In the payload, then in the length (the header's checksum).
  for (const Case& c : {Case{14, {6, 2}}, Case{kVoteSlotBytes + 14, {7, 3}},
                        Case{2, {6, 2}}, Case{kVoteSlotBytes + 2, {7, 3}}}) {
    Replace(fs_, before_crash);
    fs_.FlipBit(kPath, 8 * c.damaged_byte + 1);
    auto votes = VoteFile::Open(&fs_, kDir);
    ASSERT_TRUE(votes.ok()) << votes.status();
    EXPECT_EQ((*votes)->held(), c.expected) << "byte " << c.damaged_byte;
    ASSERT_TRUE((*votes)->damaged_slot().has_value());
    EXPECT_EQ((*votes)->damaged_slot()->offset, c.damaged_byte / kVoteSlotBytes * kVoteSlotBytes);
    EXPECT_EQ((*votes)->damaged_slot()->file, kPath);
  }
  // Undamaged, the newer of the two.
  Replace(fs_, before_crash);
  auto votes = VoteFile::Open(&fs_, kDir);
  ASSERT_TRUE(votes.ok()) << votes.status();
  EXPECT_EQ((*votes)->held(), (TermAndVote{7, 3}));
  EXPECT_FALSE((*votes)->damaged_slot().has_value());
}

TEST_F(VoteFileTest, TheLaterValueWinsInEitherSlot) {
  // The higher term; in one term, the one with the vote. Slot 0 is written
  // first, but a disk may reorder writes: either order.
  struct Case {
    TermAndVote later;
    TermAndVote earlier;
  };
  for (const Case& c : {Case{{9, 0}, {8, 2}}, Case{{4, 1}, {4, 0}}}) {
    for (bool later_in_slot0 : {true, false}) {
      std::string later = FileHolding(c.later);
      std::string earlier = FileHolding(c.earlier);
      Replace(fs_, later_in_slot0 ? Spliced(later, earlier) : Spliced(earlier, later));
      EXPECT_EQ(Read(fs_), c.later) << later_in_slot0;
    }
  }
}

TEST_F(VoteFileTest, BothSlotsDamagedIsDataLossNamingTheFile) {
  WriteThrough(fs_, {.term = 3, .vote = 1});
  fs_.FlipBit(kPath, 8 * 14);
  fs_.FlipBit(kPath, 8 * (kVoteSlotBytes + 14));
  auto votes = VoteFile::Open(&fs_, kDir);
  EXPECT_EQ(votes.status().code(), absl::StatusCode::kDataLoss) << votes.status();
  EXPECT_NE(votes.status().message().find(kPath), std::string::npos) << votes.status();
}

TEST_F(VoteFileTest, ACutShortFileKeepsWhatItsWholeSlotHolds) {
  WriteThrough(fs_, {.term = 3, .vote = 1});
  auto file = fs_.Open(kPath, {});
  ASSERT_TRUE((*file)->Truncate(kVoteSlotBytes + 5).ok());
  EXPECT_EQ(Read(fs_), (TermAndVote{3, 1}));
  ASSERT_TRUE((*file)->Truncate(10).ok());
  EXPECT_EQ(VoteFile::Open(&fs_, kDir).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(VoteFileTest, TwoVotesInOneTermIsDataLoss) {
  // No writer does this (Write refuses it): only damage that still passes
  // the checksum, or a bug. Either way the member cannot know its vote.
  Replace(fs_, Spliced(FileHolding({5, 1}), FileHolding({5, 2})));
  auto votes = VoteFile::Open(&fs_, kDir);
  EXPECT_EQ(votes.status().code(), absl::StatusCode::kDataLoss) << votes.status();
  EXPECT_NE(votes.status().message().find("two votes in term 5"), std::string::npos);
}

// The process dies at every sync of a change (creating the file, then
// changing it in place) and the power goes with it, tearing the unsynced
// write at every sector boundary the crash model offers: the file then
// reads back the old or the new value, never anything else, and never
// refuses.
TEST(VoteFileCrashTest, ACrashAnywhereInAWriteLeavesTheOldOrTheNewValue) {
  struct Step {
    TermAndVote before;  // {0, 0}: no file yet
    TermAndVote after;
  };
  for (const Step& step : {Step{{0, 0}, {1, 0}}, Step{{1, 0}, {1, 2}}, Step{{1, 2}, {3, 0}},
                           Step{{3, 0}, {1ull << 50, 9}}}) {
    for (int syncs_left = 0; syncs_left <= 2; ++syncs_left) {
      for (uint64_t kept_sectors = 0; kept_sectors <= 2; ++kept_sectors) {
        for (bool tear : {false, true}) {
          MemoryFs fs;
          ASSERT_TRUE(fs.MakeDir(kDir).ok());
          if (step.before != TermAndVote{0, 0}) WriteThrough(fs, step.before);
          DyingFs dying(&fs, syncs_left);
          auto votes = VoteFile::Open(&dying, kDir);
          ASSERT_TRUE(votes.ok()) << votes.status();
          absl::Status written = (*votes)->Write(step.after);
          EXPECT_EQ(written.ok(), !dying.died());
          fs.Crash([tear] { return tear; },
                   [kept_sectors](uint64_t n) { return std::min(kept_sectors, n - 1); });
          absl::StatusOr<std::unique_ptr<VoteFile>> reopened = VoteFile::Open(&fs, kDir);
          std::string where = absl::StrCat("from term ", step.before.term, " vote ",
                                           step.before.vote, ", dying at sync ", syncs_left,
                                           ", tear ", tear, " keeping ", kept_sectors);
          ASSERT_TRUE(reopened.ok()) << where << ": " << reopened.status();
          TermAndVote found = (*reopened)->held();
          EXPECT_TRUE(found == step.before || found == step.after)
              << where << ": term " << found.term << " vote " << found.vote;
          if (written.ok()) {
            EXPECT_EQ(found, step.after) << where;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace etc::storage
