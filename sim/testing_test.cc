// The simulation library for users' programs (sim/testing.h), tested as a
// user would use it.
#include "sim/testing.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace etc::sim::testing {
namespace {

using client::ClientInterface;

ClusterOptions Calm(uint64_t seed = 1) {
  ClusterOptions options;
  options.seed = seed;
  options.drawn_faults = false;
  options.fault_phase = milliseconds(1000);
  options.heal_phase = milliseconds(1000);
  return options;
}

// A client that writes /k0, /k1, ... (one every `pause`) until the run
// ends, recording each write acknowledged.
void AddKeyWriter(Cluster& cluster, milliseconds pause,
                  std::map<std::string, std::string>* acknowledged) {
  cluster.AddClient("writer", [acknowledged, pause](ClientContext& ctx) {
    for (int i = 0; !ctx.done(); ++i) {
      std::string key = absl::StrCat("/k", i);
      if (ctx.client().Put(key, absl::StrCat(i)).ok()) (*acknowledged)[key] = absl::StrCat(i);
      ctx.client().SleepFor(pause);
    }
  });
}

// At the end of the run, every write AddKeyWriter saw acknowledged is there.
void CheckEveryAcknowledgedKey(Cluster& cluster,
                               const std::map<std::string, std::string>& acknowledged) {
  cluster.AddFinalCheck("every acknowledged write", [&cluster, &acknowledged]() -> absl::Status {
    std::map<std::string, std::string> held;
    for (const mvccpb::KeyValue& kv : cluster.Read("/k")) held[kv.key()] = kv.value();
    for (const auto& [key, value] : acknowledged) {
      if (held[key] != value) return absl::InternalError(absl::StrCat(key, " is missing"));
    }
    return absl::OkStatus();
  });
}

TEST(Cluster, ProgramsReadTheirWritesOnVirtualTime) {
  Cluster cluster(Calm());
  int64_t slept_ms = -1;
  int writes = 0;
  cluster.AddClient("writer", [&](ClientContext& ctx) {
    ClientInterface& etc = ctx.client();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(etc.Put("/k", absl::StrCat(i)).ok());
      auto got = etc.Get("/k");
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(got->kvs_size(), 1);
      EXPECT_EQ(got->kvs(0).value(), absl::StrCat(i));
      ++writes;
    }
    int64_t before_ms = etc.now_ms();
    etc.SleepFor(milliseconds(300));
    slept_ms = etc.now_ms() - before_ms;
  });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_EQ(writes, 20);
  EXPECT_EQ(slept_ms, 300);
  EXPECT_EQ(result.calls, 40u);
  EXPECT_EQ(cluster.Read("/k").size(), 1u);
}

Result CountersRun(const ClusterOptions& options) {
  Cluster cluster(options);
  for (int c = 0; c < 3; ++c) {
    cluster.AddClient(absl::StrCat("client", c), [c](ClientContext& ctx) {
      while (!ctx.done()) {
        std::string key = absl::StrCat("/r", ctx.Random(2));
        if (ctx.Random(2) == 0) {
          (void)ctx.client().Put(key, absl::StrCat(c, "-", ctx.Random(1000)));
        } else {
          (void)ctx.client().Get(key);
        }
      }
    });
  }
  return cluster.Run();
}

TEST(Cluster, ASeedReplaysTheSameRun) {
  ClusterOptions options;
  options.seed = 7;
  options.fault_phase = milliseconds(1500);
  options.heal_phase = milliseconds(1500);
  Result first = CountersRun(options);
  Result second = CountersRun(options);
  EXPECT_TRUE(first.passed()) << first.checker << ": " << first.message;
  EXPECT_EQ(first.events, second.events);
  EXPECT_EQ(first.calls, second.calls);
  EXPECT_EQ(first.calls_unknown, second.calls_unknown);
  EXPECT_EQ(first.faults, second.faults);
  options.seed = 8;
  EXPECT_NE(CountersRun(options).events, first.events);
}

TEST(Cluster, RegistersUnderDrawnFaultsAreLinearizable) {
  ClusterOptions options;
  options.fault_phase = milliseconds(1500);
  options.heal_phase = milliseconds(1500);
  std::vector<Result> failures = RunSeeds(options, 1, 10, CountersRun);
  EXPECT_TRUE(failures.empty()) << Describe(failures);
}

