#include "sim/v2_requests.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kv/tree.h"

namespace etc::sim::v2 {
namespace {

using lincheck::OpKind;
using lincheck::Operation;

// One entry of `kind` per register key, for a listing or a recursive delete.
std::vector<Operation> EveryRegister(int registers, OpKind kind) {
  std::vector<Operation> ops(static_cast<size_t>(registers));
  for (int i = 0; i < registers; ++i) {
    ops[i].key = RegisterKey(static_cast<uint64_t>(i));
    ops[i].kind = kind;
  }
  return ops;
}

// A compare-and-swap from what the client saw last: from absent (or from
// nothing seen) it is a create; from a value, one on the value or, when the
// client knows the index it saw it at, on the index.
void DrawCas(Random& random, const std::map<std::string, SeenValue>& last_seen, Call* call) {
  Operation& op = call->ops.back();
  op.kind = OpKind::kCas;
  auto seen = last_seen.find(op.key);
  if (seen == last_seen.end() || !seen->second.value.has_value()) {
    call->shape = Shape::kCreate;
    return;
  }
  op.expected = seen->second.value;
  if (seen->second.index != 0 && random.Chance(0.5)) {
    call->shape = Shape::kCasIndex;
    call->prev_index = seen->second.index;
  } else {
    call->shape = Shape::kCasValue;
  }
}

absl::Status Unexpected(const kvpb::TreeResponse& tree) {
  return absl::InternalError(absl::StrCat("unexpected v2 answer: error ", tree.error_code(), " (",
                                          tree.error_cause(), ")"));
}

bool IsCasFailure(Shape shape, int32_t error_code) {
  switch (shape) {
    case Shape::kCreate:
      return error_code == kv::kTreeNodeExist;
    case Shape::kCasValue:
    case Shape::kCasIndex:
      // The compare failed, or the key was gone (deleted since it was seen).
      return error_code == kv::kTreeCompareFailed || error_code == kv::kTreeKeyNotFound;
    default:
      return false;
  }
}

absl::Status ReadGet(const kvpb::TreeResponse& tree, Operation& op,
                     std::map<std::string, SeenValue>* last_seen) {
  if (tree.error_code() == kv::kTreeKeyNotFound) {
    op.read_result = std::nullopt;
    (*last_seen)[op.key] = SeenValue{};
    return absl::OkStatus();
  }
  if (tree.error_code() != 0) return Unexpected(tree);
  const kvpb::TreeNode& node = tree.node();
  if (node.dir() || node.key() != op.key) {
    return absl::InternalError(absl::StrCat("a get of ", op.key, " answered ", node.ShortDebugString()));
  }
  op.read_result = node.value();
  (*last_seen)[op.key] = SeenValue{node.value(), node.modified_index()};
  return absl::OkStatus();
}

// Every register key the listing does not show is absent; it must show
// nothing else (only the register keys live under /kv).
absl::Status ReadListing(const kvpb::TreeResponse& tree, std::span<Operation> ops,
                         std::map<std::string, SeenValue>* last_seen) {
  std::map<std::string, const kvpb::TreeNode*> files;
  if (tree.error_code() == 0) {
    if (!tree.node().dir() || tree.node().key() != kRegisterDir) {
      return absl::InternalError(absl::StrCat("a listing of ", kRegisterDir, " answered node ",
                                              tree.node().key()));
    }
    for (const kvpb::TreeNode& node : tree.node().nodes()) {
      if (node.dir() || !files.emplace(node.key(), &node).second) {
        return absl::InternalError(absl::StrCat("the listing of ", kRegisterDir, " shows ",
                                                node.ShortDebugString()));
      }
    }
  } else if (tree.error_code() != kv::kTreeKeyNotFound) {  // 100: an empty directory
    return Unexpected(tree);
  }
  for (Operation& op : ops) {
    auto file = files.find(op.key);
    if (file == files.end()) {
      op.read_result = std::nullopt;
      (*last_seen)[op.key] = SeenValue{};
      continue;
    }
    op.read_result = file->second->value();
    (*last_seen)[op.key] = SeenValue{file->second->value(), file->second->modified_index()};
    files.erase(file);
  }
  if (!files.empty()) {
    return absl::InternalError(absl::StrCat("the listing of ", kRegisterDir, " shows ",
                                            files.begin()->first, ", which is no register key"));
  }
  return absl::OkStatus();
}

absl::Status ReadDeleteAll(const kvpb::TreeResponse& tree, std::span<Operation> ops,
                           std::map<std::string, SeenValue>* last_seen) {
  if (tree.error_code() != 0 && tree.error_code() != kv::kTreeKeyNotFound) return Unexpected(tree);
  for (Operation& op : ops) {
    if (tree.error_code() == kv::kTreeKeyNotFound) {
      // Nothing lived under /kv: the delete changed nothing, and every
      // register was absent at that moment.
      op.kind = OpKind::kRead;
      op.read_result = std::nullopt;
    }
    (*last_seen)[op.key] = SeenValue{};
  }
  return absl::OkStatus();
}

absl::Status ReadSet(Shape shape, const kvpb::TreeResponse& tree, Operation& op,
                     std::map<std::string, SeenValue>* last_seen) {
  if (tree.error_code() == 0) {
    const kvpb::TreeNode& node = tree.node();
    if (node.dir() || node.key() != op.key || node.value() != op.value) {
      return absl::InternalError(absl::StrCat("a write of ", op.key, " answered ", node.ShortDebugString()));
    }
    if (op.kind == OpKind::kCas) op.cas_succeeded = true;
    (*last_seen)[op.key] = SeenValue{op.value, node.modified_index()};
    return absl::OkStatus();
  }
  if (!IsCasFailure(shape, tree.error_code())) return Unexpected(tree);
  op.cas_succeeded = false;
  return absl::OkStatus();
}

}  // namespace

const char* ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kGet:
      return "v2 get";
    case Shape::kList:
      return "v2 list";
    case Shape::kListRecursive:
      return "v2 recursive list";
    case Shape::kSet:
      return "v2 set";
    case Shape::kCreate:
      return "v2 create";
    case Shape::kCasValue:
      return "v2 cas on prevValue";
    case Shape::kCasIndex:
      return "v2 cas on prevIndex";
    case Shape::kDeleteAll:
      return "v2 recursive delete";
  }
  return "v2 ?";
}

