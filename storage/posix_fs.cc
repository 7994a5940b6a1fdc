#include "storage/posix_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace etc::storage {
namespace {

absl::Status Errno(std::string_view what, const std::string& path) {
  int error = errno;
  std::string message = absl::StrCat(std::string(what), " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return NoSpaceError(message);
    default:
      return absl::InternalError(message);
  }
}

// A MAP_SHARED read-only map: the page cache's own pages, so reading a
// value costs a copy, not a system call, and a forked snapshot writer
// inherits it. A read error of the disk under a mapped page is a SIGBUS,
// not a status; the value log, the only user, is derived state that a
// restart rebuilds.
class MappedView : public FileView {
 public:
  MappedView(void* address, uint64_t length) : address_(address), length_(length) {}
  ~MappedView() override {
    if (length_ > 0) ::munmap(address_, length_);
  }
  std::string_view bytes() const override {
    return std::string_view(static_cast<const char*>(address_), length_);
  }

 private:
  void* address_;
  uint64_t length_;
};

// `failed_errno`, if given, gets the failed write's errno (the status's
// message was built after it).
absl::Status WriteAll(int fd, const std::string& path, uint64_t offset, std::string_view data,
                      int* failed_errno = nullptr) {
  while (!data.empty()) {
    ssize_t written = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      if (failed_errno != nullptr) *failed_errno = errno;
      return Errno("writing", path);
    }
    data.remove_prefix(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
  return absl::OkStatus();
}

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  absl::Status Append(std::string_view data) override {
    absl::StatusOr<uint64_t> size = Size();
    if (!size.ok()) return size.status();
    return WriteAt(*size, data);
  }
  absl::Status WriteAt(uint64_t offset, std::string_view data) override {
    return WriteAll(fd_, path_, offset, data);
  }
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const override {
    std::string out(length, '\0');
    uint64_t done = 0;
    while (done < length) {
      ssize_t got = ::pread(fd_, out.data() + done, length - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return Errno("reading", path_);
      }
      if (got == 0) break;
      done += static_cast<uint64_t>(got);
    }
    out.resize(done);
    return out;
  }
  absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const override {
    absl::StatusOr<uint64_t> size = Size();
    if (!size.ok()) return size.status();
    // Pages past the end of the file would fault (SIGBUS) when read.
    if (*size < length) {
      return absl::OutOfRangeError(
          absl::StrCat("mapping ", length, " bytes of ", path_, ", which has ", *size));
    }
    if (length == 0) return std::make_unique<MappedView>(nullptr, 0);
    void* address = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
    if (address == MAP_FAILED) return Errno("mapping", path_);
    return std::make_unique<MappedView>(address, length);
  }
  absl::StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Errno("stat of", path_);
    return static_cast<uint64_t>(st.st_size);
  }
  absl::Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno("truncating", path_);
    return absl::OkStatus();
  }
  absl::Status Allocate(uint64_t size) override {
    absl::StatusOr<uint64_t> current = Size();
    if (!current.ok()) return current.status();
    if (*current >= size) return absl::OkStatus();
    int error = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (error == 0) return absl::OkStatus();
    if (error != EOPNOTSUPP && error != EINVAL) {
      errno = error;
      return Errno("allocating", path_);
    }
    // File systems without fallocate: a sparse extension still reads as zeros.
    return Truncate(size);
  }
  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return Errno("fsync of", path_);
    return absl::OkStatus();
  }
  absl::Status DataSync() override {
    if (::fdatasync(fd_) != 0) return Errno("fdatasync of", path_);
    return absl::OkStatus();
  }

 protected:
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

class PosixLock : public Lock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

// OpenOptions::uncached_appends: appends collect in an aligned buffer that
// goes to the file a megabyte at a time with O_DIRECT (the kernel moves it
// to the disk without copying it into the page cache). The buffer always
// starts at a block-aligned offset of the file: any other call first
// writes the whole blocks held the same way and the last partial block
// through the cache, and keeps that block, so that later appends go on
// from an aligned offset (the direct write of a block supersedes the
// cached copy; the kernel keeps the two coherent). Where O_DIRECT is
// refused (some file systems, tmpfs before Linux 6.6), or the file did not
// start at an aligned size, every write goes through the cache as in
// PosixFile. One thread at a time, unlike PosixFile: even its reads may
// write what is held.
class UncachedAppendFile : public PosixFile {
 public:
  UncachedAppendFile(int fd, std::string path) : PosixFile(fd, std::move(path)) {}
  ~UncachedAppendFile() override {
    // Nobody to tell of an error here: callers that care call Sync.
    WriteHeld().IgnoreError();
    std::free(held_);
  }

