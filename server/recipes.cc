#include "server/recipes.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kv/keyspace.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::server {

class Recipes {
 public:
  void Connect(std::shared_ptr<grpc::Channel> channel) {
    absl::MutexLock lock(&mu_);
    kv_ = etcdserverpb::KV::NewStub(channel);
    watch_ = etcdserverpb::Watch::NewStub(channel);
  }

  // A client context that carries the caller's credentials (so auth
  // applies to what the recipe does on its behalf) and gives up when the
  // caller does.
  static std::unique_ptr<grpc::ClientContext> ContextFor(grpc::ServerContext* caller,
                                                         std::chrono::milliseconds timeout,
                                                         bool outlive_caller = false) {
    auto context = std::make_unique<grpc::ClientContext>();
    for (const char* name : {"token", "authorization"}) {
      auto it = caller->client_metadata().find(name);
      if (it != caller->client_metadata().end()) {
        context->AddMetadata(name, std::string(it->second.data(), it->second.size()));
      }
    }
    auto deadline = std::chrono::system_clock::now() + timeout;
    context->set_deadline(outlive_caller ? deadline : std::min(deadline, caller->deadline()));
    return context;
  }

  grpc::Status Txn(grpc::ServerContext* caller, const etcdserverpb::TxnRequest& request,
                   etcdserverpb::TxnResponse* response) {
    etcdserverpb::KV::Stub* kv = Kv();
    if (kv == nullptr) return NotReady();
    auto context = ContextFor(caller, std::chrono::seconds(10));
    return kv->Txn(context.get(), request, response);
  }

  grpc::Status Range(grpc::ServerContext* caller, const etcdserverpb::RangeRequest& request,
                     etcdserverpb::RangeResponse* response) {
    etcdserverpb::KV::Stub* kv = Kv();
    if (kv == nullptr) return NotReady();
    auto context = ContextFor(caller, std::chrono::seconds(10));
    return kv->Range(context.get(), request, response);
  }

  grpc::Status Delete(grpc::ServerContext* caller, const std::string& key,
                      etcdserverpb::DeleteRangeResponse* response) {
    etcdserverpb::KV::Stub* kv = Kv();
    if (kv == nullptr) return NotReady();
    // Also a clean-up after the caller gave up: not bound to its deadline.
    auto context = ContextFor(caller, std::chrono::seconds(5), /*outlive_caller=*/true);
    etcdserverpb::DeleteRangeRequest request;
    request.set_key(key);
    return kv->DeleteRange(context.get(), request, response);
  }

  // The owner under `prefix`: the key with the smallest create revision.
  grpc::Status Owner(grpc::ServerContext* caller, const std::string& prefix,
                     etcdserverpb::RangeResponse* response) {
    etcdserverpb::RangeRequest request;
    request.set_key(prefix);
    request.set_range_end(kv::PrefixEnd(prefix));
    request.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    request.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    request.set_limit(1);
    return Range(caller, request, response);
  }

