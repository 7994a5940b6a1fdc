#include "client/etcctl_output.h"

#include <cstdio>

#include "absl/strings/str_join.h"
#include "client/client.h"

namespace etc::etcctl {
namespace {

void Print(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Line(const std::string& text) { Print(text + "\n"); }

const char* kFormatNames[] = {"simple", "json", "table", "fields"};

std::string HexBytes(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

// Go's json of an embedded *ResponseHeader: its fields inline, then a comma.
std::string InlineHeader(const etcdserverpb::ResponseHeader& header) {
  std::string json = GoJson(header);
  std::string inner = json.substr(1, json.size() - 2);
  return inner.empty() ? inner : inner + ",";
}

std::vector<std::vector<std::string>> MemberRows(const etcdserverpb::MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const etcdserverpb::Member& m : r.members()) {
    rows.push_back({Hex(m.id()), m.name().empty() ? "unstarted" : "started", m.name(),
                    absl::StrJoin(m.peerurls(), ","), absl::StrJoin(m.clienturls(), ","),
                    m.islearner() ? "true" : "false"});
  }
  return rows;
}

std::vector<std::vector<std::string>> StatusRows(const std::vector<EndpointStatus>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const EndpointStatus& e : list) {
    const etcdserverpb::StatusResponse& s = e.status;
    rows.push_back({e.endpoint, Hex(s.header().member_id()), s.version(), HumanizeBytes(s.dbsize()),
                    s.leader() == s.header().member_id() ? "true" : "false",
                    s.islearner() ? "true" : "false", std::to_string(s.raftterm()),
                    std::to_string(s.raftindex()), std::to_string(s.raftappliedindex()),
                    absl::StrJoin(s.errors(), ", ")});
  }
  return rows;
}

}  // namespace

absl::Status Output::Unsupported() const {
  return absl::InvalidArgumentError(std::string(kFormatNames[static_cast<int>(format_)]) +
                                    " not supported as output format");
}

void Output::PrintKv(const mvccpb::KeyValue& kv, bool value_only) const {
  std::string key = hex_ ? HexBytes(kv.key()) : kv.key();
  std::string value = hex_ ? HexBytes(kv.value()) : kv.value();
  if (!value_only) Line(color_ ? "\033[1;34m" + key + "\033[0m" : key);
  Line(value);
}

void Output::FieldsHeader(const etcdserverpb::ResponseHeader& h) const {
  Line("\"ClusterID\" : " + std::to_string(h.cluster_id()));
  Line("\"MemberID\" : " + std::to_string(h.member_id()));
  Line("\"Revision\" : " + std::to_string(h.revision()));
  Line("\"RaftTerm\" : " + std::to_string(h.raft_term()));
}

void Output::FieldsKv(const std::string& p, const mvccpb::KeyValue& kv) const {
  Line("\"" + p + "Key\" : " + GoQuote(kv.key()));
  Line("\"" + p + "CreateRevision\" : " + std::to_string(kv.create_revision()));
  Line("\"" + p + "ModRevision\" : " + std::to_string(kv.mod_revision()));
  Line("\"" + p + "Version\" : " + std::to_string(kv.version()));
  Line("\"" + p + "Value\" : " + GoQuote(kv.value()));
  Line("\"" + p + "Lease\" : " + std::to_string(kv.lease()));
}

// ------------------------------------------------------------------- kv --

absl::Status Output::Get(const etcdserverpb::RangeResponse& r, bool value_only) {
  switch (format_) {
    case OutputFormat::kSimple:
      for (const auto& kv : r.kvs()) PrintKv(kv, value_only);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& kv : r.kvs()) FieldsKv("", kv);
      Line(std::string("\"More\" : ") + (r.more() ? "true" : "false"));
      Line("\"Count\" : " + std::to_string(r.count()));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Put(const etcdserverpb::PutResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("OK");
      if (r.has_prev_kv()) PrintKv(r.prev_kv(), false);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      if (r.has_prev_kv()) FieldsKv("Prev", r.prev_kv());
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Del(const etcdserverpb::DeleteRangeResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line(std::to_string(r.deleted()));
      for (const auto& kv : r.prev_kvs()) PrintKv(kv, false);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      Line("\"Deleted\" : " + std::to_string(r.deleted()));
      for (const auto& kv : r.prev_kvs()) FieldsKv("Prev", kv);
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

void Output::SimpleTxnOp(const etcdserverpb::ResponseOp& op) {
  if (op.has_response_range()) (void)Get(op.response_range());
  if (op.has_response_put()) (void)Put(op.response_put());
  if (op.has_response_delete_range()) (void)Del(op.response_delete_range());
}

void Output::FieldsTxnOp(const etcdserverpb::ResponseOp& op) { SimpleTxnOp(op); }

absl::Status Output::Txn(const etcdserverpb::TxnResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line(r.succeeded() ? "SUCCESS" : "FAILURE");
      for (const auto& op : r.responses()) {
        Line("");
        SimpleTxnOp(op);
      }
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      Line(std::string("\"Succeeded\" : ") + (r.succeeded() ? "true" : "false"));
      for (const auto& op : r.responses()) FieldsTxnOp(op);
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Watch(const etcdserverpb::WatchResponse& r) {
  auto type = [](const mvccpb::Event& e) { return e.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT"; };
  switch (format_) {
    case OutputFormat::kSimple:
      for (const auto& e : r.events()) {
        Line(type(e));
        if (e.has_prev_kv()) PrintKv(e.prev_kv(), false);
        PrintKv(e.kv(), false);
      }
      return absl::OkStatus();
    case OutputFormat::kJson: {
      // clientv3's WatchResponse: Go field names, no omitempty.
      std::vector<std::string> events;
      for (const auto& e : r.events()) events.push_back(GoJson(e));
      Line("{\"Header\":" + GoJson(r.header()) + ",\"Events\":" +
           (events.empty() ? "null" : "[" + absl::StrJoin(events, ",") + "]") +
           ",\"CompactRevision\":" + std::to_string(r.compact_revision()) +
           ",\"Canceled\":" + (r.canceled() ? "true" : "false") +
           ",\"Created\":" + (r.created() ? "true" : "false") + "}");
      return absl::OkStatus();
    }
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& e : r.events()) {
        Line(std::string("\"Type\" : ") + type(e));
        if (e.has_prev_kv()) FieldsKv("Prev", e.prev_kv());
        FieldsKv("", e.kv());
      }
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Compaction(int64_t revision, const etcdserverpb::CompactionResponse& r) {
  // etcdctl prints this line whatever -w says.
  Line("compacted revision " + std::to_string(revision));
  return absl::OkStatus();
}

// --------------------------------------------------------------- leases --

absl::Status Output::Grant(const etcdserverpb::LeaseGrantResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("lease " + Hex16(r.id()) + " granted with TTL(" + std::to_string(r.ttl()) + "s)");
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line("{" + InlineHeader(r.header()) + "\"ID\":" + std::to_string(r.id()) +
           ",\"TTL\":" + std::to_string(r.ttl()) + ",\"Error\":" + GoJsonString(r.error()) + "}");
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      Line("\"ID\" : " + std::to_string(r.id()));
      Line("\"TTL\" : " + std::to_string(r.ttl()));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Revoke(int64_t id, const etcdserverpb::LeaseRevokeResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("lease " + Hex16(id) + " revoked");
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("lease " + Hex16(r.id()) + " keepalived with TTL(" + std::to_string(r.ttl()) + ")");
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line("{" + InlineHeader(r.header()) + "\"ID\":" + std::to_string(r.id()) +
           ",\"TTL\":" + std::to_string(r.ttl()) + "}");
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      Line("\"ID\" : " + std::to_string(r.id()));
      Line("\"TTL\" : " + std::to_string(r.ttl()));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys) {
  switch (format_) {
    case OutputFormat::kSimple: {
      if (r.grantedttl() == 0 && r.ttl() == -1) {
        Line("lease " + Hex16(r.id()) + " already expired");
        return absl::OkStatus();
      }
      std::string text = "lease " + Hex16(r.id()) + " granted with TTL(" +
                         std::to_string(r.grantedttl()) + "s), remaining(" +
                         std::to_string(r.ttl()) + "s)";
      if (keys) text += ", attached keys([" + absl::StrJoin(r.keys(), " ") + "])";
      Line(text);
      return absl::OkStatus();
    }
    case OutputFormat::kJson: {
      // clientv3's struct: the header inline, no omitempty, keys null when none.
      etcdserverpb::LeaseTimeToLiveResponse keys_only;
      *keys_only.mutable_keys() = r.keys();
      std::string keys_json = GoJson(keys_only);  // {"keys":[...]} or {}
      std::string list = keys_json == "{}" ? "null" : keys_json.substr(8, keys_json.size() - 9);
      Line("{" + InlineHeader(r.header()) + "\"id\":" + std::to_string(r.id()) +
           ",\"ttl\":" + std::to_string(r.ttl()) +
           ",\"granted-ttl\":" + std::to_string(r.grantedttl()) + ",\"keys\":" + list + "}");
      return absl::OkStatus();
    }
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      Line("\"ID\" : " + std::to_string(r.id()));
      Line("\"TTL\" : " + std::to_string(r.ttl()));
      Line("\"GrantedTTL\" : " + std::to_string(r.grantedttl()));
      for (const std::string& k : r.keys()) Line("\"Key\" : " + GoQuote(k));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::Leases(const etcdserverpb::LeaseLeasesResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("found " + std::to_string(r.leases_size()) + " leases");
      for (const auto& lease : r.leases()) Line(Hex16(lease.id()));
      return absl::OkStatus();
    case OutputFormat::kJson: {
      std::vector<std::string> ids;
      for (const auto& lease : r.leases()) ids.push_back("{\"id\":" + std::to_string(lease.id()) + "}");
      Line("{" + InlineHeader(r.header()) + "\"leases\":" +
           "[" + absl::StrJoin(ids, ",") + "]" + "}");
      return absl::OkStatus();
    }
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& lease : r.leases()) Line("\"ID\" : " + std::to_string(lease.id()));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

// -------------------------------------------------------------- cluster --

absl::Status Output::MemberAdd(const etcdserverpb::MemberAddResponse& r) {
  char line[128];
  switch (format_) {
    case OutputFormat::kSimple:
      std::snprintf(line, sizeof(line), "Member %16llx added to cluster %16llx",
                    static_cast<unsigned long long>(r.member().id()),
                    static_cast<unsigned long long>(r.header().cluster_id()));
      Line(line);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::MemberChanged(const std::string& verb, uint64_t id,
                                   const etcdserverpb::ResponseHeader& header,
                                   const google::protobuf::Message& response) {
  char line[160];
  switch (format_) {
    case OutputFormat::kSimple:
      std::snprintf(line, sizeof(line), "Member %16llx %s cluster %16llx",
                    static_cast<unsigned long long>(id), verb.c_str(),
                    static_cast<unsigned long long>(header.cluster_id()));
      Line(line);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(response));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::MemberList(const etcdserverpb::MemberListResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      for (const auto& row : MemberRows(r)) Line(absl::StrJoin(row, ", "));
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kTable:
      Print(RenderTable({"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
                        MemberRows(r)));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& m : r.members()) {
        Line("\"ID\" : " + std::to_string(m.id()));
        Line("\"Name\" : " + GoQuote(m.name()));
        for (const auto& u : m.peerurls()) Line("\"PeerURL\" : " + GoQuote(u));
        for (const auto& u : m.clienturls()) Line("\"ClientURL\" : " + GoQuote(u));
        Line(std::string("\"IsLearner\" : ") + (m.islearner() ? "true" : "false"));
        Line("");
      }
      return absl::OkStatus();
  }
  return Unsupported();
}

absl::Status Output::EndpointHealthList(const std::vector<EndpointHealth>& list) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> json;
  for (const EndpointHealth& h : list) {
    rows.push_back({h.endpoint, h.health ? "true" : "false", h.took, h.error});
    json.push_back("{\"endpoint\":" + GoJsonString(h.endpoint) + ",\"health\":" +
                   (h.health ? "true" : "false") + ",\"took\":" + GoJsonString(h.took) +
                   (h.error.empty() ? "" : ",\"error\":" + GoJsonString(h.error)) + "}");
  }
  switch (format_) {
    case OutputFormat::kSimple:
      for (const EndpointHealth& h : list) {
        std::string text = h.error.empty()
                               ? h.endpoint + " is healthy: successfully committed proposal: took = " + h.took
                               : h.endpoint + " is unhealthy: failed to commit proposal: " + h.error;
        std::fprintf(stderr, "%s\n", text.c_str());
      }
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line("[" + absl::StrJoin(json, ",") + "]");
      return absl::OkStatus();
    case OutputFormat::kTable:
      Print(RenderTable({"endpoint", "health", "took", "error"}, rows));
      return absl::OkStatus();
    case OutputFormat::kFields:
      for (const EndpointHealth& h : list) {
        Line("\"Endpoint\" : " + GoQuote(h.endpoint));
        Line(std::string("\"Health\" : ") + (h.health ? "true" : "false"));
        Line("\"Took\" : " + h.took);
        Line("\"Error\" : " + h.error);
        Line("");
      }
      return absl::OkStatus();
  }
  return Unsupported();
}

absl::Status Output::EndpointStatusList(const std::vector<EndpointStatus>& list) {
  std::vector<std::string> json;
  for (const EndpointStatus& e : list) {
    json.push_back("{\"Endpoint\":" + GoJsonString(e.endpoint) + ",\"Status\":" + GoJson(e.status) + "}");
  }
  switch (format_) {
    case OutputFormat::kSimple:
      for (const auto& row : StatusRows(list)) Line(absl::StrJoin(row, ", "));
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line("[" + absl::StrJoin(json, ",") + "]");
      return absl::OkStatus();
    case OutputFormat::kTable:
      Print(RenderTable({"endpoint", "ID", "version", "db size", "is leader", "is learner",
                         "raft term", "raft index", "raft applied index", "errors"},
                        StatusRows(list)));
      return absl::OkStatus();
    case OutputFormat::kFields:
      for (const EndpointStatus& e : list) {
        const etcdserverpb::StatusResponse& s = e.status;
        FieldsHeader(s.header());
        Line("\"Version\" : " + GoQuote(s.version()));
        Line("\"DBSize\" : " + std::to_string(s.dbsize()));
        Line("\"Leader\" : " + std::to_string(s.leader()));
        Line(std::string("\"IsLearner\" : ") + (s.islearner() ? "true" : "false"));
        Line("\"RaftIndex\" : " + std::to_string(s.raftindex()));
        Line("\"RaftTerm\" : " + std::to_string(s.raftterm()));
        Line("\"RaftAppliedIndex\" : " + std::to_string(s.raftappliedindex()));
        Line("\"Errors\" : [" + absl::StrJoin(s.errors(), " ") + "]");
        Line("\"Endpoint\" : " + GoQuote(e.endpoint));
        Line("");
      }
      return absl::OkStatus();
  }
  return Unsupported();
}

absl::Status Output::EndpointHashList(const std::vector<EndpointHash>& list) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> json;
  for (const EndpointHash& e : list) {
    rows.push_back({e.endpoint, std::to_string(e.hash.hash())});
    json.push_back("{\"Endpoint\":" + GoJsonString(e.endpoint) + ",\"HashKV\":" + GoJson(e.hash) + "}");
  }
  switch (format_) {
    case OutputFormat::kSimple:
      for (const auto& row : rows) Line(absl::StrJoin(row, ", "));
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line("[" + absl::StrJoin(json, ",") + "]");
      return absl::OkStatus();
    case OutputFormat::kTable:
      Print(RenderTable({"endpoint", "hash"}, rows));
      return absl::OkStatus();
    case OutputFormat::kFields:
      for (const EndpointHash& e : list) {
        FieldsHeader(e.hash.header());
        Line("\"Endpoint\" : " + GoQuote(e.endpoint));
        Line("\"Hash\" : " + std::to_string(e.hash.hash()));
        Line("");
      }
      return absl::OkStatus();
  }
  return Unsupported();
}

absl::Status Output::Alarm(const etcdserverpb::AlarmResponse& r) {
  auto name = [](const etcdserverpb::AlarmMember& a) {
    return etcdserverpb::AlarmType_Name(a.alarm());
  };
  switch (format_) {
    case OutputFormat::kSimple:
      // Go's %+v of the message: its compact text form.
      for (const auto& a : r.alarms()) {
        Line("memberID:" + std::to_string(a.memberid()) + " alarm:" + name(a) + " ");
      }
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& a : r.alarms()) {
        Line("\"MemberID\" : " + std::to_string(a.memberid()));
        Line("\"AlarmType\" : " + name(a));
        Line("");
      }
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

}  // namespace etc::etcctl
