// A "host:port" address ("[::1]:2380" too) resolved for a TCP socket: the
// one parsing the client and peer listeners and the raft stream's dial
// share.
#ifndef ETC_SERVER_TCP_ADDRESS_H_
#define ETC_SERVER_TCP_ADDRESS_H_

#include <netdb.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace etc::server {

struct AddrInfoFree {
  void operator()(addrinfo* addresses) const { freeaddrinfo(addresses); }
};
using TcpAddresses = std::unique_ptr<addrinfo, AddrInfoFree>;

// `passive`: for bind(2), where an empty host means every address.
// Errors: kInvalidArgument (no port, or the host does not resolve).
absl::StatusOr<TcpAddresses> ResolveTcp(const std::string& host_port, bool passive);

}  // namespace etc::server

#endif  // ETC_SERVER_TCP_ADDRESS_H_
