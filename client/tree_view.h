// How etcctl draws the key tree: `tree` (box-drawing lines like tree(1),
// directories first, values shortened, a summary line), `du` (keys and
// bytes per subtree) and the live view of `watch --tree`. Pure: it turns
// key-values and watch events into text, so every drawing is tested
// against golden text without a server.
//
//   TreeModel model("/services");
//   for (const mvccpb::KeyValue& kv : range.kvs()) model.Put(kv);
//   std::cout << model.Draw({.max_depth = 2});
//
// Paths are keys: "/services/web/port" is the key "port" in the directory
// "/services/web". A name can be a key and a directory at once.
#ifndef ETC_CLIENT_TREE_VIEW_H_
#define ETC_CLIENT_TREE_VIEW_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/mvccpb/kv.pb.h"
#include "server/etcpb/tree.pb.h"

namespace etc::client {

// ANSI colours, used only when the caller says the output is a terminal.
struct Palette {
  bool colour = false;
  std::string Directory(std::string_view text) const;
  std::string Value(std::string_view text) const;
  std::string Added(std::string_view text) const;
  std::string Removed(std::string_view text) const;
  std::string Dim(std::string_view text) const;
};

// A value as one short printable line: control and non-UTF-8 bytes
// escaped, cut to `max_chars` characters with "…" (0: never cut).
std::string ShortValue(std::string_view value, size_t max_chars);

// "512 B", "1.5 KiB", "3.0 MiB".
std::string HumanBytes(int64_t bytes);

// One line of du: "       3 keys     71 B  /services/db/".
std::string DiskUsageLine(int64_t keys, int64_t bytes, std::string_view path);

struct DrawOptions {
  // Levels below the root drawn; deeper directories show their counts
  // (0: all levels).
  int max_depth = 0;
  // Value characters shown after a key (0: no values).
  size_t max_value_chars = 40;
  Palette palette = {};
};

// `etcctl ls`: one name a line, directories with a trailing "/" (a name
// that is a key and a directory is both "web" and "web/"). Long: the
// key's modification revision, version, lease (hex, as etcdctl prints
// leases) and value size in aligned columns under a header.
std::string FormatListing(const google::protobuf::RepeatedPtrField<etcpb::Child>& children,
                          bool long_format, const Palette& palette);

class TreeModel {
 public:
  // `root`: the directory the model holds ("/" for everything).
  explicit TreeModel(std::string root);

  // Adds or replaces the key `kv.key()`. False if it is not below the
  // root (the root's own key is not drawn).
  bool Put(const mvccpb::KeyValue& kv);
  // Removes the key; its directories go with their last key. False if
  // there is no such key.
  bool Delete(std::string_view key);
  // Applies a watch event and marks what it changed: Draw shows the key
  // as new, changed or deleted until ClearMarks.
  bool Apply(const mvccpb::Event& event);
  // Forgets the marks of the last changes.
  void ClearMarks();

  // The tree(1)-style drawing, then a blank line and the summary line
  // ("2 directories, 5 keys").
  std::string Draw(const DrawOptions& options) const;
  // Every directory (the root included) with its subtree's keys and bytes
  // (key and value bytes), deepest first, as du(1); `max_depth` as Draw's.
  std::string DiskUsage(int max_depth) const;

  int64_t keys() const;
  int64_t directories() const;

 private:
  struct Node {
    std::optional<mvccpb::KeyValue> kv;
    std::map<std::string, std::unique_ptr<Node>> children;
    // The last change: '+' put new, '~' changed, '-' deleted (kept for one
    // drawing so that the live view shows what went).
    char mark = 0;
  };
  // The names from the root down to `key`; nullopt if not below the root.
  std::optional<std::vector<std::string>> Split(std::string_view key) const;
  bool Set(const mvccpb::KeyValue& kv, bool mark);
  bool Remove(std::string_view key, bool mark);
  void DrawChildren(const Node& node, const std::string& indent, int depth,
                    const DrawOptions& options, std::string* out) const;
  std::string Label(const std::string& name, const Node& node, int depth,
                    const DrawOptions& options) const;
  static bool Prune(Node& node);
  static void CountBelow(const Node& node, int64_t* keys, int64_t* dirs);

  std::string root_;
  std::string prefix_;  // root_ + "/" unless the root ends with "/"
  Node top_;
};

}  // namespace etc::client

#endif  // ETC_CLIENT_TREE_VIEW_H_