  // Waits until no key under `prefix` has a create revision below
  // `revision` (concurrency's waitDeletes): each time, for the deletion
  // of the newest such key. Stops when the caller gives up.
  grpc::Status WaitDeletes(grpc::ServerContext* caller, const std::string& prefix,
                           int64_t revision, etcdserverpb::ResponseHeader* header) {
    for (;;) {
      if (caller->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled");
      etcdserverpb::RangeRequest request;
      request.set_key(prefix);
      request.set_range_end(kv::PrefixEnd(prefix));
      request.set_sort_target(etcdserverpb::RangeRequest::CREATE);
      request.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
      request.set_max_create_revision(revision - 1);
      request.set_limit(1);
      etcdserverpb::RangeResponse range;
      if (grpc::Status s = Range(caller, request, &range); !s.ok()) return s;
      *header = range.header();
      // Nothing is older than revision 1 (etc's first write; etcd's is 2),
      // and a max_create_revision of 0 would mean "no bound".
      if (range.kvs_size() == 0 || revision <= 1) return grpc::Status::OK;
      if (grpc::Status s = WaitDelete(caller, range.kvs(0).key(), range.header().revision());
          !s.ok()) {
        return s;
      }
    }
  }

  // Waits for `key` to be deleted after `revision`, until the caller gives
  // up.
  grpc::Status WaitDelete(grpc::ServerContext* caller, const std::string& key, int64_t revision) {
    for (;;) {
      if (caller->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "context canceled");
      bool seen = false;
      if (grpc::Status s = WatchOnce(caller, key, "", revision, /*deletes_only=*/true, &seen);
          !s.ok()) {
        return s;
      }
      if (seen) return grpc::Status::OK;
      // Watch again from the same revision: a delete in between is history.
    }
  }

  // Waits (a second at most) for any change under `prefix` after
  // `revision`.
  void WaitChange(grpc::ServerContext* caller, const std::string& prefix, int64_t revision) {
    bool seen = false;
    (void)WatchOnce(caller, prefix, kv::PrefixEnd(prefix), revision, /*deletes_only=*/false, &seen);
  }

  // One watch of at most a second (so a caller that gave up is noticed
  // soon); `seen` tells whether a matching event arrived.
  grpc::Status WatchOnce(grpc::ServerContext* caller, const std::string& key,
                         const std::string& range_end, int64_t revision, bool deletes_only,
                         bool* seen) {
    *seen = false;
    etcdserverpb::Watch::Stub* watch = WatchStub();
    if (watch == nullptr) return NotReady();
    auto context = ContextFor(caller, std::chrono::seconds(1));
    auto stream = watch->Watch(context.get());
    etcdserverpb::WatchRequest request;
    request.mutable_create_request()->set_key(key);
    request.mutable_create_request()->set_range_end(range_end);
    request.mutable_create_request()->set_start_revision(revision + 1);
    if (deletes_only) {
      request.mutable_create_request()->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
    }
    if (stream->Write(request)) {
      etcdserverpb::WatchResponse response;
      while (!*seen && stream->Read(&response)) {
        if (response.events_size() > 0) *seen = true;
        if (response.canceled()) break;
      }
    }
    if (*seen) context->TryCancel();
    grpc::Status status = stream->Finish();
    if (*seen || status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        status.error_code() == grpc::StatusCode::CANCELLED) {
      return grpc::Status::OK;
    }
    return status;
  }

  // Waits until `key` (created at `revision` under `prefix`) is the oldest
  // there, i.e. holds the lock or leads; if the caller gives up first, the
  // key is deleted so that it never holds it later.
  grpc::Status WaitTurn(grpc::ServerContext* caller, const std::string& prefix,
                        const std::string& key, int64_t revision,
                        etcdserverpb::ResponseHeader* header) {
    grpc::Status waited = WaitDeletes(caller, prefix, revision, header);
    if (!waited.ok()) {
      etcdserverpb::DeleteRangeResponse ignored;
      Delete(caller, key, &ignored);
    }
    return waited;
  }



  // "<name>/<lease in hex>", as the concurrency package names it.
  static std::string KeyFor(const std::string& name, int64_t lease) {
    return absl::StrCat(name, "/", absl::Hex(lease));
  }

  // Creates `key` with `value` and `lease` unless it exists; either way
  // returns its create revision and current value.
  grpc::Status CreateIfAbsent(grpc::ServerContext* caller, const std::string& key,
                              const std::string& value, int64_t lease, int64_t* create_revision,
                              std::string* current_value, etcdserverpb::ResponseHeader* header) {
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* compare = txn.add_compare();
    compare->set_key(key);
    compare->set_target(etcdserverpb::Compare::CREATE);
    compare->set_result(etcdserverpb::Compare::EQUAL);
    compare->set_create_revision(0);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_lease(lease);
    txn.add_failure()->mutable_request_range()->set_key(key);
    etcdserverpb::TxnResponse response;
    if (grpc::Status s = Txn(caller, txn, &response); !s.ok()) return s;
    *header = response.header();
    if (response.succeeded()) {
      *create_revision = response.header().revision();
      *current_value = value;
    } else {
      const etcdserverpb::RangeResponse& range = response.responses(0).response_range();
      if (range.kvs_size() == 0) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the key vanished; retry");
      }
      *create_revision = range.kvs(0).create_revision();
      *current_value = range.kvs(0).value();
    }
    return grpc::Status::OK;
  }

