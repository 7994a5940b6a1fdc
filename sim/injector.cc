#include "sim/injector.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "raft/conf_state.h"
#include "raft/describe.h"

namespace etc::sim {
namespace {

// The leader proposes compacting all but the last few revisions this often.
constexpr Micros kCompactionPeriodUs = 250'000;
constexpr kv::Revision kCompactionLagRevisions = 20;
// How often the "operator" retires members that refuse to start.
constexpr Micros kRetirePeriodUs = 100'000;
// The share of seeds whose first bit flip damages a quorum of voters.
constexpr double kDamageMajorityShare = 0.15;
// A promotion the leader refused (not in sync) is asked again after this.
constexpr Micros kPromoteRetryUs = 200'000;

// One of a configuration's lists of ids (there must be one), drawn
// uniformly.
NodeId DrawOne(Random& random, const google::protobuf::RepeatedField<uint64_t>& ids) {
  return ids[static_cast<int>(random.Uniform(ids.size()))];
}

}  // namespace

FaultInjector::FaultInjector(World* world, AuthWorkload* auth, Random random)
    : world_(world), auth_(auth), operator_(auth->NewSession(kv::kRootUser)), random_(std::move(random)),
      damage_random_(random_.Fork(kDamageStream)),
      damage_majority_(damage_random_.Chance(kDamageMajorityShare)) {}

void FaultInjector::Schedule(const std::vector<Fault>& faults, Micros heal_at_us) {
  EventQueue& queue = world_->queue();
  for (const Fault& fault : faults) {
    queue.At(fault.at_us, [this, fault] {
      if (!world_->healed()) ApplyFault(fault);
    });
  }
  queue.At(heal_at_us, [this] { Heal(); });
  queue.At(kCompactionPeriodUs, [this] { Compact(); });
  queue.At(kRetirePeriodUs, [this] { RetireDamaged(); });
}

void FaultInjector::UnblockLater(std::vector<std::pair<NodeId, NodeId>> links, Micros after_us) {
  world_->queue().After(after_us, [this, links] {
    if (world_->healed()) return;
    for (auto [from, to] : links) world_->network().Unblock(from, to);
  });
}

void FaultInjector::Isolate(NodeId node, Micros duration_us) {
  std::vector<std::pair<NodeId, NodeId>> links;
  for (NodeId other = 1; other <= world_->processes().size(); ++other) {
    if (other == node) continue;
    world_->network().BlockBothWays(node, other);
    links.push_back({node, other});
    links.push_back({other, node});
  }
  UnblockLater(links, duration_us);
}

void FaultInjector::ApplyFault(const Fault& fault) {
  world_->trace().Event("fault", static_cast<uint64_t>(fault.kind), fault.a,
                        [&] { return fault.Describe(); });
  switch (fault.kind) {
    case FaultKind::kPartition:
      Partition(fault);
      break;
    case FaultKind::kIsolate:
      Isolate(fault.a, fault.duration_us);
      break;
    case FaultKind::kIsolateLeader:
      if (NodeId leader = world_->Leader(); leader != 0) Isolate(leader, fault.duration_us);
      break;
    case FaultKind::kOneWay:
      world_->network().Block(fault.a, fault.b);
      UnblockLater({{fault.a, fault.b}}, fault.duration_us);
      break;
    case FaultKind::kFlap:
      Flap(fault);
      break;
    case FaultKind::kClog:
      world_->network().Clog(fault.a, world_->queue().now_us() + fault.duration_us);
      break;
    case FaultKind::kCrash:
      CrashFor(fault.a, fault.duration_us);
      break;
    case FaultKind::kCrashLeader:
      CrashFor(world_->Leader(), fault.duration_us);
      break;
    case FaultKind::kPause:
      world_->Pause(world_->process(fault.a), fault.duration_us);
      break;
    case FaultKind::kDiskStall:
      StallDisk(fault);
      break;
    case FaultKind::kBitFlip:
      BitFlip(fault);
      break;
    case FaultKind::kStallAndSplit:
      StallAndSplit(fault);
      break;
    case FaultKind::kSlow:
      Slow(fault);
      break;
    case FaultKind::kAddLearner:
    case FaultKind::kPromote:
    case FaultKind::kRemoveVoter:
    case FaultKind::kReplaceVoter:
      ChangeMembers(fault);
      break;
    case FaultKind::kTransferLeader:
      TransferLeader();
      break;
    case FaultKind::kSnapshotNow: {
      Process& target = world_->process(fault.a);
      world_->RunOn(target, [&target] { target.member()->SnapshotNow(); });
      break;
    }
  }
}

void FaultInjector::Flap(const Fault& fault) {
  // Down and up every 5-50ms for the fault's duration.
  Micros period_us = random_.Range(5'000, 50'000);
  for (Micros t = 0; t < fault.duration_us; t += 2 * period_us) {
    world_->queue().After(t, [this, fault] {
      if (!world_->healed()) world_->network().BlockBothWays(fault.a, fault.b);
    });
    world_->queue().After(t + period_us, [this, fault] {
      if (!world_->healed()) world_->network().UnblockBothWays(fault.a, fault.b);
    });
  }
}

void FaultInjector::CrashFor(NodeId victim, Micros duration_us) {
  if (victim == 0) return;
  Process& target = world_->process(victim);
  world_->Crash(target);
  world_->queue().After(duration_us, [this, &target] {
    if (!world_->healed()) world_->Restart(target);
  });
}

void FaultInjector::StallDisk(const Fault& fault) {
  // Up to a second: long enough for a new leader to overwrite what the
  // member is still writing, short enough to end within the liveness
  // phase's grace.
  Micros stall_us = std::min<Micros>(fault.duration_us, 1'000'000);
  world_->process(fault.a).disk->StallUntil(world_->queue().now_us() + stall_us);
  world_->trace().Event("disk.stall", fault.a, fault.duration_us, [&] {
    return absl::StrCat(fault.a, "'s disk hangs for ", stall_us / 1000, "ms");
  });
}

void FaultInjector::TransferLeader() {
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  raftpb::ConfState conf = world_->process(leader).kv->conf();
  if (conf.voters_size() < 2) return;
  NodeId to = DrawOne(random_, conf.voters());
  Process& from = world_->process(leader);
  world_->RunOn(from, [&from, to] { (void)from.member()->TransferLeadership(to); });
}

void FaultInjector::Partition(const Fault& fault) {
  std::vector<std::pair<NodeId, NodeId>> links;
  NodeId members = world_->processes().size();
  for (NodeId a = 1; a <= members; ++a) {
    for (NodeId b = 1; b <= members; ++b) {
      bool a_side = (fault.mask >> (a - 1)) & 1;
      bool b_side = (fault.mask >> (b - 1)) & 1;
      if (a_side && !b_side) {
        world_->network().BlockBothWays(a, b);
        links.push_back({a, b});
        links.push_back({b, a});
      }
    }
  }
  UnblockLater(links, fault.duration_us);
}

void FaultInjector::StallAndSplit(const Fault& fault) {
  // Raft-traps #19 on purpose: the follower keeps appending (and
  // acknowledging, in memory) what the old leader sends while its disk
  // hangs; the majority side elects a leader without those entries, and
  // once the split heals that leader overwrites them while the follower's
  // old write is still in flight.
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  NodeId follower = fault.a;
  if (follower == leader || !world_->process(follower).up()) return;
  Micros stall_us = std::clamp<Micros>(fault.duration_us, 200'000, 1'000'000);
  world_->process(follower).disk->StallUntil(world_->queue().now_us() + stall_us);
  std::vector<std::pair<NodeId, NodeId>> links;
  for (NodeId a : {leader, follower}) {
    for (NodeId b = 1; b <= world_->processes().size(); ++b) {
      if (b == leader || b == follower) continue;
      world_->network().BlockBothWays(a, b);
      links.push_back({a, b});
      links.push_back({b, a});
    }
  }
  UnblockLater(links, stall_us / 2);
}

void FaultInjector::Slow(const Fault& fault) {
  Micros extra_us = random_.Range(2'000, 20'000);
  NodeId members = world_->processes().size();
  for (NodeId other = 1; other <= members; ++other) {
    if (other == fault.a) continue;
    world_->network().SlowLink(fault.a, other, extra_us);
    world_->network().SlowLink(other, fault.a, extra_us);
  }
  const DiskOptions& disk = world_->swarm().disk;
  world_->process(fault.a).disk->set_options(DiskOptions{
      disk.fsync_min_us + extra_us, disk.fsync_tail_mean_us * 4, disk.torn_write_probability});
  world_->queue().After(fault.duration_us, [this, fault, members] {
    for (NodeId other = 1; other <= members; ++other) {
      world_->network().SlowLink(fault.a, other, 0);
      world_->network().SlowLink(other, fault.a, 0);
    }
    world_->process(fault.a).disk->set_options(world_->swarm().disk);
  });
}

void FaultInjector::ChangeMembers(const Fault& fault) {
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  raftpb::ConfState conf = world_->process(leader).kv->conf();
  raftpb::ConfChange change;
  auto add = [&](raftpb::ConfChangeType type, NodeId id) {
    raftpb::ConfChangeSingle* single = change.add_changes();
    single->set_type(type);
    single->set_node_id(id);
  };
  NodeId spare = 0;
  for (NodeId id = 1; id <= world_->processes().size(); ++id) {
    if (!raft::IsMember(conf, id) && !world_->removed().contains(id) &&
        !world_->process(id).damaged) {
      spare = id;
      break;
    }
  }
  switch (fault.kind) {
    case FaultKind::kAddLearner:
      if (spare == 0) return;
      add(raftpb::ADD_LEARNER_NODE, spare);
      break;
    case FaultKind::kPromote: {
      if (conf.learners_size() == 0) return;
      NodeId learner = DrawOne(random_, conf.learners());
      // Never promote a member that refuses to start.
      if (world_->process(learner).damaged) return;
      Promote(learner, /*attempts_left=*/2);
      return;
    }
    default: {
      // A LagThenDamage is about to damage a voter: removing another now
      // could leave it one of two.
      if (conf.voters_size() < 2 || damage_pending_) return;
      NodeId victim = DrawOne(random_, conf.voters());
      // A member that refuses to start for damaged data is the one to go
      // (removing another could leave a majority that needs it).
      for (NodeId id : conf.voters()) {
        if (world_->process(id).damaged) victim = id;
      }
      add(raftpb::REMOVE_NODE, victim);
      if (fault.kind == FaultKind::kReplaceVoter) {
        if (spare == 0) return;
        add(raftpb::ADD_NODE, spare);
      }
      // A removed member never comes back under the same id: messages of
      // its earlier life could be taken for the new one's.
      world_->removed().insert(victim);
      break;
    }
  }
  ChangeMembership(std::move(change), FaultKindName(fault.kind));
}

void FaultInjector::Promote(NodeId learner, int attempts_left) {
  NodeId leader = world_->Leader();
  if (leader == 0 || attempts_left == 0 || world_->healed()) return;
  Process& target = world_->process(leader);
  world_->RunOn(target, [this, &target, learner, attempts_left] {
    // Answered at once when refused; when accepted, only once the change
    // applies (long after this frame is gone).
    auto answer = std::make_shared<std::optional<absl::Status>>();
    joining_voters_.insert(learner);
    target.kv->PromoteLearner(learner, [this, answer, learner](absl::Status status) {
      if (status.ok()) joining_voters_.erase(learner);
      *answer = status;
    });
    if (answer->has_value()) {
      const absl::Status& refused = **answer;
      joining_voters_.erase(learner);  // never proposed
      ++promotions_refused_;
      world_->trace().Event("promote.refused", learner, 0, [&] {
        return absl::StrCat("leader ", target.id, " refuses to promote ", learner, ": ",
                            refused.ToString());
      });
      if (absl::StrContains(refused.message(), "in sync")) {
        world_->queue().After(kPromoteRetryUs,
                              [this, learner, attempts_left] { Promote(learner, attempts_left - 1); });
      }
      return;
    }
    // Accepted: the leader proposed it. Its in-sync rule rests on the
    // learner's acknowledgements, which a learner sends only for what its
    // disk holds; so that disk must reach the rule's share of the commit.
    ++promotions_;
    uint64_t committed = target.member()->node().raft().log().committed();
    uint64_t durable = world_->process(learner).disk->durable().last_index();
    double needed = target.kv->options().learner_in_sync_fraction * static_cast<double>(committed);
    world_->trace().Event("promote", learner, durable, [&] {
      return absl::StrCat("leader ", target.id, " promotes ", learner, " (its disk holds ",
                          durable, " of ", committed, " committed)");
    });
    if (static_cast<double>(durable) < needed) {
      world_->Fail("learner-promotion",
                   absl::StrCat("leader ", target.id, " promoted learner ", learner,
                                " whose disk holds entries through ", durable, " of ", committed,
                                " committed (it must hold ", needed, ")"));
    }
  });
}

void FaultInjector::ChangeMembership(raftpb::ConfChange change, const std::string& what) {
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  std::string description = raft::DescribeEntry([&] {
    raftpb::Entry entry;
    entry.set_type(raftpb::ENTRY_CONF_CHANGE);
    entry.set_data(change.SerializeAsString());
    return entry;
  }());
  std::vector<NodeId> voters_added;
  for (const raftpb::ConfChangeSingle& single : change.changes()) {
    if (single.type() == raftpb::ADD_NODE) voters_added.push_back(single.node_id());
  }
  joining_voters_.insert(voters_added.begin(), voters_added.end());
  Process& target = world_->process(leader);
  world_->RunOn(target, [this, &target, what, description, voters_added,
                         change = std::move(change)]() mutable {
    target.kv->ChangeMembership(std::move(change), "", [this, what, description,
                                                         voters_added](absl::Status status) {
      world_->trace().Event("membership", status.ok(), 0, [&] {
        return absl::StrCat(what, " ", description, ": ", status.ToString());
      });
      if (!status.ok()) return;
      for (NodeId id : voters_added) joining_voters_.erase(id);
    });
  });
}

void FaultInjector::Heal() {
  world_->trace().Event("heal", 0, 0, [] { return std::string("every fault heals"); });
  world_->set_healed();
  healed_at_us_ = world_->queue().now_us();
  Network& network = world_->network();
  network.Heal();
  NetworkOptions calm = network.options();
  calm.loss_probability = 0;
  calm.duplicate_probability = 0;
  calm.reorder = false;
  network.set_options(calm);
  for (auto& process : world_->processes()) {
    process->disk->set_options(world_->swarm().disk);
    process->disk->StallUntil(0);
    if (process->paused) world_->Wake(*process, process->generation);
    if (process->crashed && !world_->failed()) world_->Restart(*process);
  }
}

void FaultInjector::Compact() {
  // As etcd's periodic auto-compaction would: the leader proposes a
  // compaction a little behind its revision, through the log, under
  // whatever faults are running. The outcome is not checked here (the
  // store's invariants and the clients' reads are).
  world_->queue().After(kCompactionPeriodUs, [this] { Compact(); });
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  Process& process = world_->process(leader);
  if (!process.up() || process.paused) return;
  kv::Revision revision = process.store().revision();
  if (revision <= kCompactionLagRevisions) return;
  kv::Revision to = revision - kCompactionLagRevisions;
  world_->trace().Event("compact", leader, static_cast<uint64_t>(to), [&] {
    return absl::StrCat("member ", leader, " proposes compaction to ", to);
  });
  world_->RunOn(process, [this, &process, to] {
    kvpb::Request request;
    request.mutable_compaction()->set_revision(to);
    auth_->Send(process, operator_, std::move(request), AuthWorkload::Mode::kWrite,
                [](absl::StatusOr<kvpb::Response>) {});
  });
}

void FaultInjector::RetireDamaged() {
  // What an operator does with a member whose disk failed: remove it from
  // the cluster (it never comes back under the same id).
  world_->queue().After(kRetirePeriodUs, [this] { RetireDamaged(); });
  NodeId leader = world_->Leader();
  if (leader == 0) return;
  raftpb::ConfState conf = world_->process(leader).kv->conf();
  for (const auto& p : world_->processes()) {
    if (!p->unrecoverable || !p->crashed) continue;
    if (!raft::IsVoter(conf, p->id) && !raft::IsLearner(conf, p->id)) continue;
    raftpb::ConfChange change;
    raftpb::ConfChangeSingle* single = change.add_changes();
    single->set_type(raftpb::REMOVE_NODE);
    single->set_node_id(p->id);
    world_->removed().insert(p->id);
    ChangeMembership(std::move(change), "retire-damaged");
    return;
  }
}

}  // namespace etc::sim
