#include "server/v2_request.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "kv/lease.h"

namespace etc::server {
namespace {

using kvpb::TreeSetRequest;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's unescape: %XX, and in a form '+' for a space.
absl::StatusOr<std::string> Unescape(std::string_view s, bool form) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && form) {
      out.push_back(' ');
    } else if (s[i] == '%') {
      int high = i + 2 < s.size() ? HexDigit(s[i + 1]) : -1;
      int low = i + 2 < s.size() ? HexDigit(s[i + 2]) : -1;
      if (high < 0 || low < 0) {
        std::string bad(s.substr(i, 3));
        return absl::InvalidArgumentError(absl::StrCat("invalid URL escape \"", bad, "\""));
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Go's strconv.ParseUint(s, 10, 64): digits only.
bool ParseDecimal(const std::string& s, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  return absl::SimpleAtoi(s, out);
}

V2Error Invalid(int code, std::string cause) { return V2Error{code, std::move(cause), 0}; }

// Go's strconv.ParseBool.
std::optional<bool> ParseBool(const std::string& s) {
  for (const char* yes : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (s == yes) return true;
  }
  for (const char* no : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (s == no) return false;
  }
  return std::nullopt;
}

const std::string* First(const Form& form, const std::string& name) {
  auto it = form.find(name);
  return it == form.end() || it->second.empty() ? nullptr : &it->second.front();
}

// etcd's getBool/getUint64: absent is false/0; present must parse.
std::optional<V2Error> ReadBool(const Form& form, const std::string& name, bool* out) {
  const std::string* value = First(form, name);
  if (value == nullptr) return std::nullopt;
  std::optional<bool> parsed = ParseBool(*value);
  if (!parsed) return Invalid(209, absl::StrCat("invalid value for \"", name, "\""));
  *out = *parsed;
  return std::nullopt;
}

std::optional<V2Error> ReadIndex(const Form& form, const std::string& name, uint64_t* out) {
  const std::string* value = First(form, name);
  if (value == nullptr) return std::nullopt;
  if (!ParseDecimal(*value, out)) {
    return Invalid(203, absl::StrCat("invalid value for \"", name, "\""));
  }
  return std::nullopt;
}

// The form etcd reads: the query, and for PUT and POST an urlencoded
// body first (its values win).
std::optional<V2Error> ReadForm(const HttpRequest& http, Form* form) {
  if (http.method == "PUT" || http.method == "POST") {
    auto type = http.headers.find("content-type");
    std::string media = type == http.headers.end() ? "" : type->second.substr(0, type->second.find(';'));
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media), "application/x-www-form-urlencoded")) {
      if (absl::Status s = ParseForm(http.body, form); !s.ok()) {
        return Invalid(210, std::string(s.message()));
      }
    }
  }
  if (absl::Status s = ParseForm(http.query, form); !s.ok()) {
    return Invalid(210, std::string(s.message()));
  }
  return std::nullopt;
}

// The key tree request, as etcd's apply maps v2's parameters to a store
// call (apply_v2.go).
void MakeTreeRequest(const Form& form, std::optional<bool> prev_exist, bool refresh, bool dir,
                     uint64_t prev_index, V2KeyRequest* key) {
  const std::string* value = First(form, "value");
  std::string prev_value = First(form, "prevValue") ? *First(form, "prevValue") : "";
  if (key->method == "GET" || key->method == "HEAD") {
    if (key->wait) return;
    key->request.mutable_tree_get()->set_path(key->path);
    key->request.mutable_tree_get()->set_recursive(key->recursive);
    return;
  }
  if (key->method == "DELETE") {
    auto* r = key->request.mutable_tree_delete();
    r->set_path(key->path);
    r->set_dir(dir);
    r->set_recursive(key->recursive);
    r->set_prev_value(prev_value);
    r->set_prev_index(static_cast<int64_t>(prev_index));
    return;
  }
  auto* r = key->request.mutable_tree_set();
  r->set_path(key->path);
  r->set_dir(dir);
  if (!dir && value != nullptr) r->set_value(*value);
  r->set_refresh(refresh);
  bool compares = prev_index > 0 || !prev_value.empty();
  if (key->method == "POST") {
    r->set_mode(TreeSetRequest::CREATE_IN_ORDER);
  } else if (prev_exist.has_value()) {
    r->set_mode(!*prev_exist ? TreeSetRequest::CREATE
                : compares   ? TreeSetRequest::COMPARE_AND_SWAP
                             : TreeSetRequest::UPDATE);
  } else {
    r->set_mode(compares ? TreeSetRequest::COMPARE_AND_SWAP : TreeSetRequest::SET);
  }
  if (r->mode() == TreeSetRequest::COMPARE_AND_SWAP) {
    r->set_prev_value(prev_value);
    r->set_prev_index(static_cast<int64_t>(prev_index));
  }
}

