#include "storage/fs.h"

#include "absl/strings/str_cat.h"

namespace etc::storage {

absl::StatusOr<std::string> ReadAll(const File& file) {
  absl::StatusOr<uint64_t> size = file.Size();
  if (!size.ok()) return size.status();
  return file.Read(0, *size);
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  while (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out.push_back('/');
  out.append(name);
  return out;
}

}  // namespace etc::storage
