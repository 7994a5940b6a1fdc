// The file `etcdctl snapshot save` writes from etc (the Maintenance.Snapshot
// stream) and `etc snapshot restore` reads:
//
//   offset 0   "etcsnap1"                        magic
//   offset 8   u64 little-endian                 length of the state
//   offset 16  the key tree's state              (kv::Store::Snapshot)
//   then       zeros up to a multiple of 512 bytes
//   then       SHA-256 of everything before it   (32 bytes)
//
// The padding and the trailing digest are etcd's convention (etcdctl
// checks that the size is a multiple of 512 plus 32 before it keeps the
// file); the magic and length make the state's end unambiguous.
#ifndef ETC_SERVER_BACKUP_H_
#define ETC_SERVER_BACKUP_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace etc::server {

inline constexpr size_t kBackupDigestBytes = 32;

std::string EncodeBackup(const std::string& state);
// Errors: kDataLoss for a damaged file (digest, magic, length, padding).
absl::StatusOr<std::string> DecodeBackup(const std::string& file);

}  // namespace etc::server

#endif  // ETC_SERVER_BACKUP_H_
