// A file system for crash tests: a MemoryFs on which the process dies at
// its n-th sync (file or directory). That sync and every call after it
// fail and change nothing, as if the process were gone; what it had
// written unsynced is then up to MemoryFs::Crash. Running an operation
// with n = 0, 1, 2, ... until it no longer dies puts a crash before each
// of its syncs in turn.
//
//   MemoryFs fs;
//   DyingFs dying(&fs, /*syncs_left=*/1);
//   absl::Status s = votes->Write(...);           // over &dying: dies at its 2nd sync
//   fs.Crash(tear, uniform);                      // the power goes too
//   ... reopen over &fs and check what survived ...
#ifndef ETC_STORAGE_TESTING_DYING_FS_H_
#define ETC_STORAGE_TESTING_DYING_FS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/fs.h"
#include "storage/memory_fs.h"

namespace etc::storage {

class DyingFs : public FileSystem {
 public:
  DyingFs(MemoryFs* fs, int syncs_left) : fs_(fs), syncs_left_(syncs_left) {}

  class DyingFile : public File {
   public:
    DyingFile(DyingFs* fs, std::unique_ptr<File> file) : fs_(fs), file_(std::move(file)) {}
    absl::Status Append(std::string_view data) override {
      return fs_->Alive() ? file_->Append(data) : Dead();
    }
    absl::Status WriteAt(uint64_t offset, std::string_view data) override {
      return fs_->Alive() ? file_->WriteAt(offset, data) : Dead();
    }
    absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const override {
      return file_->Read(offset, length);
    }
    absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const override {
      return file_->MapReadOnly(length);
    }
    absl::StatusOr<uint64_t> Size() const override { return file_->Size(); }
    absl::Status Truncate(uint64_t size) override {
      return fs_->Alive() ? file_->Truncate(size) : Dead();
    }
    absl::Status Allocate(uint64_t size) override {
      return fs_->Alive() ? file_->Allocate(size) : Dead();
    }
    absl::Status Sync() override { return fs_->SyncAllowed() ? file_->Sync() : Dead(); }
    absl::Status DataSync() override { return fs_->SyncAllowed() ? file_->DataSync() : Dead(); }

   private:
    DyingFs* fs_;
    std::unique_ptr<File> file_;
  };

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path,
                                             OpenOptions options) override {
    if (!Alive()) return Dead();
    absl::StatusOr<std::unique_ptr<File>> file = fs_->Open(path, options);
    if (!file.ok()) return file.status();
    return std::unique_ptr<File>(new DyingFile(this, std::move(*file)));
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return Alive() ? fs_->Rename(from, to) : Dead();
  }
  absl::Status Remove(const std::string& path) override {
    return Alive() ? fs_->Remove(path) : Dead();
  }
  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) const override {
    return fs_->List(dir);
  }
  absl::Status MakeDir(const std::string& dir) override {
    return Alive() ? fs_->MakeDir(dir) : Dead();
  }
  bool Exists(const std::string& path) const override { return fs_->Exists(path); }
  absl::Status SyncDir(const std::string& dir) override {
    return SyncAllowed() ? fs_->SyncDir(dir) : Dead();
  }
  absl::StatusOr<std::unique_ptr<Lock>> LockFile(const std::string& path) override {
    return fs_->LockFile(path);
  }
  absl::StatusOr<uint64_t> FreeBytes(const std::string& dir) const override {
    return fs_->FreeBytes(dir);
  }
  bool died() const { return syncs_left_ < 0; }

 private:
  static absl::Status Dead() { return absl::AbortedError("the process died"); }
  bool Alive() const { return syncs_left_ >= 0; }
  bool SyncAllowed() { return --syncs_left_ >= 0; }

  MemoryFs* fs_;
  int syncs_left_;
};

}  // namespace etc::storage

#endif  // ETC_STORAGE_TESTING_DYING_FS_H_
