// The tree in a person's hands: `ls` (one directory), `tree` (a subtree
// drawn like tree(1)), `du` (keys and bytes per subtree) and `watch --tree`
// (a live view). They call etc's Tree service through TreeClient, which
// falls back to prefix ranges against etcd, so they work there too; the
// drawings are client/tree_view's.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "absl/strings/str_format.h"
#include "client/etcctl_command.h"
#include "client/etcctl_kv.h"
#include "client/etcctl_output.h"
#include "client/etcctl_signals.h"
#include "client/tree_client.h"
#include "client/tree_view.h"

namespace etc::etcctl {
namespace {

// Children per List call and keys per GetTree call: pages keep each answer
// (and the server's work for it) bounded however big the directory is.
constexpr int64_t kChildrenPerPage = 1000;
constexpr int64_t kKeysPerPage = 10000;

std::string PathArgument(const Context& ctx) { return ctx.args.empty() ? "/" : ctx.args[0]; }

bool Serializable(const Context& ctx) { return ctx.flags.String("consistency") == "s"; }

absl::Status CheckConsistency(const Context& ctx) {
  std::string consistency = ctx.flags.String("consistency");
  if (consistency != "l" && consistency != "s") {
    return absl::InvalidArgumentError("unknown consistency flag \"" + consistency + "\"");
  }
  return absl::OkStatus();
}

// The directory's children named after --after, page by page at the
// revision of the first page (later pages read the same revision, so the
// listing is one state), up to --limit of them (0: all); `more` says some
// were left out.
absl::StatusOr<etcpb::ListResponse> ListAll(Context& ctx, client::TreeClient& tree,
                                            bool child_counts) {
  int64_t limit = ctx.flags.Int("limit");
  etcpb::ListRequest request;
  request.set_path(PathArgument(ctx));
  request.set_revision(ctx.flags.Int("rev"));
  request.set_after(ctx.flags.String("after"));
  request.set_serializable(Serializable(ctx));
  request.set_child_counts(child_counts);
  etcpb::ListResponse all;
  for (;;) {
    int64_t wanted = limit > 0 ? limit - all.children_size() : kChildrenPerPage;
    request.set_limit(std::min(wanted, kChildrenPerPage));
    absl::StatusOr<etcpb::ListResponse> page = tree.List(request);
    if (!page.ok()) return page.status();
    if (!all.has_header()) *all.mutable_header() = page->header();
    for (etcpb::Child& child : *page->mutable_children()) *all.add_children() = std::move(child);
    all.set_more(page->more());
    if (!page->more() || page->children_size() == 0) return all;
    if (limit > 0 && all.children_size() >= limit) return all;
    request.set_after(all.children(all.children_size() - 1).name());
    request.set_revision(all.header().revision());
  }
}

// Every key below the path, page by page at one revision.
absl::StatusOr<etcdserverpb::RangeResponse> GetAll(Context& ctx, client::TreeClient& tree,
                                                   const std::string& path, int64_t revision) {
  etcpb::GetTreeRequest request;
  request.set_path(path);
  request.set_revision(revision);
  request.set_limit(kKeysPerPage);
  request.set_serializable(Serializable(ctx));
  etcdserverpb::RangeResponse all;
  bool progress = isatty(2) != 0;
  for (;;) {
    absl::StatusOr<etcdserverpb::RangeResponse> page = tree.GetTree(request);
    if (!page.ok()) return page.status();
    if (!all.has_header()) *all.mutable_header() = page->header();
    for (mvccpb::KeyValue& kv : *page->mutable_kvs()) *all.add_kvs() = std::move(kv);
    if (!page->more() || page->kvs_size() == 0) break;
    if (progress) std::fprintf(stderr, "read %d keys...\r", all.kvs_size());
    request.set_after_key(all.kvs(all.kvs_size() - 1).key());
    request.set_revision(all.header().revision());
  }
  if (progress && all.kvs_size() >= kKeysPerPage) std::fprintf(stderr, "\033[K");
  all.set_count(all.kvs_size());
  return all;
}

int RunLs(Context& ctx) {
  if (ctx.args.size() > 1) return ctx.Usage("ls takes at most one path");
  if (ctx.flags.Int("limit") < 0) return ctx.Usage("--limit must not be negative");
  if (absl::Status s = CheckConsistency(ctx); !s.ok()) return ctx.Usage(std::string(s.message()));
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  client::TreeClient tree(client);
  bool long_format = ctx.flags.Bool("long");
  absl::StatusOr<etcpb::ListResponse> listing = ListAll(ctx, tree, long_format);
  if (!listing.ok()) return ctx.Fail(listing.status());
  switch (ctx.out.format()) {
    case OutputFormat::kJson:
      std::printf("%s\n", GoJson(*listing).c_str());
      return kExitOk;
    case OutputFormat::kSimple: {
      client::Palette palette{.colour = ctx.global.color_stdout};
      std::fputs(client::FormatListing(listing->children(), long_format, palette).c_str(), stdout);
      if (listing->more() && listing->children_size() > 0) {
        // Where to go on from, for a person paging through a big directory.
        std::fflush(stdout);
        std::fprintf(stderr, "(more children: --after=%s)\n",
                     listing->children(listing->children_size() - 1).name().c_str());
      }
      return kExitOk;
    }
    case OutputFormat::kTable: {
      std::vector<std::vector<std::string>> rows;
      for (const etcpb::Child& child : listing->children()) {
        const mvccpb::KeyValue& kv = child.kv();
        bool key = child.is_key();
        rows.push_back({child.name(), key ? "key" : "", child.is_dir() ? "dir" : "",
                        key ? std::to_string(kv.mod_revision()) : "",
                        key ? std::to_string(kv.version()) : "",
                        key && kv.lease() != 0 ? Hex16(kv.lease()) : "",
                        key ? std::to_string(kv.value().size()) : ""});
      }
      std::fputs(RenderTable({"name", "key", "dir", "revision", "version", "lease", "size"}, rows)
                     .c_str(),
                 stdout);
      return kExitOk;
    }
    default:
      return ctx.Usage("ls prints -w simple, json or table");
  }
}

int RunTree(Context& ctx) {
  if (ctx.args.size() > 1) return ctx.Usage("tree takes at most one path");
  if (absl::Status s = CheckConsistency(ctx); !s.ok()) return ctx.Usage(std::string(s.message()));
  int64_t depth = ctx.flags.Int("depth");
  int64_t width = ctx.flags.Int("value-width");
  if (depth < 0 || width < 0) return ctx.Usage("--depth and --value-width must not be negative");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  client::TreeClient tree(client);
  std::string path = PathArgument(ctx);
  absl::StatusOr<etcdserverpb::RangeResponse> keys =
      GetAll(ctx, tree, path, ctx.flags.Int("rev"));
  if (!keys.ok()) return ctx.Fail(keys.status());
  if (ctx.out.format() == OutputFormat::kJson) return Printed(ctx, ctx.out.Get(*keys));
  if (ctx.out.format() != OutputFormat::kSimple) return ctx.Usage("tree prints -w simple or json");
  client::TreeModel model(path);
  for (const mvccpb::KeyValue& kv : keys->kvs()) model.Put(kv);
  client::DrawOptions options{.max_depth = static_cast<int>(depth),
                              .max_value_chars = static_cast<size_t>(width),
                              .palette = {.colour = ctx.global.color_stdout}};
  std::fputs(model.Draw(options).c_str(), stdout);
  return kExitOk;
}

int RunDu(Context& ctx) {
  if (ctx.args.size() > 1) return ctx.Usage("du takes at most one path");
  if (absl::Status s = CheckConsistency(ctx); !s.ok()) return ctx.Usage(std::string(s.message()));
  int64_t depth = ctx.flags.Int("depth");
  if (depth < 0) return ctx.Usage("--depth must not be negative");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  client::TreeClient tree(client);
  std::string path = PathArgument(ctx);
  if (ctx.flags.Bool("summarize")) {
    // The server sums the subtree: nothing but the totals crosses the wire.
    etcpb::StatRequest request;
    request.set_path(path);
    request.set_revision(ctx.flags.Int("rev"));
    request.set_subtree(true);
    request.set_serializable(Serializable(ctx));
    absl::StatusOr<etcpb::StatResponse> stat = tree.Stat(request);
    if (!stat.ok()) return ctx.Fail(stat.status());
    std::string shown = path.back() == '/' ? path : path + "/";
    std::fputs(client::DiskUsageLine(stat->subtree_keys(), stat->subtree_bytes(), shown).c_str(),
               stdout);
    return kExitOk;
  }
  absl::StatusOr<etcdserverpb::RangeResponse> keys =
      GetAll(ctx, tree, path, ctx.flags.Int("rev"));
  if (!keys.ok()) return ctx.Fail(keys.status());
  client::TreeModel model(path);
  for (const mvccpb::KeyValue& kv : keys->kvs()) model.Put(kv);
  std::fputs(model.DiskUsage(static_cast<int>(depth)).c_str(), stdout);
  return kExitOk;
}

const std::vector<FlagSpec>& ReadFlags() {
  static const std::vector<FlagSpec> flags = {
      {"rev", "", FlagKind::kInt, "0", "Read at this revision (0: the latest)"},
      {"consistency", "", FlagKind::kString, "l", "Linearizable(l) or Serializable(s)"},
  };
  return flags;
}

std::vector<FlagSpec> With(std::vector<FlagSpec> extra) {
  std::vector<FlagSpec> flags = ReadFlags();
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

// ---- watch --tree ----

class LiveTree {
 public:
  LiveTree(std::string path, bool terminal, bool colour)
      : path_(path), model_(path), terminal_(terminal), colour_(colour) {}

  void Load(const etcdserverpb::RangeResponse& keys) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const mvccpb::KeyValue& kv : keys.kvs()) model_.Put(kv);
    revision_ = keys.header().revision();
    Show({});
  }