TEST(Cluster, AProgramsFailureAndAnInvariantFailTheRun) {
  Cluster failing(Calm());
  failing.AddClient("checker", [](ClientContext& ctx) { ctx.Fail("saw something wrong"); });
  Result result = failing.Run();
  EXPECT_EQ(result.checker, "program checker");
  EXPECT_EQ(result.message, "saw something wrong");

  Cluster invariant(Calm());
  int writes = 0;
  invariant.AddClient("writer", [&](ClientContext& ctx) {
    while (!ctx.done() && ctx.client().Put("/k", "v").ok()) ++writes;
  });
  invariant.AddInvariant("fewer than 5 writes", [&]() -> absl::Status {
    if (writes >= 5) return absl::InternalError(absl::StrCat(writes, " writes"));
    return absl::OkStatus();
  });
  result = invariant.Run();
  EXPECT_EQ(result.checker, "invariant fewer than 5 writes");
  EXPECT_EQ(writes, 5);
}

TEST(Cluster, AnExceptionInAProgramFailsTheRun) {
  Cluster cluster(Calm());
  cluster.AddClient("thrower", [](ClientContext&) { throw std::runtime_error("oops"); });
  Result result = cluster.Run();
  EXPECT_EQ(result.checker, "program thrower");
  EXPECT_EQ(result.message, "threw: oops");
}

TEST(Cluster, CallsFromAWatchCallbackAreRefused) {
  Cluster cluster(Calm());
  absl::Status from_callback;
  cluster.AddClient("watcher", [&](ClientContext& ctx) {
    etcdserverpb::WatchCreateRequest create;
    create.set_key("/k");
    auto watch = ctx.client().Watch(create, [&](const etcdserverpb::WatchResponse& response) {
      if (response.events_size() > 0) from_callback = ctx.client().Put("/other", "x").status();
    });
    ASSERT_TRUE(ctx.client().Put("/k", "v").ok());
    ctx.client().SleepFor(milliseconds(100));
  });
  cluster.Run();
  EXPECT_EQ(from_callback.code(), absl::StatusCode::kFailedPrecondition) << from_callback;
}

TEST(Cluster, AWatchSeesEveryWriteOnceAcrossMemberCrashes) {
  Cluster cluster(Calm(3));
  std::vector<std::string> acknowledged;
  std::vector<std::string> seen;
  std::set<int64_t> revisions;
  bool repeated = false;
  cluster.AddClient("watcher", [&](ClientContext& ctx) {
    etcdserverpb::WatchCreateRequest create;
    create.set_key("/w/");
    create.set_range_end(client::PrefixEnd("/w/"));
    auto watch = ctx.client().Watch(create, [&](const etcdserverpb::WatchResponse& response) {
      for (const mvccpb::Event& event : response.events()) {
        repeated = repeated || !revisions.insert(event.kv().mod_revision()).second;
        seen.push_back(event.kv().value());
      }
    });
    while (!ctx.done()) ctx.client().SleepFor(milliseconds(50));
  });
  cluster.AddClient("writer", [&](ClientContext& ctx) {
    for (int i = 0; !ctx.done(); ++i) {
      std::string value = absl::StrCat(i);
      if (ctx.client().Put(absl::StrCat("/w/", i % 5), value).ok()) acknowledged.push_back(value);
      ctx.client().SleepFor(milliseconds(20));
    }
  });
  // Every member goes down once while the watch is open.
  for (int member = 1; member <= 3; ++member) {
    cluster.At(milliseconds(200 + 500 * member), [member](Cluster& c) { c.Crash(member); });
    cluster.At(milliseconds(400 + 500 * member), [member](Cluster& c) { c.Restart(member); });
  }
  ClusterOptions options = Calm(3);
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_FALSE(repeated);
  ASSERT_GT(acknowledged.size(), 20u);
  // Every acknowledged write was seen (the last ones may still be in flight).
  std::set<std::string> seen_set(seen.begin(), seen.end());
  for (size_t i = 0; i + 5 < acknowledged.size(); ++i) {
    EXPECT_TRUE(seen_set.contains(acknowledged[i])) << "missed " << acknowledged[i];
  }
}

