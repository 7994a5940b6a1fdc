// CRC-32C (Castagnoli), the checksum of the key tree's hashes and of every
// record the storage layer writes. Pure computation: the CPU's crc32
// instruction where there is one (x86-64 with SSE 4.2), else table-driven.
//
//   uint32_t crc = etc::base::Crc32c("hello");
//   crc = etc::base::Crc32cExtend(crc, more_bytes);   // same as one call on both
#ifndef ETC_BASE_CRC32C_H_
#define ETC_BASE_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace etc::base {

// Continues the checksum `crc` of earlier bytes over `data`.
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

// The table-driven version, whatever the CPU (Crc32cExtend's reference).
uint32_t Crc32cExtendPortable(uint32_t crc, std::string_view data);

}  // namespace etc::base

#endif  // ETC_BASE_CRC32C_H_
