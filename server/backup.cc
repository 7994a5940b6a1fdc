#include "server/backup.h"

#include <openssl/sha.h>

#include <cstdint>

namespace etc::server {
namespace {

constexpr char kMagic[] = "etcsnap1";
constexpr size_t kHeaderBytes = 16;
constexpr size_t kAlignBytes = 512;

std::string Sha256(const std::string& data, size_t length) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), length, digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

}  // namespace

std::string EncodeBackup(const std::string& state) {
  std::string out(kMagic, 8);
  uint64_t length = state.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  out += state;
  out.resize((out.size() + kAlignBytes - 1) / kAlignBytes * kAlignBytes, '\0');
  out += Sha256(out, out.size());
  return out;
}

absl::StatusOr<std::string> DecodeBackup(const std::string& file) {
  if (file.size() < kAlignBytes + kBackupDigestBytes ||
      file.size() % kAlignBytes != kBackupDigestBytes) {
    return absl::DataLossError("not an etc snapshot: wrong size");
  }
  size_t body = file.size() - kBackupDigestBytes;
  if (file.compare(body, kBackupDigestBytes, Sha256(file, body)) != 0) {
    return absl::DataLossError("damaged: the SHA-256 does not match the contents");
  }
  if (file.compare(0, 8, kMagic) != 0) return absl::DataLossError("not an etc snapshot");
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= uint64_t{static_cast<unsigned char>(file[8 + i])} << (8 * i);
  if (length > body - kHeaderBytes) return absl::DataLossError("damaged: impossible length");
  for (size_t i = kHeaderBytes + length; i < body; ++i) {
    if (file[i] != '\0') return absl::DataLossError("damaged: padding is not zeros");
  }
  return file.substr(kHeaderBytes, length);
}

}  // namespace etc::server
