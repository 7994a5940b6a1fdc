// An LD_PRELOAD library for tests: fsync and fdatasync fail with EIO while
// the file named by $ETC_TEST_FAIL_SYNC_IF exists, as a failing disk's do;
// otherwise they are the C library's. (The file's own path is checked with
// access(), which does not sync anything.)
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

#include <cstdlib>

namespace {

bool Failing() {
  const char* trigger = std::getenv("ETC_TEST_FAIL_SYNC_IF");
  return trigger != nullptr && ::access(trigger, F_OK) == 0;
}

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  if (Failing()) {
    errno = EIO;
    return -1;
  }
  static auto real = Next<int (*)(int)>("fsync");
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  if (Failing()) {
    errno = EIO;
    return -1;
  }
  static auto real = Next<int (*)(int)>("fdatasync");
  return real(fd);
}
