#include "storage/fs.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace etc::storage {
namespace {
constexpr char kNoSpaceUrl[] = "etc.storage/no-space";
}  // namespace

absl::Status NoSpaceError(std::string_view message) {
  absl::Status status =
      absl::ResourceExhaustedError(absl::string_view(message.data(), message.size()));
  status.SetPayload(kNoSpaceUrl, absl::Cord("ENOSPC"));
  return status;
}

bool IsNoSpace(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted &&
         status.GetPayload(kNoSpaceUrl).has_value();
}

absl::Status NotRetryable(absl::Status status) {
  if (!IsNoSpace(status)) return status;
  return absl::InternalError(status.message());
}

absl::StatusOr<std::string> ReadAll(const File& file) {
  absl::StatusOr<uint64_t> size = file.Size();
  if (!size.ok()) return size.status();
  return file.Read(0, *size);
}

absl::Status ReplaceFile(FileSystem* fs, const std::string& dir, const std::string& name,
                         std::string_view bytes) {
  std::string path = JoinPath(dir, name);
  std::string temp = path + ".tmp";
  auto write_temp = [&]() -> absl::Status {
    absl::StatusOr<std::unique_ptr<File>> file = fs->Open(temp, {.create = true});
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Truncate(0); !s.ok()) return s;
    if (absl::Status s = (*file)->Append(bytes); !s.ok()) return s;
    return (*file)->Sync();
  };
  if (absl::Status s = write_temp(); !s.ok()) {
    if (IsNoSpace(s)) fs->Remove(temp).IgnoreError();
    return s;
  }
  if (absl::Status s = fs->Rename(temp, path); !s.ok()) return NotRetryable(s);
  return NotRetryable(fs->SyncDir(dir));
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
