// A real three-member cluster for client tests, started from the server
// binary the test is given (etc, or etcd 3.4 as the referee), on free
// loopback ports, killed when destroyed.
#ifndef ETC_CLIENT_TEST_CLUSTER_H_
#define ETC_CLIENT_TEST_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"

namespace etc::client::testing {

// A loopback port free when asked.
int FreePort();

class Cluster {
 public:
  // `extra_flags` go to every member.
  Cluster(std::string server, int members = 3, std::vector<std::string> extra_flags = {});
  ~Cluster();

  std::string Endpoint(int i) const;
  // The member serving `endpoint`, or -1.
  int IndexOf(const std::string& endpoint) const;
  // Kills member i (SIGKILL) and waits for it.
  void Kill(int i);
  std::vector<std::string> Endpoints() const;
  // A client on every member, once the cluster answers a write.
  std::unique_ptr<Client> Connect(ClientOptions options = {});

 private:
  void Start(int i);

  std::string server_;
  std::vector<std::string> extra_flags_;
  std::string dir_;
  std::string cluster_;
  std::vector<int> client_ports_, peer_ports_;
  std::vector<pid_t> pids_;
};

}  // namespace etc::client::testing

#endif  // ETC_CLIENT_TEST_CLUSTER_H_
