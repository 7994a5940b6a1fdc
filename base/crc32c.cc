#include "base/crc32c.h"

#include <array>

namespace etc::base {
namespace {

// The reflected Castagnoli polynomial.
constexpr uint32_t kPolynomial = 0x82F63B78u;

// Slicing-by-4 tables: table[k][b] is the CRC of byte b followed by k zeros.
constexpr std::array<std::array<uint32_t, 256>, 4> MakeTables() {
  std::array<std::array<uint32_t, 256>, 4> tables{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    tables[0][byte] = crc;
  }
  for (uint32_t byte = 0; byte < 256; ++byte) {
    for (int k = 1; k < 4; ++k) {
      uint32_t previous = tables[k - 1][byte];
      tables[k][byte] = (previous >> 8) ^ tables[0][previous & 0xFF];
    }
  }
  return tables;
}

constexpr auto kTables = MakeTables();

}  // namespace

uint32_t Crc32cExtendPortable(uint32_t crc, std::string_view data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  size_t size = data.size();
  crc = ~crc;
  while (size >= 4) {
    crc ^= static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
           static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
    crc = kTables[3][crc & 0xFF] ^ kTables[2][(crc >> 8) & 0xFF] ^
          kTables[1][(crc >> 16) & 0xFF] ^ kTables[0][crc >> 24];
    bytes += 4;
    size -= 4;
  }
  while (size-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *bytes++) & 0xFF];
  return ~crc;
}

#if defined(__x86_64__)
namespace {

// SSE 4.2's crc32 instruction computes exactly CRC-32C, 8 bytes at a time:
// several times the table's speed on the snapshot files and log records.
__attribute__((target("sse4.2"))) uint32_t Crc32cExtendSse42(uint32_t crc, std::string_view data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  size_t size = data.size();
  uint64_t state = ~crc;
  while (size >= 8) {
    uint64_t word;
    __builtin_memcpy(&word, bytes, 8);
    state = __builtin_ia32_crc32di(state, word);
    bytes += 8;
    size -= 8;
  }
  auto narrow = static_cast<uint32_t>(state);
  while (size-- > 0) narrow = __builtin_ia32_crc32qi(narrow, *bytes++);
  return ~narrow;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, std::string_view data) {
  return kHaveSse42 ? Crc32cExtendSse42(crc, data) : Crc32cExtendPortable(crc, data);
}
#else
uint32_t Crc32cExtend(uint32_t crc, std::string_view data) {
  return Crc32cExtendPortable(crc, data);
}
#endif

}  // namespace etc::base
