#include "kv/value_store.h"

#include "base/check.h"

namespace etc::kv {

ValueRef MemoryValueStore::Write(std::string_view value, uint32_t crc32c) {
  ETC_CHECK(!value.empty()) << "the empty value is never stored";
  uint64_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::string(value);
  } else {
    slot = slots_.size();
    slots_.emplace_back(value);
  }
  return ValueRef{slot, static_cast<uint32_t>(value.size()), crc32c};
}

void MemoryValueStore::Read(const ValueRef& ref, std::string* out) const {
  ETC_CHECK_LT(ref.location, slots_.size());
  const std::string& value = slots_[ref.location];
  ETC_CHECK_EQ(value.size(), ref.size_bytes) << "a ref to a released or reused slot";
  out->append(value);
}

void MemoryValueStore::Release(const ValueRef& ref) {
  ETC_CHECK_LT(ref.location, slots_.size());
  std::string& value = slots_[ref.location];
  ETC_CHECK_EQ(value.size(), ref.size_bytes) << "a slot released twice";
  std::string().swap(value);
  free_slots_.push_back(ref.location);
}

}  // namespace etc::kv
