// The file-system interface over POSIX files: what the server runs on.
// Paths are used as given (relative to the working directory or absolute).
#ifndef ETC_STORAGE_POSIX_FS_H_
#define ETC_STORAGE_POSIX_FS_H_

#include "storage/fs.h"

namespace etc::storage {

class PosixFs : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             OpenOptions options) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Remove(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) const override;
  absl::Status MakeDir(const std::string& dir) override;
  bool Exists(const std::string& path) const override;
  absl::Status SyncDir(const std::string& dir) override;
  // flock(LOCK_EX | LOCK_NB): released when the lock (or the process) ends.
  absl::StatusOr<std::unique_ptr<Lock>> LockFile(const std::string& path) override;
  absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) const override;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_POSIX_FS_H_
