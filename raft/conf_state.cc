#include "raft/conf_state.h"

#include <algorithm>

namespace etc::raft {
namespace {

bool Holds(const google::protobuf::RepeatedField<uint64_t>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

std::set<NodeId> MembersOf(const raftpb::ConfState& conf) {
  std::set<NodeId> ids(conf.voters().begin(), conf.voters().end());
  ids.insert(conf.voters_outgoing().begin(), conf.voters_outgoing().end());
  ids.insert(conf.learners().begin(), conf.learners().end());
  ids.insert(conf.learners_next().begin(), conf.learners_next().end());
  return ids;
}

bool IsMember(const raftpb::ConfState& conf, NodeId id) {
  return Holds(conf.voters(), id) || Holds(conf.voters_outgoing(), id) ||
         Holds(conf.learners(), id) || Holds(conf.learners_next(), id);
}

bool IsVoter(const raftpb::ConfState& conf, NodeId id) { return Holds(conf.voters(), id); }

bool IsIncomingOrOutgoingVoter(const raftpb::ConfState& conf, NodeId id) {
  return Holds(conf.voters(), id) || Holds(conf.voters_outgoing(), id);
}

bool IsSoleVoter(const raftpb::ConfState& conf, NodeId id) {
  return conf.voters_size() == 1 && conf.voters(0) == id && !IsJoint(conf);
}

bool IsLearner(const raftpb::ConfState& conf, NodeId id) {
  return Holds(conf.learners(), id) || Holds(conf.learners_next(), id);
}

}  // namespace etc::raft
