// The public interface of the Raft core: a value-type state machine that
// takes messages, ticks and requests, and hands back Ready batches.
//
//   absl::StatusOr<Node> node = Node::Start(config, durable_state);
//   node->Tick();                      // at a fixed interval
//   node->Step(message_from_peer);
//   node->Propose("payload");
//   while (node->HasReady()) {
//     Ready ready = node->GetReady();
//     // 1. Persist, in this order, and make durable (fsync):
//     //    ready.snapshot, then ready.entries (replacing any persisted
//     //    entries at or after entries[0].index()), then ready.hard_state.
//     //    Skip the fsync only if !ready.MustSync().
//     // 2. Only then send ready.messages.
//     // 3. Apply ready.snapshot (if any), then ready.committed_entries in
//     //    order, calling ApplyConfChange for conf change entries; answer
//     //    ready.read_states once their index is applied.
//     // 4. node->Advance(ready);
//   }
//
// The durability rule: no message in a Ready may leave before everything
// that Ready asks to persist is durable. Vote grants and append
// acknowledgements travel in those messages, so a node never promises
// something a crash could make it forget (raft-traps #3). Committed entries
// handed out are always already durable on this node, and a leader counts
// its own log toward a commit only once it is durable (raft-traps #17).
//
// Call Advance before the next GetReady. Step and the other inputs may be
// called between GetReady and Advance; their effects appear in the next Ready.
#ifndef ETC_RAFT_NODE_H_
#define ETC_RAFT_NODE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/config.h"
#include "raft/raft.h"
#include "raft/raftpb.pb.h"

namespace etc::raft {

// Volatile state worth telling the application about when it changes.
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

struct Ready {
  std::optional<SoftState> soft_state;
  // Persist if set (it changed).
  std::optional<raftpb::HardState> hard_state;
  // A snapshot from the leader to persist and then apply; replaces the whole
  // state machine and log.
  std::shared_ptr<const raftpb::Snapshot> snapshot;
  // Entries to persist. They may overwrite persisted entries from
  // entries[0].index() on; everything persisted after them is discarded.
  std::vector<raftpb::Entry> entries;
  // Entries to apply, in order. Already durable.
  std::vector<raftpb::Entry> committed_entries;
  // Send after persisting. A MSG_SNAP carries the snapshot's metadata
  // only: the node keeps no snapshot data, so the application attaches the
  // data of the snapshot at that index, which it persisted, as the message
  // leaves (MemoryStorage::AttachSnapshotData does it for tests).
  std::vector<raftpb::Message> messages;
  std::vector<ReadState> read_states;
  // Proposals forwarded to the leader that it refused.
  std::vector<DroppedProposal> dropped_proposals;

  // Whether persisting needs an fsync: a new term or vote, new entries or a
  // snapshot. A commit index alone can be recomputed after a crash.
  bool must_sync = false;
  bool empty() const;

  // Whether `message` (one of `messages`) may leave before this Ready is
  // durable, so that a leader's disk write and its followers' overlap
  // (Raft thesis 10.2.1). True only for a leader's appends, heartbeats and
  // snapshots, in a Ready that changes neither term nor vote: they promise
  // nothing about the leader's own disk, because the leader counts its own
  // log toward a commit only once Advance reports it durable. Everything
  // else (votes, acknowledgements, a new leader's first messages, whose
  // term may not be durable yet) waits for persistence.
  bool MayPrecedePersist(const raftpb::Message& message) const;
  // Set by GetReady: the node led with the term and vote it had already
  // handed out for persisting.
  bool from_settled_leader = false;
  // Repair of damaged storage finished (Raft::repairing): once this Ready's
  // entries are durable, record durably that the storage is whole again,
  // and only then send its messages (a vote may be among them). A crash
  // before that record restarts the repair, which is always safe.
  bool repair_finished = false;
};

// A read-only snapshot of the node's state, for tests, metrics and status.
struct NodeStatus {
  NodeId id = kNoNode;
  Term term = 0;
  NodeId vote = kNoNode;
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  Index commit = 0;
  Index applied = 0;
  Index stable = 0;
  Index first_index = 0;
  Index last_index = 0;
  // Repair of damaged storage (see Raft::repairing).
  bool repairing = false;
  Index repair_target = 0;
  bool majority_damaged = false;
  NodeId lead_transferee = kNoNode;
  bool lease_valid = false;
  std::string config;
  raftpb::ConfState conf_state;
  // Leader only: one description per member.
  absl::btree_map<NodeId, std::string> progress;
};

class Node {
 public:
  // A new or restarted member. `durable` is what the application persisted
  // (see DurableState); a malformed one is an error.
  static absl::StatusOr<Node> Start(Config config, DurableState durable);

  void Tick();
  // A message from a peer; malformed messages are rejected with an error.
  absl::Status Step(const raftpb::Message& message);
  // Starts an election now (PreVote first if configured).
  absl::Status Campaign();
  // Appends data to the log if this node leads; forwards it to the leader
  // otherwise (unless forwarding is disabled). An error means the proposal
  // was dropped; success does not mean it will commit.
  absl::Status Propose(std::string data);
  // Several proposals at once, in order.
  absl::Status ProposeBatch(std::vector<std::string> data);
  absl::Status ProposeConfChange(const raftpb::ConfChange& change);
  // Call when applying a committed conf change entry; returns the new
  // configuration. An error means the change is refused identically on
  // every member.
  absl::StatusOr<raftpb::ConfState> ApplyConfChange(const raftpb::ConfChange& change);
  // Requests a linearizable read point; answered in Ready::read_states with
  // the same context.
  absl::Status ReadIndex(std::string context);
  absl::Status TransferLeadership(NodeId target);
  // The transport could not reach `id`.
  void ReportUnreachable(NodeId id);
  // The transport delivered (or failed to deliver) a snapshot to `id`.
  void ReportSnapshot(NodeId id, bool applied);
  // Records the application's snapshot of its state at `index` (applied,
  // and not before the last applied conf change) and returns it with its
  // metadata filled in. The application persists it, then may call Compact.
  // The node keeps only the metadata (see Ready::messages).
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> CreateSnapshot(Index index,
                                                                         std::string data);
  // Drops entries up to `index` from memory; a snapshot must cover them.
  absl::Status Compact(Index index);

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& ready);

  NodeStatus Status() const;
  // Repair of damaged storage cannot finish (Raft::majority_damaged): the
  // host stops the member, naming the damaged file.
  bool majority_damaged() const { return raft_.majority_damaged(); }
  const Raft& raft() const { return raft_; }
  // Crashes with a description on a broken invariant. Runs after every
  // input in debug builds; the simulator also calls it in optimized builds.
  void CheckInvariants() { raft_.CheckInvariants(); }

 private:
  explicit Node(Raft raft);
  SoftState CurrentSoftState() const;
  void AfterInput();

  Raft raft_;
  SoftState previous_soft_state_;
  raftpb::HardState previous_hard_state_;
  bool previous_repairing_ = false;
  bool ready_outstanding_ = false;
};

}  // namespace etc::raft

#endif  // ETC_RAFT_NODE_H_
