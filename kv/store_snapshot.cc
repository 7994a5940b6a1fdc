// kv::Store's snapshots: the replicated state written out deterministically,
// and restored from such bytes whole or not at all.
#include "kv/store.h"

#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/wire_fields.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace etc::kv {

namespace {

constexpr uint32_t kSnapshotFormat = 1;

// Restore's steps, each filling one part of the state aside from the
// snapshot. Each checks what it reads: errors are kDataLoss.

// Reads `data`'s fields other than the keys into `snapshot` (the keys are
// most of its size and are read one at a time by RestoreKeyspace); empty
// data is a new cluster's bootstrap snapshot, the empty state. The
// snapshot is read field by field (base/wire_fields.h), so it may be larger
// than the 2 GiB protobuf parses in one message.
absl::Status ParseSnapshotHead(std::string_view data, kvpb::Snapshot* snapshot) {
  std::string rest;
  absl::Status walked = base::ForEachWireField(data, [&](const base::WireField& field) {
    if (field.number != kvpb::Snapshot::kKeysFieldNumber) rest.append(field.whole);
    return true;
  });
  if (!walked.ok()) {
    return absl::DataLossError(absl::StrCat("key tree snapshot does not parse: ", walked.message()));
  }
  if (data.empty()) {
    snapshot->set_format(kSnapshotFormat);
    snapshot->set_auth_revision(1);
  } else if (!snapshot->ParseFromString(rest)) {
    return absl::DataLossError("key tree snapshot does not parse");
  }
  if (snapshot->format() != kSnapshotFormat) {
    return absl::DataLossError(absl::StrCat("key tree snapshot has format ", snapshot->format(),
                                            ", expected ", kSnapshotFormat));
  }
  return absl::OkStatus();
}

// Reads one kvpb.Snapshot.Key from its bytes, field by field (a key's
// versions may together pass protobuf's 2 GiB message limit; each version
// is small). Unknown fields are skipped, as protobuf's parser does; a known
// field with the wrong wire type is refused.
absl::Status ParseKey(std::string_view bytes, Keyspace::StoredKey* out) {
  out->key.clear();
  out->versions.clear();
  mvccpb::KeyValue kv;
  bool well_formed = true;
  absl::Status walked = base::ForEachWireField(bytes, [&](const base::WireField& field) {
    if (field.number != kvpb::Snapshot::Key::kKeyFieldNumber &&
        field.number != kvpb::Snapshot::Key::kVersionsFieldNumber) {
      return true;
    }
    if (field.type != base::WireType::kLengthDelimited) {
      well_formed = false;
      return false;
    }
    if (field.number == kvpb::Snapshot::Key::kKeyFieldNumber) {
      out->key.assign(field.payload);
      return true;
    }
    if (field.payload.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !kv.ParseFromArray(field.payload.data(), static_cast<int>(field.payload.size()))) {
      well_formed = false;
      return false;
    }
    StoredVersion v;
    v.version.mod_revision = kv.mod_revision();
    v.version.create_revision = kv.create_revision();
    v.version.version = kv.version();
    v.version.lease = kv.lease();
    v.value = std::move(*kv.mutable_value());
    out->versions.push_back(std::move(v));
    return true;
  });
  if (!walked.ok() || !well_formed) {
    return absl::DataLossError("key tree snapshot: a key does not parse");
  }
  return absl::OkStatus();
}

// Fills `keys` from the snapshot's keys, parsed one at a time from `data`
// and moved into the keyspace as they are (their values are most of it).
absl::Status RestoreKeyspace(std::string_view data, const kvpb::Snapshot& head, Keyspace* keys) {
  std::string_view unread = data;
  return keys->RestoreFrom(
      head.revision(), head.compact_revision(),
      [&](Keyspace::StoredKey* out) -> absl::StatusOr<bool> {
        // The next keys field; the others were read by ParseSnapshotHead.
        std::optional<base::WireField> key;
        size_t consumed = 0;
        absl::Status walked = base::ForEachWireField(unread, [&](const base::WireField& field) {
          consumed += field.whole.size();
          if (field.number != kvpb::Snapshot::kKeysFieldNumber) return true;
          key = field;
          return false;
        });
        if (!walked.ok()) return walked;
        unread.remove_prefix(consumed);
        if (!key.has_value()) return false;
        if (key->type != base::WireType::kLengthDelimited) {
          return absl::DataLossError("key tree snapshot: a key does not parse");
        }
        if (absl::Status s = ParseKey(key->payload, out); !s.ok()) return s;
        return true;
      });
}

// Fills `leases` from the snapshot and attaches each live key of `keys` to
// its lease, which must be there.
absl::Status RestoreLeases(const kvpb::Snapshot& snapshot, const Keyspace& keys,
                           LeaseTable* leases) {
  std::vector<std::pair<LeaseId, int64_t>> ttls;
  for (const auto& lease : snapshot.leases()) ttls.emplace_back(lease.id(), lease.ttl_seconds());
  if (absl::Status s = leases->Restore(ttls, snapshot.lease_id_counter()); !s.ok()) return s;
  absl::StatusOr<RangeResult> live =
      keys.Range(KeyRange{"", std::string(1, '\0')}, RangeOptions{.keys_only = true});
  if (!live.ok()) return absl::DataLossError("key tree snapshot: unreadable keyspace");
  for (const mvccpb::KeyValue& kv : live->kvs) {
    if (kv.lease() == 0) continue;
    if (leases->Find(kv.lease()) == nullptr) {
      return absl::DataLossError(
          absl::StrCat("key tree snapshot: a key is attached to missing lease ", kv.lease()));
    }
    leases->Attach(kv.lease(), kv.key());
  }
  return absl::OkStatus();
}

absl::Status RestoreAuth(const kvpb::Snapshot& snapshot, AuthStore* auth) {
  std::vector<authpb::User> users(snapshot.users().begin(), snapshot.users().end());
  std::vector<authpb::Role> roles(snapshot.roles().begin(), snapshot.roles().end());
  return auth->Restore(snapshot.auth_enabled(), snapshot.auth_revision(), std::move(users),
                       std::move(roles));
}

absl::Status RestoreAlarms(const kvpb::Snapshot& snapshot,
                           std::set<std::pair<uint64_t, int>>* alarms) {
  for (const auto& alarm : snapshot.alarms()) {
    if (!etcdserverpb::AlarmType_IsValid(alarm.alarm()) || alarm.alarm() == etcdserverpb::NONE) {
      return absl::DataLossError("key tree snapshot: invalid alarm");
    }
    alarms->insert({alarm.memberid(), alarm.alarm()});
  }
  return absl::OkStatus();
}

}  // namespace

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

  const ValueStore* values = keys_.value_store();
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
      // The length written from ByteSizeLong's 64-bit result, not from the
      // message's cached size (an int): one key's versions may pass 2 GiB.
      // The versions inside are written with their own cached sizes.
      size_t key_bytes = key.ByteSizeLong();
      coded.WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
          kvpb::Snapshot::kKeysFieldNumber,
          google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint64(key_bytes);
      key.SerializeWithCachedSizes(&coded);
      key.Clear();
      open = false;
    };
    keys_.ForEachVersion([&](std::string_view name, const KeyVersion& version) {
      if (open && key.key() != name) flush();
      if (!open) {
        key.set_key(name.data(), name.size());
        open = true;
      }
      mvccpb::KeyValue* kv = key.add_versions();
      kv->set_mod_revision(version.mod_revision);
      kv->set_create_revision(version.create_revision);
      kv->set_version(version.version);
      kv->set_lease(version.lease);
      if (!version.value.empty()) values->Read(version.value, kv->mutable_value());
    });
    flush();
    tail.SerializeToCodedStream(&coded);
  }
  return out;
}