  void OnResponse(const etcpb::WatchTreeResponse& response) {
    std::lock_guard<std::mutex> lock(mu_);
    if (response.canceled()) {
      canceled_ = true;
      reason_ = response.cancel_reason();
      return;
    }
    if (response.events_size() == 0) return;
    revision_ = response.header().revision();
    for (const mvccpb::Event& event : response.events()) model_.Apply(event);
    Show(response.events());
  }

  bool canceled() {
    std::lock_guard<std::mutex> lock(mu_);
    return canceled_;
  }
  std::string reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }

 private:
  // On a terminal the whole view is drawn again, changes marked; in a pipe
  // each change is one line, indented by its depth below the path.
  void Show(const google::protobuf::RepeatedPtrField<mvccpb::Event>& events) {
    if (terminal_) {
      std::printf("\033[H\033[2J%s\n\n%s", Header().c_str(),
                  model_.Draw({.palette = {.colour = colour_}}).c_str());
      model_.ClearMarks();
    } else {
      for (const mvccpb::Event& event : events) std::printf("%s\n", EventLine(event).c_str());
      model_.ClearMarks();
    }
    std::fflush(stdout);
  }

  std::string Header() const {
    client::Palette p{.colour = colour_};
    return p.Dim(absl::StrFormat("watching %s at revision %d (Ctrl-C to stop)", path_, revision_));
  }

