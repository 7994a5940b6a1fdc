// "List of 100 children above 1,000,000 keys" over gRPC: loads keys spread
// under 100 children of one directory (/bench/c00/k000000 ...) with txns
// of 128 puts, then times List of /bench through the Tree service, the
// fallback List (prefix ranges with seeks), and what `etcdctl get --prefix
// --keys-only /bench/` does (one keys-only range of the whole subtree),
// and prints a table. Not a test: see tools/tree-bench.sh, or
//   bazel run -c opt //client:tree_bench -- <endpoint> [keys] [runs]
// With list-dir, it times List of one directory of <children> keys (made
// first if missing, values of 256 bytes) on whatever the endpoint already
// holds, through the Tree service, or prefix ranges where the server has
// none (etcd), and prints one JSON line (tools/growth-bench.sh):
//   tree_bench <endpoint> list-dir <directory> <children> <runs>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/tree_client.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

bool Load(etc::client::Client& client, int64_t keys) {
  constexpr int kChildren = 100, kPutsPerTxn = 128;
  int64_t per_child = keys / kChildren;
  etcdserverpb::TxnRequest txn;
  for (int64_t i = 0; i < keys; ++i) {
    char key[64];
    std::snprintf(key, sizeof(key), "/bench/c%02d/k%07lld", static_cast<int>(i / per_child),
                  static_cast<long long>(i));
    *txn.add_success() = etc::client::PutOp(key, "v");
    if (txn.success_size() == kPutsPerTxn || i + 1 == keys) {
      auto done = client.TxnRaw(txn);
      if (!done.ok()) {
        std::fprintf(stderr, "load: %s\n", std::string(done.status().message()).c_str());
        return false;
      }
      txn.clear_success();
    }
  }
  return true;
}

// Median-free and simple: the best of `runs`, in ms.
double BestMs(int runs, const std::function<bool()>& call) {
  double best = 1e18;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    if (!call()) return -1;
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

// tree_bench <endpoint> list-dir <directory> <children> <runs>
static int ListDirectory(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: tree_bench <endpoint> list-dir <directory> <children> <runs>\n");
    return 2;
  }
  std::string directory = argv[3];
  int64_t children = std::stoll(argv[4]);
  int runs = std::stoi(argv[5]);
  auto client = etc::client::Client::Connect({.endpoints = {argv[1]},
                                              .request_timeout = std::chrono::seconds(60)});
  if (!client.ok()) return 1;
  etc::client::TreeClient tree(client->get());
  etcpb::ListRequest list;
  list.set_path(directory);
  list.set_keys_only(true);
  auto listed = tree.List(list);
  if (!listed.ok()) {
    std::fprintf(stderr, "list: %s\n", std::string(listed.status().message()).c_str());
    return 1;
  }
  if (listed->children_size() != children) {
    std::string value(256, 'v');
    etcdserverpb::TxnRequest txn;
    for (int64_t i = 0; i < children; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "/c%06lld", static_cast<long long>(i));
      *txn.add_success() = etc::client::PutOp(directory + name, value);
      if (txn.success_size() == 128 || i + 1 == children) {
        if (auto done = (*client)->TxnRaw(txn); !done.ok()) {
          std::fprintf(stderr, "fill: %s\n", std::string(done.status().message()).c_str());
          return 1;
        }
        txn.clear_success();
      }
    }
  }
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    auto page = tree.List(list);
    if (!page.ok() || page->children_size() != children) {
      std::fprintf(stderr, "list: %s\n",
                   page.ok() ? "wrong number of children" : std::string(page.status().message()).c_str());
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("{\"list_dir\":\"%s\",\"children\":%lld,\"runs\":%d,\"median_ms\":%.3f,\"best_ms\":%.3f}\n",
              directory.c_str(), static_cast<long long>(children), runs, ms[ms.size() / 2], ms[0]);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[2]) == "list-dir") return ListDirectory(argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: tree_bench <endpoint> [keys=1000000] [runs=5]\n");
    return 2;
  }
  int64_t keys = argc > 2 ? std::stoll(argv[2]) : 1'000'000;
  int runs = argc > 3 ? std::stoi(argv[3]) : 5;
  auto client = etc::client::Client::Connect({.endpoints = {argv[1]},
                                              .request_timeout = std::chrono::seconds(60)});
  if (!client.ok()) return 1;
  auto loaded_at = Clock::now();
  if (!Load(**client, keys)) return 1;
  double load_s = std::chrono::duration<double>(Clock::now() - loaded_at).count();
  etc::client::TreeClient native(client->get());
  etc::client::TreeClient fallback(client->get(), etc::client::TreeClient::Mode::kFallback);
  etcpb::ListRequest list;
  list.set_path("/bench");
  list.set_keys_only(true);
  auto list_with = [&](etc::client::TreeClient& tree) {
    return [&] {
      auto page = tree.List(list);
      return page.ok() && page->children_size() == 100;
    };
  };
  double native_ms = BestMs(runs, list_with(native));
  double fallback_ms = BestMs(runs, list_with(fallback));
  double range_ms = BestMs(runs, [&] {
    auto got = (*client)->Get("/bench/", {.prefix = true, .keys_only = true});
    return got.ok() && got->count() == keys;
  });
  std::printf("machine: %u cores, %s\n", std::thread::hardware_concurrency(), CpuModel().c_str());
  std::printf("command: tree_bench %s %lld %d (loaded in %.1f s, 128 puts per txn)\n", argv[1],
              static_cast<long long>(keys), runs, load_s);
  std::printf("| %-52s | %12s |\n", "List /bench: 100 children above the keys", "best ms");
  std::printf("|%s|%s|\n", std::string(54, '-').c_str(), std::string(14, '-').c_str());
  std::printf("| %-52s | %12.3f |\n", "Tree.List (native)", native_ms);
  std::printf("| %-52s | %12.3f |\n", "TreeClient fallback List (ranges with seeks)", fallback_ms);
  std::printf("| %-52s | %12.3f |\n", "get --prefix --keys-only /bench/ (one range)", range_ms);
  return 0;
}
