#include "client/client_interface.h"

#include <algorithm>

#include "kv/keyspace.h"

namespace etc::client {

std::string PrefixEnd(const std::string& prefix) { return kv::PrefixEnd(prefix); }

namespace {

etcdserverpb::Compare CompareOf(const std::string& key, etcdserverpb::Compare::CompareTarget target) {
  etcdserverpb::Compare compare;
  compare.set_key(key);
  compare.set_target(target);
  compare.set_result(etcdserverpb::Compare::EQUAL);
  return compare;
}

}  // namespace

etcdserverpb::RangeRequest RangeOf(const std::string& key, const GetOptions& options) {
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  if (options.prefix) {
    request.set_range_end(PrefixEnd(key));
  } else if (!options.range_end.empty()) {
    request.set_range_end(options.range_end);
  }
  request.set_revision(options.revision);
  request.set_limit(options.limit);
  request.set_keys_only(options.keys_only);
  request.set_count_only(options.count_only);
  request.set_serializable(options.serializable);
  return request;
}

etcdserverpb::DeleteRangeRequest DeleteOf(const std::string& key, const DeleteOptions& options) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(key);
  if (options.prefix) request.set_range_end(PrefixEnd(key));
  request.set_prev_kv(options.prev_kv);
  return request;
}


etcdserverpb::Compare ValueEquals(const std::string& key, const std::string& value) {
  etcdserverpb::Compare compare = CompareOf(key, etcdserverpb::Compare::VALUE);
  compare.set_value(value);
  return compare;
}

etcdserverpb::Compare VersionEquals(const std::string& key, int64_t version) {
  etcdserverpb::Compare compare = CompareOf(key, etcdserverpb::Compare::VERSION);
  compare.set_version(version);
  return compare;
}

etcdserverpb::Compare ModRevisionEquals(const std::string& key, int64_t revision) {
  etcdserverpb::Compare compare = CompareOf(key, etcdserverpb::Compare::MOD);
  compare.set_mod_revision(revision);
  return compare;
}

etcdserverpb::Compare CreateRevisionEquals(const std::string& key, int64_t revision) {
  etcdserverpb::Compare compare = CompareOf(key, etcdserverpb::Compare::CREATE);
  compare.set_create_revision(revision);
  return compare;
}

etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  op.mutable_request_put()->set_lease(lease);
  return op;
}

etcdserverpb::RequestOp GetOp(const std::string& key, GetOptions options) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_range() = RangeOf(key, options);
  return op;
}

etcdserverpb::RequestOp DeleteOp(const std::string& key, DeleteOptions options) {
  etcdserverpb::RequestOp op;
  *op.mutable_request_delete_range() = DeleteOf(key, options);
  return op;
}

Txn& Txn::If(etcdserverpb::Compare compare) {
  *request_.add_compare() = std::move(compare);
  return *this;
}
Txn& Txn::Then(etcdserverpb::RequestOp op) {
  *request_.add_success() = std::move(op);
  return *this;
}
Txn& Txn::Else(etcdserverpb::RequestOp op) {
  *request_.add_failure() = std::move(op);
  return *this;
}


bool WatchProgress::Observe(const etcdserverpb::WatchResponse& response) {
  if (response.created() && !response.canceled()) {
    if (start_revision_ == 0 && last_revision_ == 0) {
      // Watching from "now": the events after this revision are the
      // watch's, so a resume must start right after it.
      last_revision_ = response.header().revision();
    }
    if (created_delivered_) return false;  // a reconnect's, not news
    created_delivered_ = true;
  }
  for (const mvccpb::Event& event : response.events()) {
    last_revision_ = std::max(last_revision_, event.kv().mod_revision());
  }
  if (response.events_size() == 0 && !response.created() && !response.canceled() &&
      response.header().revision() > last_revision_) {
    // A progress notification: everything up to it was delivered.
    last_revision_ = response.header().revision();
  }
  return true;
}

std::chrono::milliseconds KeepAlivePeriod(int64_t ttl_seconds, bool last_renewal_ok) {
  if (!last_renewal_ok) return std::chrono::milliseconds(500);
  return std::chrono::milliseconds(std::max<int64_t>(1000, ttl_seconds * 1000 / 3));
}

absl::StatusOr<etcdserverpb::PutResponse> ClientInterface::Put(const std::string& key,
                                                               const std::string& value,
                                                               PutOptions options) {
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(options.lease);
  request.set_prev_kv(options.prev_kv);
  return PutRaw(request);
}

absl::StatusOr<etcdserverpb::RangeResponse> ClientInterface::Get(const std::string& key,
                                                                 GetOptions options) {
  return Range(RangeOf(key, options));
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> ClientInterface::Delete(const std::string& key,
                                                                          DeleteOptions options) {
  return DeleteRaw(DeleteOf(key, options));
}

absl::StatusOr<int64_t> ClientInterface::KeepAliveOnce(int64_t id) {
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> response = KeepAliveOnceResponse(id);
  if (!response.ok()) return response.status();
  return response->ttl();
}

}  // namespace etc::client
