#include "server/json_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace etc::server {

std::string JsonEscape(std::string_view message) {
  std::string escaped;
  escaped.reserve(message.size());
  for (char c : message) {
    switch (c) {
      case '"':
        escaped += "\\\"";
        break;
      case '\\':
        escaped += "\\\\";
        break;
      case '\n':
        escaped += "\\n";
        break;
      case '\t':
        escaped += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char code[8];
          std::snprintf(code, sizeof(code), "\\u%04x", static_cast<unsigned char>(c));
          escaped += code;
        } else {
          escaped += c;
        }
    }
  }
  return escaped;
}

void LogJson(std::string_view level, std::string_view message) {
  std::string line =
      absl::StrCat("{\"level\":\"", JsonEscape(level), "\",\"msg\":\"", JsonEscape(message), "\"}\n");
  // One write(2), not stdio: a line is never split by another thread's, and
  // nothing is held in a buffer when the process stops.
  const char* next = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, next, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to say it
    next += n;
    left -= static_cast<size_t>(n);
  }
}

uint64_t RateLimitedLog::Take(int64_t now_ms) {
  if (held_back_ == 0 || (written_ && now_ms - last_line_ms_ < interval_ms_)) return 0;
  written_ = true;
  last_line_ms_ = now_ms;
  uint64_t events = held_back_;
  held_back_ = 0;
  return events;
}

uint64_t RateLimitedLog::Count(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  ++held_back_;
  return Take(now_ms);
}

uint64_t RateLimitedLog::Due(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return Take(now_ms);
}

}  // namespace etc::server
