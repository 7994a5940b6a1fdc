// A member's simulated durable storage. Writes become durable, in order,
// after a drawn fsync latency; a crash loses every write not yet durable,
// and may tear the oldest one (leaving a prefix of its entries durable but
// not its hard state), as a real disk can. Snapshots are saved atomically.
#ifndef ETC_SIM_DISK_H_
#define ETC_SIM_DISK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "member/interfaces.h"
#include "raft/memory_storage.h"
#include "sim/event_queue.h"
#include "sim/random.h"
#include "sim/trace.h"

namespace etc::sim {

struct DiskOptions {
  Micros fsync_min_us = 50;
  Micros fsync_tail_mean_us = 200;
  // On a crash, the chance that the oldest unfinished write is torn.
  double torn_write_probability = 0;
};

class Disk : public member::LogStore {
 public:
  using OnPersisted = std::function<void(uint64_t token)>;

  Disk(uint64_t node_id, EventQueue* queue, Trace* trace, Random random, DiskOptions options);

  // Where completed writes are reported (the running member).
  void set_on_persisted(OnPersisted on_persisted) { on_persisted_ = std::move(on_persisted); }
  // Told about every write that reached the disk (whole, or a torn prefix),
  // before the member hears of it: the log-matching checker's input.
  using OnDurable = std::function<void(const std::vector<raftpb::Entry>& entries,
                                       const raft::MemoryStorage& durable)>;
  void set_on_durable(OnDurable on_durable) { on_durable_ = std::move(on_durable); }

  void Persist(member::PersistRequest request, uint64_t token) override;
  void SaveSnapshot(const raftpb::Snapshot& snapshot) override;
  void CompactLog(uint64_t index) override;

  // The process died: unfinished writes are lost (the oldest maybe torn) and
  // their completions never fire.
  void Crash();
  // The state a new member's disk starts with (durable from the outset).
  void Bootstrap(raft::MemoryStorage initial) { durable_ = std::move(initial); }
  // Everything durable, for restarting the member.
  const raft::MemoryStorage& durable() const { return durable_; }
  // Erases everything (a member removed for good).
  void Wipe();
  void set_options(DiskOptions options) { options_ = options; }
  // The disk hangs: no write completes before `until_us`. 0 ends a stall at
  // once (when every fault heals).
  void StallUntil(Micros until_us);

 private:
  void Complete(uint64_t generation);
  // Schedules the completion of the newest pending write.
  void ScheduleCompletion();

  uint64_t node_id_;
  EventQueue* queue_;
  Trace* trace_;
  Random random_;
  DiskOptions options_;
  OnPersisted on_persisted_;
  OnDurable on_durable_;
  raft::MemoryStorage durable_;
  struct PendingWrite {
    member::PersistRequest request;
    uint64_t token;
  };
  std::deque<PendingWrite> pending_;
  // Completions scheduled before a crash belong to an older generation.
  uint64_t generation_ = 0;
  Micros last_completion_us_ = 0;
  Micros stalled_until_us_ = 0;
};

}  // namespace etc::sim

#endif  // ETC_SIM_DISK_H_
