#include "raft/memory_storage.h"

#include <algorithm>

namespace etc::raft {

MemoryStorage MemoryStorage::Bootstrap(const std::vector<NodeId>& voters) {
  MemoryStorage storage;
  raftpb::SnapshotMetadata* metadata = storage.snapshot.mutable_metadata();
  metadata->set_index(1);
  metadata->set_term(1);
  for (NodeId id : voters) metadata->mutable_conf_state()->add_voters(id);
  storage.hard_state.set_term(1);
  storage.hard_state.set_commit(1);
  return storage;
}

DurableState MemoryStorage::ToDurable() const {
  DurableState durable;
  durable.hard_state = hard_state;
  durable.snapshot = snapshot;
  durable.entries = entries;
  durable.damaged = damaged;
  return durable;
}

void MemoryStorage::Persist(const Ready& ready) {
  if (ready.snapshot != nullptr) {
    snapshot = *ready.snapshot;
    entries.clear();
  }
  if (!ready.entries.empty()) {
    Index first = ready.entries.front().index();
    while (!entries.empty() && entries.back().index() >= first) entries.pop_back();
    entries.insert(entries.end(), ready.entries.begin(), ready.entries.end());
  }
  if (ready.hard_state.has_value()) hard_state = *ready.hard_state;
  // Last, as a host records it once the entries are durable.
  if (ready.repair_finished) damaged = false;
}

void MemoryStorage::SaveSnapshot(const raftpb::Snapshot& made) {
  snapshot = made;
  Index index = made.metadata().index();
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [index](const raftpb::Entry& e) { return e.index() <= index; }),
                entries.end());
}

bool MemoryStorage::AttachSnapshotData(raftpb::Message& message) const {
  if (message.type() != raftpb::MSG_SNAP) return true;
  if (message.snapshot().metadata().index() != snapshot.metadata().index() ||
      message.snapshot().metadata().term() != snapshot.metadata().term()) {
    return false;
  }
  message.mutable_snapshot()->set_data(snapshot.data());
  return true;
}

}  // namespace etc::raft
