// The errors a member and its hosts answer beyond the key tree's
// (kv/errors.h), with etcd 3.4's messages: clients match on the text.
#ifndef ETC_MEMBER_ERRORS_H_
#define ETC_MEMBER_ERRORS_H_

#include "absl/status/status.h"

namespace etc::member {

// A request that got no answer in time: its outcome is unknown. The member
// says kDeadlineExceeded; on etcd's wire (and in the server's own waits)
// it is UNAVAILABLE with the same text.
inline constexpr char kRequestTimedOut[] = "etcdserver: request timed out";

inline absl::Status MemberNotFoundError() {
  return absl::NotFoundError("etcdserver: member not found");
}
inline absl::Status TooManyLearnersError() {
  return absl::FailedPreconditionError("etcdserver: too many learner members in cluster");
}

}  // namespace etc::member

#endif  // ETC_MEMBER_ERRORS_H_