TEST(Cluster, APausedClientReadsItsWatchInOrderWhenThePauseIsExtended) {
  Cluster cluster(Calm());
  std::vector<int64_t> revisions;
  cluster.AddClient("watcher", [&](ClientContext& ctx) {
    etcdserverpb::WatchCreateRequest create;
    create.set_key("/w");
    auto watch = ctx.client().Watch(create, [&](const etcdserverpb::WatchResponse& response) {
      for (const mvccpb::Event& event : response.events()) {
        revisions.push_back(event.kv().mod_revision());
      }
    });
    while (!ctx.done()) ctx.client().SleepFor(milliseconds(50));
  });
  cluster.AddClient("writer", [](ClientContext& ctx) {
    for (int i = 0; !ctx.done(); ++i) {
      (void)ctx.client().Put("/w", absl::StrCat(i));
      ctx.client().SleepFor(milliseconds(10));
    }
  });
  // Deliveries that waited for the first pause's end must not fall behind
  // those that arrive after it was extended.
  cluster.At(milliseconds(500), [](Cluster& c) { c.PauseClient("watcher", milliseconds(300)); });
  cluster.At(milliseconds(700), [](Cluster& c) { c.PauseClient("watcher", milliseconds(600)); });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  ASSERT_GT(revisions.size(), 50u);
  EXPECT_TRUE(std::is_sorted(revisions.begin(), revisions.end()));
  EXPECT_EQ(std::adjacent_find(revisions.begin(), revisions.end()), revisions.end());
}

TEST(Cluster, ALockHasOneHolderAtATimeWithoutFaults) {
  Cluster cluster(Calm());
  int holders = 0;
  int acquired = 0;
  for (int c = 0; c < 3; ++c) {
    cluster.AddClient(absl::StrCat("c", c), [&](ClientContext& ctx) {
      auto lease = ctx.client().Grant(5);
      ASSERT_TRUE(lease.ok()) << lease.status();
      auto keep = ctx.client().KeepAliveForever(lease->id(), 5);
      while (!ctx.done()) {
        auto key = ctx.client().Lock("/lock", lease->id(), milliseconds(2000));
        if (!key.ok()) continue;
        ++holders;
        ++acquired;
        ctx.client().SleepFor(milliseconds(10));
        --holders;
        (void)ctx.client().Unlock(*key);
      }
    });
  }
  cluster.AddInvariant("one holder", [&]() -> absl::Status {
    return holders <= 1 ? absl::OkStatus() : absl::InternalError("two holders");
  });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_GT(acquired, 10);
}

TEST(Cluster, AKeptAliveLeaseOutlivesALeaderCrashAndAnAbandonedOneExpires) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(3000);
  Cluster cluster(options);
  int64_t kept_ttl = -2;
  int64_t abandoned_ttl = -2;
  cluster.AddClient("leases", [&](ClientContext& ctx) {
    auto kept = ctx.client().Grant(3);
    auto abandoned = ctx.client().Grant(1);
    ASSERT_TRUE(kept.ok() && abandoned.ok());
    auto keep = ctx.client().KeepAliveForever(kept->id(), 3);
    ctx.client().SleepFor(milliseconds(3000));
    auto ttl = ctx.client().TimeToLive(kept->id());
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    kept_ttl = ttl->ttl();
    auto gone = ctx.client().TimeToLive(abandoned->id());
    ASSERT_TRUE(gone.ok()) << gone.status();
    abandoned_ttl = gone->ttl();
  });
  cluster.At(milliseconds(500), [](Cluster& c) { c.Crash(c.Leader()); });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_GT(kept_ttl, 0);
  EXPECT_EQ(abandoned_ttl, -1);  // etcd's answer for a lease that is gone
}

// Keys attached to a lease are in the linearizability check: the cluster
// reports each revoke's deletes (ClientHistory::LeaseDeleted), so reading
// them gone after an expiry or a revoke is linearizable (unreported, it
// would be a violation: client_history_test shows it).
TEST(Cluster, KeysOfAnExpiredOrRevokedLeaseAreCheckedAsDeleted) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(3000);
  Cluster cluster(options);
  std::vector<std::string> reads;
  cluster.AddClient("leases", [&](ClientContext& ctx) {
    ClientInterface& etc = ctx.client();
    auto expiring = etc.Grant(1);
    auto revoked = etc.Grant(30);
    ASSERT_TRUE(expiring.ok() && revoked.ok());
    ASSERT_TRUE(etc.Put("/expiring", "a", {.lease = expiring->id()}).ok());
    ASSERT_TRUE(etc.Put("/revoked", "b", {.lease = revoked->id()}).ok());
    auto read = [&](const std::string& key) {
      auto got = etc.Get(key);
      ASSERT_TRUE(got.ok()) << got.status();
      reads.push_back(absl::StrCat(key, "=", got->kvs_size() == 0 ? "gone" : got->kvs(0).value()));
    };
    read("/expiring");
    read("/revoked");
    ASSERT_TRUE(etc.Revoke(revoked->id()).ok());
    read("/revoked");
    etc.SleepFor(milliseconds(2500));
    read("/expiring");
  });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_EQ(reads, (std::vector<std::string>{"/expiring=a", "/revoked=b", "/revoked=gone",
                                             "/expiring=gone"}));
}

