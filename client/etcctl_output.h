// etcctl's printers for -w simple|json|table|fields, byte for byte what
// etcdctl 3.4 prints for the same response: json is Go's json.Marshal of
// the gogoproto struct (field names as in the .proto, base64 bytes,
// numeric int64s, zero values left out), table is tablewriter's boxes,
// fields is `"Name" : value` lines with Go-quoted strings.
//
//   Output out(OutputFormat::kJson, /*hex=*/false, /*color=*/false);
//   absl::Status printed = out.Get(response, /*value_only=*/false);
//   // !printed.ok(): this format does not print this response (etcdctl
//   // says "table not supported as output format").
#ifndef ETC_CLIENT_ETCCTL_OUTPUT_H_
#define ETC_CLIENT_ETCCTL_OUTPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "client/etcctl_command.h"
#include "server/etcdserverpb/rpc_service.grpc.pb.h"

namespace etc::etcctl {

// ---- encodings, exposed for the printers of later commands ----
// Go's json.Marshal of the gogoproto-generated struct for `message`.
std::string GoJson(const google::protobuf::Message& message);
// A JSON string as Go writes it (\u003c for <, \ufffd for bad UTF-8).
std::string GoJsonString(std::string_view text);
// Go's %q.
std::string GoQuote(std::string_view text);
// tablewriter's box with right-aligned cells and centred upper-case titles.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);
// go-humanize's Bytes: "20 kB", "1.2 MB".
std::string HumanizeBytes(uint64_t bytes);
// %016x and %x of an id.
std::string Hex16(uint64_t id);
std::string Hex(uint64_t id);

struct EndpointHealth {
  std::string endpoint;
  bool health = false;
  std::string took;  // Go's Duration.String(): "1.168129ms"
  std::string error;
};

struct EndpointHash {
  std::string endpoint;
  etcdserverpb::HashKVResponse hash;
};

struct EndpointStatus {
  std::string endpoint;
  etcdserverpb::StatusResponse status;
};

class Output {
 public:
  Output(OutputFormat format, bool hex, bool color) : format_(format), hex_(hex), color_(color) {}
  OutputFormat format() const { return format_; }

  // Each returns an error when the format does not print the response.
  absl::Status Get(const etcdserverpb::RangeResponse& r, bool value_only = false);
  absl::Status Put(const etcdserverpb::PutResponse& r);
  absl::Status Del(const etcdserverpb::DeleteRangeResponse& r);
  absl::Status Txn(const etcdserverpb::TxnResponse& r);
  absl::Status Watch(const etcdserverpb::WatchResponse& r);
  absl::Status Compaction(int64_t revision, const etcdserverpb::CompactionResponse& r);

  absl::Status Grant(const etcdserverpb::LeaseGrantResponse& r);
  absl::Status Revoke(int64_t id, const etcdserverpb::LeaseRevokeResponse& r);
  absl::Status KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r);
  absl::Status TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys);
  absl::Status Leases(const etcdserverpb::LeaseLeasesResponse& r);

  absl::Status MemberAdd(const etcdserverpb::MemberAddResponse& r);
  absl::Status MemberChanged(const std::string& verb, uint64_t id,
                             const etcdserverpb::ResponseHeader& header,
                             const google::protobuf::Message& response);
  absl::Status MemberList(const etcdserverpb::MemberListResponse& r);
  absl::Status EndpointHealthList(const std::vector<EndpointHealth>& list);
  absl::Status EndpointStatusList(const std::vector<EndpointStatus>& list);
  absl::Status EndpointHashList(const std::vector<EndpointHash>& list);
  absl::Status Alarm(const etcdserverpb::AlarmResponse& r);

  // Auth replies: `simple_text` is what the simple format prints; json
  // prints the response, fields its header.
  absl::Status AuthReply(const std::string& simple_text, const etcdserverpb::ResponseHeader& header,
                         const google::protobuf::Message& response);
  absl::Status RoleGet(const std::string& role, const etcdserverpb::AuthRoleGetResponse& r);
  absl::Status UserGet(const std::string& user, const etcdserverpb::AuthUserGetResponse& r);
  absl::Status RoleList(const etcdserverpb::AuthRoleListResponse& r);
  absl::Status UserList(const etcdserverpb::AuthUserListResponse& r);

 private:
  absl::Status Unsupported() const;
  void PrintKv(const mvccpb::KeyValue& kv, bool value_only) const;
  void FieldsKv(const std::string& prefix, const mvccpb::KeyValue& kv) const;
  void FieldsHeader(const etcdserverpb::ResponseHeader& header) const;
  void SimpleTxnOp(const etcdserverpb::ResponseOp& op);
  void FieldsTxnOp(const etcdserverpb::ResponseOp& op);

  OutputFormat format_;
  bool hex_;
  bool color_;
};

}  // namespace etc::etcctl

#endif  // ETC_CLIENT_ETCCTL_OUTPUT_H_
