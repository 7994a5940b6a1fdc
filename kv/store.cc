#include "kv/store.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "kv/errors.h"
#include "kv/store_internal.h"
#include "kv/txn.h"

namespace etc::kv {

using etcdserverpb::Compare;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using internal::Failure;
using internal::RangeOf;
using internal::TxnBranches;
using internal::WhoOf;

namespace {

constexpr uint32_t kSnapshotFormat = 1;

}  // namespace

std::pair<std::string, std::string> SubtreeRange(std::string_view path) {
  std::string prefix(path);
  if (prefix.empty()) return {std::string(1, '\0'), std::string(1, '\0')};
  if (prefix.back() != '/') prefix.push_back('/');
  std::string end = PrefixEnd(prefix);
  return {prefix, end};
}

Store::Store(StoreOptions options) : options_(options), watches_(&keys_, options.watch) {}

void Store::StampHeader(kvpb::Response* response, const kvpb::Request& request) const {
  // Every result message has the header as its field 1, and its field in
  // kvpb.Response has the number of the request's field in kvpb.Request,
  // except for the directory and expiry requests, which answer as etcd's
  // own range / delete / revoke do.
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
  result->GetReflection()->MutableMessage(result, header)->CopyFrom(Header());
}

etcdserverpb::ResponseHeader Store::Header() const {
  etcdserverpb::ResponseHeader header;
  header.set_revision(keys_.revision());
  return header;
}

// ---------------------------------------------------------------- watches --

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

// ------------------------------------------------------------ whole state --

std::string Store::Snapshot() const {
  // Written field by field in field-number order, exactly the bytes
  // serializing one kvpb.Snapshot would give, but without first building
  // that message: it would copy every key and value (twice the key tree's
  // memory, for a moment) and take far longer.
  kvpb::Snapshot head;
  head.set_format(kSnapshotFormat);
  head.set_revision(keys_.revision());
  head.set_compact_revision(keys_.compact_revision());
  kvpb::Snapshot tail;
  for (const auto& [id, lease] : leases_.leases()) {
    auto* out = tail.add_leases();
    out->set_id(id);
    out->set_ttl_seconds(lease.ttl_seconds);
  }
  tail.set_lease_id_counter(leases_.id_counter());
  tail.set_auth_enabled(auth_.enabled());
  tail.set_auth_revision(auth_.revision());
  for (authpb::User& user : auth_.users()) *tail.add_users() = std::move(user);
  for (authpb::Role& role : auth_.roles()) *tail.add_roles() = std::move(role);
  for (const auto& [member, type] : alarms_) {
    auto* alarm = tail.add_alarms();
    alarm->set_memberid(member);
    alarm->set_alarm(static_cast<etcdserverpb::AlarmType>(type));
  }

  std::string out;
  out.reserve(SnapshotBytesHint());
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    // Deterministic: map-free messages, fields in order.
    coded.SetSerializationDeterministic(true);
    head.SerializeToCodedStream(&coded);
    // One key's message at a time, reused (its version objects too).
    kvpb::Snapshot::Key key;
    bool open = false;
    auto flush = [&] {
      if (!open) return;
      key.ByteSizeLong();  // WriteMessage writes the cached sizes
      google::protobuf::internal::WireFormatLite::WriteMessage(
          kvpb::Snapshot::kKeysFieldNumber, key, &coded);
      key.Clear();
      open = false;
    };
    keys_.ForEachVersion([&](const std::string& name, const KeyVersion& version) {
      if (open && key.key() != name) flush();
      if (!open) {
        key.set_key(name);
        open = true;
      }
      mvccpb::KeyValue* kv = key.add_versions();
      kv->set_mod_revision(version.mod_revision);
      kv->set_create_revision(version.create_revision);
      kv->set_version(version.version);
      kv->set_lease(version.lease);
      kv->set_value(version.value);
    });
    flush();
    tail.SerializeToCodedStream(&coded);
  }
  return out;
}

