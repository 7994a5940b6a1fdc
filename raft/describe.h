// Deterministic one-line descriptions of the core's types, for golden test
// output, simulator traces and logs.
//
//   DescribeMessage(m)  ->  1->2 MsgApp Term:2 Log:1/4 Commit:4 Entries:[2/5 EntryNormal "x"]
#ifndef ETC_RAFT_DESCRIBE_H_
#define ETC_RAFT_DESCRIBE_H_

#include <string>

#include "raft/raftpb.pb.h"

namespace etc::raft {

const char* MessageTypeName(raftpb::MessageType type);
// "2/5 EntryNormal \"data\"" (term/index); conf changes are decoded.
std::string DescribeEntry(const raftpb::Entry& entry);
std::string DescribeMessage(const raftpb::Message& message);
std::string DescribeHardState(const raftpb::HardState& hard_state);
std::string DescribeConfState(const raftpb::ConfState& conf_state);
std::string DescribeSnapshotMetadata(const raftpb::SnapshotMetadata& metadata);

}  // namespace etc::raft

#endif  // ETC_RAFT_DESCRIBE_H_
