#include "member/kv_machine.h"

#include "base/check.h"
#include "kv/response_status.h"

namespace etc::member {
namespace {

// Keeps no value: a snapshot check restores the tree only to validate it,
// which reads no value (a second copy of every value would be the check's
// whole memory cost).
class DiscardingValueStore : public kv::ValueStore {
 public:
  kv::ValueRef Write(std::string_view value, uint32_t crc32c) override {
    return kv::ValueRef{0, static_cast<uint32_t>(value.size()), crc32c};
  }
  void Read(const kv::ValueRef&, std::string*) const override {
    ETC_CHECK(false) << "a snapshot check read a value it did not keep";
  }
  void Release(const kv::ValueRef&) override {}
};

std::string Malformed(std::string_view what) {
  return kv::ErrorResponse(absl::InvalidArgumentError(std::string(what))).SerializeAsString();
}

}  // namespace

std::string KvMachine::Apply(uint64_t index, std::string_view command) {
  kvpb::Request request;
  if (!request.ParseFromArray(command.data(), static_cast<int>(command.size()))) {
    return Malformed("etcdserver: the log entry is not a request");
  }
  kvpb::Response response = store_.Apply(request);
  if (observer_) observer_(index, request, response);
  return response.SerializeAsString();
}

absl::Status KvMachine::CheckSnapshot(std::string_view data) const {
  // Nothing of the check may reach this member's value store.
  DiscardingValueStore values;
  kv::StoreOptions options = options_;
  options.values = &values;
  kv::Store scratch(options);
  return scratch.Restore(data);
}

absl::StatusOr<std::string> KvMachine::Query(std::string_view query) const {
  kvpb::Request request;
  if (!request.ParseFromArray(query.data(), static_cast<int>(query.size()))) {
    return absl::InvalidArgumentError("the query is not a request");
  }
  return store_.Query(request).SerializeAsString();
}

void KvMachine::QueryAsync(std::string_view query, QueryDone done) {
  kvpb::Request request;
  if (runner_ == nullptr || !request.ParseFromArray(query.data(), static_cast<int>(query.size())) ||
      !request.has_hash_kv()) {
    done(Query(query));
    return;
  }
  // A walk of every retained version: seconds on a large tree, which the
  // member must not spend (any client may ask).
  runner_->Run([this, request = std::move(request)] { return store_.Query(request).SerializeAsString(); },
               /*size_hint_bytes=*/0, std::move(done));
}

void KvMachine::SnapshotAsync(SnapshotFinish finish, SnapshotDone done) {
  if (runner_ == nullptr) {
    done(WrapSnapshot(finish, Snapshot()));
    return;
  }
  runner_->Run([this, finish = std::move(finish)] { return WrapSnapshot(finish, Snapshot()); },
               store_.SnapshotBytesHint(), std::move(done));
}

}  // namespace etc::member
