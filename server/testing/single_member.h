// Options for a one-member cluster in a fresh temporary directory, the
// setting of the server's unit tests that need a real MemberHost, and the
// transport it needs (none):
//
//   MemberHostOptions options = SingleMemberOptions("watch_service");
//   NoPeers peers;
//   auto host = MemberHost::Start(options, &fs, &peers);
#ifndef ETC_SERVER_TESTING_SINGLE_MEMBER_H_
#define ETC_SERVER_TESTING_SINGLE_MEMBER_H_

#include <stdlib.h>

#include <string>

#include <gtest/gtest.h>

#include "member/interfaces.h"
#include "server/member_host.h"

namespace etc::server {

// A single voter sends nothing, and nothing may be sent anyway.
class NoPeers : public member::Transport {
 public:
  void Send(raftpb::Message) override {}
};

inline MemberHostOptions SingleMemberOptions(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + name + "_XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  MemberHostOptions options;
  options.member_id = 1;
  options.cluster_id = 7;
  options.initial_voters = {1};
  options.data_dir = dir + "/data";
  // Elections in tens of milliseconds: tests wait for the leader.
  options.tick_ms = 10;
  return options;
}

}  // namespace etc::server

#endif  // ETC_SERVER_TESTING_SINGLE_MEMBER_H_
