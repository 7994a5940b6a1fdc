#include "client/tree_view.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace etc::client {

namespace {

std::string Paint(bool on, const char* code, std::string_view text) {
  std::string plain(text);
  if (!on) return plain;
  return absl::StrCat(code, plain, "\033[0m");
}

// The length of the UTF-8 sequence starting at `s[i]`, or 0 if the bytes
// there are not one (they are then shown escaped).
size_t Utf8Length(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  }
  return length;
}

std::string Plural(int64_t n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

}  // namespace

std::string Palette::Directory(std::string_view text) const { return Paint(colour, "\033[1;34m", text); }
std::string Palette::Value(std::string_view text) const { return Paint(colour, "\033[36m", text); }
std::string Palette::Added(std::string_view text) const { return Paint(colour, "\033[32m", text); }
std::string Palette::Removed(std::string_view text) const { return Paint(colour, "\033[31m", text); }
std::string Palette::Dim(std::string_view text) const { return Paint(colour, "\033[2m", text); }

std::string ShortValue(std::string_view value, size_t max_chars) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < value.size();) {
    if (max_chars > 0 && chars + 1 >= max_chars && i + 1 < value.size()) {
      // Room for one more character: the ellipsis says there was more.
      return out + "…";
    }
    size_t length = Utf8Length(value, i);
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (length == 0 || c < 0x20 || c == 0x7F) {
      out += absl::StrFormat("\\x%02x", c);
      length = 1;
    } else {
      out.append(value.data() + i, length);
    }
    i += length;
    ++chars;
  }
  return out;
}

std::string HumanBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double scaled = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (scaled >= 1024 && unit < 3) {
    scaled /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", scaled, units[unit]);
}

std::string FormatListing(const google::protobuf::RepeatedPtrField<etcpb::Child>& children,
                          bool long_format, const Palette& palette) {
  struct Row {
    std::string columns[4];
    std::string name;
  };
  std::vector<Row> rows;
  for (const etcpb::Child& child : children) {
    if (child.is_key()) {
      const mvccpb::KeyValue& kv = child.kv();
      rows.push_back({{absl::StrCat(kv.mod_revision()), absl::StrCat(kv.version()),
                       kv.lease() == 0 ? "-" : absl::StrFormat("%016x", kv.lease()),
                       absl::StrCat(kv.value().size())},
                      child.name()});
    }
    if (child.is_dir()) {
      std::string count = child.child_count() > 0 ? absl::StrCat(child.child_count()) : "-";
      rows.push_back({{"-", "-", "-", count}, palette.Directory(child.name() + "/")});
    }
  }
  std::string out;
  if (!long_format) {
    for (const Row& row : rows) absl::StrAppend(&out, row.name, "\n");
    return out;
  }
  // A directory's size column counts its children.
  Row header{{"REV", "VER", "LEASE", "SIZE"}, "NAME"};
  size_t widths[4] = {0, 0, 0, 0};
  for (const Row* row : {&header}) {
    for (int c = 0; c < 4; ++c) widths[c] = std::max(widths[c], row->columns[c].size());
  }
  for (const Row& row : rows) {
    for (int c = 0; c < 4; ++c) widths[c] = std::max(widths[c], row.columns[c].size());
  }
  auto line = [&](const Row& row) {
    // Numbers right-aligned, the lease left-aligned (it is an id).
    absl::StrAppend(&out, absl::StrFormat("%*s  %*s  %-*s  %*s  ", widths[0], row.columns[0],
                                          widths[1], row.columns[1], widths[2], row.columns[2],
                                          widths[3], row.columns[3]),
                    row.name, "\n");
  };
  line(header);
  for (const Row& row : rows) line(row);
  return out;
}

std::string DiskUsageLine(int64_t keys, int64_t bytes, std::string_view path) {
  return absl::StrFormat("%8d %-4s %10s  %s\n", keys, keys == 1 ? "key" : "keys",
                         HumanBytes(bytes), std::string(path));
}

TreeModel::TreeModel(std::string root) : root_(std::move(root)) {
  if (root_.empty()) root_ = "/";
  prefix_ = root_.back() == '/' ? root_ : root_ + "/";
}

std::optional<std::vector<std::string>> TreeModel::Split(std::string_view key) const {
  if (key.size() <= prefix_.size() || key.substr(0, prefix_.size()) != prefix_) {
    return std::nullopt;
  }
  std::vector<std::string> names;
  std::string_view rest = key.substr(prefix_.size());
  for (size_t slash = rest.find('/'); slash != std::string_view::npos; slash = rest.find('/')) {
    names.emplace_back(rest.substr(0, slash));
    rest.remove_prefix(slash + 1);
  }
  // A key ending in '/' (a v2 directory marker) names the directory.
  if (!rest.empty()) names.emplace_back(rest);
  if (names.empty()) return std::nullopt;
  return names;
}

bool TreeModel::Put(const mvccpb::KeyValue& kv) { return Set(kv, /*mark=*/false); }

bool TreeModel::Delete(std::string_view key) { return Remove(key, /*mark=*/false); }

bool TreeModel::Apply(const mvccpb::Event& event) {
  if (event.type() == mvccpb::Event::DELETE) return Remove(event.kv().key(), /*mark=*/true);
  return Set(event.kv(), /*mark=*/true);
}

bool TreeModel::Set(const mvccpb::KeyValue& kv, bool mark) {
  std::optional<std::vector<std::string>> names = Split(kv.key());
  if (!names.has_value()) return false;
  Node* node = &top_;
  for (const std::string& name : *names) {
    std::unique_ptr<Node>& child = node->children[name];
    if (child == nullptr) child = std::make_unique<Node>();
    node = child.get();
  }
  // A directory marker ("/a/", etcd v2's mkdir) makes the directory only.
  if (kv.key().back() == '/') return true;
  if (mark) node->mark = node->kv.has_value() ? '~' : '+';
  node->kv = kv;
  return true;
}

