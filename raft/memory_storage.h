// An in-memory stand-in for a member's durable storage that follows the
// Ready persistence rule exactly. Tests, the demo and the simulator use it;
// the server's WAL implements the same contract on disk.
//
//   MemoryStorage storage;               // what "survived"
//   storage.Persist(ready);              // before sending ready.messages
//   Node::Start(config, storage.ToDurable());   // after a crash
#ifndef ETC_RAFT_MEMORY_STORAGE_H_
#define ETC_RAFT_MEMORY_STORAGE_H_

#include <vector>

#include "raft/node.h"

namespace etc::raft {

struct MemoryStorage {
  raftpb::HardState hard_state;
  raftpb::Snapshot snapshot;
  std::vector<raftpb::Entry> entries;
  // Storage damage was found and repair has not finished (DurableState).
  bool damaged = false;

  // A new cluster's first member state: a snapshot at index 1, term 1, whose
  // configuration lists the initial voters (and whose data is the empty
  // initial state). It must be a real, sendable snapshot: a member that
  // joins later with an empty log learns the initial configuration from it;
  // replaying the log alone would miss it.
  static MemoryStorage Bootstrap(const std::vector<NodeId>& voters);

  DurableState ToDurable() const;
  // The index of the last entry it holds (the snapshot's if none follow).
  Index last_index() const {
    return entries.empty() ? snapshot.metadata().index() : entries.back().index();
  }
  // Applies a Ready's persistence obligations in the documented order:
  // snapshot, then entries (replacing any persisted suffix), then hard state.
  void Persist(const Ready& ready);
  // Records a snapshot the application made and drops the entries it covers.
  void SaveSnapshot(const raftpb::Snapshot& made);
  // Gives a MSG_SNAP leaving this member the data of the stored snapshot
  // (see Ready::messages). False if the stored snapshot is not the one the
  // message is about (a host then drops the message, as if lost).
  bool AttachSnapshotData(raftpb::Message& message) const;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_MEMORY_STORAGE_H_
