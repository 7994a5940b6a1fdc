#include "server/cluster_service.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "member/errors.h"
#include "server/config.h"
#include "server/rpc.h"

namespace etc::server {
namespace {

using StatusDone = std::function<void(absl::Status)>;

// The Raft core refuses a second change while one is pending; etcd says
// so in its own words.
absl::Status MembershipError(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kFailedPrecondition &&
      absl::StrContains(status.message(), "pending")) {
    return absl::UnavailableError("etcdserver: unhealthy cluster");
  }
  return status;
}

// Starts a membership change on the member and waits for it, at most the
// request timeout.
absl::Status AwaitChange(MemberHost* host, const std::function<void(StatusDone)>& start) {
  absl::Duration timeout = absl::Milliseconds(host->options().request_timeout_ms);
  return MembershipError(Await(timeout, start));
}

// Every answer lists the members as applied now.
template <typename Response>
void AnswerWithMembers(MemberHost* host, Response* response) {
  ListMembers(host->membership(), response->mutable_members());
  absl::StatusOr<int64_t> revision = OnMember<absl::StatusOr<int64_t>>(
      host, [](MemberHost::Context& c) { return c.store().revision(); });
  // The change is done; a header without the revision beats no answer.
  response->mutable_header()->set_revision(revision.value_or(0));
  StampHeaders(response, *host);
}

}  // namespace

grpc::Status ClusterService::MemberList(grpc::ServerContext*,
                                        const etcdserverpb::MemberListRequest*,
                                        etcdserverpb::MemberListResponse* response) {
  AnswerWithMembers(host_, response);
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberAdd(grpc::ServerContext* context,
                                       const etcdserverpb::MemberAddRequest* request,
                                       etcdserverpb::MemberAddResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  std::vector<std::string> urls(request->peerurls().begin(), request->peerurls().end());
  if (absl::Status s = CheckPeerUrls(urls, 0); !s.ok()) return ToGrpc(s);
  Membership current = host_->membership();
  if (request->islearner()) {
    // etcd allows one learner at a time.
    if (current.conf.learners_size() + current.conf.learners_next_size() >= 1) {
      return ToGrpc(member::TooManyLearnersError());
    }
  }
  uint64_t id = NewMemberId(urls, current);
  raftpb::ConfChange change;
  change.add_changes()->set_type(request->islearner() ? raftpb::ADD_LEARNER_NODE
                                                      : raftpb::ADD_NODE);
  change.mutable_changes(0)->set_node_id(id);
  peerpb::MemberAttributes attributes;
  for (const std::string& url : urls) attributes.add_peer_urls(url);
  absl::Status status = AwaitChange(host_, [&](StatusDone done) {
    host_->ChangeMembership(change, attributes, std::move(done));
  });
  if (!status.ok()) return ToGrpc(status);
  etcdserverpb::Member* member = response->mutable_member();
  member->set_id(id);
  for (const std::string& url : urls) member->add_peerurls(url);
  member->set_islearner(request->islearner());
  AnswerWithMembers(host_, response);
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberRemove(grpc::ServerContext* context,
                                          const etcdserverpb::MemberRemoveRequest* request,
                                          etcdserverpb::MemberRemoveResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  if (!host_->membership().Contains(request->id())) return ToGrpc(member::MemberNotFoundError());
  raftpb::ConfChange change;
  change.add_changes()->set_type(raftpb::REMOVE_NODE);
  change.mutable_changes(0)->set_node_id(request->id());
  absl::Status status = AwaitChange(host_, [&](StatusDone done) {
    host_->ChangeMembership(change, std::nullopt, std::move(done));
  });
  if (!status.ok()) return ToGrpc(status);
  AnswerWithMembers(host_, response);
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberUpdate(grpc::ServerContext* context,
                                          const etcdserverpb::MemberUpdateRequest* request,
                                          etcdserverpb::MemberUpdateResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  std::vector<std::string> urls(request->peerurls().begin(), request->peerurls().end());
  Membership current = host_->membership();
  if (!current.Contains(request->id())) return ToGrpc(member::MemberNotFoundError());
  if (absl::Status s = CheckPeerUrls(urls, request->id()); !s.ok()) return ToGrpc(s);
  peerpb::MemberAttributes attributes = current.attributes[request->id()];
  attributes.clear_peer_urls();
  for (const std::string& url : urls) attributes.add_peer_urls(url);
  absl::Status status = AwaitChange(host_, [&](StatusDone done) {
    host_->UpdateAttributes(request->id(), attributes, std::move(done));
  });
  if (!status.ok()) return ToGrpc(status);
  AnswerWithMembers(host_, response);
  return grpc::Status::OK;
}

grpc::Status ClusterService::MemberPromote(grpc::ServerContext* context,
                                           const etcdserverpb::MemberPromoteRequest* request,
                                           etcdserverpb::MemberPromoteResponse* response) {
  if (absl::Status s = RequireAdmin(host_, context); !s.ok()) return ToGrpc(s);
  absl::Status status;
  if (host_->leader() == host_->options().member_id) {
    status = AwaitChange(
        host_, [&](StatusDone done) { host_->PromoteLearner(request->id(), std::move(done)); });
  } else {
    // Only the leader knows how far the learner's log is.
    status = CallLeader(host_, peers_, [&](peerpb::Peer::Stub* stub, grpc::ClientContext* call) {
      etcdserverpb::MemberPromoteResponse ignored;
      return stub->MemberPromote(call, *request, &ignored);
    });
    status = MembershipError(status);
  }
  if (!status.ok()) return ToGrpc(status);
  AnswerWithMembers(host_, response);
  return grpc::Status::OK;
}

absl::Status ClusterService::CheckPeerUrls(const std::vector<std::string>& urls, uint64_t self) {
  if (urls.empty()) return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
  for (const std::string& url : urls) {
    if (!HostPort(url).ok()) {
      return absl::InvalidArgumentError("etcdserver: given member URLs are invalid");
    }
  }
  Membership current = host_->membership();
  for (const auto& [id, attributes] : current.attributes) {
    if (id == self || !current.Contains(id)) continue;
    for (const std::string& url : attributes.peer_urls()) {
      if (std::find(urls.begin(), urls.end(), url) != urls.end()) {
        return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
      }
    }
  }
  return absl::OkStatus();
}

uint64_t ClusterService::NewMemberId(const std::vector<std::string>& urls,
                                     const Membership& current) const {
  // etcd's id for an added member: its peer URLs, the token and the time.
  int64_t now = absl::ToUnixSeconds(absl::Now());
  uint64_t id = MemberId(urls, cluster_token_, now);
  while (id == 0 || current.Contains(id) || current.removed.contains(id)) {
    id = MemberId(urls, cluster_token_, ++now);
  }
  return id;
}

}  // namespace etc::server
