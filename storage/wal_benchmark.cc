// Appends per second and fsyncs per second of the WAL on this machine's
// disk, for 256-byte entries with group commit, against the raw fsync rate
// measured in the same run (the physical limit: one 256-byte write and one
// fdatasync, over and over).
//
//   bazel run --config=opt //storage:wal_benchmark -- [directory] [seconds per row]
//
// The directory defaults to a fresh one under /tmp (the disk under test).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/posix_fs.h"
#include "storage/wal.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double RawFsyncsPerSecond(const std::string& dir, double seconds) {
  std::string path = dir + "/raw";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, 64 << 20) != 0) return 0;
  ::fsync(fd);
  std::string record(256, 'r');
  uint64_t syncs = 0;
  off_t offset = 0;
  auto start = Clock::now();
  while (Seconds(start) < seconds) {
    if (::pwrite(fd, record.data(), record.size(), offset) < 0 || ::fdatasync(fd) != 0) break;
    offset = (offset + 256) % (64 << 20);
    ++syncs;
  }
  double rate = static_cast<double>(syncs) / Seconds(start);
  ::close(fd);
  ::unlink(path.c_str());
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  if (argc > 1) {
    dir = argv[1];
  } else {
    char pattern[] = "/tmp/etc-wal-bench-XXXXXX";
    dir = ::mkdtemp(pattern);
  }
  double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  double raw = RawFsyncsPerSecond(dir, seconds);
  std::printf("directory: %s\n", dir.c_str());
  std::printf("raw: 256-byte pwrite + fdatasync: %.0f fsyncs/s\n\n", raw);
  std::printf("| entries per batch | entries/s | fsyncs/s | fsyncs/s vs raw | MB/s |\n");
  std::printf("|---|---|---|---|---|\n");
  etc::storage::PosixFs fs;
  for (int batch : {1, 8, 64, 256}) {
    std::string wal_dir = dir + "/wal-" + std::to_string(batch);
    auto opened = etc::storage::Wal::Open(&fs, wal_dir, {});
    if (!opened.ok()) {
      std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
      return 1;
    }
    auto& wal = opened->first;
    uint64_t index = 0;
    std::vector<etc::raftpb::Entry> entries(batch);
    etc::raftpb::HardState state;
    state.set_term(1);
    auto start = Clock::now();
    uint64_t syncs_before = wal->syncs();
    while (Seconds(start) < seconds) {
      for (auto& entry : entries) {
        entry.set_index(++index);
        entry.set_term(1);
        entry.set_data(std::string(256, 'e'));
      }
      state.set_commit(index);
      if (!wal->Append(entries, state).ok() || !wal->Sync().ok()) return 1;
    }
    double elapsed = Seconds(start);
    double syncs = static_cast<double>(wal->syncs() - syncs_before) / elapsed;
    std::printf("| %d | %.0f | %.0f | %.2f | %.1f |\n", batch, index / elapsed, syncs,
                raw > 0 ? syncs / raw : 0, index * 256 / elapsed / 1e6);
    for (const std::string& name : wal->segments()) ::unlink((wal_dir + "/" + name).c_str());
    ::rmdir(wal_dir.c_str());
  }
  if (argc <= 1) ::rmdir(dir.c_str());
  return 0;
}
