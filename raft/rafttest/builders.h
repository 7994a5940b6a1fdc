// Terse constructors for entries and messages in tests.
#ifndef ETC_RAFT_RAFTTEST_BUILDERS_H_
#define ETC_RAFT_RAFTTEST_BUILDERS_H_

#include <string>

#include "raft/quorum/quorum.h"
#include "raft/raftpb.pb.h"

namespace etc::raft::rafttest {

inline raftpb::Entry MakeEntry(Index index, Term term, std::string data = "") {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_data(std::move(data));
  return entry;
}

inline raftpb::Message MakeMessage(raftpb::MessageType type, NodeId from, NodeId to, Term term) {
  raftpb::Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

}  // namespace etc::raft::rafttest

#endif  // ETC_RAFT_RAFTTEST_BUILDERS_H_
