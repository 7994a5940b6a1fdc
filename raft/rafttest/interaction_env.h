// A scripted cluster of Raft nodes for golden tests. Every node runs the real
// Node; the environment plays the application (persisting Readys into
// in-memory "durable" storage, applying entries, sending messages into one
// in-flight queue) and the network (delivering, dropping, cutting links).
//
// Commands (see raft/testdata/*.txt for examples):
//   add-nodes N [voters=(..)] [learners=(..)] [index=I] [prevote=B] [checkquorum=B]
//             [read-only=safe|lease] [drift=PCT] [election=T] [heartbeat=T]
//             [max-msg-bytes=B] [max-inflight=N] [max-inflight-bytes=B]
//             [max-uncommitted-bytes=B] [forwarding=B] [seed=S]
//   campaign ID | propose ID DATA | propose-batch ID D1 D2 ..
//   propose-conf-change ID [transition=auto|implicit|explicit]  (input: v2 l3 r1)
//   process-ready [IDs] | deliver-msgs [IDs] [drop] [type=MsgX] | stabilize [IDs]
//   tick ID [n=N] | tick-all [n=N] [settle] | tick-heartbeat ID | tick-election ID
//   read-index ID CTX | transfer-leadership from=ID to=ID
//   report-unreachable FROM TO | report-snapshot FROM TO [fail]
//   snapshot ID | compact ID INDEX | crash ID | restart ID
//   cut A B | cut-oneway FROM TO | isolate ID | heal
//   status ID | raft-state | raft-log ID | app-state ID | log-level none|info
#ifndef ETC_RAFT_RAFTTEST_INTERACTION_ENV_H_
#define ETC_RAFT_RAFTTEST_INTERACTION_ENV_H_

#include <deque>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/node.h"
#include "tests/datadriven/datadriven.h"

namespace etc::raft::rafttest {

class InteractionEnv {
 public:
  InteractionEnv() = default;
  InteractionEnv(const InteractionEnv&) = delete;
  InteractionEnv& operator=(const InteractionEnv&) = delete;

  std::string Handle(const datadriven::TestCase& tc);

 private:
  struct Member {
    NodeId id = kNoNode;
    Config config;
    std::optional<Node> node;  // nullopt while crashed
    MemoryStorage storage;
    // The application's state machine: the data of applied normal entries.
    std::vector<std::string> applied;
  };

  void AddNodes(const datadriven::TestCase& tc);
  void ProcessReady(Member& member);
  // Delivers (or drops) the queued messages for `to`, of one type if given.
  void DeliverMessages(NodeId to, bool drop, const std::string& type);
  void Stabilize(const std::vector<NodeId>& ids);
  void PrintStatus(const Member& member);
  void PrintRaftLog(const Member& member);
  void ApplySnapshotData(Member& member, const std::string& data);
  Member& Get(const datadriven::TestCase& tc, uint64_t id);
  Node& Alive(const datadriven::TestCase& tc, uint64_t id);
  std::vector<NodeId> TargetIds(const datadriven::TestCase& tc) const;
  bool HasMessagesFor(NodeId id) const;
  void Status(const absl::Status& status);

  std::vector<Member> members_;
  std::deque<raftpb::Message> network_;
  std::set<std::pair<NodeId, NodeId>> cut_links_;
  std::string out_;
  bool log_enabled_ = true;
  // Suppresses Ready and message output (log lines still print).
  bool quiet_ = false;
};

}  // namespace etc::raft::rafttest

#endif  // ETC_RAFT_RAFTTEST_INTERACTION_ENV_H_
