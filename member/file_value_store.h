// The key tree's values in a value log (storage/value_log.h): the
// kv::ValueStore both hosts give the key tree, over the server's data
// directory or the simulator's simulated disk, so the simulator runs the
// very file code the server does.
//
//   auto log = storage::ValueLog::Create(fs, data_dir + "/member/values").value();
//   FileValueStore values(std::move(log), [](const absl::Status& s) { ...exit... });
//   kv::StoreOptions options;
//   options.values = &values;
#ifndef ETC_MEMBER_FILE_VALUE_STORE_H_
#define ETC_MEMBER_FILE_VALUE_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "kv/value_store.h"
#include "storage/value_log.h"

namespace etc::member {

class FileValueStore : public kv::ValueStore {
 public:
  // Called with the error when a value cannot be read back (a damaged
  // segment, a failing disk); it must not return. The log is rebuilt at
  // every start, so the server exits and a restart repairs it; a member
  // that went on could answer nothing and apply no txn that compares the
  // value. Null: the process stops with the error (the simulator, which
  // damages no value log, takes any such failure for a bug).
  using OnUnreadable = std::function<void(const absl::Status&)>;
  FileValueStore(std::unique_ptr<storage::ValueLog> log, OnUnreadable on_unreadable)
      : log_(std::move(log)), on_unreadable_(std::move(on_unreadable)) {}

  kv::ValueRef Write(std::string_view value, uint32_t crc32c) override;
  void Read(const kv::ValueRef& ref, std::string* out) const override;
  void Release(const kv::ValueRef& ref) override;
  bool WantsMoves() override { return log_->WantsMoves(); }
  bool ShouldMove(const kv::ValueRef& ref) const override { return log_->ShouldMove(ref.location); }
  kv::ValueRef Move(const kv::ValueRef& ref) override;
  void MovesDone() override { log_->MovesDone(); }

  const storage::ValueLog& log() const { return *log_; }

 private:
  std::unique_ptr<storage::ValueLog> log_;
  OnUnreadable on_unreadable_;
};

}  // namespace etc::member

#endif  // ETC_MEMBER_FILE_VALUE_STORE_H_