TEST(Cluster, InjectedFaultsTakeEffectAndTheClusterServesOnceHealed) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(2000);
  Cluster cluster(options);
  int first_leader = 0;
  int leader_after_partition = 0;
  int writes_after_heal = 0;
  int writes_refused_during_faults = 0;
  cluster.AddClient("writer", [&](ClientContext& ctx) {
    for (int i = 0; !ctx.done(); ++i) {
      bool ok = ctx.client().Put(absl::StrCat("/k", i % 3), absl::StrCat(i)).ok();
      if (ok && ctx.healed()) ++writes_after_heal;
      if (!ok && !ctx.healed()) ++writes_refused_during_faults;
      ctx.client().SleepFor(milliseconds(10));
    }
  });
  cluster.At(milliseconds(300), [&](Cluster& c) {
    first_leader = c.Leader();
    c.Isolate(first_leader);
  });
  cluster.At(milliseconds(900), [&](Cluster& c) {
    leader_after_partition = c.Leader();
    c.HealNetwork();
    c.Pause(leader_after_partition, milliseconds(300));
  });
  cluster.At(milliseconds(1300), [](Cluster& c) {
    c.SkewClock(1, 1.5);
    c.StallDisk(2, milliseconds(300));
    c.StallDisk(3, milliseconds(300));  // no majority can make writes durable
  });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_NE(first_leader, 0);
  EXPECT_NE(leader_after_partition, first_leader);
  EXPECT_GT(writes_refused_during_faults, 0);
  EXPECT_GT(writes_after_heal, 10);
}

TEST(Cluster, AFullDiskRaisesNospaceWritesResumeOnceItHasSpaceAndReadsGoOnThroughout) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(4000);
  Cluster cluster(options);
  constexpr int64_t kFullFromMs = 500;
  constexpr int64_t kFullUntilMs = 2500;
  int refused_nospace = 0;
  int other_refusals = 0;
  int writes_after_space = 0;
  int reads_while_full = 0;
  std::string last_written;
  cluster.AddClient("writer", [&](ClientContext& ctx) {
    for (int i = 0; !ctx.done(); ++i) {
      absl::Status put = ctx.client().Put("/config", absl::StrCat(i)).status();
      int64_t now_ms = ctx.client().now_ms();
      if (put.ok()) {
        last_written = absl::StrCat(i);
        if (now_ms > kFullUntilMs + 2000) ++writes_after_space;
      } else if (put.code() == absl::StatusCode::kResourceExhausted &&
                 put.message() == "etcdserver: mvcc: database space exceeded") {
        ++refused_nospace;
      } else {
        ++other_refusals;
      }
      ctx.client().SleepFor(milliseconds(20));
    }
  });
  cluster.AddClient("reader", [&](ClientContext& ctx) {
    while (!ctx.done()) {
      int64_t now_ms = ctx.client().now_ms();
      if (ctx.client().Get("/config").ok() && now_ms > kFullFromMs + 1500 &&
          now_ms < kFullUntilMs) {
        ++reads_while_full;
      }
      ctx.client().SleepFor(milliseconds(50));
    }
  });
  cluster.At(milliseconds(kFullFromMs),
             [&](Cluster& c) { c.FillDisk(2, milliseconds(kFullUntilMs - kFullFromMs)); });
  cluster.AddFinalCheck("the last write is there", [&]() -> absl::Status {
    std::vector<mvccpb::KeyValue> kvs = cluster.Read("/config");
    if (kvs.size() != 1 || kvs[0].value() != last_written) {
      return absl::InternalError("the last acknowledged write is missing");
    }
    return absl::OkStatus();
  });
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_GT(refused_nospace, 10) << "member 2's full disk stops writes on every member";
  EXPECT_EQ(other_refusals, 0);
  EXPECT_GT(reads_while_full, 5);
  EXPECT_GT(writes_after_space, 10) << "the alarm is cleared without a restart";
}

