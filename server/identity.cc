#include "server/identity.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/record.h"

namespace etc::server {
namespace {

constexpr char kMagic[] = "etc-identity";

std::string MemberDir(const std::string& data_dir) { return storage::JoinPath(data_dir, "member"); }

}  // namespace

absl::StatusOr<std::optional<Identity>> ReadIdentity(storage::FileSystem* fs,
                                                     const std::string& data_dir) {
  std::string path = storage::JoinPath(MemberDir(data_dir), "identity");
  if (!fs->Exists(path)) return std::optional<Identity>();
  absl::StatusOr<std::unique_ptr<storage::File>> file = fs->Open(path, {});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> bytes = storage::ReadAll(**file);
  if (!bytes.ok()) return bytes.status();
  storage::DecodedRecord record = storage::DecodeRecord(*bytes, 0);
  std::vector<std::string> fields;
  if (record.status == storage::DecodedRecord::kOk &&
      record.type == storage::RecordType::kFileContent && record.next_offset == bytes->size()) {
    fields = absl::StrSplit(std::string(record.payload), ' ');
  }
  Identity identity;
  if (fields.size() != 3 || fields[0] != kMagic ||
      !absl::SimpleHexAtoi(fields[1], &identity.member_id) ||
      !absl::SimpleHexAtoi(fields[2], &identity.cluster_id)) {
    return absl::DataLossError(absl::StrCat(path, " is damaged"));
  }
  return std::optional<Identity>(identity);
}

absl::Status WriteIdentity(storage::FileSystem* fs, const std::string& data_dir,
                           const Identity& identity) {
  std::string dir = MemberDir(data_dir);
  std::string temporary = storage::JoinPath(dir, "identity.tmp");
  std::string path = storage::JoinPath(dir, "identity");
  if (fs->Exists(temporary)) {
    if (absl::Status s = fs->Remove(temporary); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<storage::File>> file =
      fs->Open(temporary, {.create = true, .exclusive = true});
  if (!file.ok()) return file.status();
  std::string payload = absl::StrCat(kMagic, " ", absl::Hex(identity.member_id), " ",
                                     absl::Hex(identity.cluster_id));
  if (absl::Status s = (*file)->Append(storage::EncodeRecord(storage::RecordType::kFileContent,
                                                             payload));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  file->reset();
  if (absl::Status s = fs->Rename(temporary, path); !s.ok()) return s;
  return fs->SyncDir(dir);
}

}  // namespace etc::server
