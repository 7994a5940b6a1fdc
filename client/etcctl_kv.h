// The request builders of get, put and del, shared with txn (whose
// request lines are those commands' arguments and flags).
//
//   absl::StatusOr<etcdserverpb::RangeRequest> r = GetRequestFrom(flags, {"/a", "--prefix"});
#ifndef ETC_CLIENT_ETCCTL_KV_H_
#define ETC_CLIENT_ETCCTL_KV_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/etcctl_command.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::etcctl {

// Errors (InvalidArgument, etcdctl's text): missing key, conflicting flags.
absl::StatusOr<etcdserverpb::RangeRequest> GetRequestFrom(const ParsedFlags& flags,
                                                          const std::vector<std::string>& args);
// stdin_allowed: a missing value is read from stdin (not inside txn).
absl::StatusOr<etcdserverpb::PutRequest> PutRequestFrom(const ParsedFlags& flags,
                                                        const std::vector<std::string>& args,
                                                        bool stdin_allowed);
absl::StatusOr<etcdserverpb::DeleteRangeRequest> DelRequestFrom(const ParsedFlags& flags,
                                                                const std::vector<std::string>& args);
const std::vector<FlagSpec>& GetFlags();
const std::vector<FlagSpec>& PutFlags();
const std::vector<FlagSpec>& DelFlags();

// kExitOk, or the usage error of a format with no printer for the response.
int Printed(const Context& ctx, const absl::Status& printed);

}  // namespace etc::etcctl

#endif  // ETC_CLIENT_ETCCTL_KV_H_