// The fsync that fails drops what it covered (as Linux drops the dirty
// pages); a member that retried it would call that data durable. Caught by
// the restart: recovery must bring back everything reported durable. The
// planted bug fsync-error-retried-as-success (tools/planted_bugs.py) is
// caught here.
TEST(Cluster, AMemberStopsAtAFailedFsyncAndRecoversWhatWasDurable) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(2000);
  Cluster cluster(options);
  std::map<std::string, std::string> acknowledged;
  AddKeyWriter(cluster, milliseconds(10), &acknowledged);
  std::map<int, bool> stopped_by_itself;
  for (int member : {1, 2}) {
    int64_t at_ms = 300 + 400 * (member - 1);
    cluster.At(milliseconds(at_ms), [member](Cluster& c) { c.FailDiskSync(member); });
    cluster.At(milliseconds(at_ms + 300), [&, member](Cluster& c) {
      stopped_by_itself[member] = !c.Running(member);
      c.Crash(member);
      c.Restart(member);
    });
  }
  CheckEveryAcknowledgedKey(cluster, acknowledged);
  Result result = cluster.Run();
  EXPECT_TRUE(result.passed()) << result.checker << ": " << result.message;
  EXPECT_TRUE(stopped_by_itself[1] && stopped_by_itself[2])
      << "a member went on after its fsync failed";
  EXPECT_GT(acknowledged.size(), 50u);
}

// Issue 20: a member whose log is damaged in its newest records (entries
// it acknowledged, some committed on that) keeps what is intact, repairs
// the rest from the leader without voting meanwhile, and serves again:
// every acknowledged write is there and the run's checkers (durability,
// linearizability) stay green. Over several seeds, with a writer running.
TEST(Cluster, AMemberWithADamagedLogRepairsFromTheLeaderAndServesAgain) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Cluster cluster(Calm(seed));
    std::map<std::string, std::string> acknowledged;
    AddKeyWriter(cluster, milliseconds(5), &acknowledged);
    int victim = 1 + static_cast<int>(seed % 3);
    bool repairing_after_restart = false;
    cluster.At(milliseconds(400), [&](Cluster& c) { c.DamageLog(victim, /*recent=*/seed % 2 == 0); });
    cluster.At(milliseconds(450), [&](Cluster& c) {
      c.Restart(victim);
      repairing_after_restart = c.Repairing(victim);
    });
    CheckEveryAcknowledgedKey(cluster, acknowledged);
    cluster.AddFinalCheck("the damaged member repaired", [&]() -> absl::Status {
      if (!cluster.Running(victim) || cluster.Repairing(victim)) {
        return absl::InternalError(absl::StrCat("member ", victim, " is not back in service"));
      }
      return absl::OkStatus();
    });
    Result result = cluster.Run();
    EXPECT_TRUE(result.passed()) << "seed " << seed << ": " << result.checker << ": "
                                 << result.message;
    EXPECT_TRUE(repairing_after_restart) << "seed " << seed << ": the damage went unnoticed";
    EXPECT_GT(acknowledged.size(), 50u);
  }
}

// Damage on a majority cannot be repaired: no leader can be elected
// without a damaged member's vote, and a repairing member gives none. The
// damaged members stop (the server exits naming the file) and nothing
// acknowledged is contradicted: the run's checkers stay green.
TEST(Cluster, DamageOnAMajorityStopsTheDamagedMembersSafely) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Cluster cluster(Calm(seed));
    cluster.AddClient("writer", [&](ClientContext& ctx) {
      for (int i = 0; !ctx.done(); ++i) {
        (void)ctx.client().Put(absl::StrCat("/k", i), absl::StrCat(i));
        ctx.client().SleepFor(milliseconds(5));
      }
    });
    bool both_repairing = false;
    cluster.At(milliseconds(400), [&](Cluster& c) {
      c.Crash(1);
      // Their newest records, so that recovery keeps a log to repair
      // (damage in a log's first header leaves nothing, and is refused).
      c.DamageLog(2, /*recent=*/true);
      c.DamageLog(3, /*recent=*/true);
      for (int member : {1, 2, 3}) c.Restart(member);
      both_repairing = c.Repairing(2) && c.Repairing(3);
    });
    Result result = cluster.Run();
    EXPECT_TRUE(result.passed()) << "seed " << seed << ": " << result.checker << ": "
                                 << result.message;
    EXPECT_TRUE(both_repairing) << "seed " << seed << ": they must stop by repairing, not refuse";
    EXPECT_FALSE(cluster.Running(2)) << "seed " << seed;
    EXPECT_FALSE(cluster.Running(3)) << "seed " << seed;
    EXPECT_TRUE(cluster.Running(1)) << "seed " << seed;
    EXPECT_EQ(cluster.Leader(), 0) << "seed " << seed << ": a leader without the damaged votes";
  }
}

