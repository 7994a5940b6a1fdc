// The file-system interface the storage code is written against: small
// enough to implement twice, once over POSIX for the server (posix_fs.h) and
// once as a simulated disk for the simulator (sim/sim_fs.h), so the same WAL
// and snapshot code runs in both and every crash the simulator explores
// exercises the real recovery code.
//
// Durability is explicit: data written is not durable until the file is
// synced, and a new or renamed file's name is not durable until its
// directory is synced. A crash may lose anything not yet durable (and may
// tear the last unsynced write of a file at a sector boundary).
//
//   std::unique_ptr<File> file = fs.Open("wal/0001.wal", {.create = true}).value();
//   file->Append(record);
//   file->Sync();                 // the record is durable now
//   fs.SyncDir("wal");            // and so is the file's name
#ifndef ETC_STORAGE_FS_H_
#define ETC_STORAGE_FS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace etc::storage {

// A file's bytes mapped read-only (see File::MapReadOnly).
class FileView {
 public:
  virtual ~FileView() = default;
  virtual std::string_view bytes() const = 0;
};

class File {
 public:
  virtual ~File() = default;
  // Writes at the end of the file.
  virtual absl::Status Append(std::string_view data) = 0;
  // Writes at `offset` (at most the current size: no holes).
  virtual absl::Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // Reads up to `length` bytes at `offset` (fewer at the end of the file).
  virtual absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const = 0;
  // The file's first `length` bytes, readable without a call per read (a
  // memory map), for a file nobody writes or truncates any more: the view
  // stays valid while it lives, even once the file is closed or removed.
  // Errors: the file is shorter than `length` (kOutOfRange), or the map
  // failed (then Read still works).
  virtual absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const = 0;
  virtual absl::StatusOr<uint64_t> Size() const = 0;
  virtual absl::Status Truncate(uint64_t size) = 0;
  // Extends the file with zeros to at least `size` bytes, reserving the
  // space (fallocate), so later writes inside it need no size change.
  virtual absl::Status Allocate(uint64_t size) = 0;
  // Makes the file's data and size durable (fsync).
  virtual absl::Status Sync() = 0;
  // Makes the file's data durable, and its size only if it changed (fdatasync).
  virtual absl::Status DataSync() = 0;
};

struct OpenOptions {
  // Create the file if it does not exist (else opening a missing file fails
  // with kNotFound).
  bool create = false;
  // Fail with kAlreadyExists if it exists.
  bool exclusive = false;
  // A file written front to back with Append and not read back soon (a
  // snapshot file): the file system may write it past its page cache
  // (O_DIRECT), which costs a fraction of the CPU of copying it into the
  // cache. Appended bytes then reach the file by the next call that is not
  // an Append (Sync included), or when the file is closed; such a file is
  // for one thread at a time. The simulated disk ignores it.
  bool uncached_appends = false;
};

// Holds an exclusive lock on a data directory until destroyed.
class Lock {
 public:
  virtual ~Lock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                                     OpenOptions options) = 0;
  // Atomic: afterwards `to` names what `from` named (replacing it). Durable
  // only once the directory is synced.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // The names (not paths) in a directory, sorted. kNotFound if it is missing.
  virtual absl::StatusOr<std::vector<std::string>> List(const std::string& dir) const = 0;
  virtual absl::Status MakeDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) const = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive lock on `path` (created if needed); kUnavailable if
  // another holder has it.
  virtual absl::StatusOr<std::unique_ptr<Lock>> LockFile(const std::string& path) = 0;
  // Bytes an unprivileged writer can still allocate on the file system
  // that holds `dir` (statvfs's f_bavail). Safe beside the other calls
  // where the implementation is thread-safe at all (PosixFs is).
  virtual absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) const = 0;
};

// The file system is full (ENOSPC): kResourceExhausted, marked so that a
// caller can tell it from the other resource errors (a record or snapshot
// too large for its file), which a retry never cures. Where a caller may
// retry, the operation that failed must have changed nothing durable (see
// Wal::Append); a failed fsync is never one of those, whatever its errno.
absl::Status NoSpaceError(std::string_view message);
bool IsNoSpace(const absl::Status& status);
// For a failure after which a retry is not safe even if it came from a full
// disk: a no-space error becomes kInternal with the same message (so that
// kResourceExhausted without the mark still means only "too large").
absl::Status NotRetryable(absl::Status status);

// A whole file's contents.
absl::StatusOr<std::string> ReadAll(const File& file);

// Makes <dir>/<name> hold `bytes`, atomically and durably: written to a
// temporary file, synced, renamed over it, the directory synced. A crash
// leaves the old file (or none) or the new one whole. NoSpaceError
// (IsNoSpace) if the disk was full before the rename (nothing changed, the
// temporary file removed); what the file system failed with after it is
// never marked no-space.
absl::Status ReplaceFile(FileSystem* fs, const std::string& dir, const std::string& name,
                         std::string_view bytes);

// Damage recovery found in a stored file and worked around, for the host
// to log.
struct Damage {
  std::string file;  // its path
  // Where the damaged data starts (0 where the file is checked whole, as a
  // snapshot file is).
  uint64_t offset = 0;
  std::string what;
};

// "dir/name", with exactly one '/' between them.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace etc::storage

#endif  // ETC_STORAGE_FS_H_
