#include "server/backup.h"

#include <gtest/gtest.h>

namespace etc::server {
namespace {

TEST(Backup, RoundTripsAnyStateWithEtcdsFraming) {
  for (size_t size : {0, 1, 495, 496, 497, 512, 100000}) {
    std::string state(size, 'x');
    for (size_t i = 0; i < size; ++i) state[i] = static_cast<char>(i * 7);
    std::string file = EncodeBackup(state);
    EXPECT_EQ(file.size() % 512, kBackupDigestBytes) << size;
    absl::StatusOr<std::string> back = DecodeBackup(file);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, state);
  }
}

TEST(Backup, EveryDamageIsRefused) {
  std::string file = EncodeBackup("some key tree state");
  for (size_t i = 0; i < file.size(); ++i) {
    std::string damaged = file;
    damaged[i] ^= 0x01;
    EXPECT_EQ(DecodeBackup(damaged).status().code(), absl::StatusCode::kDataLoss) << i;
  }
  EXPECT_FALSE(DecodeBackup(file.substr(0, file.size() - 1)).ok());
  EXPECT_FALSE(DecodeBackup("").ok());
  EXPECT_FALSE(DecodeBackup(std::string(544, '\0')).ok());
}

}  // namespace
}  // namespace etc::server