absl::Status Store::Restore(std::string_view data) {
  kvpb::Snapshot snapshot;
  if (data.empty()) {
    // A new cluster's bootstrap snapshot: the empty state.
    snapshot.set_format(kSnapshotFormat);
    snapshot.set_auth_revision(1);
  } else if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::DataLossError("key tree snapshot does not parse");
  }
  if (snapshot.format() != kSnapshotFormat) {
    return absl::DataLossError(
        absl::StrCat("key tree snapshot has format ", snapshot.format(), ", expected ",
                     kSnapshotFormat));
  }
  std::vector<std::pair<std::string, std::vector<KeyVersion>>> keys;
  keys.reserve(static_cast<size_t>(snapshot.keys_size()));
  for (kvpb::Snapshot::Key& key : *snapshot.mutable_keys()) {
    std::vector<KeyVersion> versions;
    for (mvccpb::KeyValue& kv : *key.mutable_versions()) {
      KeyVersion v;
      v.mod_revision = kv.mod_revision();
      v.create_revision = kv.create_revision();
      v.version = kv.version();
      v.lease = kv.lease();
      v.value = std::move(*kv.mutable_value());
      versions.push_back(std::move(v));
    }
    keys.emplace_back(std::move(*key.mutable_key()), std::move(versions));
  }
  // Build everything aside, then swap: a bad snapshot changes nothing.
  Keyspace restored_keys;
  if (absl::Status s = restored_keys.Restore(snapshot.revision(), snapshot.compact_revision(),
                                             std::move(keys));
      !s.ok()) {
    return s;
  }
  LeaseTable restored_leases;
  std::vector<std::pair<LeaseId, int64_t>> leases;
  for (const auto& lease : snapshot.leases()) leases.emplace_back(lease.id(), lease.ttl_seconds());
  if (absl::Status s = restored_leases.Restore(leases, snapshot.lease_id_counter()); !s.ok()) {
    return s;
  }
  // Attach each live key to its lease.
  absl::StatusOr<RangeResult> live =
      restored_keys.Range(KeyRange{"", std::string(1, '\0')}, RangeOptions{});
  if (!live.ok()) return absl::DataLossError("key tree snapshot: unreadable keyspace");
  for (const mvccpb::KeyValue& kv : live->kvs) {
    if (kv.lease() == 0) continue;
    if (restored_leases.Find(kv.lease()) == nullptr) {
      return absl::DataLossError(
          absl::StrCat("key tree snapshot: a key is attached to missing lease ", kv.lease()));
    }
    restored_leases.Attach(kv.lease(), kv.key());
  }
  AuthStore restored_auth;
  std::vector<authpb::User> users(snapshot.users().begin(), snapshot.users().end());
  std::vector<authpb::Role> roles(snapshot.roles().begin(), snapshot.roles().end());
  if (absl::Status s = restored_auth.Restore(snapshot.auth_enabled(), snapshot.auth_revision(),
                                             std::move(users), std::move(roles));
      !s.ok()) {
    return s;
  }
  std::set<std::pair<uint64_t, int>> alarms;
  for (const auto& alarm : snapshot.alarms()) {
    if (!etcdserverpb::AlarmType_IsValid(alarm.alarm()) || alarm.alarm() == etcdserverpb::NONE) {
      return absl::DataLossError("key tree snapshot: invalid alarm");
    }
    alarms.insert({alarm.memberid(), alarm.alarm()});
  }
  // Commit. The keyspace object stays (the watch hub points to it).
  keys_.Swap(restored_keys);
  leases_ = std::move(restored_leases);
  auth_ = std::move(restored_auth);
  alarms_ = std::move(alarms);
  lessor_.Clear();
  for (const auto& [id, lease] : leases_.leases()) lessor_.Add(id, lease.ttl_seconds);
  tokens_ = TokenTable();
  watches_.OnRestore();
  return absl::OkStatus();
}

uint32_t Store::HashKV(Revision revision) const {
  Revision upto = revision == 0 ? keys_.revision() : revision;
  uint32_t crc = 0;
  std::string record;
  keys_.ForEachVersion([&](const std::string& key, const KeyVersion& v) {
    if (v.mod_revision > upto) return;
    record.clear();
    absl::StrAppend(&record, key.size(), ":", key, "|", v.mod_revision, "|", v.create_revision,
                    "|", v.version, "|", v.lease, "|", v.value.size(), ":");
    crc = base::Crc32cExtend(crc, record);
    crc = base::Crc32cExtend(crc, v.value);
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
      std::optional<mvccpb::KeyValue> kv = keys_.Get(key);
      ETC_CHECK(kv.has_value() && kv->lease() == id)
          << "lease " << id << " lists a key that is gone or has another lease";
      ++attached;
    }
  }
  size_t with_lease = 0;
  absl::StatusOr<RangeResult> live = keys_.Range(KeyRange{"", std::string(1, '\0')}, {});
  ETC_CHECK(live.ok());
  for (const mvccpb::KeyValue& kv : live->kvs) {
    if (kv.lease() == 0) continue;
    ++with_lease;
    ETC_CHECK(leases_.Find(kv.lease()) != nullptr) << "a key has a lease that does not exist";
  }
  ETC_CHECK_EQ(attached, with_lease);
}

}  // namespace etc::kv
