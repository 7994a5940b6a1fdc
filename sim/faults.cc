#include "sim/faults.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace etc::sim {

const char* FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kIsolate:
      return "isolate";
    case FaultKind::kIsolateLeader:
      return "isolate-leader";
    case FaultKind::kOneWay:
      return "one-way";
    case FaultKind::kFlap:
      return "flap";
    case FaultKind::kClog:
      return "clog";
    case FaultKind::kCrash:
      return "crash";
    case FaultKind::kCrashLeader:
      return "crash-leader";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kSlow:
      return "slow";
    case FaultKind::kAddLearner:
      return "add-learner";
    case FaultKind::kPromote:
      return "promote";
    case FaultKind::kRemoveVoter:
      return "remove-voter";
    case FaultKind::kReplaceVoter:
      return "replace-voter";
    case FaultKind::kTransferLeader:
      return "transfer-leader";
    case FaultKind::kSnapshotNow:
      return "snapshot";
    case FaultKind::kDiskStall:
      return "disk-stall";
    case FaultKind::kStallAndSplit:
      return "stall-and-split";
    case FaultKind::kBitFlip:
      return "bit-flip";
  }
  return "unknown";
}

std::string Fault::Describe() const {
  std::string out = absl::StrCat(at_us / 1000, "ms ", FaultKindName(kind));
  if (kind == FaultKind::kPartition) absl::StrAppend(&out, " mask=", mask);
  if (a != 0) absl::StrAppend(&out, " a=", a);
  if (b != 0) absl::StrAppend(&out, " b=", b);
  if (duration_us != 0) absl::StrAppend(&out, " for ", duration_us / 1000, "ms");
  return out;
}

std::string Swarm::Describe() const {
  return absl::StrCat(voters, " voters + ", spares, " spares, ", clients, " clients on ", keys,
                      " keys, ", lease_clients, " lease clients, ", watch_clients,
                      " watch clients (bound ", watch_queue_bound, "), auth=", auth, " prevote=", pre_vote, " checkquorum=", check_quorum,
                      " lease=", lease_reads, " drift=", clock_drift_fraction,
                      " latency=", network.latency_min_us, "+", network.latency_tail_mean_us,
                      "us loss=", network.loss_probability, " dup=", network.duplicate_probability,
                      "+", network.duplicate_delay_mean_us / 1000, "ms reorder=", network.reorder,
                      " fsync=", disk.fsync_min_us, "+", disk.fsync_tail_mean_us,
                      "us torn=", disk.torn_write_probability,
                      " max_append=", max_append_bytes, " snapshot_every=", snapshot_every_entries, ", ", faults.size(), " faults");
}

namespace {

// Members are numbered 1..voters+spares; the first `voters` start as voters.
uint64_t AnyMember(Random& random, const Swarm& swarm) {
  return static_cast<uint64_t>(random.Range(1, swarm.voters + swarm.spares));
}

}  // namespace

Swarm DrawSwarm(Random& random, Micros safety_phase_us, int voters_override) {
  Swarm swarm;
  static constexpr int kSizes[] = {1, 3, 3, 3, 5, 5, 5, 7};
  swarm.voters = voters_override > 0 ? voters_override : kSizes[random.Uniform(8)];
  swarm.spares = swarm.voters == 1 ? 1 : 2;
  swarm.keys = static_cast<int>(random.Range(2, 12));
  swarm.pre_vote = random.Chance(0.8);
  swarm.check_quorum = random.Chance(0.8);
  // Lease reads rely on CheckQuorum and on bounded clock drift.
  swarm.lease_reads = swarm.check_quorum && random.Chance(0.3);
  // Within the lease's documented bound (10%): +-4% per member is at most
  // ~8.3% between any two.
  swarm.clock_drift_fraction = random.Chance(0.5) ? random.Unit() * 0.04 : 0;
  swarm.network.latency_min_us = random.Range(100, 2000);
  swarm.network.latency_tail_mean_us = random.Range(100, 5000);
  swarm.network.loss_probability = random.Chance(0.5) ? random.Unit() * 0.1 : 0;
  swarm.network.duplicate_probability = random.Chance(0.4) ? random.Unit() * 0.08 : 0;
  swarm.network.reorder = random.Chance(0.5);
  swarm.network.duplicate_delay_mean_us = random.Chance(0.5) ? random.Range(1'000, 200'000) : 0;
  swarm.disk.fsync_min_us = random.Range(20, 500);
  swarm.disk.fsync_tail_mean_us = random.Range(50, 3000);
  swarm.disk.torn_write_probability = random.Chance(0.5) ? random.Unit() : 0;
  // Appends of one entry each (a new leader's old-term entries then reach
  // followers apart from its own first entry: Figure 8's setting), of a few
  // entries, or unbounded.
  if (random.Chance(0.25)) {
    swarm.max_append_bytes = 1;
  } else {
    swarm.max_append_bytes = random.Chance(0.35) ? random.Range(1, 128) : 1 << 20;
  }
  static constexpr uint64_t kSnapshotEvery[] = {16, 64, 256};
  swarm.snapshot_every_entries = kSnapshotEvery[random.Uniform(3)];
  swarm.catch_up_entries = random.Chance(0.5) ? 4 : 32;
  swarm.client_timeout_us = random.Range(300'000, 2'000'000);
  swarm.lease_clients = random.Chance(0.7) ? static_cast<int>(random.Range(1, 4)) : 0;
  swarm.watch_clients = random.Chance(0.7) ? static_cast<int>(random.Range(1, 4)) : 0;
  static constexpr size_t kWatchBounds[] = {2, 8, 64};
  swarm.watch_queue_bound = kWatchBounds[random.Uniform(3)];
  swarm.auth = random.Chance(0.4);

  // Which kinds of fault this seed uses, and how often.
  std::vector<FaultKind> kinds;
  for (int k = 0; k <= static_cast<int>(FaultKind::kBitFlip); ++k) {
    if (random.Chance(0.45)) kinds.push_back(static_cast<FaultKind>(k));
  }
  if (kinds.empty()) return swarm;
  double faults_per_second = 1 + random.Unit() * 6;
  int count = static_cast<int>(faults_per_second * static_cast<double>(safety_phase_us) / 1e6);
  int members = swarm.voters + swarm.spares;
  for (int i = 0; i < count; ++i) {
    Fault fault;
    fault.kind = kinds[random.Uniform(kinds.size())];
    fault.at_us = random.Range(0, safety_phase_us);
    fault.duration_us = random.Range(20'000, 1'500'000);
    fault.a = AnyMember(random, swarm);
    do {
      fault.b = AnyMember(random, swarm);
    } while (members > 1 && fault.b == fault.a);
    if (fault.kind == FaultKind::kPartition) {
      fault.mask = random.Range(1, (1 << members) - 2);
    }
    swarm.faults.push_back(fault);
  }
  std::stable_sort(swarm.faults.begin(), swarm.faults.end(),
                   [](const Fault& x, const Fault& y) { return x.at_us < y.at_us; });
  return swarm;
}

}  // namespace etc::sim
