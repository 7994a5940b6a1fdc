// The register keys, which every workload agrees on: the kv clients'
// registers are "/kv/k0" .. "/kv/k<n-1>", alone in a directory of their
// own, so that they are etcd v2 files too ("/a/b" is both the v3 key and
// the v2 path) and v3 and v2 requests reach the same registers; a v2
// listing or recursive delete of the directory reaches exactly them.
//
//   request.mutable_put()->set_key(RegisterKey(3));        // "/kv/k3"
//   watcher.key = kRegisterPrefix;                         // "/kv/"
#ifndef ETC_SIM_REGISTERS_H_
#define ETC_SIM_REGISTERS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace etc::sim {

// The directory (a v2 path) and the prefix of its keys (a v3 prefix).
inline constexpr char kRegisterDir[] = "/kv";
inline constexpr char kRegisterPrefix[] = "/kv/";

inline std::string RegisterKey(uint64_t index) { return absl::StrCat(kRegisterPrefix, "k", index); }

// What a client last saw of a register: its value (nullopt: absent) and the
// modified index (mod revision) it held it at (0: absent or not known).
struct SeenValue {
  std::optional<std::string> value;
  int64_t index = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_REGISTERS_H_
