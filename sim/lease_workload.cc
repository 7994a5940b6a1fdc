#include "sim/lease_workload.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace etc::sim {
namespace {

constexpr Micros kTickUs = kTickPeriodUs;
constexpr Micros kElectionTimeoutUs = kElectionTicks * kTickPeriodUs;
constexpr Micros kLeaseCheckUs = kLeaseCheckIntervalMs * 1000;
// A renewal unanswered this long is given up (the member waits at most an
// election timeout of its own clock for a new leader to be ready).
constexpr Micros kRenewTimeoutUs = 3 * kElectionTimeoutUs;

}  // namespace

LeaseWorkload::LeaseWorkload(World* world, AuthWorkload* auth, Random random, Random latency)
    : world_(world), auth_(auth), random_(std::move(random)), latency_(std::move(latency)) {
  world_->add_apply_observer(
      [this](Process&, uint64_t, const kvpb::Request& request, const kvpb::Response&) {
        OnApply(request);
      });
  world_->add_after_input([this](Process& process) {
    const raft::Raft& raft = process.member()->node().raft();
    if (raft.role() == raft::Role::kLeader && raft.term() > last_leader_term_) {
      last_leader_term_ = raft.term();
      last_election_us_ = world_->queue().now_us();
    }
  });
}

void LeaseWorkload::Start(int clients, Micros grace_end_us) {
  grace_end_us_ = grace_end_us;
  clients_.resize(static_cast<size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    Client& client = clients_[i];
    client.id = i;
    client.random = random_.Fork(i);
    client.session = auth_->NewSession(AuthWorkload::kClientUser);
    Next(client, client.random.Range(0, 200'000));
  }
}

void LeaseWorkload::Next(Client& client, Micros after_us) {
  world_->queue().After(after_us, [this, &client] {
    if (!world_->failed()) NewLease(client);
  });
}

void LeaseWorkload::NewLease(Client& client) {
  Lease lease;
  lease.id = static_cast<kv::LeaseId>((client.id + 1) * 1'000'000 + ++client.leases);
  lease.client = client.id;
  lease.ttl_seconds = client.random.Range(1, 2);
  Micros ttl_us = lease.ttl_seconds * 1'000'000;
  uint64_t roll = client.random.Uniform(10);
  lease.plan = roll < 5 ? Plan::kAbandon : roll < 7 ? Plan::kRevoke : Plan::kKeepAlive;
  lease.renew_until_us = world_->queue().now_us() + client.random.Range(0, 2 * ttl_us);
  kv::LeaseId id = lease.id;
  leases_.emplace(id, lease);
  world_->trace().Event("lease.grant", static_cast<uint64_t>(client.id), static_cast<uint64_t>(id),
                        [&] {
                          return absl::StrCat("lease client ", client.id, " grants lease ", id,
                                              " for ", lease.ttl_seconds, "s");
                        });
  SendGrant(client, id);
}

void LeaseWorkload::SendWrite(Client& client, kvpb::Request request,
                              std::function<void(absl::StatusOr<kvpb::Response>)> done) {
  std::vector<NodeId> members = world_->Members();
  NodeId target = members.empty() ? 1 + client.random.Uniform(world_->processes().size())
                                  : members[client.random.Uniform(members.size())];
  world_->queue().After(Latency(), [this, &client, target, request = std::move(request),
                                    done = std::move(done)]() mutable {
    auto back = [this, done](absl::StatusOr<kvpb::Response> result) {
      world_->queue().After(Latency(), [done, result = std::move(result)] { done(result); });
    };
    Process& process = world_->process(target);
    if (!process.up()) {
      back(absl::UnavailableError("connection refused"));
      return;
    }
    world_->RunOn(process, [this, &process, &client, request = std::move(request), back]() mutable {
      auth_->Send(process, client.session, std::move(request), AuthWorkload::Mode::kWrite, back);
    });
  });
}

void LeaseWorkload::SendGrant(Client& client, kv::LeaseId id) {
  Lease& lease = leases_.at(id);
  // A retry may reach a member after the first attempt took effect: the
  // send time that counts is the first one (the lease lives longer, never
  // shorter, than a TTL past it).
  if (lease.granted_sent_us < 0) lease.granted_sent_us = world_->queue().now_us();
  kvpb::Request request;
  request.mutable_lease_grant()->set_id(id);
  request.mutable_lease_grant()->set_ttl(lease.ttl_seconds);
  SendWrite(client, std::move(request), [this, &client, id](absl::StatusOr<kvpb::Response> r) {
    if (world_->failed()) return;
    Lease& lease = leases_.at(id);
    if (r.ok() || r.status().code() == absl::StatusCode::kFailedPrecondition) {
      // Granted (or granted by an earlier attempt: "lease already exists").
      lease.grant_answered = true;
      ++stats_.granted;
      Attach(client, id);
      Renew(client, id);
      return;
    }
    if (r.status().code() == absl::StatusCode::kUnavailable) {
      // It certainly did not happen: again, elsewhere.
      world_->queue().After(client.random.Range(2'000, 20'000),
                            [this, &client, id] { SendGrant(client, id); });
      return;
    }
    // Unknown outcome: if it was granted, nobody renews it, so it must
    // expire; the liveness check at the end says whether it did.
    lease.plan = Plan::kAbandon;
    lease.renew_until_us = 0;
    Next(client, client.random.Range(10'000, 100'000));
  });
}

void LeaseWorkload::Attach(Client& client, kv::LeaseId id) {
  kvpb::Request request;
  request.mutable_put()->set_key(absl::StrCat("lease/", id));
  request.mutable_put()->set_value("held");
  request.mutable_put()->set_lease(id);
  // The key goes with the lease (the store's invariants check it); the
  // answer does not matter.
  SendWrite(client, std::move(request), [](absl::StatusOr<kvpb::Response>) {});
}

void LeaseWorkload::Renew(Client& client, kv::LeaseId id) {
  Lease& lease = leases_.at(id);
  if (lease.gone || world_->failed()) {
    Next(client, client.random.Range(10'000, 100'000));
    return;
  }
  Micros now_us = world_->queue().now_us();
  if (lease.plan != Plan::kKeepAlive && now_us >= lease.renew_until_us) {
    if (lease.plan == Plan::kRevoke) {
      Revoke(client, id);
    } else {
      world_->trace().Event("lease.abandon", static_cast<uint64_t>(client.id),
                            static_cast<uint64_t>(id),
                            [&] { return absl::StrCat("lease ", id, " is no longer renewed"); });
      Next(client, client.random.Range(10'000, 300'000));
    }
    return;
  }
  // Renew through the leader (a follower forwards renewals to it in the
  // server), a third of a TTL apart, as etcd's client does.
  Micros sent_us = now_us;
  NodeId leader = world_->Leader();
  world_->queue().After(Latency(), [this, &client, id, sent_us, leader] {
    // Answered once: by the member (a new leader may take a round trip to
    // answer for leases), or by the client's own timeout if the member
    // died or hung meanwhile.
    auto answered = std::make_shared<bool>(false);
    auto back = [this, &client, id, sent_us, answered](absl::StatusOr<int64_t> ttl) {
      if (*answered) return;
      *answered = true;
      world_->queue().After(Latency(), [this, &client, id, sent_us, ttl] {
        OnRenewed(client, id, sent_us, ttl);
      });
    };
    world_->queue().After(kRenewTimeoutUs, [back] { back(absl::UnavailableError("timed out")); });
    if (leader == 0 || !world_->process(leader).up() || world_->process(leader).paused) {
      back(absl::UnavailableError("no leader"));
      return;
    }
    Process& process = world_->process(leader);
    world_->RunOn(process, [&process, id, back] { process.kv->KeepAliveWhenReady(id, back); });
  });
}

void LeaseWorkload::OnRenewed(Client& client, kv::LeaseId id, Micros sent_us,
                              absl::StatusOr<int64_t> ttl) {
  Lease& lease = leases_.at(id);
  if (ttl.ok()) {
    ++stats_.renewals;
    lease.renewed_sent_us = std::max(lease.renewed_sent_us, sent_us);
    Micros ttl_us = lease.ttl_seconds * 1'000'000;
    // Now and then the client stalls (a pause, a slow network) for
    // about a TTL, so that its renewals meet the lease just as it
    // expires, on one leader or across a change of leaders.
    Micros next_us = client.random.Chance(0.15)
                         ? static_cast<Micros>(static_cast<double>(ttl_us) *
                                               (0.8 + 0.4 * client.random.Unit()))
                         : ttl_us / 3;
    world_->queue().After(next_us, [this, &client, id] { Renew(client, id); });
    return;
  }
  if (ttl.status().code() == absl::StatusCode::kNotFound) {
    // Expired (or never granted): the client starts over.
    lease.gone = true;
    Next(client, client.random.Range(10'000, 100'000));
    return;
  }
  // No leader, or one not ready: ask again soon.
  world_->queue().After(client.random.Range(5'000, 30'000),
                        [this, &client, id] { Renew(client, id); });
}

void LeaseWorkload::Revoke(Client& client, kv::LeaseId id) {
  kvpb::Request request;
  request.mutable_lease_revoke()->set_id(id);
  SendWrite(client, std::move(request), [this, &client](absl::StatusOr<kvpb::Response>) {
    // Revoked, or not: an unrevoked lease is no longer renewed, so it
    // expires, which the liveness check holds it to.
    Next(client, client.random.Range(10'000, 200'000));
  });
}

void LeaseWorkload::OnApply(const kvpb::Request& request) {
  if (request.has_lease_revoke()) {
    auto it = leases_.find(request.lease_revoke().id());
    if (it != leases_.end() && !it->second.gone) {
      it->second.gone = true;
      ++stats_.revoked;
    }
    return;
  }
  if (!request.has_lease_expire()) return;
  for (int64_t id : request.lease_expire().ids()) {
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second.gone) continue;
    OnExpired(it->second);
  }
}

void LeaseWorkload::OnExpired(Lease& lease) {
  // The first member to apply the revocation: its effect (the lease's key
  // deleted) is visible from now on.
  lease.gone = true;
  ++stats_.expired;
  Micros now_us = world_->queue().now_us();
  world_->trace().Event("lease.expired", static_cast<uint64_t>(lease.client),
                        static_cast<uint64_t>(lease.id), [&] {
                          return absl::StrCat("lease ", lease.id, " expires, ",
                                              (now_us - LastRenewedUs(lease)) / 1000,
                                              "ms after its last renewal was sent");
                        });
  // Without CheckQuorum a deposed leader can go on answering renewals that
  // the new leader never hears of: the server always runs with it.
  if (!world_->swarm().check_quorum || LastRenewedUs(lease) < 0) return;
  // The leader measures the TTL on its own clock, which may run fast by
  // the drift bound; and it acts on ticks.
  double ttl_us = static_cast<double>(lease.ttl_seconds) * 1e6;
  Micros earliest_us = LastRenewedUs(lease) +
                       static_cast<Micros>(ttl_us / (1 + world_->clock_drift_fraction())) -
                       2 * kTickUs;
  if (now_us < earliest_us) {
    world_->Fail("lease-expiry",
                 absl::StrCat("lease ", lease.id, " (TTL ", lease.ttl_seconds,
                              "s) was revoked by expiry ", (now_us - LastRenewedUs(lease)) / 1000,
                              "ms after its client sent a renewal that succeeded"));
  }
}

void LeaseWorkload::CheckEnd() {
  Micros now_us = world_->queue().now_us();
  for (const auto& [id, lease] : leases_) {
    if (lease.gone || lease.plan == Plan::kKeepAlive) continue;
    Micros last_us = std::max({LastRenewedUs(lease), last_election_us_, grace_end_us_});
    Micros deadline_us = last_us + lease.ttl_seconds * 1'000'000 + kElectionTimeoutUs +
                         2 * kLeaseCheckUs + 100'000;
    if (deadline_us > now_us) continue;
    // Gone from the leader's table means revoked (by expiry or by its
    // client, whose answer may not have been seen).
    NodeId leader = world_->Leader();
    if (leader == 0 || world_->process(leader).store().leases().Find(id) == nullptr) continue;
    world_->Fail("lease-liveness",
                 absl::StrCat("lease ", id, " (TTL ", lease.ttl_seconds,
                              "s) is still there ", (now_us - last_us) / 1000,
                              "ms after nobody renewed it, every fault healed and the last "
                              "leader took over"));
    return;
  }
}

}  // namespace etc::sim