bool TreeModel::Remove(std::string_view key, bool mark) {
  std::optional<std::vector<std::string>> names = Split(key);
  if (!names.has_value()) return false;
  Node* node = &top_;
  for (const std::string& name : *names) {
    auto it = node->children.find(name);
    if (it == node->children.end()) return false;
    node = it->second.get();
  }
  if (!node->kv.has_value()) return false;
  node->kv.reset();
  if (mark) {
    node->mark = '-';  // drawn once as deleted, dropped by ClearMarks
  } else {
    Prune(top_);
  }
  return true;
}

// Drops what is neither a key nor a directory any more (a deleted key was
// kept to be drawn once) and forgets the marks; true if `node` is empty.
bool TreeModel::Prune(Node& node) {
  for (auto it = node.children.begin(); it != node.children.end();) {
    Node& child = *it->second;
    if (Prune(child) && !child.kv.has_value()) {
      it = node.children.erase(it);
      continue;
    }
    child.mark = 0;
    ++it;
  }
  return node.children.empty();
}

void TreeModel::ClearMarks() { Prune(top_); }

void TreeModel::CountBelow(const Node& node, int64_t* keys, int64_t* dirs) {
  for (const auto& [name, child] : node.children) {
    if (child->kv.has_value()) ++*keys;
    if (!child->children.empty()) ++*dirs;
    CountBelow(*child, keys, dirs);
  }
}

int64_t TreeModel::keys() const {
  int64_t keys = 0, dirs = 0;
  CountBelow(top_, &keys, &dirs);
  return keys;
}

int64_t TreeModel::directories() const {
  int64_t keys = 0, dirs = 0;
  CountBelow(top_, &keys, &dirs);
  return dirs;
}

std::string TreeModel::Label(const std::string& name, const Node& node, int depth,
                             const DrawOptions& options) const {
  const Palette& p = options.palette;
  bool is_dir = !node.children.empty();
  std::string label = is_dir ? p.Directory(name + "/") : name;
  if (node.kv.has_value() && options.max_value_chars > 0) {
    absl::StrAppend(&label, " = ", p.Value(ShortValue(node.kv->value(), options.max_value_chars)));
  }
  if (is_dir && options.max_depth > 0 && depth >= options.max_depth) {
    int64_t keys = 0, dirs = 0;
    CountBelow(node, &keys, &dirs);
    absl::StrAppend(&label, " ", p.Dim(absl::StrCat("[", Plural(keys, "key", "keys"), "]")));
  }
  switch (node.mark) {
    case '+':
      absl::StrAppend(&label, "  ", p.Added("(new)"));
      break;
    case '~':
      absl::StrAppend(&label, "  ", p.Added("(changed)"));
      break;
    case '-':
      if (!node.kv.has_value()) absl::StrAppend(&label, "  ", p.Removed("(deleted)"));
      break;
    default:
      break;
  }
  return label;
}

void TreeModel::DrawChildren(const Node& node, const std::string& indent, int depth,
                             const DrawOptions& options, std::string* out) const {
  // Directories first, each group by name (the map's order).
  std::vector<std::pair<const std::string*, const Node*>> order;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [name, child] : node.children) {
      if (child->children.empty() == (pass == 0)) continue;
      order.emplace_back(&name, child.get());
    }
  }
  const Palette& p = options.palette;
  for (size_t i = 0; i < order.size(); ++i) {
    bool last = i + 1 == order.size();
    const auto& [name, child] = order[i];
    absl::StrAppend(out, indent, p.Dim(last ? "└── " : "├── "),
                    Label(*name, *child, depth, options), "\n");
    if (options.max_depth > 0 && depth >= options.max_depth) continue;
    DrawChildren(*child, indent + p.Dim(last ? "    " : "│   "), depth + 1, options, out);
  }
}

std::string TreeModel::Draw(const DrawOptions& options) const {
  std::string out = absl::StrCat(options.palette.Directory(prefix_), "\n");
  DrawChildren(top_, "", 1, options, &out);
  int64_t keys = 0, dirs = 0;
  CountBelow(top_, &keys, &dirs);
  absl::StrAppend(&out, "\n", Plural(dirs, "directory", "directories"), ", ",
                  Plural(keys, "key", "keys"), "\n");
  return out;
}

std::string TreeModel::DiskUsage(int max_depth) const {
  struct Totals {
    int64_t keys = 0;
    int64_t bytes = 0;
  };
  std::string out;
  // Post-order, as du(1): a directory's line follows its subdirectories'.
  std::function<Totals(const Node&, const std::string&, int)> walk =
      [&](const Node& node, const std::string& path, int depth) {
        Totals totals;
        for (const auto& [name, child] : node.children) {
          if (child->kv.has_value()) {
            ++totals.keys;
            totals.bytes += static_cast<int64_t>(child->kv->key().size() +
                                                 child->kv->value().size());
          }
          if (child->children.empty()) continue;
          Totals below = walk(*child, path + name + "/", depth + 1);
          totals.keys += below.keys;
          totals.bytes += below.bytes;
        }
        if (max_depth == 0 || depth <= max_depth) {
          absl::StrAppend(&out, DiskUsageLine(totals.keys, totals.bytes, path));
        }
        return totals;
      };
  walk(top_, prefix_, 0);
  return out;
}

}  // namespace etc::client