Call DrawCall(Random& random, int registers, const std::map<std::string, SeenValue>& last_seen,
              const std::string& new_value) {
  Call call;
  uint64_t roll = random.Uniform(100);
  if (roll < 3) {  // rare: it empties every register
    call.shape = Shape::kDeleteAll;
    call.ops = EveryRegister(registers, OpKind::kDelete);
    return call;
  }
  if (roll < 15) {
    call.shape = random.Chance(0.5) ? Shape::kList : Shape::kListRecursive;
    call.ops = EveryRegister(registers, OpKind::kRead);
    return call;
  }
  call.ops.resize(1);
  Operation& op = call.ops.back();
  op.key = RegisterKey(random.Uniform(static_cast<uint64_t>(registers)));
  if (roll < 50) {
    call.shape = Shape::kGet;
    op.kind = OpKind::kRead;
    return call;
  }
  op.value = new_value;
  if (roll < 75) {
    call.shape = Shape::kSet;
    op.kind = OpKind::kWrite;
    return call;
  }
  DrawCas(random, last_seen, &call);
  return call;
}

kvpb::Request RequestFor(Shape shape, const Operation& first, int64_t prev_index) {
  kvpb::Request request;
  switch (shape) {
    case Shape::kGet:
      request.mutable_tree_get()->set_path(first.key);
      return request;
    case Shape::kList:
    case Shape::kListRecursive:
      request.mutable_tree_get()->set_path(kRegisterDir);
      request.mutable_tree_get()->set_recursive(shape == Shape::kListRecursive);
      return request;
    case Shape::kDeleteAll:
      request.mutable_tree_delete()->set_path(kRegisterDir);
      request.mutable_tree_delete()->set_recursive(true);
      return request;
    default:
      break;
  }
  kvpb::TreeSetRequest* set = request.mutable_tree_set();
  set->set_path(first.key);
  set->set_value(first.value);
  if (shape == Shape::kCreate) {
    set->set_mode(kvpb::TreeSetRequest::CREATE);
  } else if (shape == Shape::kCasValue || shape == Shape::kCasIndex) {
    set->set_mode(kvpb::TreeSetRequest::COMPARE_AND_SWAP);
    if (shape == Shape::kCasValue) set->set_prev_value(*first.expected);
    if (shape == Shape::kCasIndex) set->set_prev_index(prev_index);
  }
  return request;
}

absl::Status ReadAnswer(Shape shape, const kvpb::Response& response, std::span<Operation> ops,
                        std::map<std::string, SeenValue>* last_seen) {
  if (!response.has_tree()) {
    return absl::InternalError(absl::StrCat("a ", ShapeName(shape), " answered ",
                                            response.ShortDebugString()));
  }
  const kvpb::TreeResponse& tree = response.tree();
  switch (shape) {
    case Shape::kGet:
      return ReadGet(tree, ops[0], last_seen);
    case Shape::kList:
    case Shape::kListRecursive:
      return ReadListing(tree, ops, last_seen);
    case Shape::kDeleteAll:
      return ReadDeleteAll(tree, ops, last_seen);
    default:
      return ReadSet(shape, tree, ops[0], last_seen);
  }
}

}  // namespace etc::sim::v2