 private:
  static grpc::Status NotReady() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: not ready");
  }
  etcdserverpb::KV::Stub* Kv() {
    absl::MutexLock lock(&mu_);
    return stopping_ ? nullptr : kv_.get();
  }
  etcdserverpb::Watch::Stub* WatchStub() {
    absl::MutexLock lock(&mu_);
    return stopping_ ? nullptr : watch_.get();
  }

 public:
  // The server is about to shut down: no new call over its in-process
  // channel (gRPC crashes making one while the server shuts down, as the
  // clean-up of a lock waiter the shutdown cancelled did). The waiter's key
  // stays until its lease runs out, as when a client dies.
  void Disconnect() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }

 private:
  absl::Mutex mu_;
  bool stopping_ = false;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
};

std::shared_ptr<Recipes> MakeRecipes() { return std::make_shared<Recipes>(); }

void ConnectRecipes(Recipes* recipes, std::shared_ptr<grpc::Channel> channel) {
  recipes->Connect(std::move(channel));
}

void DisconnectRecipes(Recipes* recipes) { recipes->Disconnect(); }

namespace {

// A txn that runs only while `leader` still holds its key (the key's
// create revision is the one it was elected with).
etcdserverpb::TxnRequest WhileLeader(const v3electionpb::LeaderKey& leader) {
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* compare = txn.add_compare();
  compare->set_key(leader.key());
  compare->set_target(etcdserverpb::Compare::CREATE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_create_revision(leader.rev());
  return txn;
}

// What the concurrency package's plain errors become on etcd's wire.
grpc::Status RecipeError(const std::string& message) {
  return grpc::Status(grpc::StatusCode::UNKNOWN, message);
}

}  // namespace

// ---------------------------------------------------------------- Lock --

grpc::Status LockService::Lock(grpc::ServerContext* context, const v3lockpb::LockRequest* request,
                               v3lockpb::LockResponse* response) {
  std::string prefix = request->name() + "/";
  std::string key = Recipes::KeyFor(request->name(), request->lease());
  int64_t revision = 0;
  std::string value;
  etcdserverpb::ResponseHeader header;
  if (grpc::Status s = recipes_->CreateIfAbsent(context, key, "", request->lease(), &revision,
                                                &value, &header);
      !s.ok()) {
    return s;
  }
  if (grpc::Status s = recipes_->WaitTurn(context, prefix, key, revision, &header); !s.ok()) {
    return s;
  }
  *response->mutable_header() = header;
  response->set_key(key);
  return grpc::Status::OK;
}

grpc::Status LockService::Unlock(grpc::ServerContext* context,
                                 const v3lockpb::UnlockRequest* request,
                                 v3lockpb::UnlockResponse* response) {
  etcdserverpb::DeleteRangeResponse deleted;
  if (grpc::Status s = recipes_->Delete(context, request->key(), &deleted); !s.ok()) return s;
  *response->mutable_header() = deleted.header();
  return grpc::Status::OK;
}

// ------------------------------------------------------------ Election --

grpc::Status ElectionService::Campaign(grpc::ServerContext* context,
                                       const v3electionpb::CampaignRequest* request,
                                       v3electionpb::CampaignResponse* response) {
  std::string prefix = request->name() + "/";
  std::string key = Recipes::KeyFor(request->name(), request->lease());
  int64_t revision = 0;
  std::string value;
  etcdserverpb::ResponseHeader header;
  if (grpc::Status s = recipes_->CreateIfAbsent(context, key, request->value(), request->lease(),
                                                &revision, &value, &header);
      !s.ok()) {
    return s;
  }
  if (value != request->value()) {
    // Campaigning again with the same lease: the value is updated.
    v3electionpb::ProclaimRequest proclaim;
    proclaim.mutable_leader()->set_name(request->name());
    proclaim.mutable_leader()->set_key(key);
    proclaim.mutable_leader()->set_rev(revision);
    proclaim.mutable_leader()->set_lease(request->lease());
    proclaim.set_value(request->value());
    v3electionpb::ProclaimResponse proclaimed;
    if (grpc::Status s = Proclaim(context, &proclaim, &proclaimed); !s.ok()) return s;
  }
  if (grpc::Status s = recipes_->WaitTurn(context, prefix, key, revision, &header); !s.ok()) {
    return s;
  }
  *response->mutable_header() = header;
  v3electionpb::LeaderKey* leader = response->mutable_leader();
  leader->set_name(request->name());
  leader->set_key(key);
  leader->set_rev(revision);
  leader->set_lease(request->lease());
  return grpc::Status::OK;
}

grpc::Status ElectionService::Proclaim(grpc::ServerContext* context,
                                       const v3electionpb::ProclaimRequest* request,
                                       v3electionpb::ProclaimResponse* response) {
  if (!request->has_leader()) return RecipeError("\"leader\" field must be provided");
  const v3electionpb::LeaderKey& leader = request->leader();
  etcdserverpb::TxnRequest txn = WhileLeader(leader);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(leader.key());
  put->set_value(request->value());
  put->set_lease(leader.lease());
  etcdserverpb::TxnResponse result;
  if (grpc::Status s = recipes_->Txn(context, txn, &result); !s.ok()) return s;
  if (!result.succeeded()) return RecipeError("election: not leader");
  *response->mutable_header() = result.header();
  return grpc::Status::OK;
}

grpc::Status ElectionService::Leader(grpc::ServerContext* context,
                                     const v3electionpb::LeaderRequest* request,
                                     v3electionpb::LeaderResponse* response) {
  etcdserverpb::RangeResponse owner;
  if (grpc::Status s = recipes_->Owner(context, request->name() + "/", &owner); !s.ok()) return s;
  if (owner.kvs_size() == 0) return RecipeError("election: no leader");
  *response->mutable_header() = owner.header();
  *response->mutable_kv() = owner.kvs(0);
  return grpc::Status::OK;
}

grpc::Status ElectionService::Observe(grpc::ServerContext* context,
                                      const v3electionpb::LeaderRequest* request,
                                      grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) {
  // Sends the leader whenever it (or its value) changes, until the caller
  // goes away. Between looks it waits for the leader's key to change.
  std::string last;
  while (!context->IsCancelled()) {
    etcdserverpb::RangeResponse owner;
    if (grpc::Status s = recipes_->Owner(context, request->name() + "/", &owner); !s.ok()) {
      return s;
    }
    if (owner.kvs_size() > 0) {
      std::string seen = owner.kvs(0).SerializeAsString();
      if (seen != last) {
        v3electionpb::LeaderResponse response;
        *response.mutable_header() = owner.header();
        *response.mutable_kv() = owner.kvs(0);
        if (!writer->Write(response)) return grpc::Status::OK;
        last = seen;
      }
    }
    // Wait for any change under the name (a second at most).
    recipes_->WaitChange(context, request->name() + "/", owner.header().revision());
  }
  return grpc::Status::OK;
}

grpc::Status ElectionService::Resign(grpc::ServerContext* context,
                                     const v3electionpb::ResignRequest* request,
                                     v3electionpb::ResignResponse* response) {
  if (!request->has_leader()) return RecipeError("\"leader\" field must be provided");
  const v3electionpb::LeaderKey& leader = request->leader();
  etcdserverpb::TxnRequest txn = WhileLeader(leader);
  txn.add_success()->mutable_request_delete_range()->set_key(leader.key());
  etcdserverpb::TxnResponse result;
  if (grpc::Status s = recipes_->Txn(context, txn, &result); !s.ok()) return s;
  *response->mutable_header() = result.header();
  return grpc::Status::OK;
}

}  // namespace etc::server
