// What happens to a simulated cluster besides its clients: the faults the
// seed drew (network, process, disk, clock, membership), the operator's
// duties (periodic compaction, retiring members whose disks failed, learner
// promotion through the leader's in-sync rule), and healing everything for
// the liveness phase.
//
//   FaultInjector injector(&world);
//   injector.Schedule(swarm.faults, safety_phase_us);   // then run the queue
#ifndef ETC_SIM_INJECTOR_H_
#define ETC_SIM_INJECTOR_H_

#include <set>
#include <string>
#include <vector>

#include "raft/raftpb.pb.h"
#include "sim/auth_workload.h"
#include "sim/faults.h"
#include "sim/random.h"
#include "sim/world.h"

namespace etc::sim {

class FaultInjector {
 public:
  // The operator's requests (compaction) go as root through `auth`.
  FaultInjector(World* world, AuthWorkload* auth, Random random);
  // Applies each fault at its time (unless everything healed by then),
  // heals at `heal_at_us`, and starts the operator's periodic duties.
  void Schedule(const std::vector<Fault>& faults, Micros heal_at_us);
  // When every fault healed (the liveness phase starts).
  Micros healed_at_us() const { return healed_at_us_; }
  // Learner promotions the leader accepted, and those it refused as not
  // in sync.
  uint64_t promotions() const { return promotions_; }
  uint64_t promotions_refused() const { return promotions_refused_; }

 private:
  void ApplyFault(const Fault& fault);
  // Faults with more than a line to them, as ApplyFault dispatches them.
  void Flap(const Fault& fault);
  // Crashes `victim` (none if 0) and restarts it after `duration_us`.
  void CrashFor(NodeId victim, Micros duration_us);
  void StallDisk(const Fault& fault);
  void TransferLeader();
  void Partition(const Fault& fault);
  void Isolate(NodeId node, Micros duration_us);
  void BitFlip(const Fault& fault);
  // BitFlip's variants (sim/injector_damage.cc): damage that tests a
  // repair, and damage on a quorum of voters at once; false if they
  // cannot apply.
  bool LagThenDamage(const Fault& fault, const raftpb::ConfState& conf);
  bool DamageMajority(const Fault& fault, const raftpb::ConfState& conf);
  void StallAndSplit(const Fault& fault);
  void Slow(const Fault& fault);
  void ChangeMembers(const Fault& fault);
  // Asks the leader to promote `learner`; a refusal (not in sync yet) is
  // asked again once, a little later, as an operator would.
  void Promote(NodeId learner, int attempts_left);
  void ChangeMembership(raftpb::ConfChange change, const std::string& what);
  void UnblockLater(std::vector<std::pair<NodeId, NodeId>> links, Micros after_us);
  void Heal();
  void Compact();
  void RetireDamaged();
  // A LagThenDamage is under way: its victim is about to be damaged.
  bool damage_pending_ = false;

  World* world_;
  AuthWorkload* auth_;
  AuthWorkload::Session operator_;
  Random random_;
  // Draws of the damage faults that older seeds did not make (which file,
  // and whether a seed damages a majority), apart from random_ so that
  // seeds without them keep their schedules.
  Random damage_random_;
  // This seed's first bit flip damages a quorum of voters at once.
  bool damage_majority_;
  Micros healed_at_us_ = 0;
  uint64_t promotions_ = 0;
  uint64_t promotions_refused_ = 0;
  // Members that a membership change the injector proposed makes voters
  // (added as voters, or promoted), until the change is answered OK: a bit
  // flip spares them, since the leader's applied configuration does not
  // count them yet, but once the change applies a majority may need them
  // (a damaged member added to a voter set of one or two leaves a
  // configuration nobody can commit in again). Kept on any other answer:
  // an unanswered change may still commit.
  std::set<NodeId> joining_voters_;
};

}  // namespace etc::sim

#endif  // ETC_SIM_INJECTOR_H_
