// A file system in memory that keeps what was written apart from what is
// durable, for the simulator and the storage tests: a crash loses every
// write that was not synced, may tear the last unsynced write of each file
// at a sector boundary, and forgets directory changes (creations, renames,
// removals) that were not followed by a SyncDir. It can also flip bits in
// stored data, as a failing disk does. Deterministic: every choice a crash
// makes comes from the `chooser` passed in.
//
//   MemoryFs fs;
//   ... run the WAL over &fs ...
//   fs.Crash([&] { return random.Chance(0.5); },                // power loss
//            [&](uint64_t n) { return random.Uniform(n); });
//   ... reopen the WAL over &fs and check what survived ...
#ifndef ETC_STORAGE_MEMORY_FS_H_
#define ETC_STORAGE_MEMORY_FS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "storage/fs.h"

namespace etc::storage {

class MemoryFs : public FileSystem {
 public:
  // Writes are torn only at sector boundaries (record.h's kSectorBytes).
  static constexpr uint64_t kSectorBytes = 512;

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             OpenOptions options) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Remove(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) const override;
  absl::Status MakeDir(const std::string& dir) override;
  bool Exists(const std::string& path) const override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<std::unique_ptr<Lock>> LockFile(const std::string& path) override;
  // The capacity left, the whole file system being one disk (`dir` aside).
  absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) const override;

  // Power loss. For each file, writes since its last sync are lost, except
  // that the oldest one may survive in part (a prefix of whole sectors) when
  // `tear()` says so. Directory entries not synced revert. Locks are
  // released. `uniform(n)` returns a number in [0, n).
  void Crash(const std::function<bool()>& tear,
             const std::function<uint64_t(uint64_t n)>& uniform);
  // Flips one bit of a file's durable (and current) contents.
  void FlipBit(const std::string& path, uint64_t bit);
  // The current contents of a file (empty if missing), for tests.
  std::string Contents(const std::string& path) const;
  // From now on every file and directory sync fails with an I/O error,
  // and a failed file sync drops the file's unsynced writes (a disk going
  // bad); false: syncs work again.
  void set_fail_syncs(bool fail) { fail_syncs_ = fail; }
  // The next `count` file or directory syncs fail the same way, and later
  // ones work again: Linux reports a failed writeback once, so a sync
  // retried after the error "succeeds" over the dropped pages.
  void fail_next_syncs(int count) { failing_syncs_ = count; }
  // The disk holds at most this many bytes of file contents (files' current
  // sizes, in every directory): a write or allocation that would pass it
  // fails with NoSpaceError and changes nothing, as ENOSPC does. Lowering it
  // below what is stored fills the disk. Default: no limit.
  void set_capacity_bytes(uint64_t capacity_bytes) { capacity_bytes_ = capacity_bytes; }
  uint64_t used_bytes() const;
  // File and directory syncs so far.
  uint64_t syncs() const { return syncs_; }

 private:
  friend class MemoryFile;
  struct Write {
    uint64_t offset;
    std::string data;
  };
  // One file's bytes: what is durable, and the writes since (in order).
  struct Inode {
    std::string durable;
    std::string current;
    std::vector<Write> unsynced;
  };
  struct Directory {
    // name -> inode, as the directory currently says, and as it durably says.
    std::map<std::string, std::shared_ptr<Inode>> current;
    std::map<std::string, std::shared_ptr<Inode>> durable;
    bool durable_exists = false;
  };
  static std::pair<std::string, std::string> Split(const std::string& path);
  std::shared_ptr<Inode> Find(const std::string& path) const;

  std::map<std::string, Directory> dirs_;
  std::set<std::string> locked_;
  // Shared with the locks handed out since the last crash; a crash clears
  // it, so those locks no longer release anything.
  std::shared_ptr<bool> lock_generation_;
  uint64_t syncs_ = 0;
  bool fail_syncs_ = false;
  int failing_syncs_ = 0;
  // Whether this sync fails (counting it down if only the next few do).
  bool SyncFails() {
    if (fail_syncs_) return true;
    if (failing_syncs_ == 0) return false;
    --failing_syncs_;
    return true;
  }
  uint64_t capacity_bytes_ = UINT64_MAX;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_MEMORY_FS_H_
