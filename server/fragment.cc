#include "server/fragment.h"

namespace etc::server {

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

}  // namespace etc::server
