// A stand-in for a member's write loop, for the real-process crash test
// (crash_test.sh): opens a data directory on real files, reports what it
// recovered, then appends batches of 256-byte entries, syncing each and
// printing "acked <last index>" only after the sync returned, until it is
// killed. Whatever it printed as acked must be there after a SIGKILL.
//
//   crash_writer <data dir> [entries per batch]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/data_dir.h"
#include "storage/posix_fs.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <data dir> [entries per batch]\n", argv[0]);
    return 2;
  }
  int per_batch = argc > 2 ? std::atoi(argv[2]) : 8;
  etc::storage::PosixFs fs;
  etc::storage::DataDirOptions options;
  options.wal.segment_bytes = 256 * 1024;  // rotate often
  auto dir = etc::storage::DataDir::Open(&fs, argv[1], options);
  if (!dir.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", argv[1], dir.status().ToString().c_str());
    return 1;
  }
  const etc::raft::DurableState& recovered = (*dir)->recovered();
  uint64_t last = recovered.last_index();
  std::printf("recovered %llu truncated %llu\n", static_cast<unsigned long long>(last),
              static_cast<unsigned long long>((*dir)->truncated_bytes()));
  std::fflush(stdout);
  uint64_t term = recovered.hard_state.term() + 1;
  for (;;) {
    std::vector<etc::raftpb::Entry> entries;
    for (int i = 0; i < per_batch; ++i) {
      etc::raftpb::Entry entry;
      entry.set_index(++last);
      entry.set_term(term);
      entry.set_data(std::string(256, static_cast<char>('a' + last % 26)));
      entries.push_back(std::move(entry));
    }
    etc::raftpb::HardState state;
    state.set_term(term);
    state.set_commit(last);
    if (!(*dir)->Write(nullptr, entries, state).ok() || !(*dir)->Sync().ok()) {
      std::fprintf(stderr, "write failed\n");
      return 1;
    }
    std::printf("acked %llu\n", static_cast<unsigned long long>(last));
    std::fflush(stdout);
    if (last % 4096 < static_cast<uint64_t>(per_batch)) {
      // Now and then a snapshot and a log release, as a member does.
      etc::raftpb::Snapshot snapshot;
      snapshot.mutable_metadata()->set_index(last);
      snapshot.mutable_metadata()->set_term(term);
      snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
      snapshot.set_data("state at " + std::to_string(last));
      if (!(*dir)->SaveSnapshot(snapshot).ok() || !(*dir)->CompactLog(last - 100).ok()) {
        std::fprintf(stderr, "snapshot failed\n");
        return 1;
      }
    }
  }
}
