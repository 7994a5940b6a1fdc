// The printers of user, role and auth replies (etcdctl's, format by format).
#include <cstdio>

#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

void Line(const std::string& text) { std::printf("%s\n", text.c_str()); }

// A permission's range as etcdctl's role get prints it.
std::string RangeText(const authpb::Permission& perm) {
  if (perm.range_end().empty()) return "\t" + perm.key();
  std::string text = perm.range_end() != std::string(1, '\0')
                         ? "\t[" + perm.key() + ", " + perm.range_end() + ")"
                         : "\t[" + perm.key() + ", <open ended>";
  if (client::PrefixEnd(perm.key()) == perm.range_end()) text += " (prefix " + perm.key() + ")";
  return text;
}

}  // namespace

absl::Status Output::AuthReply(const std::string& simple_text, const etcdserverpb::ResponseHeader& header,
                               const google::protobuf::Message& response) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line(simple_text);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(response));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(header);
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::RoleGet(const std::string& role, const etcdserverpb::AuthRoleGetResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      Line("Role " + role);
      Line("KV Read:");
      for (const auto& perm : r.perm()) {
        if (perm.permtype() != authpb::Permission::WRITE) Line(RangeText(perm));
      }
      Line("KV Write:");
      for (const auto& perm : r.perm()) {
        if (perm.permtype() != authpb::Permission::READ) Line(RangeText(perm));
      }
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields:
      FieldsHeader(r.header());
      for (const auto& perm : r.perm()) {
        Line("\"PermType\" :  " + authpb::Permission::Type_Name(perm.permtype()));
        Line("\"Key\" : " + GoQuote(perm.key()));
        Line("\"RangeEnd\" : " + GoQuote(perm.range_end()));
      }
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::UserGet(const std::string& user, const etcdserverpb::AuthUserGetResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple: {
      std::string roles = "Roles:";
      for (const std::string& role : r.roles()) roles += " " + role;
      Line("User: " + user);
      Line(roles);
      return absl::OkStatus();
    }
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

absl::Status Output::RoleList(const etcdserverpb::AuthRoleListResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      for (const std::string& role : r.roles()) Line(role);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    case OutputFormat::kFields: {
      FieldsHeader(r.header());
      std::string roles = "\"Roles\" :";
      for (const std::string& role : r.roles()) roles += " " + GoQuote(role);
      Line(roles);
      return absl::OkStatus();
    }
    default:
      return Unsupported();
  }
}

absl::Status Output::UserList(const etcdserverpb::AuthUserListResponse& r) {
  switch (format_) {
    case OutputFormat::kSimple:
      for (const std::string& user : r.users()) Line(user);
      return absl::OkStatus();
    case OutputFormat::kJson:
      Line(GoJson(r));
      return absl::OkStatus();
    default:
      return Unsupported();
  }
}

}  // namespace etc::etcctl
