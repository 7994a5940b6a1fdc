// Who a configuration holds, asked one way everywhere: the member glue, the
// server and the simulator all ask "is this id a voter / a learner / in
// the cluster at all" of a raftpb::ConfState, whose ids sit in four lists
// (incoming and outgoing voters during a joint change, learners now and
// learners once the joint change completes).
//
//   if (raft::IsLearner(conf, id)) ...;
//   for (raft::NodeId id : raft::MembersOf(conf)) ...;
#ifndef ETC_RAFT_CONF_STATE_H_
#define ETC_RAFT_CONF_STATE_H_

#include <set>

#include "raft/config.h"
#include "raft/raftpb.pb.h"

namespace etc::raft {

// Every member of the configuration: voters and learners, incoming and
// outgoing, in id order.
std::set<NodeId> MembersOf(const raftpb::ConfState& conf);
// In any of the four lists.
bool IsMember(const raftpb::ConfState& conf, NodeId id);
// A voter of the incoming (current) configuration.
bool IsVoter(const raftpb::ConfState& conf, NodeId id);
// A voter of the incoming or, during a joint change, the outgoing
// configuration: its vote counts in some quorum.
bool IsIncomingOrOutgoingVoter(const raftpb::ConfState& conf, NodeId id);
// The only voter, outside a joint change: it wins an election alone.
bool IsSoleVoter(const raftpb::ConfState& conf, NodeId id);
// A learner now, or one once the joint change in progress completes.
bool IsLearner(const raftpb::ConfState& conf, NodeId id);
// A joint configuration (a change between two voter sets is in progress).
inline bool IsJoint(const raftpb::ConfState& conf) { return conf.voters_outgoing_size() > 0; }

}  // namespace etc::raft

#endif  // ETC_RAFT_CONF_STATE_H_