  absl::Status Append(std::string_view data) override {
    if (!Start()) return PosixFile::Append(data);
    while (!data.empty()) {
      size_t n = std::min(data.size(), kChunkBytes - held_bytes_);
      std::memcpy(held_ + held_bytes_, data.data(), n);
      held_bytes_ += n;
      data.remove_prefix(n);
      if (held_bytes_ == kChunkBytes) {
        if (absl::Status s = WriteHeld(); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }
  absl::Status WriteAt(uint64_t offset, std::string_view data) override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    // It may write inside the held block or move the end: the held copy
    // would be stale.
    Stop();
    return PosixFile::WriteAt(offset, data);
  }
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    return PosixFile::Read(offset, length);
  }
  absl::StatusOr<std::unique_ptr<FileView>> MapReadOnly(uint64_t length) const override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    return PosixFile::MapReadOnly(length);
  }
  absl::StatusOr<uint64_t> Size() const override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    return PosixFile::Size();
  }
  absl::Status Truncate(uint64_t size) override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    Stop();
    return PosixFile::Truncate(size);
  }
  absl::Status Allocate(uint64_t size) override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    Stop();
    return PosixFile::Allocate(size);
  }
  absl::Status Sync() override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    return PosixFile::Sync();
  }
  absl::Status DataSync() override {
    if (absl::Status s = WriteHeld(); !s.ok()) return s;
    return PosixFile::DataSync();
  }

 private:
  // O_DIRECT wants the buffer, the offset and the length aligned to the
  // device's logical block (512 or 4096 bytes).
  static constexpr size_t kBlockBytes = 4096;
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  // Whether appends go through the buffer; decided at the first append
  // (after the caller's Truncate(0), say).
  bool Start() {
    if (state_ == State::kUnknown) {
      absl::StatusOr<uint64_t> size = PosixFile::Size();
      void* buffer = nullptr;
      if (size.ok() && *size % kBlockBytes == 0 &&
          ::posix_memalign(&buffer, kBlockBytes, kChunkBytes) == 0) {
        held_ = static_cast<char*>(buffer);
        held_offset_ = *size;
        state_ = State::kHolding;
      } else {
        state_ = State::kCached;
      }
    }
    return state_ == State::kHolding;
  }
  // Writes what is held (see the class comment). Const because reads
  // call it too: the held bytes are the file's as far as callers know.
  absl::Status WriteHeld() const {
    if (state_ != State::kHolding || held_bytes_ == 0) return absl::OkStatus();
    size_t whole = held_bytes_ / kBlockBytes * kBlockBytes;
    if (whole > 0) {
      if (absl::Status s = WriteDirect(std::string_view(held_, whole)); !s.ok()) return s;
    }
    size_t tail = held_bytes_ - whole;
    if (tail > 0) {
      std::string_view partial(held_ + whole, tail);
      if (absl::Status s = WriteAll(fd(), path(), held_offset_ + whole, partial); !s.ok()) {
        return s;
      }
    }
    // The partial block stays held, at the front, for the next appends.
    std::memmove(held_, held_ + whole, tail);
    held_offset_ += whole;
    held_bytes_ = tail;
    return absl::OkStatus();
  }
  // `bytes` (whole blocks of held_) at held_offset_, past the cache if the
  // file system allows it, else through it.
  absl::Status WriteDirect(std::string_view bytes) const {
    int flags = ::fcntl(fd(), F_GETFL);
    if (direct_allowed_ && flags >= 0 && ::fcntl(fd(), F_SETFL, flags | O_DIRECT) == 0) {
      int error = 0;
      absl::Status status = WriteAll(fd(), path(), held_offset_, bytes, &error);
      if (::fcntl(fd(), F_SETFL, flags) != 0) {
        direct_allowed_ = false;
        return Errno("clearing O_DIRECT on", path());
      }
      // Some file systems take the flag and refuse the write (EINVAL); a
      // short write's unaligned rest is refused the same way. Written
      // again whole through the cache, the bytes are the same.
      if (status.ok() || error != EINVAL) return status;
    }
    direct_allowed_ = false;
    return WriteAll(fd(), path(), held_offset_, bytes);
  }
  // Back to deciding at the next append (a Truncate, Allocate or WriteAt
  // may move the end or change held bytes).
  void Stop() {
    held_bytes_ = 0;
    state_ = State::kUnknown;
    std::free(held_);
    held_ = nullptr;
  }

  enum class State { kUnknown, kHolding, kCached };
  State state_ = State::kUnknown;
  // kChunkBytes, block-aligned; its first held_bytes_ are the file's from
  // held_offset_ (a multiple of kBlockBytes) on.
  mutable char* held_ = nullptr;
  mutable size_t held_bytes_ = 0;
  mutable uint64_t held_offset_ = 0;
  // Cleared once the file system refuses O_DIRECT.
  mutable bool direct_allowed_ = true;
};

}  // namespace

absl::StatusOr<std::unique_ptr<File>> PosixFs::Open(const std::string& path, OpenOptions options) {
  int flags = O_RDWR | O_CLOEXEC;
  if (options.create) flags |= O_CREAT;
  if (options.exclusive) flags |= O_EXCL;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return Errno("opening", path);
  if (options.uncached_appends) return std::unique_ptr<File>(new UncachedAppendFile(fd, path));
  return std::unique_ptr<File>(new PosixFile(fd, path));
}

absl::Status PosixFs::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Errno("renaming", from);
  return absl::OkStatus();
}

absl::Status PosixFs::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return Errno("removing", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PosixFs::List(const std::string& dir) const {
  DIR* handle = ::opendir(dir.empty() ? "." : dir.c_str());
  if (handle == nullptr) return Errno("listing", dir);
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(handle)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status PosixFs::MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("creating directory", dir);
  // The new directory's name must survive a crash too.
  std::string parent = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
  return SyncDir(parent.empty() ? "/" : parent);
}

bool PosixFs::Exists(const std::string& path) const {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status PosixFs::SyncDir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening directory", dir);
  int result = ::fsync(fd);
  ::close(fd);
  if (result != 0) return Errno("fsync of directory", dir);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Lock>> PosixFs::LockFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("opening lock file", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat(path, " is locked by another process"));
    }
    errno = error;
    return Errno("locking", path);
  }
  return std::unique_ptr<Lock>(new PosixLock(fd));
}

absl::StatusOr<uint64_t> PosixFs::FreeBytes(const std::string& dir) const {
  struct statvfs st;
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) return Errno("statvfs of", dir);
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

}  // namespace etc::storage