  std::string EventLine(const mvccpb::Event& event) const {
    std::string prefix = path_.back() == '/' ? path_ : path_ + "/";
    std::string rest = event.kv().key().substr(std::min(prefix.size(), event.kv().key().size()));
    size_t depth = 0;
    for (char c : rest) depth += c == '/';
    // The event's own revision: a response's header may name a later one.
    std::string line = absl::StrFormat("%d %-6s %s%s", event.kv().mod_revision(),
                                       event.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT",
                                       std::string(2 * depth, ' '), rest);
    if (event.type() != mvccpb::Event::DELETE) {
      line += " = " + client::ShortValue(event.kv().value(), 60);
    }
    return line;
  }

  std::mutex mu_;
  std::string path_;
  client::TreeModel model_;
  bool terminal_;
  bool colour_;
  int64_t revision_ = 0;
  bool canceled_ = false;
  std::string reason_;
};

}  // namespace

int RunTreeWatch(Context& ctx) {
  BlockStopSignals();  // before any thread starts: only sigwait sees them
  if (ctx.args.size() > 1) return ctx.Usage("watch --tree takes one path");
  client::Client* client = ctx.Client();
  if (client == nullptr) return kExitError;
  client::TreeClient tree(client);
  std::string path = PathArgument(ctx);
  // The view starts from the tree at one revision and follows every change
  // after it: nothing is missed between the read and the watch.
  absl::StatusOr<etcdserverpb::RangeResponse> keys = GetAll(ctx, tree, path, ctx.flags.Int("rev"));
  if (!keys.ok()) return ctx.Fail(keys.status());
  LiveTree live(path, isatty(1) != 0, ctx.global.color_stdout);
  live.Load(*keys);
  etcpb::WatchTreeRequest request;
  request.set_path(path);
  // The header names the newest revision, not the one read: with --rev
  // the changes since that one are shown.
  int64_t read_revision = ctx.flags.Int("rev") > 0 ? ctx.flags.Int("rev") : keys->header().revision();
  request.set_start_revision(read_revision + 1);
  std::unique_ptr<client::TreeWatcher> watcher = tree.WatchTree(
      request, [&live](const etcpb::WatchTreeResponse& r) { live.OnResponse(r); });
  int signal_number = WaitForSignalOr([&live] { return live.canceled(); });
  watcher->Stop();
  // Ctrl-C is how a person ends a live view: not an error.
  if (signal_number > 0) return kExitOk;
  return ctx.Fail("watch is canceled by the server (" + live.reason() + ")");
}

