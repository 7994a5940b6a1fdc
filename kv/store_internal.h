// What the files of kv::Store (store.cc, store_read.cc, store_write.cc, ...)
// share and nobody else needs: small conversions between etcd's messages and
// the key tree's own types. Not part of the key tree's API.
//
//   if (absl::Status s = auth_.CheckRead(WhoOf(request), RangeOf(r.key(), r.range_end()));
//       !s.ok()) {
//     return ErrorResponse(s);   // response_status.h
//   }
#ifndef ETC_KV_STORE_INTERNAL_H_
#define ETC_KV_STORE_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "kv/auth.h"
#include "kv/keyspace.h"
#include "kv/kvpb/kvpb.pb.h"

namespace etc::kv::internal {

// A request's key and range_end as a range. It views the strings: they must
// outlive it.
inline KeyRange RangeOf(const std::string& key, const std::string& range_end) {
  return KeyRange{key, range_end};
}

// Who sends `request`, as the proposer stamped it.
inline AuthInfo WhoOf(const kvpb::Request& request) {
  return AuthInfo{request.header().username(), request.header().auth_revision()};
}

}  // namespace etc::kv::internal

#endif  // ETC_KV_STORE_INTERNAL_H_
