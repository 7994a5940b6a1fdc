#include "raft/rafttest/local_cluster.h"

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "raft/describe.h"

namespace etc::raft::rafttest {

LocalCluster::LocalCluster(Options options) {
  std::vector<NodeId> voters;
  for (int i = 1; i <= options.voters; ++i) voters.push_back(static_cast<NodeId>(i));
  for (int i = 1; i <= options.size; ++i) {
    Member member;
    member.config.id = static_cast<NodeId>(i);
    member.config.random_seed = options.seed;
    if (options.configure) options.configure(member.config);
    member.storage = i <= options.voters ? MemoryStorage::Bootstrap(voters) : MemoryStorage();
    absl::StatusOr<Node> node = Node::Start(member.config, member.storage.ToDurable());
    ETC_CHECK(node.ok()) << node.status();
    member.node.emplace(std::move(*node));
    member.applied_index = member.storage.snapshot.metadata().index();
    members_.push_back(std::move(member));
  }
}

void LocalCluster::Tick(NodeId id) {
  if (alive(id)) node(id).Tick();
}

void LocalCluster::TickAll() {
  for (NodeId id = 1; id <= static_cast<NodeId>(size()); ++id) Tick(id);
}

void LocalCluster::ProcessReady(NodeId id, bool crash_before_persisting) {
  Member& member = members_[id - 1];
  if (!member.node.has_value() || !member.node->HasReady()) return;
  Ready ready = member.node->GetReady();
  if (crash_before_persisting) {
    Crash(id);
    return;
  }
  member.storage.Persist(ready);
  for (raftpb::Message& m : ready.messages) {
    ETC_CHECK(member.storage.AttachSnapshotData(m)) << "no data for " << DescribeMessage(m);
    network_.push_back(std::move(m));
  }
  if (ready.snapshot != nullptr) member.applied_index = ready.snapshot->metadata().index();
  for (const raftpb::Entry& entry : ready.committed_entries) {
    ETC_CHECK_EQ(entry.index(), member.applied_index + 1) << "entries applied out of order";
    member.applied_index = entry.index();
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange change;
      ETC_CHECK(change.ParseFromString(entry.data()));
      // A refused change is refused identically everywhere; nothing to do.
      (void)member.node->ApplyConfChange(change);
    }
    if (on_apply) on_apply(id, entry);
  }
  if (on_read_state) {
    for (const ReadState& read : ready.read_states) on_read_state(id, read);
  }
  member.node->Advance(ready);
}

absl::Status LocalCluster::Deliver(size_t index, bool duplicate) {
  if (index >= network_.size()) return absl::OkStatus();
  raftpb::Message m = duplicate ? network_[index] : std::move(network_[index]);
  if (!duplicate) network_.erase(network_.begin() + static_cast<long>(index));
  if (cut_.contains({m.from(), m.to()}) || m.to() == 0 || m.to() > members_.size() ||
      !alive(m.to())) {
    return absl::OkStatus();
  }
  absl::Status status = node(m.to()).Step(m);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(status.message(), " in ", DescribeMessage(m)));
  }
  return absl::OkStatus();
}

void LocalCluster::Drop(size_t index) {
  if (index < network_.size()) network_.erase(network_.begin() + static_cast<long>(index));
}

bool LocalCluster::AnyReady() {
  for (Member& member : members_) {
    if (member.node.has_value() && member.node->HasReady()) return true;
  }
  return false;
}

absl::Status LocalCluster::Settle(int max_rounds) {
  absl::Status first_error;
  for (int round = 0; round < max_rounds && (!network_.empty() || AnyReady()); ++round) {
    for (NodeId id = 1; id <= static_cast<NodeId>(size()); ++id) ProcessReady(id);
    while (!network_.empty()) {
      absl::Status status = Deliver(0);
      if (!status.ok() && first_error.ok()) first_error = status;
    }
  }
  return first_error;
}

void LocalCluster::Crash(NodeId id) {
  members_[id - 1].node.reset();
  members_[id - 1].applied_index = 0;
}

absl::Status LocalCluster::Restart(NodeId id) {
  Member& member = members_[id - 1];
  if (member.node.has_value()) return absl::OkStatus();
  absl::StatusOr<Node> node = Node::Start(member.config, member.storage.ToDurable());
  if (!node.ok()) return node.status();
  member.node.emplace(std::move(*node));
  member.applied_index = member.storage.snapshot.metadata().index();
  return absl::OkStatus();
}

void LocalCluster::Cut(NodeId a, NodeId b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

absl::Status LocalCluster::SnapshotAndCompact(NodeId id) {
  if (!alive(id)) return absl::FailedPreconditionError("member is crashed");
  Member& member = members_[id - 1];
  auto snapshot = member.node->CreateSnapshot(member.applied_index, "");
  if (!snapshot.ok()) return snapshot.status();
  member.storage.SaveSnapshot(**snapshot);
  return member.node->Compact((*snapshot)->metadata().index());
}

NodeId LocalCluster::Leader() {
  NodeId leader = kNoNode;
  Term term = 0;
  for (Member& member : members_) {
    if (!member.node.has_value()) continue;
    NodeStatus status = member.node->Status();
    if (status.role == Role::kLeader && status.term >= term) {
      leader = status.id;
      term = status.term;
    }
  }
  return leader;
}

NodeId LocalCluster::ElectLeader(int max_ticks) {
  for (int tick = 0; tick < max_ticks; ++tick) {
    NodeId leader = Leader();
    if (leader != kNoNode) return leader;
    TickAll();
    (void)Settle();
  }
  return Leader();
}

}  // namespace etc::raft::rafttest
