// How many threads this process runs now (the entries of /proc/self/task),
// for tests that check a server costs no thread per connection or stream:
//
//   size_t before = ThreadCount();
//   ... open 300 streams ...
//   EXPECT_LE(ThreadCount(), before + 8);
#ifndef ETC_SERVER_TESTING_THREADS_H_
#define ETC_SERVER_TESTING_THREADS_H_

#include <dirent.h>

#include <cstddef>

namespace etc::server {

inline size_t ThreadCount() {
  size_t count = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count;
}

}  // namespace etc::server

#endif  // ETC_SERVER_TESTING_THREADS_H_
