#include "server/config.h"

#include "gtest/gtest.h"

namespace etc::server {
namespace {

TEST(ConfigTest, DefaultsAreEtcds) {
  auto config = ParseFlags({}, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "default");
  EXPECT_EQ(config->data_dir, "default.etc");
  EXPECT_EQ(config->listen_client_urls, std::vector<std::string>{"http://localhost:2379"});
  // etcd's own ids for a default member: the same hash of the same inputs.
  EXPECT_EQ(config->member_id, 0x8e9e05c52164694dull);
  EXPECT_EQ(config->cluster_id, 0xcdf818194e3a8c32ull);
}

TEST(ConfigTest, BothFlagFormsAndEnvironment) {
  auto config = ParseFlags({"--name", "n1", "--data-dir=/d", "--heartbeat-interval=50"},
                           {{"ETCD_ELECTION_TIMEOUT", "500"}, {"ETCD_NAME", "ignored"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "n1");
  EXPECT_EQ(config->data_dir, "/d");
  EXPECT_EQ(config->heartbeat_interval_ms, 50);
  EXPECT_EQ(config->election_timeout_ms, 500);
}

TEST(ConfigTest, AuthTokenTtlIsInSecondsAsEtcds) {
  EXPECT_EQ(ParseFlags({}, {})->auth_token_ttl_seconds, 300);  // etcd 3.4's default
  EXPECT_EQ(ParseFlags({"--auth-token-ttl=2"}, {})->auth_token_ttl_seconds, 2);
  EXPECT_EQ(ParseFlags({}, {{"ETCD_AUTH_TOKEN_TTL", "60"}})->auth_token_ttl_seconds, 60);
  EXPECT_FALSE(ParseFlags({"--auth-token-ttl=0"}, {}).ok());
  EXPECT_FALSE(ParseFlags({"--auth-token-ttl=31536001"}, {}).ok());
}

TEST(ConfigTest, BooleanFlagsStandAloneAsGosDo) {
  auto config = ParseFlags({"--enable-v2", "--name", "n1"}, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->enable_v2);
  EXPECT_EQ(config->name, "n1");
  EXPECT_FALSE(ParseFlags({}, {})->enable_v2);  // etcd 3.4's default
  EXPECT_FALSE(ParseFlags({"--enable-v2=false"}, {})->enable_v2);
  EXPECT_TRUE(ParseFlags({}, {{"ETCD_ENABLE_V2", "true"}})->enable_v2);
  EXPECT_FALSE(ParseFlags({"--enable-v2=maybe"}, {}).ok());
}

TEST(ConfigTest, InitialClusterGivesIdsAndChecksThisMember) {
  auto config = ParseFlags(
      {"--name=a", "--initial-advertise-peer-urls=http://10.0.0.1:2380",
       "--initial-cluster=a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"},
      {});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->initial_cluster.size(), 2u);
  EXPECT_NE(config->initial_cluster[0].id, config->initial_cluster[1].id);
  EXPECT_EQ(config->member_id, config->initial_cluster[0].id);
}

TEST(ConfigTest, BadFlagsAreClearErrors) {
  auto expect_error = [](std::vector<std::string> args, const std::string& fragment) {
    auto config = ParseFlags(args, {});
    ASSERT_FALSE(config.ok()) << "accepted: " << args.front();
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(fragment), std::string::npos)
        << config.status().message();
  };
  expect_error({"--no-such-flag=1"}, "unknown flag --no-such-flag");
  expect_error({"--heartbeat-interval=abc"}, "--heartbeat-interval=abc");
  expect_error({"--heartbeat-interval=300"}, "at least 5 times");
  expect_error({"--initial-cluster-state=maybe"}, "new or existing");
  expect_error({"--listen-client-urls=localhost:2379"}, "expected http(s)://host:port");
  expect_error({"--listen-client-urls=https://localhost:2379"}, "https needs --cert-file");
  expect_error({"--listen-peer-urls=https://localhost:2380"}, "https needs --peer-cert-file");
  expect_error({"--client-cert-auth=true"}, "trusted CA");
  expect_error({"--client-cert-auth=yes"}, "expected true or false");
  expect_error({"--listen-metrics-urls=https://localhost:2381"}, "http:// only");
  expect_error({"--initial-cluster=other=http://x:1"}, "no member named \"default\"");
  expect_error({"--initial-cluster=default=http://elsewhere:2380"}, "initial-advertise-peer-urls");
  expect_error({"--name"}, "needs a value");
  // etcd's largest recommended quota, 8 GiB, is ours too.
  expect_error({"--quota-backend-bytes=8589934593"}, "at most 8589934592");
  // A request past 32 MiB would not fit the log record that carries it.
  expect_error({"--max-request-bytes=33554433"}, "at most 33554432");
  expect_error({"stray"}, "unexpected argument");
}

}  // namespace
}  // namespace etc::server
