// The policies both hosts run, on a hand-driven cluster of KvMembers: a
// clock the test moves, stores whose writes complete when the test says,
// messages delivered until nothing moves.
#include "member/kv_member.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kv/errors.h"
#include "member/testing/fake_host.h"
#include "raft/conf_state.h"
#include "raft/memory_storage.h"

namespace etc::member {
namespace {

class FakeClock : public Clock {
 public:
  int64_t now_ms() override { return now; }
  int64_t now = 1'000;
};

struct Host {
  fake::FakeStore store;
  fake::Outbox outbox{&store};
  KvMachine kv;
  FakeClock clock;
  std::unique_ptr<KvMember> member;
  // Writes complete only while true (false: the disk hangs).
  bool disk_works = true;
  bool connected = true;
};

constexpr int64_t kTickMs = 100;

class Cluster {
 public:
  // `size` voters, plus `spares` members that start empty (to be added).
  explicit Cluster(int size, int spares = 0, KvMemberOptions options = {}) : options_(options) {
    options_.tick_ms = kTickMs;
    options_.election_ticks = 10;
    std::vector<raft::NodeId> voters;
    for (int i = 1; i <= size; ++i) voters.push_back(i);
    for (int i = 1; i <= size + spares; ++i) {
      auto host = std::make_unique<Host>();
      if (i <= size) host->store.durable = raft::MemoryStorage::Bootstrap(voters);
      hosts_.push_back(std::move(host));
      if (i <= size) Start(i);
    }
  }

  void Start(raft::NodeId id) {
    Host& h = host(id);
    MemberConfig config;
    config.raft.id = id;
    config.raft.random_seed = 7;
    config.raft.election_timeout_ticks = 10;
    config.snapshot_every_entries = 0;
    KvMemberOptions options = options_;
    if (publish) {
      options.attributes_to_publish = [id](const std::string&) { return absl::StrCat("m", id); };
    }
    auto member = KvMember::Start(options, config, h.store.durable.ToDurable(), &h.outbox,
                                  &h.store, &h.kv, &h.clock);
    ASSERT_TRUE(member.ok()) << member.status();
    h.member = std::move(*member);
  }

  Host& host(raft::NodeId id) { return *hosts_[id - 1]; }
  KvMember& at(raft::NodeId id) { return *host(id).member; }

  // Completes writes and delivers messages until nothing moves (or `stop`
  // holds after a round), calling AfterStep after every input, as a host
  // does.
  void Settle(const std::function<bool()>& stop = nullptr) {
    for (int round = 0; round < 1000; ++round) {
      if (stop && stop()) return;
      bool moved = false;
      for (auto& h : hosts_) {
        if (!h->member) continue;
        while (h->disk_works && !h->store.pending.empty()) {
          h->member->member().OnPersisted(h->store.CompleteOne());
          h->member->AfterStep();
          moved = true;
        }
      }
      for (auto& h : hosts_) {
        std::vector<raftpb::Message> messages = std::move(h->outbox.messages);
        h->outbox.messages.clear();
        for (raftpb::Message& m : messages) {
          moved = true;
          if (m.to() < 1 || m.to() > hosts_.size()) continue;
          Host& to = host(m.to());
          if (!to.member || !to.connected || !h->connected) continue;
          EXPECT_TRUE(to.member->member().Receive(m).ok());
          to.member->AfterStep();
        }
      }
      if (!moved) return;
    }
    FAIL() << "did not settle";
  }

  // Moves every member's clock by `ms`, ticking as hosts do.
  void Advance(int64_t ms) {
    for (int64_t done = 0; done < ms; done += kTickMs) {
      for (auto& h : hosts_) {
        h->clock.now += kTickMs;
        if (!h->member) continue;
        h->member->member().Tick();
        h->member->AfterStep();
      }
      Settle();
    }
  }

  raft::NodeId ElectLeader(raft::NodeId id = 1) {
    EXPECT_TRUE(at(id).member().Campaign().ok());
    Settle();
    EXPECT_TRUE(at(id).is_leader());
    return id;
  }

  bool publish = false;

