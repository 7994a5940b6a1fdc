// Prometheus metrics of one server, rendered in the text exposition format
// for /metrics. Names follow etcd 3.4's where etcd has the same quantity,
// so existing dashboards and alerts keep working.
//
//   Metrics metrics;
//   metrics.wal_fsync_seconds.Observe(0.002);
//   std::string text = metrics.Render();
//
// Thread-safe: counters and histograms are atomics or mutex-guarded maps;
// gauges are set by their owners (the member thread) and read at scrape.
#ifndef ETC_SERVER_METRICS_H_
#define ETC_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace etc::server {

// A cumulative histogram over fixed bucket upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends the _bucket, _sum and _count series of `name` with `labels`
  // ("" or `a="b",c="d"`).
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0};
};

// Histograms and counters keyed by a label set.
class LabeledCounters {
 public:
  void Add(const std::string& labels, uint64_t delta = 1);
  void Render(const std::string& name, std::string* out) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> values_ ABSL_GUARDED_BY(mu_);
};

class LabeledHistograms {
 public:
  explicit LabeledHistograms(std::vector<double> bounds) : bounds_(std::move(bounds)) {}
  void Observe(const std::string& labels, double value);
  void Render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Histogram>> histograms_ ABSL_GUARDED_BY(mu_);
};

struct Metrics {
  Metrics();

  // gRPC, as go-grpc-prometheus names them (labels grpc_type,
  // grpc_service, grpc_method[, grpc_code]).
  LabeledCounters grpc_started;
  LabeledCounters grpc_handled;
  LabeledHistograms grpc_handling_seconds;

  // Raft and proposals.
  std::atomic<int64_t> has_leader{0};
  std::atomic<int64_t> is_leader{0};
  std::atomic<uint64_t> leader_changes{0};
  std::atomic<uint64_t> proposals_committed{0};  // the commit index
  std::atomic<uint64_t> proposals_applied{0};    // the applied index
  std::atomic<int64_t> proposals_pending{0};
  std::atomic<uint64_t> proposals_failed{0};
  std::atomic<uint64_t> raft_term{0};

  // Storage and the key tree.
  Histogram wal_fsync_seconds;
  Histogram apply_seconds;
  std::atomic<int64_t> db_size_bytes{0};
  std::atomic<int64_t> keys{0};
  std::atomic<int64_t> watchers{0};
  std::atomic<uint64_t> health_success{0};
  std::atomic<uint64_t> health_failures{0};

  // The exposition text (with process_resident_memory_bytes read now).
  std::string Render() const;
};

// `a="x",b="y"` with values escaped as Prometheus requires.
std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels);

}  // namespace etc::server

#endif  // ETC_SERVER_METRICS_H_
