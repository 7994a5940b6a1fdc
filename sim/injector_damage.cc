// The disk-damage faults (issue 20): one member's log or snapshot damaged
// while the others keep a majority (it repairs from the leader), the same
// after it acknowledged entries that committed on its acknowledgement
// (LagThenDamage), and a quorum of voters damaged at once (they must find
// that nobody can repair them, and stop).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/conf_state.h"
#include "sim/injector.h"

namespace etc::sim {
namespace {

// Of the single-member flips that are not a LagThenDamage, the share that
// hits the newest snapshot file rather than the log.
constexpr double kSnapshotFlipShare = 0.4;

}  // namespace

void FaultInjector::BitFlip(const Fault& fault) {
  // At most one damaged member at a time (it repairs from the leader; a
  // majority damaged at once cannot), and only where the others keep a
  // majority without it; in the seeds that draw it, the first flip
  // damages a majority instead.
  NodeId leader = world_->Leader();
  if (leader == 0 || damage_pending_) return;
  for (const auto& p : world_->processes()) {
    if (p->damaged) return;
  }
  raftpb::ConfState conf = world_->process(leader).kv->conf();
  if (damage_majority_ && DamageMajority(fault, conf)) return;
  if (fault.a == leader) return;
  // A voter only where, even after the one change that may be pending, the
  // others keep a majority without it (later removals take it first).
  // Voters no removal is under way for: a removal proposed may not have
  // applied yet.
  int staying_voters = 0;
  for (NodeId voter : conf.voters()) staying_voters += world_->removed().contains(voter) ? 0 : 1;
  if (raft::IsJoint(conf) || (raft::IsVoter(conf, fault.a) && staying_voters < 3)) return;
  if (joining_voters_.contains(fault.a)) return;
  Process& target = world_->process(fault.a);
  if (target.stopped || world_->removed().contains(target.id)) return;
  // Half the time, the damage that tests a repair (issue 20): the member
  // loses entries that committed on its acknowledgement.
  if (raft::IsVoter(conf, fault.a) && random_.Chance(0.5) && LagThenDamage(fault, conf)) return;
  world_->Crash(target);
  // Its newest snapshot file, or its oldest log data.
  std::string file;
  if (damage_random_.Chance(kSnapshotFlipShare)) file = target.disk->FlipBitInSnapshot();
  if (file.empty()) file = target.disk->FlipBitInLog(/*recent=*/false);
  if (file.empty()) return;
  target.damaged = true;
  world_->trace().Event("disk.flip", target.id, 0,
                        [&] { return absl::StrCat("a bit flips in ", target.id, "'s ", file); });
  world_->queue().After(fault.duration_us, [this, &target] { world_->Restart(target); });
}

bool FaultInjector::LagThenDamage(const Fault& fault, const raftpb::ConfState& conf) {
  // Another voter, not the leader, falls behind: cut off while the leader
  // and the victim commit entries that only they hold. Then the victim's
  // disk loses its newest records (and with them entries it acknowledged
  // and that committed on its acknowledgement), it restarts at once, and
  // the leader dies a moment later. The laggard now campaigns: only the
  // victim's vote could elect it, and with it the committed entries would
  // be lost. A repairing member refuses; one that rejoined carelessly
  // (voting at once, or before it got back everything it may have
  // acknowledged) elects it.
  NodeId leader = world_->Leader();
  NodeId laggard = 0;
  for (NodeId voter : conf.voters()) {
    if (voter != leader && voter != fault.a && !world_->process(voter).crashed) laggard = voter;
  }
  if (laggard == 0) return false;
  Micros lag_us = random_.Range(50'000, 400'000);
  Micros leader_dies_after_us = random_.Range(0, 60'000);
  world_->trace().Event("disk.lag-then-damage", fault.a, laggard, [&] {
    return absl::StrCat(laggard, " falls behind for ", lag_us / 1000, "ms; then ", fault.a,
                        " loses its newest log records and the leader dies ",
                        leader_dies_after_us / 1000, "ms after it restarts");
  });
  Isolate(laggard, lag_us);
  damage_pending_ = true;  // no other member is damaged meanwhile
  world_->queue().After(lag_us, [this, victim = fault.a, leader_dies_after_us,
                                 down_us = fault.duration_us] {
    damage_pending_ = false;
    if (world_->healed()) return;
    Process& target = world_->process(victim);
    if (target.crashed) return;
    for (const auto& p : world_->processes()) {
      if (p->damaged) return;
    }
    world_->Crash(target);
    std::string file = target.disk->FlipBitInLog(/*recent=*/true);
    if (file.empty()) {
      world_->Restart(target);
      return;
    }
    target.damaged = true;
    world_->trace().Event("disk.flip", target.id, 1, [&] {
      return absl::StrCat("a bit flips in the newest records of ", target.id, "'s ", file);
    });
    world_->Restart(target);
    world_->queue().After(leader_dies_after_us, [this, victim, down_us] {
      if (world_->healed()) return;
      NodeId leader = world_->Leader();
      if (leader != 0 && leader != victim) CrashFor(leader, std::max<Micros>(down_us, 500'000));
    });
  });
  return true;
}

bool FaultInjector::DamageMajority(const Fault& fault, const raftpb::ConfState& conf) {
  // A power cut takes every member down at once, and a quorum of the
  // voters comes back with damaged logs. No leader holds what they may
  // have acknowledged, and none can be elected without their votes: each
  // must find that it cannot repair, and stop (World::AfterInput), leaving
  // the cluster down for the operator. A flip that recovery takes for a
  // torn write damages nothing; with fewer than a quorum damaged, the
  // cluster must repair them as usual.
  //
  // Only while the voters are still the bootstrap ones: a member counts the
  // voters its own log names, and damage may take the record of a later
  // change. Counting against an old configuration (a removed member that
  // no longer answers, a new one it does not know), the damaged members
  // can miss that a quorum of the current one is damaged: no leader is
  // ever elected (safe), but they wait instead of stopping (seeds 1586 and
  // 1704, before this rule). ARCHITECTURE.md says so.
  if (raft::IsJoint(conf) || !joining_voters_.empty() || !world_->removed().empty() ||
      promotions_ > 0) {
    return false;
  }
  damage_majority_ = false;  // once per seed
  std::vector<NodeId> voters(conf.voters().begin(), conf.voters().end());
  for (size_t i = voters.size(); i > 1; --i) {
    std::swap(voters[i - 1], voters[damage_random_.Uniform(i)]);
  }
  voters.resize(voters.size() / 2 + 1);
  std::sort(voters.begin(), voters.end());
  world_->trace().Event("disk.damage-majority", voters.size(), conf.voters_size(), [&] {
    return absl::StrCat("every member loses power; the logs of ", absl::StrJoin(voters, ", "),
                        " come back damaged");
  });
  std::vector<Process*> restart;
  for (const auto& p : world_->processes()) {
    if (p->crashed || p->stopped) continue;
    world_->Crash(*p);
    restart.push_back(p.get());
  }
  for (NodeId id : voters) {
    Process& target = world_->process(id);
    std::string file = target.disk->FlipBitInLog(/*recent=*/damage_random_.Chance(0.5));
    if (file.empty()) continue;
    target.damaged = true;
    world_->trace().Event("disk.flip", target.id, 2, [&] {
      return absl::StrCat("a bit flips in ", target.id, "'s ", file);
    });
  }
  world_->queue().After(fault.duration_us, [this, restart = std::move(restart)] {
    for (Process* p : restart) world_->Restart(*p);
  });
  return true;
}

}  // namespace etc::sim