absl::Status Store::Restore(std::string_view data) {
  kvpb::Snapshot snapshot;
  if (absl::Status s = ParseSnapshotHead(data, &snapshot); !s.ok()) return s;
  // Build everything aside, then swap: a bad snapshot changes nothing. The
  // aside keyspace writes to the same value store; whichever tree it ends
  // up holding (the refused one, or the one replaced) releases its values.
  Keyspace restored_keys(keys_.value_store());
  struct ReleaseValues {
    Keyspace* keys;
    ~ReleaseValues() { keys->Clear(); }
  } release_aside{&restored_keys};
  if (absl::Status s = RestoreKeyspace(data, snapshot, &restored_keys); !s.ok()) return s;
  LeaseTable restored_leases;
  if (absl::Status s = RestoreLeases(snapshot, restored_keys, &restored_leases); !s.ok()) {
    return s;
  }
  AuthStore restored_auth;
  if (absl::Status s = RestoreAuth(snapshot, &restored_auth); !s.ok()) return s;
  std::set<std::pair<uint64_t, int>> alarms;
  if (absl::Status s = RestoreAlarms(snapshot, &alarms); !s.ok()) return s;
  // Commit. The keyspace object stays (the watch hub points to it).
  keys_.Swap(restored_keys);
  leases_ = std::move(restored_leases);
  auth_ = std::move(restored_auth);
  alarms_ = std::move(alarms);
  lessor_.Clear();
  for (const auto& [id, lease] : leases_.leases()) lessor_.Add(id, lease.ttl_seconds);
  // A member that takes a snapshot may have missed the auth changes that
  // would have dropped some of its tokens: it keeps none.
  tokens_ = TokenTable(options_.auth_token_ttl_ms);
  watches_.OnRestore();
  return absl::OkStatus();
}

}  // namespace etc::kv
