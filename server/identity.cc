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

// The space-separated fields of a file holding one checksummed record
// (none if the record is damaged or followed by anything).
absl::StatusOr<std::vector<std::string>> ReadRecordFields(storage::FileSystem* fs,
                                                          const std::string& path) {
  absl::StatusOr<std::unique_ptr<storage::File>> file = fs->Open(path, {});
  if (!file.ok()) return file.status();
  absl::StatusOr<std::string> bytes = storage::ReadAll(**file);
  if (!bytes.ok()) return bytes.status();
  storage::DecodedRecord record = storage::DecodeRecord(*bytes, 0);
  if (record.status != storage::DecodedRecord::kOk ||
      record.type != storage::RecordType::kFileContent || record.next_offset != bytes->size()) {
    return std::vector<std::string>();
  }
  return std::vector<std::string>(absl::StrSplit(std::string(record.payload), ' '));
}

}  // namespace

absl::StatusOr<std::optional<Identity>> ReadIdentity(storage::FileSystem* fs,
                                                     const std::string& data_dir) {
  std::string path = storage::JoinPath(MemberDir(data_dir), "identity");
  if (!fs->Exists(path)) return std::optional<Identity>();
  absl::StatusOr<std::vector<std::string>> fields = ReadRecordFields(fs, path);
  if (!fields.ok()) return fields.status();
  Identity identity;
  if (fields->size() != 3 || (*fields)[0] != kMagic ||
      !absl::SimpleHexAtoi((*fields)[1], &identity.member_id) ||
      !absl::SimpleHexAtoi((*fields)[2], &identity.cluster_id)) {
    return absl::DataLossError(absl::StrCat(path, " is damaged"));
  }
  return std::optional<Identity>(identity);
}

namespace {

// Replaces <member dir>/<name> with one record holding `payload`,
// atomically.
absl::Status WriteRecordFile(storage::FileSystem* fs, const std::string& data_dir,
                             const std::string& name, const std::string& payload) {
  std::string dir = MemberDir(data_dir);
  std::string temporary = storage::JoinPath(dir, name + ".tmp");
  std::string path = storage::JoinPath(dir, name);
  if (fs->Exists(temporary)) {
    if (absl::Status s = fs->Remove(temporary); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<storage::File>> file =
      fs->Open(temporary, {.create = true, .exclusive = true});
  if (!file.ok()) return file.status();
  if (absl::Status s =
          (*file)->Append(storage::EncodeRecord(storage::RecordType::kFileContent, payload));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  file->reset();
  if (absl::Status s = fs->Rename(temporary, path); !s.ok()) return s;
  return fs->SyncDir(dir);
}

constexpr char kIncarnationMagic[] = "etc-incarnation";

}  // namespace

absl::Status WriteIdentity(storage::FileSystem* fs, const std::string& data_dir,
                           const Identity& identity) {
  return WriteRecordFile(fs, data_dir, "identity",
                         absl::StrCat(kMagic, " ", absl::Hex(identity.member_id), " ",
                                      absl::Hex(identity.cluster_id)));
}

absl::StatusOr<uint64_t> NextIncarnation(storage::FileSystem* fs, const std::string& data_dir) {
  std::string path = storage::JoinPath(MemberDir(data_dir), "incarnation");
  uint64_t last = 0;
  if (fs->Exists(path)) {
    absl::StatusOr<std::vector<std::string>> fields = ReadRecordFields(fs, path);
    if (!fields.ok()) return fields.status();
    if (fields->size() != 2 || (*fields)[0] != kIncarnationMagic ||
        !absl::SimpleAtoi((*fields)[1], &last) || last == UINT64_MAX) {
      return absl::DataLossError(absl::StrCat(path, " is damaged"));
    }
  }
  uint64_t next = last + 1;
  if (absl::Status s = WriteRecordFile(fs, data_dir, "incarnation",
                                       absl::StrCat(kIncarnationMagic, " ", next));
      !s.ok()) {
    return s;
  }
  return next;
}

}  // namespace etc::server