TEST(RunSeeds, ShrinksAFailingSeedsFaultsAndPrintsItsReplay) {
  // A stand-in run with five drawn faults that fails iff fault 2 happens.
  auto run = [](const ClusterOptions& options) {
    Result result;
    result.seed = options.seed;
    for (size_t i = 0; i < 5; ++i) {
      bool kept = !options.keep_faults.has_value() ||
                  std::find(options.keep_faults->begin(), options.keep_faults->end(), i) !=
                      options.keep_faults->end();
      if (!kept) continue;
      result.faults.push_back(absl::StrCat("fault ", i));
      if (i == 2 && options.seed == 5) result.checker = "stand-in";
    }
    return result;
  };
  setenv("ETC_SIM_SHRINK", "1", 1);
  std::vector<Result> failures = RunSeeds(ClusterOptions{}, 1, 10, run);
  unsetenv("ETC_SIM_SHRINK");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].seed, 5u);
  EXPECT_EQ(failures[0].faults, std::vector<std::string>{"fault 2"});
  EXPECT_NE(failures[0].replay.find("--test_env=ETC_SIM_SEED=5 --test_env=ETC_SIM_FAULTS=2"),
            std::string::npos)
      << failures[0].replay;

  // The replay runs just that seed, with just that fault.
  setenv("ETC_SIM_SEED", "5", 1);
  setenv("ETC_SIM_FAULTS", "2", 1);
  failures = RunSeeds(ClusterOptions{}, 1, 10, run);
  unsetenv("ETC_SIM_SEED");
  unsetenv("ETC_SIM_FAULTS");
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].faults, std::vector<std::string>{"fault 2"});
}

TEST(RunSeeds, ShrinksAFailingSeedsClientPausesAndReplaysThem) {
  ClusterOptions options = Calm();
  options.fault_phase = milliseconds(5000);
  options.client_pause_probability = 0.3;
  options.max_client_pause = milliseconds(1000);
  // Fails iff one call of the program took over 500 ms: a long pause.
  auto run = [](const ClusterOptions& o) {
    Cluster cluster(o);
    cluster.AddClient("writer", [](ClientContext& ctx) {
      for (int i = 0; !ctx.done(); ++i) {
        int64_t before_ms = ctx.client().now_ms();
        (void)ctx.client().Put("/k", absl::StrCat(i));
        if (ctx.client().now_ms() - before_ms > 500) {
          ctx.Fail("a call took over 500 ms");
          return;
        }
        ctx.client().SleepFor(milliseconds(20));
      }
    });
    return cluster.Run();
  };
  Result unshrunk = run(options);
  ASSERT_FALSE(unshrunk.passed()) << unshrunk.calls << " calls, " << unshrunk.client_pauses.size() << " pauses, " << unshrunk.events << " events";
  ASSERT_GT(unshrunk.client_pauses.size(), 1u) << "the seed draws several pauses";

  setenv("ETC_SIM_SHRINK", "1", 1);
  std::vector<Result> failures = RunSeeds(options, 1, 1, run);
  unsetenv("ETC_SIM_SHRINK");
  ASSERT_EQ(failures.size(), 1u);
  ASSERT_EQ(failures[0].client_pauses.size(), 1u) << Describe(failures);
  std::string kept = absl::StrCat(failures[0].client_pause_positions[0]);
  EXPECT_NE(failures[0].replay.find("--test_env=ETC_SIM_CLIENT_PAUSES=" + kept), std::string::npos)
      << failures[0].replay;

  // The replay fails with that pause alone, and passes with none.
  setenv("ETC_SIM_SEED", "1", 1);
  setenv("ETC_SIM_CLIENT_PAUSES", kept.c_str(), 1);
  EXPECT_EQ(RunSeeds(options, 1, 1, run).size(), 1u);
  setenv("ETC_SIM_CLIENT_PAUSES", "", 1);
  EXPECT_TRUE(RunSeeds(options, 1, 1, run).empty());
  unsetenv("ETC_SIM_SEED");
  unsetenv("ETC_SIM_CLIENT_PAUSES");
}

}  // namespace
}  // namespace etc::sim::testing
