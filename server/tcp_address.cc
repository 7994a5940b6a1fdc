#include "server/tcp_address.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace etc::server {

absl::StatusOr<TcpAddresses> ResolveTcp(const std::string& host_port, bool passive) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("address without a port");
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const char* node = passive && host.empty() ? nullptr : host.c_str();
  if (int rc = getaddrinfo(node, port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", host_port, ": ", gai_strerror(rc)));
  }
  return TcpAddresses(found);
}

}  // namespace etc::server
