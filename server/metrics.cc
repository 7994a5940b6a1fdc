#include "server/metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace etc::server {
namespace {

// etcd's bucket layouts: fsync from 1 ms doubling to ~8 s, request and
// apply latency from 0.1 ms.
std::vector<double> Exponential(double start, double factor, int count) {
  std::vector<double> bounds;
  for (int i = 0; i < count; ++i) bounds.push_back(start * std::pow(factor, i));
  return bounds;
}

std::string FormatDouble(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.9g", value);
  return buffer;
}

void Header(const std::string& name, const std::string& type, const std::string& help,
            std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

std::string Braced(const std::string& labels) { return labels.empty() ? "" : "{" + labels + "}"; }

}  // namespace

std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out += ",";
    absl::StrAppend(&out, key, "=\"");
    for (char c : value) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(static_cast<uint64_t>(std::max(0.0, value) * 1e9),
                       std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& labels,
                       std::string* out) const {
  std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::string le = i < bounds_.size() ? FormatDouble(bounds_[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket{", prefix, "le=\"", le, "\"} ", cumulative, "\n");
  }
  absl::StrAppend(out, name, "_sum", Braced(labels), " ",
                  FormatDouble(static_cast<double>(sum_nanos_.load()) / 1e9), "\n");
  absl::StrAppend(out, name, "_count", Braced(labels), " ", count_.load(), "\n");
}

void LabeledCounters::Add(const std::string& labels, uint64_t delta) {
  absl::MutexLock lock(&mu_);
  values_[labels] += delta;
}

void LabeledCounters::Render(const std::string& name, std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) {
    absl::StrAppend(out, name, Braced(labels), " ", value, "\n");
  }
}

void LabeledHistograms::Observe(const std::string& labels, double value) {
  Histogram* histogram;
  {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Histogram>& slot = histograms_[labels];
    if (slot == nullptr) slot = std::make_unique<Histogram>(bounds_);
    histogram = slot.get();
  }
  histogram->Observe(value);
}

void LabeledHistograms::Render(const std::string& name, std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, histogram] : histograms_) histogram->Render(name, labels, out);
}

Metrics::Metrics()
    : grpc_handling_seconds(Exponential(0.0001, 2, 16)),
      wal_fsync_seconds(Exponential(0.001, 2, 14)),
      apply_seconds(Exponential(0.0001, 2, 16)) {}

std::string Metrics::Render() const {
  std::string out;
  Header("grpc_server_started_total", "counter", "Total number of RPCs started on the server.",
         &out);
  grpc_started.Render("grpc_server_started_total", &out);
  Header("grpc_server_handled_total", "counter",
         "Total number of RPCs completed on the server, regardless of success or failure.", &out);
  grpc_handled.Render("grpc_server_handled_total", &out);
  Header("grpc_server_handling_seconds", "histogram",
         "Histogram of response latency (seconds) of gRPC that had been application-level "
         "handled by the server.",
         &out);
  grpc_handling_seconds.Render("grpc_server_handling_seconds", &out);

  auto gauge = [&out](const std::string& name, const std::string& help, auto value) {
    Header(name, "gauge", help, &out);
    absl::StrAppend(&out, name, " ", value, "\n");
  };
  auto counter = [&out](const std::string& name, const std::string& help, auto value) {
    Header(name, "counter", help, &out);
    absl::StrAppend(&out, name, " ", value, "\n");
  };
  gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
        has_leader.load());
  gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        is_leader.load());
  counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
          leader_changes.load());
  gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
        proposals_committed.load());
  gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
        proposals_applied.load());
  gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
        proposals_pending.load());
  counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
          proposals_failed.load());
  gauge("etcd_server_raft_term", "The current Raft term of this member.", raft_term.load());
  Header("etcd_disk_wal_fsync_duration_seconds", "histogram",
         "The latency distributions of fsync called by WAL.", &out);
  wal_fsync_seconds.Render("etcd_disk_wal_fsync_duration_seconds", "", &out);
  Header("etcd_server_apply_duration_seconds", "histogram",
         "The latency distributions of applying a committed entry to the key tree.", &out);
  apply_seconds.Render("etcd_server_apply_duration_seconds", "", &out);
  gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the key tree in bytes.",
        db_size_bytes.load());
  gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", keys.load());
  gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", watchers.load());
  counter("etcd_server_health_success", "The total number of successful health checks",
          health_success.load());
  counter("etcd_server_health_failures", "The total number of failed health checks",
          health_failures.load());

  // Resident memory, as Prometheus's process collector reports it.
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    int64_t page = sysconf(_SC_PAGESIZE);
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
          resident_pages * static_cast<uint64_t>(page));
  }
  return out;
}

}  // namespace etc::server
