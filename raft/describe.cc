#include "raft/describe.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/confchange/confchange.h"

namespace etc::raft {

const char* MessageTypeName(raftpb::MessageType type) {
  switch (type) {
    case raftpb::MSG_APP:
      return "MsgApp";
    case raftpb::MSG_APP_RESP:
      return "MsgAppResp";
    case raftpb::MSG_VOTE:
      return "MsgVote";
    case raftpb::MSG_VOTE_RESP:
      return "MsgVoteResp";
    case raftpb::MSG_PRE_VOTE:
      return "MsgPreVote";
    case raftpb::MSG_PRE_VOTE_RESP:
      return "MsgPreVoteResp";
    case raftpb::MSG_SNAP:
      return "MsgSnap";
    case raftpb::MSG_HEARTBEAT:
      return "MsgHeartbeat";
    case raftpb::MSG_HEARTBEAT_RESP:
      return "MsgHeartbeatResp";
    case raftpb::MSG_PROP:
      return "MsgProp";
    case raftpb::MSG_PROP_RESP:
      return "MsgPropResp";
    case raftpb::MSG_READ_INDEX:
      return "MsgReadIndex";
    case raftpb::MSG_READ_INDEX_RESP:
      return "MsgReadIndexResp";
    case raftpb::MSG_TRANSFER_LEADER:
      return "MsgTransferLeader";
    case raftpb::MSG_TIMEOUT_NOW:
      return "MsgTimeoutNow";
    case raftpb::MSG_REMOVED:
      return "MsgRemoved";
    case raftpb::MSG_REPAIR:
      return "MsgRepair";
    case raftpb::MSG_REPAIR_RESP:
      return "MsgRepairResp";
    default:
      return "MsgUnknown";
  }
}

std::string DescribeEntry(const raftpb::Entry& entry) {
  std::string out = absl::StrCat(entry.term(), "/", entry.index());
  if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
    raftpb::ConfChange change;
    if (change.ParseFromString(entry.data())) {
      absl::StrAppend(&out, " EntryConfChange ", confchange::DescribeChanges(change));
    } else {
      absl::StrAppend(&out, " EntryConfChange <unparseable>");
    }
    return out;
  }
  absl::StrAppend(&out, " EntryNormal \"", absl::CHexEscape(entry.data()), "\"");
  return out;
}

std::string DescribeConfState(const raftpb::ConfState& cs) {
  std::string out = absl::StrCat("Voters:[", absl::StrJoin(cs.voters(), " "), "]");
  if (cs.voters_outgoing_size() > 0) {
    absl::StrAppend(&out, " VotersOutgoing:[", absl::StrJoin(cs.voters_outgoing(), " "), "]");
  }
  if (cs.learners_size() > 0) absl::StrAppend(&out, " Learners:[", absl::StrJoin(cs.learners(), " "), "]");
  if (cs.learners_next_size() > 0) {
    absl::StrAppend(&out, " LearnersNext:[", absl::StrJoin(cs.learners_next(), " "), "]");
  }
  if (cs.auto_leave()) absl::StrAppend(&out, " AutoLeave:true");
  return out;
}

std::string DescribeSnapshotMetadata(const raftpb::SnapshotMetadata& metadata) {
  return absl::StrCat("Index:", metadata.index(), " Term:", metadata.term(),
                      " ConfState:", DescribeConfState(metadata.conf_state()));
}

std::string DescribeHardState(const raftpb::HardState& hs) {
  return absl::StrCat("HardState Term:", hs.term(), " Vote:", hs.vote(), " Commit:", hs.commit());
}

std::string DescribeMessage(const raftpb::Message& m) {
  std::string out = absl::StrCat(m.from(), "->", m.to(), " ", MessageTypeName(m.type()),
                                 " Term:", m.term(), " Log:", m.log_term(), "/", m.index());
  if (m.reject()) {
    if (m.type() == raftpb::MSG_APP_RESP) {
      absl::StrAppend(&out, " Rejected (Hint: ", m.reject_hint(), ")");
    } else {
      absl::StrAppend(&out, " Rejected");
    }
  }
  if (m.commit() != 0) absl::StrAppend(&out, " Commit:", m.commit());
  if (m.heartbeat_round() != 0) absl::StrAppend(&out, " Round:", m.heartbeat_round());
  if (m.transfer()) absl::StrAppend(&out, " Transfer");
  if (!m.context().empty()) absl::StrAppend(&out, " Context:\"", absl::CHexEscape(m.context()), "\"");
  if (m.entries_size() > 0) {
    std::vector<std::string> entries;
    for (const raftpb::Entry& entry : m.entries()) entries.push_back(DescribeEntry(entry));
    absl::StrAppend(&out, " Entries:[", absl::StrJoin(entries, ", "), "]");
  }
  if (m.has_snapshot() && m.snapshot().metadata().index() != 0) {
    absl::StrAppend(&out, "\n  Snapshot: ", DescribeSnapshotMetadata(m.snapshot().metadata()));
  }
  return out;
}

}  // namespace etc::raft
