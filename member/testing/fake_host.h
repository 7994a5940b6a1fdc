// A hand-driven host for tests of the member glue: a log store whose
// writes complete only when the test says so, and a transport that
// collects messages (attaching snapshot data as a real transport does).
#ifndef ETC_MEMBER_TESTING_FAKE_HOST_H_
#define ETC_MEMBER_TESTING_FAKE_HOST_H_

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "member/interfaces.h"
#include "raft/memory_storage.h"

namespace etc::member::fake {

class FakeStore : public LogStore {
 public:
  void Persist(PersistRequest request, uint64_t token) override {
    pending.push_back({std::move(request), token});
  }
  void SaveSnapshot(std::shared_ptr<const raftpb::Snapshot> snapshot) override {
    durable.snapshot = *snapshot;
    ++snapshots_saved;
  }
  void CompactLog(uint64_t index) override {
    compacted_to = index;
    std::erase_if(durable.entries, [index](const raftpb::Entry& e) { return e.index() <= index; });
  }
  absl::StatusOr<std::shared_ptr<const raftpb::Snapshot>> LoadSnapshot(
      const raftpb::SnapshotMetadata& metadata) override {
    if (metadata.index() != durable.snapshot.metadata().index() ||
        metadata.term() != durable.snapshot.metadata().term()) {
      return absl::NotFoundError("replaced");
    }
    return std::make_shared<const raftpb::Snapshot>(durable.snapshot);
  }
  bool low_on_space() const override { return low; }
  // Makes the oldest pending write durable; returns its token.
  uint64_t CompleteOne() {
    auto [request, token] = std::move(pending.front());
    pending.pop_front();
    raft::Ready ready;
    ready.snapshot = request.snapshot;
    ready.entries = request.entries;
    ready.hard_state = request.hard_state;
    ready.repair_finished = request.repair_finished;
    durable.Persist(ready);
    return token;
  }

  raft::MemoryStorage durable;
  std::deque<std::pair<PersistRequest, uint64_t>> pending;
  int snapshots_saved = 0;
  uint64_t compacted_to = 0;
  // What low_on_space answers.
  bool low = false;
};

// Collects messages, with their snapshot data attached as a real transport
// does (from the sending member's store).
class Outbox : public Transport {
 public:
  explicit Outbox(FakeStore* store) : store_(store) {}
  void Send(raftpb::Message message) override {
    if (message.type() == raftpb::MSG_SNAP) {
      EXPECT_TRUE(message.snapshot().data().empty()) << "Raft keeps no snapshot data";
      auto snapshot = store_->LoadSnapshot(message.snapshot().metadata());
      if (!snapshot.ok()) return;  // replaced meanwhile: lost
      message.mutable_snapshot()->set_data((*snapshot)->data());
    }
    messages.push_back(std::move(message));
  }
  std::vector<raftpb::Message> messages;

 private:
  FakeStore* store_;
};

}  // namespace etc::member::fake

#endif  // ETC_MEMBER_TESTING_FAKE_HOST_H_
