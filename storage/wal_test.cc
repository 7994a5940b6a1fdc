#include "storage/wal.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "storage/memory_fs.h"
#include "storage/record.h"
#include "storage/testing/dying_fs.h"
#include "storage/testing/log_bytes.h"

namespace etc::storage {
namespace {

raftpb::Entry E(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data(data.empty() ? "payload-" + std::to_string(index) : data);
  return entry;
}

raftpb::HardState H(uint64_t term, uint64_t commit) {
  raftpb::HardState state;
  state.set_term(term);
  state.set_vote(1);
  state.set_commit(commit);
  return state;
}

std::vector<uint64_t> Indexes(const WalContents& contents) {
  std::vector<uint64_t> out;
  for (const auto& e : contents.entries) out.push_back(e.index());
  return out;
}

WalOptions Small() { return WalOptions{.segment_bytes = 4096}; }

TEST(WalTest, ReplaysEntriesAndHardState) {
  MemoryFs fs;
  {
    auto opened = Wal::Open(&fs, "wal", Small());
    ASSERT_TRUE(opened.ok()) << opened.status();
    auto& wal = opened->first;
    ASSERT_TRUE(wal->Append({E(1, 1), E(2, 1), E(3, 1)}, H(1, 2)).ok());
    // A new leader's entries replace 3 and after.
    ASSERT_TRUE(wal->Append({E(3, 2), E(4, 2)}, H(2, 3)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  auto reopened = Wal::Open(&fs, "wal", Small());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  const WalContents& contents = reopened->second;
  EXPECT_EQ(Indexes(contents), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(contents.entries[2].term(), 2u);
  EXPECT_EQ(contents.hard_state.commit(), 3u);
  EXPECT_EQ(contents.truncated_bytes, 0u);
  EXPECT_EQ(reopened->first->last_index(), 4u);
}

TEST(WalTest, GroupCommitIsOneSyncPerBatch) {
  MemoryFs fs;
  auto opened = Wal::Open(&fs, "wal", WalOptions{});
  auto& wal = opened->first;
  std::vector<raftpb::Entry> batch;
  for (uint64_t i = 1; i <= 100; ++i) batch.push_back(E(i, 1));
  uint64_t before = fs.syncs();
  ASSERT_TRUE(wal->Append(batch, H(1, 0)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_EQ(fs.syncs() - before, 1u);
  EXPECT_EQ(wal->syncs(), 1u);
}

TEST(WalTest, RotatesSegmentsAndReleasesThemBehindASnapshot) {
  MemoryFs fs;
  auto opened = Wal::Open(&fs, "wal", Small());
  auto& wal = opened->first;
  for (uint64_t i = 1; i <= 200; ++i) {
    ASSERT_TRUE(wal->Append({E(i, 1, std::string(100, 'x'))}, H(1, i - 1)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  ASSERT_GT(wal->segments().size(), 3u);
  raftpb::SnapshotMetadata snapshot;
  snapshot.set_index(150);
  snapshot.set_term(1);
  ASSERT_TRUE(wal->AppendSnapshotMarker(snapshot).ok());
  ASSERT_TRUE(wal->Sync().ok());
  size_t before = wal->segments().size();
  ASSERT_TRUE(wal->ReleaseTo(150).ok());
  EXPECT_LT(wal->segments().size(), before);
  auto reopened = Wal::Open(&fs, "wal", Small());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  const WalContents& contents = reopened->second;
  ASSERT_TRUE(contents.snapshot.has_value());
  EXPECT_EQ(contents.snapshot->index(), 150u);
  EXPECT_EQ(contents.hard_state.commit(), 199u);
  // Everything after the snapshot is still there, contiguous.
  ASSERT_FALSE(contents.entries.empty());
  EXPECT_LE(contents.entries.front().index(), 151u);
  EXPECT_EQ(contents.entries.back().index(), 200u);
  for (size_t i = 1; i < contents.entries.size(); ++i) {
    EXPECT_EQ(contents.entries[i].index(), contents.entries[i - 1].index() + 1);
  }
}

// Tear the last, unsynced batch at every sector boundary (disks write whole
// sectors atomically): recovery never returns an entry that was not fully
// written and never loses a synced one.
TEST(WalTest, EveryCutOfTheLastBatchRecoversExactlyTheWholeRecords) {
  MemoryFs original;
  std::string segment;
  std::string synced_bytes;
  std::string full_bytes;
  {
    auto opened = Wal::Open(&original, "wal", WalOptions{.segment_bytes = 16384});
    auto& wal = opened->first;
    ASSERT_TRUE(wal->Append({E(1, 1), E(2, 1)}, H(1, 1)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    segment = wal->segments().back();
    synced_bytes = original.Contents("wal/" + segment);
    ASSERT_TRUE(wal->Append({E(3, 1, std::string(700, 'a')), E(4, 1), E(5, 1)}, H(1, 2)).ok());
    full_bytes = original.Contents("wal/" + segment);
  }
  // Where the synced data ends and each record of the last batch ends.
  size_t offset = 0;
  while (DecodeRecord(synced_bytes, offset).status == DecodedRecord::kOk) {
    offset = DecodeRecord(synced_bytes, offset).next_offset;
  }
  size_t batch_start = offset;
  std::vector<size_t> record_ends;
  for (size_t at = batch_start; DecodeRecord(full_bytes, at).status == DecodedRecord::kOk;) {
    at = DecodeRecord(full_bytes, at).next_offset;
    record_ends.push_back(at);
  }
  ASSERT_EQ(record_ends.size(), 4u);  // three entries and the hard state
  std::vector<size_t> cuts = {batch_start, record_ends.back()};
  for (size_t c = (batch_start / kSectorBytes + 1) * kSectorBytes; c < record_ends.back();
       c += kSectorBytes) {
    cuts.push_back(c);
  }
  ASSERT_GE(cuts.size(), 3u);
  for (size_t cut : cuts) {
    MemoryFs fs;
    ASSERT_TRUE(fs.MakeDir("wal").ok());
    auto file = fs.Open("wal/" + segment, {.create = true});
    std::string bytes = full_bytes.substr(0, cut) + std::string(full_bytes.size() - cut, '\0');
    ASSERT_TRUE((*file)->WriteAt(0, bytes).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE(fs.SyncDir("wal").ok());
    auto reopened = Wal::Open(&fs, "wal", WalOptions{.segment_bytes = 16384});
    ASSERT_TRUE(reopened.ok()) << "cut " << cut << ": " << reopened.status();
    size_t whole = 0;
    while (whole < record_ends.size() && record_ends[whole] <= cut) ++whole;
    std::vector<uint64_t> expected = {1, 2};
    for (size_t i = 0; i < std::min<size_t>(whole, 3); ++i) expected.push_back(3 + i);
    EXPECT_EQ(Indexes(reopened->second), expected) << "cut " << cut;
    EXPECT_EQ(reopened->second.hard_state.commit(), whole == 4 ? 2u : 1u) << "cut " << cut;
    bool inside_a_record = cut != batch_start && (whole == 0 ? true : cut != record_ends[whole - 1]);
    EXPECT_EQ(reopened->second.truncated_bytes > 0, whole < 4 && inside_a_record) << "cut " << cut;
    // The log keeps working after a cut: append and replay again.
    auto& wal = reopened->first;
    uint64_t next = reopened->second.entries.back().index() + 1;
    ASSERT_TRUE(wal->Append({E(next, 2)}, H(2, 2)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    auto again = Wal::Open(&fs, "wal", WalOptions{.segment_bytes = 16384});
    ASSERT_TRUE(again.ok()) << "cut " << cut << ": " << again.status();
    EXPECT_EQ(again->second.entries.back().index(), next);
  }
}

// Cut at every byte, too: a cut that no disk produces (inside a sector)
// may be refused as damage, but recovery never returns an entry that was
// not fully written and never loses one that was synced.
TEST(WalTest, EveryByteCutRecoversWholeRecordsOrRefuses) {
  MemoryFs original;
  std::string segment, full_bytes;
  size_t synced_end = 0;
  {
    auto opened = Wal::Open(&original, "wal", WalOptions{.segment_bytes = 16384});
    auto& wal = opened->first;
    ASSERT_TRUE(wal->Append({E(1, 1), E(2, 1)}, H(1, 1)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    segment = wal->segments().back();
    std::string synced = original.Contents("wal/" + segment);
    while (DecodeRecord(synced, synced_end).status == DecodedRecord::kOk) {
      synced_end = DecodeRecord(synced, synced_end).next_offset;
    }
    ASSERT_TRUE(wal->Append({E(3, 1, std::string(700, 'a')), E(4, 1), E(5, 1)}, H(1, 2)).ok());
    full_bytes = original.Contents("wal/" + segment);
  }
  size_t end = synced_end;
  while (DecodeRecord(full_bytes, end).status == DecodedRecord::kOk) {
    end = DecodeRecord(full_bytes, end).next_offset;
  }
  int refused = 0;
  for (size_t cut = synced_end; cut <= end; ++cut) {
    MemoryFs fs;
    ASSERT_TRUE(fs.MakeDir("wal").ok());
    auto file = fs.Open("wal/" + segment, {.create = true});
    std::string bytes = full_bytes.substr(0, cut) + std::string(full_bytes.size() - cut, '\0');
    ASSERT_TRUE((*file)->WriteAt(0, bytes).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE(fs.SyncDir("wal").ok());
    auto reopened = Wal::Open(&fs, "wal", WalOptions{.segment_bytes = 16384});
    if (!reopened.ok()) {
      EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << "cut " << cut;
      EXPECT_NE(cut % kSectorBytes, 0u) << "a sector-aligned tear must recover";
      ++refused;
      continue;
    }
    const auto& entries = reopened->second.entries;
    ASSERT_GE(entries.size(), 2u) << "cut " << cut << " lost a synced entry";
    for (const auto& entry : entries) {
      // Every entry returned is whole (its data intact).
      EXPECT_EQ(entry.data(), entry.index() == 3 ? std::string(700, 'a')
                                                 : "payload-" + std::to_string(entry.index()));
    }
  }
  EXPECT_LT(refused, static_cast<int>(end - synced_end));
}

TEST(WalTest, DamageBeforeTheEndIsDataLossNamingFileAndOffset) {
  MemoryFs fs;
  std::string first_segment;
  {
    auto opened = Wal::Open(&fs, "wal", Small());
    auto& wal = opened->first;
    first_segment = wal->segments().front();
    for (uint64_t i = 1; i <= 100; ++i) {
      ASSERT_TRUE(wal->Append({E(i, 1, std::string(100, 'x'))}, H(1, i)).ok());
      ASSERT_TRUE(wal->Sync().ok());
    }
    ASSERT_GT(wal->segments().size(), 1u);
  }
  // A bit in the middle of the first (full, older) segment.
  fs.FlipBit("wal/" + first_segment, 8 * 700 + 3);
  auto reopened = Wal::Open(&fs, "wal", Small());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(reopened.status().message().find(first_segment), std::string::npos)
      << reopened.status();
  EXPECT_NE(reopened.status().message().find("offset"), std::string::npos);
}

TEST(WalTest, DamageInTheMiddleOfTheLastSegmentIsDataLoss) {
  MemoryFs fs;
  std::string segment;
  {
    auto opened = Wal::Open(&fs, "wal", WalOptions{});
    auto& wal = opened->first;
    segment = wal->segments().back();
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE(wal->Append({E(i, 1)}, H(1, i)).ok());
      ASSERT_TRUE(wal->Sync().ok());
    }
  }
  // Damage the third record: valid records follow, so it is no torn tail.
  std::string bytes = fs.Contents("wal/" + segment);
  size_t at = 0;
  for (int i = 0; i < 3; ++i) at = DecodeRecord(bytes, at).next_offset;
  fs.FlipBit("wal/" + segment, 8 * (at + kRecordHeaderBytes + 1));
  auto reopened = Wal::Open(&fs, "wal", WalOptions{});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
}

TEST(WalTest, AFlippedBitInTheLastSyncedRecordIsDataLossNotATornTail) {
  // All its bytes are there: it was written whole and acknowledged, so
  // cutting it off would silently lose an acknowledged entry.
  MemoryFs fs;
  std::string segment;
  {
    auto opened = Wal::Open(&fs, "wal", WalOptions{});
    auto& wal = opened->first;
    segment = wal->segments().back();
    ASSERT_TRUE(wal->Append({E(1, 1)}, std::nullopt).ok());
    ASSERT_TRUE(wal->Append({E(2, 1, std::string(1500, 'x'))}, std::nullopt).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  std::string bytes = fs.Contents("wal/" + segment);
  size_t last = 0;
  for (size_t at = 0; DecodeRecord(bytes, at).status == DecodedRecord::kOk;) {
    last = at;
    at = DecodeRecord(bytes, at).next_offset;
  }
  fs.FlipBit("wal/" + segment, 8 * (last + kRecordHeaderBytes + 1400));
  auto reopened = Wal::Open(&fs, "wal", WalOptions{});
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << reopened.status();
}

TEST(WalTest, AFlippedLengthBitIsDataLossNotATornTail) {
  // Found by the simulator (seed 4045): a flipped high bit in a record's
  // length made it seem to run past the end of the file, like a torn
  // write, and every record after it was cut off.
  MemoryFs fs;
  std::string segment;
  {
    auto opened = Wal::Open(&fs, "wal", WalOptions{});
    auto& wal = opened->first;
    segment = wal->segments().back();
    for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(wal->Append({E(i, 1)}, H(1, i)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  std::string bytes = fs.Contents("wal/" + segment);
  size_t at = 0;
  for (int i = 0; i < 4; ++i) at = DecodeRecord(bytes, at).next_offset;
  fs.FlipBit("wal/" + segment, 8 * (at + 2) + 7);  // length += 8 MiB
  auto reopened = Wal::Open(&fs, "wal", WalOptions{});
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss) << reopened.status();
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(i);
  return out;
}

WalOptions Repairing(WalOptions options) {
  options.repair_damage = true;
  return options;
}

// A log of entries 1..`last` (one batch each, with its hard state) in
// segments of `options.segment_bytes`; their names.
std::vector<std::string> WriteLog(MemoryFs& fs, WalOptions options, uint64_t last) {
  auto opened = Wal::Open(&fs, "wal", options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  auto& wal = opened->first;
  for (uint64_t i = 1; i <= last; ++i) {
    EXPECT_TRUE(wal->Append({E(i, 1, std::string(100, 'x'))}, H(1, i - 1)).ok());
    EXPECT_TRUE(wal->Sync().ok());
  }
  return wal->segments();
}

// Damage in the middle of the log, repaired: the log keeps exactly the
// entries before the damaged record (and the hard state before it), sets
// the damaged segment and every later one aside whole, takes new entries
// after the last intact one, and opens clean afterwards.
void RepairsDamageBefore(WalOptions options, uint64_t last, bool in_first_segment) {
  MemoryFs fs;
  std::vector<std::string> segments = WriteLog(fs, options, last);
  std::string damaged = in_first_segment ? segments.front() : segments.back();
  std::string path = "wal/" + damaged;
  std::string bytes = fs.Contents(path);
  // An entry in the middle of the first segment, or the last segment's
  // entry before its last.
  std::vector<uint64_t> in_segment = EntriesIn(bytes);
  ASSERT_GE(in_segment.size(), 3u);
  uint64_t index = in_first_segment ? in_segment[in_segment.size() / 2] : in_segment.end()[-2];
  ASSERT_GT(index, 1u);
  size_t offset = OffsetOfEntry(bytes, index);
  fs.FlipBit(path, 8 * (offset + kRecordHeaderBytes + 20));
  std::map<std::string, std::string> files;
  std::vector<std::string> names = fs.List("wal").value();
  for (const std::string& name : names) files[name] = fs.Contents("wal/" + name);

  // Without repair: refused, as ever.
  auto refused = Wal::Open(&fs, "wal", options);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_NE(refused.status().message().find(damaged), std::string::npos);

  auto opened = Wal::Open(&fs, "wal", Repairing(options));
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto& [wal, contents] = *opened;
  EXPECT_EQ(Indexes(contents), Range(1, index - 1));
  EXPECT_EQ(contents.hard_state.commit(), index - 2) << "the hard state before the damage";
  ASSERT_TRUE(contents.damage.has_value());
  EXPECT_EQ(contents.damage->file, path);
  EXPECT_EQ(contents.damage->offset, offset);
  EXPECT_EQ(contents.damage->what, "a checksum does not match");
  // Nothing changed yet, and nothing is written before the damage is set
  // aside.
  for (const auto& [name, content] : files) EXPECT_TRUE(fs.Contents("wal/" + name) == content);
  EXPECT_EQ(wal->Append({E(index, 2)}, H(2, 1)).code(), absl::StatusCode::kFailedPrecondition);

  absl::StatusOr<std::vector<std::string>> set_aside = wal->SetAsideDamage();
  ASSERT_TRUE(set_aside.ok()) << set_aside.status();
  // The damaged segment and every later one, whole, as they were.
  size_t first_set_aside =
      std::find(segments.begin(), segments.end(), damaged) - segments.begin();
  ASSERT_EQ(set_aside->size(), segments.size() - first_set_aside);
  for (size_t i = first_set_aside; i < segments.size(); ++i) {
    std::string broken = "wal/" + segments[i] + ".broken";
    EXPECT_TRUE(fs.Contents(broken) == files[segments[i]]) << broken;
  }
  // New entries after the last intact one, synced, survive a power loss.
  ASSERT_TRUE(wal->Append({E(index, 2), E(index + 1, 2)}, H(2, index - 1)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  opened->first.reset();
  fs.Crash([] { return false; }, [](uint64_t) { return 0; });
  for (bool repair : {false, true}) {
    auto again = Wal::Open(&fs, "wal", repair ? Repairing(options) : options);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->second.damage.has_value());
    EXPECT_EQ(Indexes(again->second), Range(1, index + 1));
    EXPECT_EQ(again->second.entries.back().term(), 2u);
    EXPECT_EQ(again->second.hard_state.term(), 2u);
  }
  // The set-aside files are kept.
  for (size_t i = first_set_aside; i < segments.size(); ++i) {
    EXPECT_TRUE(fs.Exists("wal/" + segments[i] + ".broken"));
  }
}

TEST(WalRepairTest, DamageInTheFirstOfSeveralSegments) {
  RepairsDamageBefore(Small(), 100, /*in_first_segment=*/true);
}

TEST(WalRepairTest, DamageInTheLastSegmentBeforeItsLastRecord) {
  RepairsDamageBefore(WalOptions{}, 10, /*in_first_segment=*/false);
  RepairsDamageBefore(Small(), 100, /*in_first_segment=*/false);
}

TEST(WalRepairTest, ADamagedSegmentHeaderSetsTheWholeSegmentAside) {
  MemoryFs fs;
  std::vector<std::string> segments = WriteLog(fs, Small(), 100);
  ASSERT_GT(segments.size(), 2u);
  // The second segment's header: what the first holds is kept.
  fs.FlipBit("wal/" + segments[1], 8 * 3);
  auto opened = Wal::Open(&fs, "wal", Repairing(Small()));
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto& [wal, contents] = *opened;
  ASSERT_TRUE(contents.damage.has_value());
  EXPECT_EQ(contents.damage->offset, 0u);
  ASSERT_FALSE(contents.entries.empty());
  uint64_t kept = contents.entries.back().index();
  EXPECT_EQ(Indexes(contents), Range(1, kept));
  std::string damaged_bytes = fs.Contents("wal/" + segments[1]);
  ASSERT_TRUE(wal->SetAsideDamage().ok());
  EXPECT_TRUE(fs.Contents("wal/" + segments[1] + ".broken") == damaged_bytes);
  // The log goes on in a new segment, which takes the same name: the
  // second, starting after the last entry kept.
  EXPECT_EQ(wal->segments(), (std::vector<std::string>{segments[0], segments[1]}));
  EXPECT_FALSE(fs.Contents("wal/" + segments[1]) == damaged_bytes);
  ASSERT_TRUE(wal->Append({E(kept + 1, 2)}, H(2, kept)).ok());
  ASSERT_TRUE(wal->Sync().ok());
  auto again = Wal::Open(&fs, "wal", Small());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Indexes(again->second), Range(1, kept + 1));
}

TEST(WalRepairTest, AnEarlierRepairsFilesAreNeverReplaced) {
  // The first segment's header is damaged twice: each time the whole log
  // goes, and the new log's first segment has the same name as the old.
  MemoryFs fs;
  std::string first = WriteLog(fs, Small(), 3).front();
  std::vector<std::string> broken;
  for (int round = 0; round < 3; ++round) {
    fs.FlipBit("wal/" + first, 8 * 3);
    auto opened = Wal::Open(&fs, "wal", Repairing(Small()));
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_TRUE(opened->second.entries.empty());
    absl::StatusOr<std::vector<std::string>> set_aside = opened->first->SetAsideDamage();
    ASSERT_TRUE(set_aside.ok()) << set_aside.status();
    ASSERT_EQ(set_aside->size(), 1u);
    broken.push_back(set_aside->front());
    ASSERT_EQ(opened->first->segments().front(), first);
    ASSERT_TRUE(opened->first->Append({E(1, 1)}, H(1, 0)).ok());
    ASSERT_TRUE(opened->first->Sync().ok());
  }
  EXPECT_EQ(broken, (std::vector<std::string>{first + ".broken", first + ".broken.2",
                                              first + ".broken.3"}));
  for (const std::string& name : broken) EXPECT_TRUE(fs.Exists("wal/" + name)) << name;
}

// A crash at any point of setting the damage aside loses none of the
// records before it: the next recovery finds them all, with the damage
// still to repair, or the log already repaired.
TEST(WalRepairTest, ACrashWhileSettingDamageAsideKeepsWhatCameBefore) {
  for (int syncs_left = 0;; ++syncs_left) {
    MemoryFs fs;
    std::vector<std::string> segments = WriteLog(fs, Small(), 100);
    std::string bytes = fs.Contents("wal/" + segments.front());
    size_t offset = OffsetOfEntry(bytes, 5);
    fs.FlipBit("wal/" + segments.front(), 8 * (offset + kRecordHeaderBytes + 20));
    bool died = false;
    {
      DyingFs dying(&fs, syncs_left);
      auto opened = Wal::Open(&dying, "wal", Repairing(Small()));
      ASSERT_TRUE(opened.ok()) << opened.status();
      absl::StatusOr<std::vector<std::string>> set_aside = opened->first->SetAsideDamage();
      died = dying.died();
      EXPECT_EQ(set_aside.ok(), !died) << set_aside.status();
    }
    fs.Crash([] { return true; }, [](uint64_t n) { return n - 1; });
    auto reopened = Wal::Open(&fs, "wal", Repairing(Small()));
    ASSERT_TRUE(reopened.ok()) << "dying at sync " << syncs_left << ": " << reopened.status();
    EXPECT_EQ(Indexes(reopened->second), Range(1, 4)) << "dying at sync " << syncs_left;
    if (!died) {
      EXPECT_FALSE(reopened->second.damage.has_value());
      break;
    }
    ASSERT_LT(syncs_left, 20);
  }
}

TEST(WalTest, AMissingSegmentIsDataLoss) {
  MemoryFs fs;
  std::vector<std::string> segments;
  {
    auto opened = Wal::Open(&fs, "wal", Small());
    auto& wal = opened->first;
    for (uint64_t i = 1; i <= 100; ++i) {
      ASSERT_TRUE(wal->Append({E(i, 1, std::string(100, 'x'))}, H(1, i)).ok());
      ASSERT_TRUE(wal->Sync().ok());
    }
    segments = wal->segments();
  }
  ASSERT_GT(segments.size(), 2u);
  ASSERT_TRUE(fs.Remove("wal/" + segments[1]).ok());
  auto reopened = Wal::Open(&fs, "wal", Small());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
}

// Random batches, syncs and power losses: after every crash the log holds
// every synced entry that no later batch replaced, contiguously, and nothing
// that was never written.
// An entry whose record payload (the serialized entry) is exactly `bytes`.
raftpb::Entry EntryOfBytes(uint64_t index, uint64_t term, size_t bytes) {
  raftpb::Entry entry = E(index, term, std::string(bytes, 'x'));
  while (entry.ByteSizeLong() > bytes) entry.mutable_data()->pop_back();
  return entry;
}

TEST(WalTest, AnEntryLargerThanARecordHoldsIsRefusedBeforeAnythingIsWritten) {
  // The reader takes a record over kMaxRecordPayloadBytes for damage: once
  // written, the log would refuse to open (kDataLoss) at the next start.
  MemoryFs fs;
  {
    auto opened = Wal::Open(&fs, "wal", Small());
    ASSERT_TRUE(opened.ok()) << opened.status();
    auto& wal = opened->first;
    ASSERT_TRUE(wal->Append({E(1, 1)}, H(1, 1)).ok());
    ASSERT_TRUE(wal->Sync().ok());
    std::vector<std::string> segments = wal->segments();
    std::string bytes = fs.Contents("wal/" + segments.back());
    raftpb::Entry too_large = EntryOfBytes(3, 1, kMaxRecordPayloadBytes + 1);
    ASSERT_EQ(too_large.ByteSizeLong(), kMaxRecordPayloadBytes + 1);
    // Refused whole, with the entries and the hard state before and after it.
    absl::Status refused = wal->Append({E(2, 1), too_large, E(4, 1)}, H(1, 2));
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_EQ(wal->segments(), segments);
    EXPECT_TRUE(fs.Contents("wal/" + segments.back()) == bytes);
    EXPECT_EQ(wal->last_index(), 1u);
    EXPECT_EQ(Wal::CheckFits({E(2, 1), too_large}).code(), absl::StatusCode::kResourceExhausted);
    // The log goes on.
    ASSERT_TRUE(wal->Append({E(2, 1)}, H(1, 2)).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  auto reopened = Wal::Open(&fs, "wal", Small());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Indexes(reopened->second), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(reopened->second.hard_state.commit(), 2u);
}

TEST(WalTest, AnEntryAsLargeAsARecordHoldsRoundTrips) {
  MemoryFs fs;
  raftpb::Entry largest = EntryOfBytes(2, 1, kMaxRecordPayloadBytes);
  ASSERT_EQ(largest.ByteSizeLong(), kMaxRecordPayloadBytes);
  EXPECT_TRUE(Wal::CheckFits({largest}).ok());
  {
    auto opened = Wal::Open(&fs, "wal", Small());
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_TRUE(opened->first->Append({E(1, 1), largest, E(3, 1)}, H(1, 3)).ok());
    ASSERT_TRUE(opened->first->Sync().ok());
  }
  auto reopened = Wal::Open(&fs, "wal", Small());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_EQ(Indexes(reopened->second), (std::vector<uint64_t>{1, 2, 3}));
  // Not EXPECT_EQ: a failure would print 64 MiB.
  EXPECT_TRUE(reopened->second.entries[1].data() == largest.data());
}

RC_GTEST_PROP(WalProperty, SyncedEntriesSurviveCrashes, ()) {
  MemoryFs fs;
  uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  auto chooser = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  WalOptions options{.segment_bytes = *rc::gen::element<uint64_t>(2048, 8192, 1 << 20)};
  std::map<uint64_t, uint64_t> synced, appended;
  std::set<std::pair<uint64_t, uint64_t>> ever_written;
  // The lowest index a batch appended since the last sync replaced.
  uint64_t replaced_from = UINT64_MAX;
  uint64_t term = 1;
  int crashes = *rc::gen::inRange(1, 5);
  for (int round = 0; round <= crashes; ++round) {
    auto opened = Wal::Open(&fs, "wal", options);
    RC_ASSERT(opened.ok());
    auto& wal = opened->first;
    const auto& entries = opened->second.entries;
    std::map<uint64_t, uint64_t> recovered;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) RC_ASSERT(entries[i].index() == entries[i - 1].index() + 1);
      RC_ASSERT(ever_written.count({entries[i].index(), entries[i].term()}) > 0);
      recovered[entries[i].index()] = entries[i].term();
    }
    for (const auto& [index, t] : synced) {
      if (index >= replaced_from) continue;
      RC_ASSERT(recovered.count(index) > 0);
      RC_ASSERT(recovered[index] == t);
    }
    if (round == crashes) break;
    appended = recovered;
    synced = recovered;
    replaced_from = UINT64_MAX;
    ++term;
    int batches = *rc::gen::inRange(1, 8);
    for (int b = 0; b < batches; ++b) {
      uint64_t last = appended.empty() ? 0 : appended.rbegin()->first;
      uint64_t from = last + 1;
      if (last > 0 && *rc::gen::weightedElement<bool>({{3, false}, {1, true}})) {
        // A new leader replaces a suffix.
        from = *rc::gen::inRange<uint64_t>(appended.begin()->first, last + 1);
        replaced_from = std::min(replaced_from, from);
        ++term;
      }
      int count = *rc::gen::inRange(1, 6);
      std::vector<raftpb::Entry> batch;
      for (int i = 0; i < count; ++i) {
        batch.push_back(E(from + i, term, std::string(*rc::gen::inRange(1, 300), 'e')));
        ever_written.insert({from + i, term});
      }
      RC_ASSERT(wal->Append(batch, H(term, 0)).ok());
      appended.erase(appended.lower_bound(from), appended.end());
      for (const auto& e : batch) appended[e.index()] = e.term();
      if (*rc::gen::arbitrary<bool>()) {
        RC_ASSERT(wal->Sync().ok());
        synced = appended;
        replaced_from = UINT64_MAX;
      }
    }
    fs.Crash([&] { return chooser(2) == 1; }, chooser);
  }
}

}  // namespace
}  // namespace etc::storage
