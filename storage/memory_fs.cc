#include "storage/memory_fs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace etc::storage {

class CopiedView : public FileView {
 public:
  explicit CopiedView(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string_view bytes() const override { return bytes_; }

 private:
  std::string bytes_;
};

class MemoryFile : public File {
 public:
  MemoryFile(MemoryFs* fs, std::shared_ptr<MemoryFs::Inode> inode)
      : fs_(fs), inode_(std::move(inode)) {}

  absl::Status Append(std::string_view data) override {
    return WriteAt(inode_->current.size(), data);
  }
  absl::Status WriteAt(uint64_t offset, std::string_view data) override {
    std::string& bytes = inode_->current;
    if (offset > bytes.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("write at ", offset, " past the end of a ", bytes.size(), "-byte file"));
    }
    if (offset + data.size() > bytes.size()) {
      uint64_t growth_bytes = offset + data.size() - bytes.size();
      if (fs_->capacity_bytes_ != UINT64_MAX &&
          fs_->used_bytes() + growth_bytes > fs_->capacity_bytes_) {
        return NoSpaceError("write: no space left on device");
      }
      bytes.resize(offset + data.size());
    }
    bytes.replace(offset, data.size(), data);
    inode_->unsynced.push_back(MemoryFs::Write{offset, std::string(data)});
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const override {
    const std::string& bytes = inode_->current;
    if (offset >= bytes.size()) return std::string();
    return bytes.substr(offset, length);
  }
  // A copy: a crash replaces the inode's bytes, which must not pull them
  // from under a view that outlives it (as a real map outlives its file).
  absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const override {
    const std::string& bytes = inode_->current;
    if (bytes.size() < length) {
      return absl::OutOfRangeError(absl::StrCat("mapping ", length, " bytes of a ", bytes.size(),
                                                "-byte file"));
    }
    return std::make_unique<CopiedView>(bytes.substr(0, length));
  }
  absl::StatusOr<uint64_t> Size() const override { return inode_->current.size(); }
  absl::Status Truncate(uint64_t size) override {
    if (size > inode_->current.size()) return Allocate(size);
    inode_->current.resize(size);
    // A truncation is a metadata change: recorded as an empty write at the
    // new size, it is lost in a crash unless synced (like any write).
    inode_->unsynced.push_back(MemoryFs::Write{size, std::string()});
    return absl::OkStatus();
  }
  absl::Status Allocate(uint64_t size) override {
    if (size <= inode_->current.size()) return absl::OkStatus();
    return WriteAt(inode_->current.size(), std::string(size - inode_->current.size(), '\0'));
  }
  absl::Status Sync() override {
    if (fs_->SyncFails()) {
      // As Linux after a failed writeback: the dirty pages are gone (the
      // file reads as what was durable) and the error is reported once.
      inode_->current = inode_->durable;
      inode_->unsynced.clear();
      return absl::DataLossError("fsync: input/output error");
    }
    inode_->durable = inode_->current;
    inode_->unsynced.clear();
    ++fs_->syncs_;
    return absl::OkStatus();
  }
  absl::Status DataSync() override { return Sync(); }

 private:
  MemoryFs* fs_;
  std::shared_ptr<MemoryFs::Inode> inode_;
};

namespace {

class MemoryLock : public Lock {
 public:
  MemoryLock(std::set<std::string>* locked, std::string path, std::shared_ptr<bool> alive)
      : locked_(locked), path_(std::move(path)), alive_(std::move(alive)) {}
  ~MemoryLock() override {
    if (*alive_) locked_->erase(path_);
  }

