// The key tree's own heap per key and per version: what a member holds for
// the keys besides the values (which live in the value store, here one
// that keeps nothing). Loads the bench's memory shape, keys of 32 bytes
// written once each, then overwrites of a smaller set of keys (history),
// and prints the heap in use (malloc's count, not resident pages) after
// each step. Not a test: run with
//   bazel run -c opt //kv:memory_report -- [keys] [overwrites] [overwritten keys]
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kv/keyspace.h"
#include "kv/value_store.h"

namespace etc::kv {
namespace {

// Hands out locations and forgets the bytes: only the tree's heap counts.
class NullValueStore : public ValueStore {
 public:
  ValueRef Write(std::string_view value, uint32_t crc32c) override {
    return {.location = next_location_++, .size_bytes = static_cast<uint32_t>(value.size()),
            .crc32c = crc32c};
  }
  void Read(const ValueRef& ref, std::string* out) const override {
    out->append(ref.size_bytes, 'v');
  }
  void Release(const ValueRef&) override {}

 private:
  uint64_t next_location_ = 1;
};

size_t HeapBytes() { return mallinfo2().uordblks; }

int Run(long keys, long overwrites, long overwritten_keys) {
  NullValueStore values;
  size_t base = HeapBytes();
  auto* keyspace = new Keyspace(&values);
  std::string value(256, 'x');
  char key[64];
  for (long k = 0; k < keys; ++k) {
    // 32 bytes, as tools/bench-vs-etcd.sh's memory load writes them.
    std::snprintf(key, sizeof(key), "/bench/key/%021ld", k);
    keyspace->BeginRevision();
    keyspace->Put(key, value, 0, false, false);
    keyspace->EndRevision();
  }
  size_t after_keys = HeapBytes() - base;
  std::printf("%ld keys: %.1f MiB, %.1f bytes per key\n", keys, after_keys / 1048576.0,
              static_cast<double>(after_keys) / keys);
  for (long i = 0; i < overwrites; ++i) {
    std::snprintf(key, sizeof(key), "/bench/key/%021ld", i % overwritten_keys);
    keyspace->BeginRevision();
    keyspace->Put(key, value, 0, false, false);
    keyspace->EndRevision();
  }
  size_t after_history = HeapBytes() - base;
  if (overwrites > 0) {
    std::printf("%ld overwrites of %ld keys: %.1f MiB more, %.1f bytes per version\n", overwrites,
                overwritten_keys, (after_history - after_keys) / 1048576.0,
                static_cast<double>(after_history - after_keys) / overwrites);
  }
  std::printf("versions %zu, total %.1f MiB\n", keyspace->versions(), after_history / 1048576.0);
  return 0;
}

}  // namespace
}  // namespace etc::kv

int main(int argc, char** argv) {
  long keys = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  long overwrites = argc > 2 ? std::atol(argv[2]) : 600'000;
  long overwritten_keys = argc > 3 ? std::atol(argv[3]) : 100'000;
  if (keys < 1 || overwrites < 0 || overwritten_keys < 1 || overwritten_keys > keys) {
    std::fprintf(stderr, "usage: memory_report [keys >= 1] [overwrites >= 0] [overwritten keys, 1..keys]\n");
    return 2;
  }
  return etc::kv::Run(keys, overwrites, overwritten_keys);
}
