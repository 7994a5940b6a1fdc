// Fixed-width little-endian integers in byte buffers: the framing of the
// log's records and of the raft stream between members.
#ifndef ETC_BASE_LITTLE_ENDIAN_H_
#define ETC_BASE_LITTLE_ENDIAN_H_

#include <cstdint>

namespace etc::base {

inline void PutLittleEndian32(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

inline uint32_t GetLittleEndian32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  return value;
}

}  // namespace etc::base

#endif  // ETC_BASE_LITTLE_ENDIAN_H_
