#include "base/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace etc::base {
namespace {

TEST(Crc32cTest, KnownVectors) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
}

TEST(Crc32cTest, ExtendEqualsOneCall) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t cut = 0; cut <= data.size(); cut += 37) {
    std::string_view view(data);
    EXPECT_EQ(Crc32cExtend(Crc32c(view.substr(0, cut)), view.substr(cut)), Crc32c(view));
  }
}

TEST(Crc32cTest, TheFastPathAgreesWithTheTableAtEveryLengthAndAlignment) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 24));
  }
  std::string_view view(data);
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t length : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4000}) {
      std::string_view piece = view.substr(offset, length);
      EXPECT_EQ(Crc32cExtend(0, piece), Crc32cExtendPortable(0, piece))
          << "offset " << offset << " length " << length;
      EXPECT_EQ(Crc32cExtend(0xDEADBEEF, piece), Crc32cExtendPortable(0xDEADBEEF, piece));
    }
  }
}

}  // namespace
}  // namespace etc::base
