// KvMember's answer to a full disk. etcd raises NOSPACE only for its own
// quota and panics on an I/O error from its log; a member of etc whose disk
// fills raises NOSPACE for itself instead (once the log's next segment
// would not fit, while the current one still has room for the alarm's
// entry: see DataDirLogStore's reserve). The alarm is replicated, so every
// member then refuses the writes that grow the log (etcd's "database space
// exceeded") while reads, watches, deletes and compaction go on; once the
// disk has space again the member clears the alarm it raised, and writes
// resume without a restart. An alarm this member did not raise (the quota, an
// operator) is left alone, as etcd leaves it: `etcdctl alarm disarm`.
#include <cstdio>

#include "kv/etcdserverpb/rpc.pb.h"
#include "member/kv_member.h"

namespace etc::member {

void KvMember::WatchDiskSpace(int64_t now_ms) {
  if (log_store_ == nullptr || disk_alarm_in_flight_ || now_ms < next_disk_check_ms_) return;
  next_disk_check_ms_ = now_ms + options_.disk_check_interval_ms;
  bool low = log_store_->low_on_space();
  bool raised = store().alarms().count({id(), etcdserverpb::NOSPACE}) > 0;
  if (!raised) disk_alarm_raised_ = false;  // cleared by an operator, or never raised
  // Low and raised (by anyone): nothing to add. Space and no alarm: nothing
  // to clear. Space and an alarm this member did not raise: not ours.
  if (low == raised || (!low && !disk_alarm_raised_)) return;
  kvpb::Request request;
  request.mutable_disk_space_alarm()->set_low(low);
  disk_alarm_in_flight_ = true;
  Write(std::move(request), [this, low](absl::StatusOr<kvpb::Response> response) {
    disk_alarm_in_flight_ = false;
    if (!response.ok()) return;  // asked again at the next check
    disk_alarm_raised_ = low;
    // For the operator: the one line that says why writes stop or resume.
    std::fprintf(stderr, "%s\n",
                 low ? "{\"level\":\"warn\",\"msg\":\"the disk is nearly full (the log's next "
                       "segment would not fit): NOSPACE raised, writes are refused until there "
                       "is space\"}"
                     : "{\"level\":\"info\",\"msg\":\"the disk has space again: NOSPACE "
                       "cleared\"}");
  });
}

}  // namespace etc::member