 private:
  KvMemberOptions options_;
  std::vector<std::unique_ptr<Host>> hosts_;
};

struct Answer {
  KvMember::Done done() {
    return [this](absl::StatusOr<kvpb::Response> r) {
      ++calls;
      value = std::move(r);
    };
  }
  KvMember::StatusDone status_done() {
    return [this](absl::Status s) {
      ++calls;
      value = s.ok() ? absl::StatusOr<kvpb::Response>(kvpb::Response()) : s;
    };
  }
  int calls = 0;
  absl::StatusOr<kvpb::Response> value = absl::UnknownError("not called");
};

kvpb::Request Put(std::string key, std::string value, kv::LeaseId lease = 0) {
  kvpb::Request request;
  request.mutable_put()->set_key(std::move(key));
  request.mutable_put()->set_value(std::move(value));
  request.mutable_put()->set_lease(lease);
  return request;
}

kvpb::Request Get(std::string key) {
  kvpb::Request request;
  request.mutable_range()->set_key(std::move(key));
  return request;
}

kvpb::Request Grant(kv::LeaseId id, int64_t ttl_seconds) {
  kvpb::Request request;
  request.mutable_lease_grant()->set_id(id);
  request.mutable_lease_grant()->set_ttl(ttl_seconds);
  return request;
}

bool Present(KvMember& member, const std::string& key) {
  return member.store().Query(Get(key)).range().kvs_size() == 1;
}

TEST(KvMember, WritesAndReadsAnswerWithTheKeyTreesResponse) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Answer put, read, serializable;
  cluster.at(2).Write(Put("/a", "1"), put.done());
  cluster.Settle();
  ASSERT_TRUE(put.value.ok()) << put.value.status();
  EXPECT_EQ(put.value->put().header().revision(), 1);
  cluster.at(3).Read(Get("/a"), /*serializable=*/false, read.done());
  cluster.at(3).Read(Get("/a"), /*serializable=*/true, serializable.done());
  cluster.Settle();
  ASSERT_TRUE(read.value.ok());
  EXPECT_EQ(read.value->range().kvs(0).value(), "1");
  EXPECT_EQ(serializable.value->range().kvs(0).value(), "1");
}

// Holds background work until the test runs it (the state as of the call
// is what the work computed, as a forked child's is).
class HeldRunner : public BackgroundRunner {
 public:
  void Run(std::function<std::string()> compute, size_t, Done done) override {
    held.push_back([result = compute(), done = std::move(done)] { done(result); });
  }
  std::vector<std::function<void()>> held;
};

TEST(KvMember, AWholeTreeHashRunsInTheBackgroundOverTheStateAtTheRead) {
  Cluster cluster(1);
  cluster.ElectLeader();
  HeldRunner runner;
  cluster.host(1).kv.set_background_runner(&runner);
  Answer put;
  cluster.at(1).Write(Put("/a", "1"), put.done());
  cluster.Settle();
  kvpb::Request hash;
  hash.mutable_hash_kv();
  Answer linearizable, serializable, range;
  cluster.at(1).Read(hash, /*serializable=*/false, linearizable.done());
  cluster.at(1).Read(hash, /*serializable=*/true, serializable.done());
  cluster.at(1).Read(Get("/a"), /*serializable=*/true, range.done());
  cluster.Settle();
  EXPECT_EQ(range.calls, 1) << "other reads are answered at once";
  ASSERT_EQ(runner.held.size(), 2u) << "both hashes went to the runner";
  EXPECT_EQ(linearizable.calls + serializable.calls, 0);
  uint32_t at_read = cluster.at(1).store().HashKV(0);
  // The tree moves on before the background work reports.
  Answer later;
  cluster.at(1).Write(Put("/b", "2"), later.done());
  cluster.Settle();
  ASSERT_NE(cluster.at(1).store().HashKV(0), at_read);
  for (auto& finish : runner.held) finish();
  ASSERT_TRUE(linearizable.value.ok()) << linearizable.value.status();
  ASSERT_TRUE(serializable.value.ok()) << serializable.value.status();
  EXPECT_EQ(linearizable.value->hash_kv().hash(), at_read);
  EXPECT_EQ(serializable.value->hash_kv().hash(), at_read);
}

TEST(KvMember, AnInvalidRequestIsRefusedBeforeItIsProposed) {
  Cluster cluster(1);
  cluster.Settle();
  uint64_t last = cluster.at(1).member().node().raft().log().last_index();
  Answer answer;
  cluster.at(1).Write(Put("", "no key"), answer.done());
  EXPECT_EQ(answer.calls, 1);
  EXPECT_EQ(answer.value.status().code(), absl::StatusCode::kInvalidArgument);
  cluster.Settle();
  EXPECT_EQ(cluster.at(1).member().node().raft().log().last_index(), last);
}

TEST(KvMember, ARequestWithoutAnAnswerTimesOutWithAnUnknownOutcome) {
  KvMemberOptions options;
  options.request_timeout_ms = 1'000;
  Cluster cluster(3, 0, options);
  cluster.ElectLeader();
  // The leader alone: nothing commits.
  cluster.host(2).connected = false;
  cluster.host(3).connected = false;
  Answer answer;
  cluster.at(1).Write(Put("/a", "1"), answer.done());
  cluster.Settle();
  cluster.Advance(900);
  EXPECT_EQ(answer.calls, 0);
  cluster.Advance(200);
  ASSERT_EQ(answer.calls, 1);
  EXPECT_EQ(answer.value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(answer.value.status().message(), "etcdserver: request timed out");
  EXPECT_EQ(cluster.at(1).waiting_requests(), 0u);
}

TEST(KvMember, AMemberThatAppliesFarBehindItsCommitRefusesWrites) {
  KvMemberOptions options;
  options.max_applied_lag_entries = 20;
  Cluster cluster(3, 0, options);
  cluster.ElectLeader();
  // Member 2's disk hangs: it learns of commits (its log holds the entries
  // in memory) but applies nothing.
  cluster.host(2).disk_works = false;
  for (int i = 0; i < 40; ++i) {
    cluster.at(1).Write(Put("/k" + std::to_string(i), "v"), [](absl::StatusOr<kvpb::Response>) {});
    cluster.Settle();
  }
  cluster.Advance(200);
  ASSERT_GT(cluster.at(2).member().node().raft().log().committed(),
            cluster.at(2).member().applied_index() + 20);
  Answer refused, fine;
  cluster.at(2).Write(Put("/x", "1"), refused.done());
  EXPECT_EQ(refused.value.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.value.status().message(), "etcdserver: too many requests");
  // The leader, which keeps up, takes writes.
  cluster.at(1).Write(Put("/x", "1"), fine.done());
  cluster.Settle();
  EXPECT_TRUE(fine.value.ok()) << fine.value.status();
}

TEST(KvMember, FailAllAnswersEveryWaitingRequest) {
  Cluster cluster(3);
  cluster.ElectLeader();
  cluster.host(2).connected = false;
  cluster.host(3).connected = false;
  Answer a, b;
  cluster.at(1).Write(Put("/a", "1"), a.done());
  cluster.at(1).Read(Get("/a"), false, b.done());
  cluster.at(1).FailAll();
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(a.value.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The member's own answer, if it ever comes, goes nowhere.
  cluster.host(2).connected = true;
  cluster.host(3).connected = true;
  cluster.Advance(2'000);
  EXPECT_EQ(a.calls, 1);
}

TEST(KvMember, TheLeaderRevokesALeaseThatWasNotKeptAliveAndItsKeysGoWithIt) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Answer grant, put;
  cluster.at(2).Write(Grant(7, 3), grant.done());
  cluster.Settle();
  ASSERT_TRUE(grant.value.ok()) << grant.value.status();
  cluster.at(2).Write(Put("/lease/key", "v", 7), put.done());
  cluster.Settle();
  ASSERT_TRUE(put.value.ok()) << put.value.status();
  // Kept alive for 5 s, past its 3 s TTL.
  for (int i = 0; i < 5; ++i) {
    cluster.Advance(1'000);
    ASSERT_TRUE(cluster.at(1).KeepAlive(7).ok());
  }
  for (raft::NodeId id : {1, 2, 3}) EXPECT_TRUE(Present(cluster.at(id), "/lease/key"));
  // Then not: within its TTL and one check interval it is revoked
  // everywhere, through the log.
  cluster.Advance(2'500);
  EXPECT_TRUE(Present(cluster.at(3), "/lease/key"));
  cluster.Advance(1'100);
  for (raft::NodeId id : {1, 2, 3}) {
    EXPECT_FALSE(Present(cluster.at(id), "/lease/key")) << "member " << id;
    EXPECT_EQ(cluster.at(id).store().leases().Find(7), nullptr);
  }
}

TEST(KvMember, OnlyTheLeaderRenewsOrTellsALeasesTimeToLive) {
  Cluster cluster(3);
  cluster.ElectLeader();
  Answer grant;
  cluster.at(1).Write(Grant(9, 10), grant.done());
  cluster.Settle();
  EXPECT_EQ(cluster.at(2).KeepAlive(9).status().message(), "etcdserver: not leader");
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(9);
  EXPECT_EQ(cluster.at(3).TimeToLive(ttl).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(cluster.at(1).TimeToLive(ttl).ok());
  EXPECT_EQ(cluster.at(1).TimeToLive(ttl)->grantedttl(), 10);
  EXPECT_EQ(*cluster.at(1).KeepAlive(9), 10);
  EXPECT_EQ(cluster.at(1).KeepAlive(12345).status().code(), absl::StatusCode::kNotFound);
}

TEST(KvMember, ANewLeaderGivesEveryLeaseItsFullTtlAgain) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  Answer grant, put;
  cluster.at(1).Write(Grant(5, 4), grant.done());
  cluster.at(1).Write(Put("/k", "v", 5), put.done());
  cluster.Settle();
  // Member 1's lessor starts the lease's clock; then member 2 leads and
  // the client renews there.
  cluster.Advance(1'000);
  ASSERT_TRUE(cluster.at(1).member().TransferLeadership(2).ok());
  cluster.Settle();
  ASSERT_TRUE(cluster.at(2).is_leader());
  cluster.Advance(2'500);
  ASSERT_TRUE(cluster.at(2).KeepAlive(5).ok());
  // Member 1 leads again. Its own clock for the lease says it ran out
  // (4 s after it started it), but it cannot know of the renewal member 2
  // took: it must give the lease a full TTL from now.
  ASSERT_TRUE(cluster.at(2).member().TransferLeadership(1).ok());
  cluster.Settle();
  ASSERT_TRUE(cluster.at(1).is_leader());
  cluster.Advance(3'500);
  EXPECT_TRUE(Present(cluster.at(3), "/k"));
  // TTL plus the election-timeout grace, plus a check interval.
  cluster.Advance(2'000);
  EXPECT_FALSE(Present(cluster.at(3), "/k"));
}

TEST(KvMember, ANewLeaderAnswersForLeasesOnlyOnceItAppliedAnEntryOfItsTerm) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  Answer grant;
  cluster.at(1).Write(Grant(3, 10), grant.done());
  cluster.Settle();
  // Member 2 wins the election and is cut off at once: its first entry
  // commits nowhere, so it applies nothing of its term (an earlier
  // leader's revocation could still be ahead of it in the log).
  ASSERT_TRUE(cluster.at(1).member().TransferLeadership(2).ok());
  cluster.Settle([&] { return cluster.at(2).is_leader(); });
  ASSERT_TRUE(cluster.at(2).is_leader());
  cluster.host(2).connected = false;
  cluster.Settle();
  EXPECT_EQ(cluster.at(2).KeepAlive(3).status().message(), "etcdserver: leader changed");
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(3);
  EXPECT_EQ(cluster.at(2).TimeToLive(ttl).status().code(), absl::StatusCode::kUnavailable);
  // A client's renewal waits for it instead of failing.
  std::optional<absl::StatusOr<int64_t>> waited;
  cluster.at(2).KeepAliveWhenReady(3, [&waited](absl::StatusOr<int64_t> r) { waited = r; });
  cluster.Settle();
  EXPECT_FALSE(waited.has_value());
  cluster.host(2).connected = true;
  cluster.Advance(100);
  ASSERT_TRUE(cluster.at(2).is_leader());
  ASSERT_TRUE(waited.has_value());
  EXPECT_EQ(**waited, 10);
  EXPECT_EQ(*cluster.at(2).KeepAlive(3), 10);
}

TEST(KvMember, ARenewalWaitingForANewLeaderGivesUpAfterAnElectionTimeoutWithoutRenewing) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  Answer grant;
  cluster.at(1).Write(Grant(3, 10), grant.done());
  cluster.Settle();
  ASSERT_TRUE(cluster.at(1).member().TransferLeadership(2).ok());
  cluster.Settle([&] { return cluster.at(2).is_leader(); });
  cluster.host(2).connected = false;
  cluster.Settle();
  std::optional<absl::StatusOr<int64_t>> waited;
  cluster.at(2).KeepAliveWhenReady(3, [&waited](absl::StatusOr<int64_t> r) { waited = r; });
  // The election timeout passes on the member's clock with the member cut
  // off (it steps down, CheckQuorum): the client hears "leader changed".
  cluster.host(2).clock.now += kTickMs * 10;
  cluster.at(2).AfterStep();
  ASSERT_TRUE(waited.has_value());
  EXPECT_EQ(waited->status().message(), "etcdserver: leader changed");
}

// The race CI met: the leader sends the new commit index before its own
// write of it is durable, so a follower can apply a revocation (and its
// client hear "revoked") before the leader applies it. A renewal the
// leader is asked for then must wait for that apply, not renew the lease.
TEST(KvMember, ARenewalWaitsForTheLeaderToApplyWhatItCommitted) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  Answer grant;
  cluster.at(1).Write(Grant(3, 10), grant.done());
  cluster.Settle();
  ASSERT_TRUE(grant.value.ok());
  kvpb::Request revoke;
  revoke.mutable_lease_revoke()->set_id(3);
  Answer revoked;
  cluster.at(2).Write(revoke, revoked.done());
  const auto& log = cluster.at(1).member().node().raft().log();
  cluster.Settle([&] { return log.committed() > cluster.at(1).member().applied_index(); });
  ASSERT_GT(log.committed(), cluster.at(1).member().applied_index());
  cluster.host(1).disk_works = false;
  cluster.Settle([&] { return revoked.calls > 0; });
  ASSERT_TRUE(revoked.value.ok()) << revoked.value.status();
  std::optional<absl::StatusOr<int64_t>> renewed;
  cluster.at(1).KeepAliveWhenReady(3, [&renewed](absl::StatusOr<int64_t> r) { renewed = r; });
  cluster.Settle();
  EXPECT_FALSE(renewed.has_value()) << "renewed before the revocation applied";
  cluster.host(1).disk_works = true;
  cluster.Settle();
  ASSERT_TRUE(renewed.has_value());
  EXPECT_EQ(renewed->status().code(), absl::StatusCode::kNotFound) << renewed->status();
}

TEST(KvMember, AMassExpiryIsRevokedAtABoundedRateOneProposalAtATime) {
  KvMemberOptions options;
  options.max_expired_leases_per_proposal = 100;
  Cluster cluster(3, 0, options);
  cluster.ElectLeader();
  for (kv::LeaseId id = 1; id <= 250; ++id) {
    cluster.at(1).Write(Grant(id, 1), [](absl::StatusOr<kvpb::Response>) {});
  }
  cluster.Settle();
  ASSERT_EQ(cluster.at(1).store().leases().leases().size(), 250u);
  // Cut the leader off: the first revocation stays in flight, and no
  // second one may follow it while it does.
  cluster.Advance(1'500);
  cluster.host(2).connected = false;
  cluster.host(3).connected = false;
  uint64_t before = cluster.at(1).member().node().raft().log().last_index();
  size_t left = cluster.at(1).store().leases().leases().size();
  cluster.Advance(2'000);
  EXPECT_TRUE(cluster.at(1).expiry_in_flight());
  EXPECT_LE(cluster.at(1).member().node().raft().log().last_index(), before + 1);
  cluster.host(2).connected = true;
  cluster.host(3).connected = true;
  cluster.Advance(3'000);
  EXPECT_LT(cluster.at(3).store().leases().leases().size(), left);
  cluster.Advance(3'000);
  EXPECT_TRUE(cluster.at(1).store().leases().leases().empty());
  EXPECT_TRUE(cluster.at(3).store().leases().leases().empty());
}

raftpb::ConfChange AddLearner(raft::NodeId id) {
  raftpb::ConfChange change;
  change.add_changes()->set_type(raftpb::ADD_LEARNER_NODE);
  change.mutable_changes(0)->set_node_id(id);
  return change;
}

TEST(KvMember, ALearnerIsPromotedOnlyByTheLeaderAndOnlyOnceInSync) {
  Cluster cluster(3, /*spares=*/1);
  cluster.ElectLeader();
  for (int i = 0; i < 20; ++i) {
    cluster.at(1).Write(Put(absl::StrCat("/k", i), "v"), [](absl::StatusOr<kvpb::Response>) {});
  }
  cluster.Settle();
  Answer added;
  cluster.at(1).ChangeMembership(AddLearner(4), "", added.status_done());
  cluster.Settle();
  ASSERT_TRUE(added.value.ok()) << added.value.status();
  cluster.Start(4);
  // The learner's disk hangs: it acknowledges nothing, so it is not in sync.
  cluster.host(4).disk_works = false;
  cluster.Advance(500);

  Answer on_follower, unknown, voter, behind;
  cluster.at(2).PromoteLearner(4, on_follower.status_done());
  EXPECT_EQ(on_follower.value.status().message(), "etcdserver: not leader");
  cluster.at(1).PromoteLearner(9, unknown.status_done());
  EXPECT_EQ(unknown.value.status().code(), absl::StatusCode::kNotFound);
  cluster.at(1).PromoteLearner(3, voter.status_done());
  EXPECT_EQ(voter.value.status().message(), "etcdserver: can only promote a learner member");
  cluster.at(1).PromoteLearner(4, behind.status_done());
  EXPECT_EQ(behind.value.status().message(),
            "etcdserver: can only promote a learner member which is in sync with leader");
  EXPECT_TRUE(cluster.at(1).is_learner() == false);

  cluster.host(4).disk_works = true;
  cluster.Advance(500);
  Answer promoted;
  cluster.at(1).PromoteLearner(4, promoted.status_done());
  cluster.Settle();
  ASSERT_TRUE(promoted.value.ok()) << promoted.value.status();
  EXPECT_TRUE(raft::IsVoter(cluster.at(1).conf(), 4));
  EXPECT_FALSE(cluster.at(4).is_learner());
}

TEST(KvMember, EachMemberPublishesItsAttributesOnceItIsInTheConfiguration) {
  Cluster cluster(3, /*spares=*/1);
  cluster.publish = true;
  for (raft::NodeId id : {1, 2, 3}) cluster.Start(id);
  int observed = 0;
  cluster.at(3).set_membership_observer([&observed] { ++observed; });
  cluster.ElectLeader();
  cluster.Advance(300);
  for (raft::NodeId id : {1, 2, 3}) {
    EXPECT_TRUE(cluster.at(id).published()) << "member " << id;
    for (raft::NodeId of : {1, 2, 3}) {
      EXPECT_EQ(cluster.at(id).member().attributes().at(of), absl::StrCat("m", of));
    }
  }
  // Told at least once (several changes applied in one step are one call).
  EXPECT_GE(observed, 1);
  // A member added later publishes once it is in the configuration.
  Answer added;
  cluster.at(1).ChangeMembership(AddLearner(4), "", added.status_done());
  cluster.Settle();
  cluster.Start(4);
  cluster.Advance(500);
  EXPECT_TRUE(cluster.at(4).published());
  EXPECT_EQ(cluster.at(1).member().attributes().at(4), "m4");
}

TEST(KvMember, TheKeyTreeChecksASnapshotWithoutTakingIt) {
  KvMachine machine;
  kv::Store donor;
  ASSERT_EQ(donor.Apply(Put("/a", "1")).error_code(), 0);
  std::string good = donor.Snapshot();
  EXPECT_TRUE(machine.CheckSnapshot(good).ok());
  EXPECT_EQ(machine.store().revision(), 0) << "checking restored it";
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x5a;
  EXPECT_FALSE(machine.CheckSnapshot("\x0a\xff\xff\xff").ok());
  (void)machine.CheckSnapshot(bad);  // either way: no crash, nothing changed
  EXPECT_EQ(machine.store().revision(), 0);
}

TEST(KvMember, ATokenResolvesOnlyWithAuthOn) {
  Cluster cluster(1);
  cluster.Settle();
  EXPECT_TRUE(cluster.at(1).Resolve(std::nullopt)->username.empty());
  // Auth is off: any token, even an unknown one, is nobody.
  EXPECT_TRUE(cluster.at(1).Resolve(std::string("made.up"))->username.empty());
}

// Writes `request` through member 1 and settles; the answer.
absl::StatusOr<kvpb::Response> WriteAndSettle(Cluster& cluster, kvpb::Request request) {
  Answer answer;
  cluster.at(1).Write(std::move(request), answer.done());
  cluster.Settle();
  return answer.value;
}

kvpb::Request AddUser(const std::string& name) {
  kvpb::Request add;
  add.mutable_user_add()->set_name(name);
  add.mutable_user_add()->set_password_hash(kv::HashPassword("pw", "0123456789abcdef", 1));
  return add;
}

kvpb::Request GrantRole(const std::string& user, const std::string& role) {
  kvpb::Request grant;
  grant.mutable_user_grant_role()->set_user(user);
  grant.mutable_user_grant_role()->set_role(role);
  return grant;
}

kvpb::Request AuthEnable() {
  kvpb::Request enable;
  enable.mutable_auth_enable();
  return enable;
}

// Users root and alice (both with the root role) and bob, and auth on.
void EnableAuth(Cluster& cluster) {
  for (const kvpb::Request& request : {AddUser("root"), GrantRole("root", "root"), AddUser("alice"),
                                       GrantRole("alice", "root"), AddUser("bob"), AuthEnable()}) {
    ASSERT_TRUE(WriteAndSettle(cluster, request).ok()) << request.ShortDebugString();
  }
}

// Issues `token` to `user` through member `via` (the password checked, as
// a host checks it first).
void Login(Cluster& cluster, raft::NodeId via, const std::string& user, const std::string& token) {
  Answer issued;
  cluster.at(via).IssueToken(user, token, issued.done());
  cluster.Settle();
  ASSERT_TRUE(issued.value.ok()) << issued.value.status();
}

// The user `token` names on member `id`; "" for a token it refuses.
std::string HolderOn(Cluster& cluster, raft::NodeId id, const std::string& token) {
  absl::StatusOr<kv::AuthInfo> who = cluster.at(id).Resolve(token);
  return who.ok() ? who->username : "";
}

TEST(KvMember, AClientAuthenticatesInTwoStepsAndItsTokenStampsItsRequests) {
  Cluster cluster(3);
  cluster.ElectLeader();
  EXPECT_EQ(cluster.at(2).PasswordHashOf("root").status(), kv::AuthNotEnabledError());
  EnableAuth(cluster);

  // Unknown users and wrong passwords get the same answer.
  EXPECT_EQ(cluster.at(2).PasswordHashOf("mallory").status(), kv::AuthFailedError());
  absl::StatusOr<std::string> hash = cluster.at(2).PasswordHashOf("root");
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_TRUE(kv::CheckPasswordHash("pw", *hash));
  Login(cluster, 2, "root", "tok.1");

  // Issued through the log: the token works on every member.
  for (raft::NodeId id : {1, 2, 3}) {
    kvpb::Request put = Put("/a", "1");
    ASSERT_TRUE(cluster.at(id).Authorize(std::string("tok.1"), &put).ok());
    EXPECT_EQ(put.header().username(), "root");
    EXPECT_GT(put.header().auth_revision(), 0u);
  }
  kvpb::Request put = Put("/a", "1");
  EXPECT_EQ(cluster.at(3).Authorize(std::string("tok.2"), &put), kv::InvalidAuthTokenError());
  // An auth change that does not touch the token's user leaves it working
  // (etcd's tokens do; fixing the revision at issue made every token fail
  // "old revision" after any role edit).
  kvpb::Request role;
  role.mutable_role_add()->set_name("other");
  kvpb::Request as_root = role;
  ASSERT_TRUE(cluster.at(1).Authorize(std::string("tok.1"), &as_root).ok());
  ASSERT_TRUE(WriteAndSettle(cluster, as_root).ok());
  kvpb::Request after = Put("/a", "after");
  ASSERT_TRUE(cluster.at(1).Authorize(std::string("tok.1"), &after).ok());
  EXPECT_TRUE(WriteAndSettle(cluster, after).ok());
  // Without a token, nobody: the key tree refuses the write.
  kvpb::Request anonymous = Put("/a", "2");
  ASSERT_TRUE(cluster.at(1).Authorize(std::nullopt, &anonymous).ok());
  EXPECT_EQ(WriteAndSettle(cluster, anonymous).status(), kv::UserEmptyError());
}

bool HasNoSpaceAlarm(KvMember& member, raft::NodeId of) {
  return member.store().alarms().count({of, etcdserverpb::NOSPACE}) > 0;
}

TEST(KvMember, AMemberLowOnDiskRaisesNospaceAndClearsItOnceItHasSpaceAgain) {
  Cluster cluster(3);
  cluster.ElectLeader();
  cluster.host(2).store.low = true;
  cluster.Advance(1'100);
  for (raft::NodeId id : {1, 2, 3}) {
    EXPECT_TRUE(HasNoSpaceAlarm(cluster.at(id), 2)) << "member " << id;
  }
  // Writes that would grow the tree are refused before they reach the log
  // (a full disk's log must not fill with refusals), on every member.
  uint64_t last_index = cluster.at(1).member().node().raft().log().last_index();
  for (raft::NodeId id : {1, 2, 3}) {
    Answer put;
    cluster.at(id).Write(Put("/a", "1"), put.done());
    ASSERT_EQ(put.calls, 1) << "answered at once";
    EXPECT_EQ(put.value.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(put.value.status().message(), "etcdserver: mvcc: database space exceeded");
  }
  cluster.Settle();
  EXPECT_EQ(cluster.at(1).member().node().raft().log().last_index(), last_index);
  // Reads and deletes go on.
  Answer read, del;
  cluster.at(2).Read(Get("/a"), /*serializable=*/false, read.done());
  kvpb::Request delete_range;
  delete_range.mutable_delete_range()->set_key("/a");
  cluster.at(3).Write(delete_range, del.done());
  cluster.Settle();
  EXPECT_TRUE(read.value.ok()) << read.value.status();
  EXPECT_TRUE(del.value.ok()) << del.value.status();

  // Space again: the member clears the alarm it raised, and writes resume
  // without a restart.
  cluster.host(2).store.low = false;
  cluster.Advance(1'100);
  for (raft::NodeId id : {1, 2, 3}) EXPECT_FALSE(HasNoSpaceAlarm(cluster.at(id), 2));
  Answer put;
  cluster.at(2).Write(Put("/a", "1"), put.done());
  cluster.Settle();
  EXPECT_TRUE(put.value.ok()) << put.value.status();
}

TEST(KvMember, AMemberLeavesANospaceAlarmItDidNotRaise) {
  Cluster cluster(3);
  cluster.ElectLeader();
  // An operator's (or the quota's) alarm in member 2's name.
  Answer raise;
  kvpb::Request alarm;
  alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  alarm.mutable_alarm()->set_memberid(2);
  cluster.at(1).Write(alarm, raise.done());
  cluster.Settle();
  ASSERT_TRUE(raise.value.ok()) << raise.value.status();
  cluster.Advance(3'000);
  for (raft::NodeId id : {1, 2, 3}) EXPECT_TRUE(HasNoSpaceAlarm(cluster.at(id), 2));
  // Low and then with space: it raised nothing, so it clears nothing.
  cluster.host(2).store.low = true;
  cluster.Advance(1'100);
  cluster.host(2).store.low = false;
  cluster.Advance(3'000);
  EXPECT_TRUE(HasNoSpaceAlarm(cluster.at(1), 2)) << "etcd leaves it to `alarm disarm`";
}

// Writes `request` through member 1 as the holder of `token` (stamped
// there), and settles; the answer.
absl::StatusOr<kvpb::Response> WriteAs(Cluster& cluster, const std::string& token,
                                       kvpb::Request request) {
  if (absl::Status s = cluster.at(1).Authorize(token, &request); !s.ok()) return s;
  return WriteAndSettle(cluster, std::move(request));
}

TEST(KvMember, AuthChangesDropTheTokensTheyConcernOnEveryMember) {
  kvpb::Request change_password;
  change_password.mutable_user_change_password()->set_name("alice");
  change_password.mutable_user_change_password()->set_password_hash(
      kv::HashPassword("new", "0123456789abcdef", 1));
  kvpb::Request delete_alice;
  delete_alice.mutable_user_delete()->set_name("alice");
  kvpb::Request disable;
  disable.mutable_auth_disable();
  kvpb::Request role_add;
  role_add.mutable_role_add()->set_name("r");
  kvpb::Request revoke_root;
  revoke_root.mutable_user_revoke_role()->set_name("alice");
  revoke_root.mutable_user_revoke_role()->set_role("root");
  kvpb::Request role_delete;
  role_delete.mutable_role_delete()->set_role("r");
  struct Case {
    std::string what;
    std::vector<kvpb::Request> changes;
    std::set<std::string> dropped;
  };
  std::vector<Case> cases = {
      {"alice's password changes", {change_password}, {"a.1"}},
      {"alice is deleted and made again with the root role",
       {delete_alice, AddUser("alice"), GrantRole("alice", "root")},
       {"a.1"}},
      {"auth goes off and on", {disable, AuthEnable()}, {"a.1", "b.2", "r.3"}},
      // As etcd 3.4: revoking or deleting a role drops no token (the
      // rights go with the role when the next request applies).
      {"other users and roles change, alice loses root",
       {AddUser("carol"), role_add, GrantRole("bob", "r"), GrantRole("carol", "r"), role_delete,
        revoke_root},
       {}},
  };
  const std::map<std::string, std::string> holders = {
      {"a.1", "alice"}, {"b.2", "bob"}, {"r.3", "root"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Cluster cluster(3);
    cluster.ElectLeader();
    EnableAuth(cluster);
    // Each token issued through another member.
    Login(cluster, 2, "alice", "a.1");
    Login(cluster, 3, "bob", "b.2");
    Login(cluster, 1, "root", "r.3");
    for (const kvpb::Request& change : c.changes) {
      ASSERT_TRUE(WriteAs(cluster, "r.3", change).ok()) << change.ShortDebugString();
    }
    for (raft::NodeId id : {1, 2, 3}) {
      for (const auto& [token, user] : holders) {
        EXPECT_EQ(HolderOn(cluster, id, token), c.dropped.contains(token) ? "" : user)
            << "token " << token << " on member " << id;
      }
    }
  }
}

TEST(KvMember, AnAdminTokenDroppedOnAPasswordChangeMakesNoRootUser) {
  Cluster cluster(3);
  cluster.ElectLeader();
  EnableAuth(cluster);
  Login(cluster, 3, "alice", "a.1");
  Login(cluster, 1, "root", "r.2");
  // Alice's request is stamped before root changes her password, and
  // applied after.
  kvpb::Request stamped = AddUser("mallory");
  ASSERT_TRUE(cluster.at(1).Authorize(std::string("a.1"), &stamped).ok());
  kvpb::Request change_password;
  change_password.mutable_user_change_password()->set_name("alice");
  change_password.mutable_user_change_password()->set_password_hash(
      kv::HashPassword("new", "0123456789abcdef", 1));
  ASSERT_TRUE(WriteAs(cluster, "r.2", change_password).ok());
  EXPECT_EQ(WriteAndSettle(cluster, stamped).status(), kv::AuthOldRevisionError());
  for (raft::NodeId id : {1, 2, 3}) {
    kvpb::Request grant = GrantRole("mallory", "root");
    EXPECT_EQ(cluster.at(id).Authorize(std::string("a.1"), &grant), kv::InvalidAuthTokenError());
    EXPECT_FALSE(cluster.at(id).store().auth().UserGet("mallory").ok()) << "member " << id;
  }
}

TEST(KvMember, ATokenUnusedForItsTtlIsDroppedByEachMemberThatSawItUnused) {
  Cluster cluster(3);
  cluster.ElectLeader();
  EnableAuth(cluster);
  Login(cluster, 2, "bob", "b.1");
  const int64_t ttl_ms = cluster.at(1).store().tokens().ttl_ms();
  ASSERT_EQ(ttl_ms, 300'000);  // etcd's default
  // Used on member 1 every 10 s for longer than the TTL: it stays there.
  // Members 2 and 3 never saw it used: they dropped it on their own
  // (each member's tokens are its own, as etcd's simple tokens are).
  for (int64_t waited_ms = 0; waited_ms <= ttl_ms + 10'000; waited_ms += 10'000) {
    ASSERT_EQ(HolderOn(cluster, 1, "b.1"), "bob") << waited_ms;
    cluster.Advance(10'000);
  }
  EXPECT_EQ(cluster.at(2).store().tokens().size(), 0u);
  EXPECT_EQ(cluster.at(3).store().tokens().size(), 0u);
  EXPECT_EQ(cluster.at(1).store().tokens().size(), 1u);
  // Then unused on member 1 too, for the TTL and the check interval.
  cluster.Advance(ttl_ms + cluster.at(1).options().token_expiry_check_interval_ms);
  EXPECT_EQ(cluster.at(1).store().tokens().size(), 0u);
  EXPECT_EQ(HolderOn(cluster, 1, "b.1"), "");
}

TEST(KvMember, ATokenIssuedThroughAnotherMemberIsFoundOnceThisOneHasApplied) {
  Cluster cluster(3);
  cluster.ElectLeader();
  EnableAuth(cluster);
  // Member 3's disk hangs: the token's entry commits on members 1 and 2,
  // and the client that holds it turns to member 3 at once.
  cluster.host(3).disk_works = false;
  Login(cluster, 1, "bob", "b.1");
  kvpb::Request now = Put("/b", "1");
  EXPECT_EQ(cluster.at(3).Authorize(std::string("b.1"), &now), kv::InvalidAuthTokenError());
  std::optional<absl::StatusOr<kvpb::Request>> authorized;
  cluster.at(3).AuthorizeWhenApplied(std::string("b.1"), Put("/b", "1"),
                                     [&](absl::StatusOr<kvpb::Request> r) { authorized = r; });
  cluster.host(3).disk_works = true;
  cluster.Settle([&] { return authorized.has_value(); });
  ASSERT_TRUE(authorized.has_value());
  ASSERT_TRUE(authorized->ok()) << authorized->status();
  EXPECT_EQ((*authorized)->header().username(), "bob");
  // A token nobody issued is still refused, after the same wait.
  authorized.reset();
  cluster.at(3).AuthorizeWhenApplied(std::string("made.up"), Put("/b", "1"),
                                     [&](absl::StatusOr<kvpb::Request> r) { authorized = r; });
  cluster.Settle([&] { return authorized.has_value(); });
  ASSERT_TRUE(authorized.has_value());
  EXPECT_EQ(authorized->status(), kv::InvalidAuthTokenError());
}

}  // namespace
}  // namespace etc::member
