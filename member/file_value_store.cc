#include "member/file_value_store.h"

#include "base/check.h"

namespace etc::member {

kv::ValueRef FileValueStore::Write(std::string_view value, uint32_t crc32c) {
  return kv::ValueRef{log_->Append(value, crc32c), static_cast<uint32_t>(value.size()), crc32c};
}

void FileValueStore::Read(const kv::ValueRef& ref, std::string* out) const {
  absl::Status status = log_->Read(ref.location, ref.size_bytes, ref.crc32c, out);
  if (status.ok()) return;
  if (on_unreadable_) on_unreadable_(status);
  ETC_CHECK(false) << "a value cannot be read back: " << status;
}

void FileValueStore::Release(const kv::ValueRef& ref) { log_->Release(ref.location, ref.size_bytes); }

kv::ValueRef FileValueStore::Move(const kv::ValueRef& ref) {
  std::string value;
  Read(ref, &value);
  kv::ValueRef moved = Write(value, ref.crc32c);
  Release(ref);
  return moved;
}

}  // namespace etc::member
