// Which member of which cluster a data directory belongs to. Written once,
// when the member first starts, into <data-dir>/member/identity (framed and
// checksummed like every record), and checked at every later start: a data
// directory of another member or cluster is refused instead of silently
// joining the wrong cluster with the wrong log.
#ifndef ETC_SERVER_IDENTITY_H_
#define ETC_SERVER_IDENTITY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "storage/fs.h"

namespace etc::server {

struct Identity {
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
};

// nullopt if the directory has no identity yet. Errors: kDataLoss for a
// damaged file.
absl::StatusOr<std::optional<Identity>> ReadIdentity(storage::FileSystem* fs,
                                                     const std::string& data_dir);
// Atomically (temporary file, sync, rename, directory sync).
absl::Status WriteIdentity(storage::FileSystem* fs, const std::string& data_dir,
                           const Identity& identity);

// This start's incarnation of the member in `data_dir`: one more than the
// last start's, recorded (durably, in <data-dir>/member/incarnation) before
// it is returned, so that no two starts share one, whatever the clock
// does. The member tells its own proposals from an earlier life's by it
// (memberpb.RequestId). The first start's is 1. The member directory must
// exist (storage::DataDir::Open makes it). Errors: kDataLoss for a
// damaged file; what writing it failed with.
absl::StatusOr<uint64_t> NextIncarnation(storage::FileSystem* fs, const std::string& data_dir);

}  // namespace etc::server

#endif  // ETC_SERVER_IDENTITY_H_
