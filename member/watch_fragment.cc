#include "member/watch_fragment.h"

namespace etc::member {

std::vector<etcdserverpb::WatchResponse> FragmentWatchResponse(
    etcdserverpb::WatchResponse response, size_t max_bytes) {
  std::vector<etcdserverpb::WatchResponse> pieces;
  if (response.ByteSizeLong() <= max_bytes || response.events_size() <= 1) {
    pieces.push_back(std::move(response));
    return pieces;
  }
  etcdserverpb::WatchResponse shell = response;
  shell.clear_events();
  size_t shell_bytes = shell.ByteSizeLong();
  etcdserverpb::WatchResponse current = shell;
  size_t current_bytes = shell_bytes;
  for (mvccpb::Event& event : *response.mutable_events()) {
    // An event's cost in the message: its bytes plus tag and length.
    size_t event_bytes = event.ByteSizeLong() + 8;
    if (current.events_size() > 0 && current_bytes + event_bytes > max_bytes) {
      current.set_fragment(true);
      pieces.push_back(std::move(current));
      current = shell;
      current_bytes = shell_bytes;
    }
    current_bytes += event_bytes;
    *current.add_events() = std::move(event);
  }
  pieces.push_back(std::move(current));
  return pieces;
}

bool IsPlainEventResponse(const etcdserverpb::WatchResponse& response) {
  return response.events_size() > 0 && !response.created() && !response.canceled() &&
         !response.fragment() && response.compact_revision() == 0 &&
         response.cancel_reason().empty();
}

bool MergeWatchResponse(etcdserverpb::WatchResponse* into, size_t* into_bytes,
                        etcdserverpb::WatchResponse* next, size_t max_bytes) {
  if (into->watch_id() != next->watch_id() || !IsPlainEventResponse(*into) ||
      !IsPlainEventResponse(*next)) {
    return false;
  }
  size_t next_bytes = next->ByteSizeLong();
  if (*into_bytes + next_bytes > max_bytes) return false;
  for (mvccpb::Event& event : *next->mutable_events()) *into->add_events() = std::move(event);
  *into->mutable_header() = next->header();
  // The header is counted twice: a little over, never under.
  *into_bytes += next_bytes;
  return true;
}

}  // namespace etc::member
