// kv::Store's core: construction, response headers, watch creation, the
// whole-state digests and the invariants. The rest of the Store lives by job
// in store_validate.cc, store_read.cc, store_write.cc, store_txn.cc,
// store_lease.cc and store_snapshot.cc.
#include "kv/store.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "kv/store_internal.h"

namespace etc::kv {

using internal::RangeOf;

std::pair<std::string, std::string> SubtreeRange(std::string_view path) {
  std::string prefix(path);
  if (prefix.empty()) return {std::string(1, '\0'), std::string(1, '\0')};
  if (prefix.back() != '/') prefix.push_back('/');
  std::string end = PrefixEnd(prefix);
  return {prefix, end};
}

Store::Store(StoreOptions options)
    : options_(options),
      keys_(options.values),
      watches_(&keys_, options.watch),
      tokens_(options.auth_token_ttl_ms) {}

void Store::StampHeader(kvpb::Response* response, const kvpb::Request& request) const {
  // Every result message has the header as its field 1, and its field in
  // kvpb.Response has the number of the request's field in kvpb.Request,
  // except for the directory and expiry requests, which answer as etcd's
  // own range / delete / revoke do, and v2's, which all answer as `tree`.
  int number = static_cast<int>(request.op_case());
  switch (request.op_case()) {
    case kvpb::Request::kTreeRange:
      number = kvpb::Response::kRange;
      break;
    case kvpb::Request::kDeleteTree:
      number = kvpb::Response::kDeleteRange;
      break;
    case kvpb::Request::kLeaseExpire:
      number = kvpb::Response::kLeaseRevoke;
      break;
    case kvpb::Request::kDiskSpaceAlarm:
      number = kvpb::Response::kAlarm;
      break;
    case kvpb::Request::kTreeSet:
    case kvpb::Request::kTreeDelete:
      number = kvpb::Response::kTree;
      break;
    default:
      break;
  }
  const google::protobuf::FieldDescriptor* field =
      kvpb::Response::descriptor()->FindFieldByNumber(number);
  ETC_CHECK(field != nullptr) << "no response field for request field " << number;
  google::protobuf::Message* result = response->GetReflection()->MutableMessage(response, field);
  const google::protobuf::FieldDescriptor* header = result->GetDescriptor()->FindFieldByNumber(1);
  ETC_CHECK(header != nullptr && header->message_type() ==
                                     etcdserverpb::ResponseHeader::descriptor());
  // The checked type makes the cast sound; assigning the typed message
  // skips CopyFrom's reflective source check (this runs on every apply).
  *static_cast<etcdserverpb::ResponseHeader*>(
      result->GetReflection()->MutableMessage(result, header)) = Header();
}

etcdserverpb::ResponseHeader Store::Header() const {
  etcdserverpb::ResponseHeader header;
  header.set_revision(keys_.revision());
  return header;
}

absl::StatusOr<WatcherId> Store::CreateWatch(const AuthInfo& who,
                                             etcdserverpb::WatchCreateRequest request) {
  // An empty key means "\0", the smallest key (etcd's watch server).
  if (request.key().empty()) request.set_key(std::string(1, '\0'));
  if (absl::Status s = auth_.CheckRead(who, RangeOf(request.key(), request.range_end()));
      !s.ok()) {
    return s;
  }
  return watches_.Create(request);
}

uint32_t Store::HashKV(Revision revision) const {
  Revision upto = revision == 0 ? keys_.revision() : revision;
  uint32_t crc = 0;
  std::string record;
  keys_.ForEachVersion([&](std::string_view key, const KeyVersion& v) {
    if (v.mod_revision > upto) return;
    record.clear();
    absl::StrAppend(&record, key.size(), ":", absl::string_view(key.data(), key.size()), "|",
                    v.mod_revision, "|", v.create_revision, "|", v.version, "|", v.lease, "|",
                    v.value.size_bytes, ":");
    crc = base::Crc32cExtend(crc, record);
    // The bytes themselves, read back (a check of the value store too).
    crc = base::Crc32cExtend(crc, keys_.ValueOf(v));
  });
  return crc;
}

uint32_t Store::Hash() const { return base::Crc32c(Snapshot()); }

uint64_t Store::StateDigest() const {
  // Each part folded in with a multiply, so that equal parts in other
  // places do not cancel.
  uint64_t digest = keys_.digest();
  auto fold = [&digest](uint64_t value) { digest = digest * 0x100000001b3ULL ^ value; };
  fold(static_cast<uint64_t>(keys_.revision()));
  fold(static_cast<uint64_t>(keys_.compact_revision()));
  fold(leases_.id_counter());
  for (const auto& [id, lease] : leases_.leases()) {
    fold(static_cast<uint64_t>(id));
    fold(static_cast<uint64_t>(lease.ttl_seconds));
  }
  fold(auth_.revision());
  fold(auth_.enabled() ? 1 : 0);
  for (const auto& [member, type] : alarms_) {
    fold(member);
    fold(static_cast<uint64_t>(type));
  }
  return digest;
}

void Store::CheckInvariants() const {
  keys_.CheckInvariants();
  watches_.CheckInvariants();
  // Every live key with a lease is attached to it, and nothing else is.
  size_t attached = 0;
  for (const auto& [id, lease] : leases_.leases()) {
    for (const std::string& key : lease.keys) {
      std::optional<mvccpb::KeyValue> kv = keys_.Get(key, 0, /*with_value=*/false);
      ETC_CHECK(kv.has_value() && kv->lease() == id)
          << "lease " << id << " lists a key that is gone or has another lease";
      ++attached;
    }
  }
  size_t with_lease = 0;
  // Every live key, without a KeyValue copy of each (this runs after every
  // apply in the simulator).
  keys_.ForEachLive([&](std::string_view key, const KeyVersion& version) {
    if (version.lease == 0) return;
    ++with_lease;
    ETC_CHECK(leases_.Find(version.lease) != nullptr) << "a key has a lease that does not exist";
  });
  ETC_CHECK_EQ(attached, with_lease);
}

}  // namespace etc::kv
