// Where the key tree keeps its values. The keyspace holds, per version, only
// a ValueRef (where the value is, its size and its CRC-32C); the bytes live
// in a ValueStore. The default keeps them in memory (MemoryValueStore); the
// server and the simulator keep them in a file read back on demand
// (storage::ValueLog, through member::FileValueStore), so that a member's
// heap holds keys and revisions, not values.
//
// A value store is member-local and not replicated: refs differ between
// members, so nothing replicated may depend on a ref's location (the
// keyspace's quota and digest use only its size and CRC, which are the
// value's own).
#ifndef ETC_KV_VALUE_STORE_H_
#define ETC_KV_VALUE_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace etc::kv {

struct ValueRef {
  // The store's own address of the value (meaningless to anyone else).
  uint64_t location = 0;
  uint32_t size_bytes = 0;
  // CRC-32C of the value's bytes (0 for the empty value).
  uint32_t crc32c = 0;

  bool empty() const { return size_bytes == 0; }
  bool operator==(const ValueRef&) const = default;
};

// The empty value is never stored: its ref is ValueRef{} and no store sees it.
class ValueStore {
 public:
  virtual ~ValueStore() = default;
  // Keeps `value` (not empty) until released; `crc32c` is its CRC-32C.
  virtual ValueRef Write(std::string_view value, uint32_t crc32c) = 0;
  // Appends the value `ref` names to `*out`. Returns exactly the bytes
  // written or does not return: a store that finds its copy damaged stops
  // the process (see member::FileValueStore), because a key tree that
  // cannot read a value must not answer, nor apply a txn that compares it.
  virtual void Read(const ValueRef& ref, std::string* out) const = 0;
  // The key tree no longer holds `ref` (compaction dropped its version, or
  // a snapshot replaced the tree).
  virtual void Release(const ValueRef& ref) = 0;

  // ---- reclaiming space: after releasing, the key tree asks whether the
  // store wants values moved out of mostly-released places (a log's old
  // segments), and if so offers it every ref it holds ----
  virtual bool WantsMoves() { return false; }
  // Whether `ref` should move (only between WantsMoves() and MovesDone()).
  virtual bool ShouldMove(const ValueRef& /*ref*/) const { return false; }
  // Moves the value: the returned ref replaces `ref`, which is released.
  virtual ValueRef Move(const ValueRef& ref) { return ref; }
  // Every ref was offered (or there were no moves): space may be freed.
  virtual void MovesDone() {}
};

// Values in memory, each in its own slot (the location is the slot's
// number); released slots are reused. What the key tree uses when nobody
// gives it a store, and what its tests run on.
class MemoryValueStore : public ValueStore {
 public:
  ValueRef Write(std::string_view value, uint32_t crc32c) override;
  void Read(const ValueRef& ref, std::string* out) const override;
  void Release(const ValueRef& ref) override;

  // Values held (for tests: a key tree releases what it drops).
  size_t values() const { return slots_.size() - free_slots_.size(); }

 private:
  std::vector<std::string> slots_;
  std::vector<uint64_t> free_slots_;
};

}  // namespace etc::kv

#endif  // ETC_KV_VALUE_STORE_H_