// The parameters etcd checks after the booleans, in its order.
std::optional<V2Error> ReadWriteOptions(const Form& form, V2KeyRequest* key,
                                        std::optional<bool>* prev_exist, bool* refresh) {
  if (const std::string* ttl = First(form, "ttl"); ttl != nullptr && !ttl->empty()) {
    uint64_t seconds = 0;
    if (!ParseDecimal(*ttl, &seconds) || seconds > static_cast<uint64_t>(kv::kMaxLeaseTtlSeconds)) {
      return Invalid(202, "invalid value for \"ttl\"");
    }
    key->ttl = static_cast<int64_t>(seconds);
  }
  if (const std::string* value = First(form, "prevExist")) {
    std::optional<bool> parsed = ParseBool(*value);
    if (!parsed) return Invalid(209, "invalid value for prevExist");
    *prev_exist = parsed;
  }
  if (const std::string* value = First(form, "refresh")) {
    std::optional<bool> parsed = ParseBool(*value);
    if (!parsed) return Invalid(209, "invalid value for refresh");
    *refresh = *parsed;
    if (*refresh) {
      const std::string* v = First(form, "value");
      if (v != nullptr && !v->empty()) return Invalid(211, "A value was provided on a refresh");
      if (!key->ttl.has_value()) return Invalid(212, "No TTL value set");
    }
  }
  return std::nullopt;
}

}  // namespace

const char* V2ErrorMessage(int code) {
  switch (code) {
    case 100: return "Key not found";
    case 101: return "Compare failed";
    case 102: return "Not a file";
    case 104: return "Not a directory";
    case 105: return "Key already exists";
    case 107: return "Root is read only";
    case 108: return "Directory not empty";
    case 110: return "The request requires user authentication";
    case 201: return "PrevValue is Required in POST form";
    case 202: return "The given TTL in POST form is not a number";
    case 203: return "The given index in POST form is not a number";
    case 209: return "Invalid field";
    case 210: return "Invalid POST form";
    case 211: return "Value provided on refresh";
    case 212: return "A TTL must be provided on refresh";
    case 300: return "Raft Internal Error";
    case 301: return "During Leader Election";
    case 401: return "The event in requested index is outdated and cleared";
    default: return "Client Internal Error";
  }
}

int V2ErrorHttpStatus(int code) {
  switch (code) {
    case 100: return 404;
    case 102:
    case 108: return 403;
    case 101:
    case 105: return 412;
    case 110: return 401;
    case 300:
    case 301: return 500;
    default: return 400;
  }
}

absl::Status ParseForm(std::string_view encoded, Form* form) {
  size_t start = 0;
  while (start <= encoded.size()) {
    size_t end = std::min(encoded.find('&', start), encoded.size());
    std::string_view pair = encoded.substr(start, end - start);
    start = end + 1;
    if (pair.find(';') != std::string_view::npos) {
      return absl::InvalidArgumentError("invalid semicolon separator in query");
    }
    if (pair.empty()) continue;
    size_t equals = pair.find('=');
    absl::StatusOr<std::string> name = Unescape(pair.substr(0, equals), /*form=*/true);
    if (!name.ok()) return name.status();
    std::string_view raw = equals == std::string_view::npos ? "" : pair.substr(equals + 1);
    absl::StatusOr<std::string> value = Unescape(raw, /*form=*/true);
    if (!value.ok()) return value.status();
    (*form)[*name].push_back(std::move(*value));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> UnescapePath(std::string_view escaped) {
  return Unescape(escaped, /*form=*/false);
}

V2Parsed ParseV2KeyRequest(const HttpRequest& http, const std::string& path) {
  V2Parsed parsed;
  V2KeyRequest& key = parsed.key;
  key.method = http.method;
  key.path = path;
  Form form;
  if ((parsed.error = ReadForm(http, &form))) return parsed;
  uint64_t prev_index = 0;
  if ((parsed.error = ReadIndex(form, "prevIndex", &prev_index))) return parsed;
  if ((parsed.error = ReadIndex(form, "waitIndex", &key.wait_index))) return parsed;
  bool dir = false;
  for (auto [name, field] : std::initializer_list<std::pair<const char*, bool*>>{
           {"recursive", &key.recursive}, {"sorted", &key.sorted}, {"wait", &key.wait},
           {"dir", &dir}, {"quorum", &key.quorum}, {"stream", &key.stream}}) {
    if ((parsed.error = ReadBool(form, name, field))) return parsed;
  }
  if (key.wait && key.method != "GET") {
    parsed.error = Invalid(209, "\"wait\" can only be used with GET requests");
    return parsed;
  }
  if (const std::string* prev_value = First(form, "prevValue"); prev_value && prev_value->empty()) {
    parsed.error = Invalid(201, "\"prevValue\" cannot be empty");
    return parsed;
  }
  if ((parsed.error = ReadBool(form, "noValueOnSuccess", &key.no_value_on_success))) return parsed;
  std::optional<bool> prev_exist;
  bool refresh = false;
  if ((parsed.error = ReadWriteOptions(form, &key, &prev_exist, &refresh))) return parsed;
  // DELETE implies dir when recursive (v2's store).
  if (key.method == "DELETE" && key.recursive) dir = true;
  MakeTreeRequest(form, prev_exist, refresh, dir, prev_index, &key);
  return parsed;
}

}  // namespace etc::server