 private:
  std::set<std::string>* locked_;
  std::string path_;
  // False once a crash released every lock (a later holder owns the path).
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::pair<std::string, std::string> MemoryFs::Split(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::shared_ptr<MemoryFs::Inode> MemoryFs::Find(const std::string& path) const {
  auto [dir, name] = Split(path);
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) return nullptr;
  auto it = d->second.current.find(name);
  return it == d->second.current.end() ? nullptr : it->second;
}

absl::StatusOr<std::unique_ptr<File>> MemoryFs::Open(const std::string& path,
                                                     OpenOptions options) {
  auto [dir, name] = Split(path);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("no file name in ", path));
  if (!dir.empty() && !dirs_.contains(dir)) {
    return absl::NotFoundError(absl::StrCat("no directory ", dir));
  }
  Directory& d = dirs_[dir];
  auto it = d.current.find(name);
  if (it != d.current.end()) {
    if (options.exclusive) return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
    return std::unique_ptr<File>(new MemoryFile(this, it->second));
  }
  if (!options.create) return absl::NotFoundError(absl::StrCat("no file ", path));
  auto inode = std::make_shared<Inode>();
  d.current[name] = inode;
  return std::unique_ptr<File>(new MemoryFile(this, inode));
}

absl::Status MemoryFs::Rename(const std::string& from, const std::string& to) {
  auto [from_dir, from_name] = Split(from);
  auto [to_dir, to_name] = Split(to);
  auto fd = dirs_.find(from_dir);
  if (fd == dirs_.end() || !fd->second.current.contains(from_name)) {
    return absl::NotFoundError(absl::StrCat("no file ", from));
  }
  if (!to_dir.empty() && !dirs_.contains(to_dir)) {
    return absl::NotFoundError(absl::StrCat("no directory ", to_dir));
  }
  std::shared_ptr<Inode> inode = fd->second.current[from_name];
  fd->second.current.erase(from_name);
  dirs_[to_dir].current[to_name] = std::move(inode);
  return absl::OkStatus();
}

absl::Status MemoryFs::Remove(const std::string& path) {
  auto [dir, name] = Split(path);
  auto d = dirs_.find(dir);
  if (d == dirs_.end() || d->second.current.erase(name) == 0) {
    return absl::NotFoundError(absl::StrCat("no file ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryFs::List(const std::string& dir) const {
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) return absl::NotFoundError(absl::StrCat("no directory ", dir));
  std::vector<std::string> names;
  for (const auto& [name, inode] : d->second.current) names.push_back(name);
  return names;
}

absl::Status MemoryFs::MakeDir(const std::string& dir) {
  // Directories are durable as soon as they are made (a simplification:
  // the storage code syncs the files and entries inside them).
  Directory& d = dirs_[dir];
  d.durable_exists = true;
  return absl::OkStatus();
}

bool MemoryFs::Exists(const std::string& path) const {
  if (dirs_.contains(path)) return true;
  return Find(path) != nullptr;
}

uint64_t MemoryFs::used_bytes() const {
  uint64_t used = 0;
  for (const auto& [path, dir] : dirs_) {
    for (const auto& [name, inode] : dir.current) used += inode->current.size();
  }
  return used;
}

absl::StatusOr<uint64_t> MemoryFs::FreeBytes(const std::string& dir) const {
  if (capacity_bytes_ == UINT64_MAX) return UINT64_MAX;
  uint64_t used = used_bytes();
  return used >= capacity_bytes_ ? 0 : capacity_bytes_ - used;
}

absl::Status MemoryFs::SyncDir(const std::string& dir) {
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) return absl::NotFoundError(absl::StrCat("no directory ", dir));
  if (SyncFails()) return absl::DataLossError("fsync of a directory: input/output error");
  d->second.durable = d->second.current;
  ++syncs_;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Lock>> MemoryFs::LockFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<File>> file = Open(path, {.create = true});
  if (!file.ok()) return file.status();
  if (!locked_.insert(path).second) {
    return absl::UnavailableError(absl::StrCat(path, " is locked by another process"));
  }
  if (lock_generation_ == nullptr) lock_generation_ = std::make_shared<bool>(true);
  return std::unique_ptr<Lock>(new MemoryLock(&locked_, path, lock_generation_));
}

void MemoryFs::Crash(const std::function<bool()>& tear,
                     const std::function<uint64_t(uint64_t n)>& uniform) {
  std::set<Inode*> done;
  auto recover = [&](Inode& inode) {
    if (!done.insert(&inode).second) return;
    std::string survived = inode.durable;
    if (!inode.unsynced.empty() && tear()) {
      // The oldest unsynced write reached the disk in part: whole sectors
      // from its start, up to some sector boundary.
      const Write& write = inode.unsynced.front();
      uint64_t end = write.offset + write.data.size();
      uint64_t first_boundary = (write.offset / kSectorBytes + 1) * kSectorBytes;
      // Sectors the write touches: the (partial) first, then whole ones.
      uint64_t sectors = end > first_boundary ? (end - first_boundary + kSectorBytes - 1) / kSectorBytes + 1 : 1;
      uint64_t keep = uniform(sectors + 1);
      uint64_t keep_end =
          keep == 0 ? write.offset : std::min(end, first_boundary + (keep - 1) * kSectorBytes);
      uint64_t kept = keep_end - write.offset;
      if (write.offset <= survived.size()) {
        if (write.offset + kept > survived.size()) survived.resize(write.offset + kept);
        survived.replace(write.offset, kept, write.data.substr(0, kept));
      }
    }
    inode.durable = survived;
    inode.current = survived;
    inode.unsynced.clear();
  };
  for (auto& [path, dir] : dirs_) {
    for (auto& [name, inode] : dir.durable) recover(*inode);
    dir.current = dir.durable;
  }
  locked_.clear();
  if (lock_generation_ != nullptr) *lock_generation_ = false;
  lock_generation_ = nullptr;
}

void MemoryFs::FlipBit(const std::string& path, uint64_t bit) {
  std::shared_ptr<Inode> inode = Find(path);
  if (inode == nullptr || inode->current.empty()) return;
  uint64_t byte = (bit / 8) % inode->current.size();
  char mask = static_cast<char>(1 << (bit % 8));
  inode->current[byte] ^= mask;
  if (byte < inode->durable.size()) inode->durable[byte] ^= mask;
}

std::string MemoryFs::Contents(const std::string& path) const {
  std::shared_ptr<Inode> inode = Find(path);
  return inode == nullptr ? std::string() : inode->current;
}

}  // namespace etc::storage