Command LsCommand() {
  return {.name = "ls",
          .usage = "ls [options] [path]",
          .short_help = "Lists a directory's children (keys, and directories with a trailing /)",
          .long_help = "Keys are paths: a put of /services/web/port makes /services and\n"
                       "/services/web directories. A name that is a key and a directory is\n"
                       "listed twice (web and web/). -l shows each key's modification revision,\n"
                       "version, lease and value size, and each directory's number of children.\n\n"
                       "Examples:\n\tetcctl ls\n\tetcctl ls -l /services\n"
                       "\tetcctl ls /services --rev=42 -w json\n"
                       "\tetcctl ls /big --limit=100 --after=name-099\n",
          .flags = With({{"long", "l", FlagKind::kBool, "false",
                          "Show revision, version, lease and size"},
                         {"limit", "", FlagKind::kInt, "0", "At most this many children (0: all)"},
                         {"after", "", FlagKind::kString, "",
                          "Only children named after this one (to go on from a --limit)"}}),
          .run = RunLs};
}

Command TreeCommand() {
  return {.name = "tree",
          .usage = "tree [options] [path]",
          .short_help = "Draws the keys below a path as a tree",
          .long_help = "Directories first, values shortened, and a summary line; past --depth a\n"
                       "directory shows how many keys it holds.\n\n"
                       "Examples:\n\tetcctl tree /services\n\tetcctl tree / --depth=2\n"
                       "\tetcctl tree /config --value-width=0\n",
          .flags = With({{"depth", "L", FlagKind::kInt, "0", "Levels drawn (0: all)"},
                         {"value-width", "", FlagKind::kInt, "40",
                          "Characters of each value shown (0: none)"}}),
          .run = RunTree};
}

Command DuCommand() {
  return {.name = "du",
          .usage = "du [options] [path]",
          .short_help = "Shows the keys and bytes (keys plus values) below each directory",
          .long_help = "Each directory's subtree, deepest first, as du(1); -s sums the path alone\n"
                       "on the server.\n\n"
                       "Examples:\n\tetcctl du /services\n\tetcctl du -s /\n"
                       "\tetcctl du / --depth=1\n",
          .flags = With({{"summarize", "s", FlagKind::kBool, "false", "Only the path's total"},
                         {"depth", "d", FlagKind::kInt, "0", "Directories shown (0: all)"}}),
          .run = RunDu};
}

}  // namespace etc::etcctl
