// Help texts, `etcctl help CMD` and `etcctl completion bash`, all made from
// the command table so a new command documents and completes itself.
#include <cstdio>

#include "absl/strings/str_join.h"
#include "client/etcctl_command.h"
#include "client/etcctl_flags.h"

namespace etc::etcctl {
namespace {

std::string FlagLine(const FlagSpec& spec) {
  std::string left = spec.shorthand.empty() ? "      " : "  -" + spec.shorthand + ", ";
  left += "--" + spec.name;
  if (spec.kind == FlagKind::kBool) {
    left += "[=" + (spec.default_value.empty() ? std::string("false") : spec.default_value) + "]";
  } else if (spec.kind == FlagKind::kString) {
    left += "=\"" + spec.default_value + "\"";
  } else {
    left += "=" + (spec.default_value.empty() ? std::string("0") : spec.default_value);
  }
  if (left.size() < 40) left += std::string(40 - left.size(), ' ');
  return left + " " + spec.help + "\n";
}

std::string CommandLines(const std::vector<Command>& commands, const std::string& prefix) {
  std::string out;
  for (const Command& c : commands) {
    if (!c.subcommands.empty()) {
      out += CommandLines(c.subcommands, prefix + c.name + " ");
      continue;
    }
    std::string name = prefix + c.name;
    out += "\t" + name + std::string(name.size() < 28 ? 28 - name.size() : 1, ' ') + c.short_help + "\n";
  }
  return out;
}

}  // namespace

std::string HelpText(const std::vector<const Command*>& path) {
  std::string out;
  if (path.empty()) {
    out += "NAME:\n\tetcctl - etc's command line, compatible with etcdctl 3.4 (etcd's v3 API).\n\n";
    out += "USAGE:\n\tetcctl [global options] <command> [options] [arguments]\n\n";
    out += "EXAMPLES:\n\tetcctl --endpoints=127.0.0.1:2379 put /config/mode fast\n";
    out += "\tetcctl get /config/ --prefix -w json\n\tetcctl member list -w table\n";
    out += "\tetcctl help get\n\n";
    out += "COMMANDS:\n" + CommandLines(AllCommands(), "");
    out += "\nGLOBAL OPTIONS (each also read from ETCDCTL_<NAME>, e.g. ETCDCTL_ENDPOINTS; a flag wins):\n";
    for (const FlagSpec& spec : GlobalFlagSpecs()) out += FlagLine(spec);
    return out + "\nExit codes: 0 success, 1 error, 2 usage error.\n";
  }
  std::vector<std::string> names;
  for (const Command* c : path) names.push_back(c->name);
  const Command& command = *path.back();
  out += "NAME:\n\tetcctl " + absl::StrJoin(names, " ") + " - " + command.short_help + "\n\n";
  std::string usage = names.size() > 1 ? absl::StrJoin(names.begin(), names.end() - 1, " ") + " " : "";
  out += "USAGE:\n\tetcctl " + usage + command.usage + "\n\n";
  if (!command.long_help.empty()) out += command.long_help + "\n";
  if (!command.subcommands.empty()) out += "COMMANDS:\n" + CommandLines(command.subcommands, "") + "\n";
  if (!command.flags.empty()) {
    out += "OPTIONS:\n";
    for (const FlagSpec& spec : command.flags) out += FlagLine(spec);
    out += "\n";
  }
  out += "GLOBAL OPTIONS:\n";
  for (const FlagSpec& spec : GlobalFlagSpecs()) out += FlagLine(spec);
  return out;
}

Command HelpCommand() {
  return {.name = "help",
          .usage = "help [command [subcommand]]",
          .short_help = "Help about any command",
          .long_help = "Examples:\n\tetcctl help\n\tetcctl help lease grant\n",
          .run = [](Context& ctx) {
            std::vector<const Command*> path;
            const std::vector<Command>* choices = &AllCommands();
            for (const std::string& word : ctx.args) {
              const Command* found = nullptr;
              for (const Command& c : *choices) {
                if (c.name == word) found = &c;
              }
              if (found == nullptr) return ctx.Usage("unknown help topic \"" + word + "\" (see etcctl --help)");
              path.push_back(found);
              choices = &found->subcommands;
            }
            std::fputs(HelpText(path).c_str(), stdout);
            return kExitOk;
          }};
}

namespace {

std::string FlagWords(const std::vector<FlagSpec>& flags) {
  std::vector<std::string> words;
  for (const FlagSpec& spec : flags) words.push_back("--" + spec.name);
  return absl::StrJoin(words, " ");
}

// A bash function: the words that may follow the command and subcommand
// typed so far (subcommands, then the command's and the global flags).
std::string BashCompletion() {
  std::vector<std::string> top;
  std::string cases;
  for (const Command& c : AllCommands()) {
    top.push_back(c.name);
    std::vector<std::string> subs;
    for (const Command& s : c.subcommands) {
      subs.push_back(s.name);
      cases += "    \"" + c.name + " " + s.name + "\") words=\"" + FlagWords(s.flags) + "\" ;;\n";
    }
    // A leaf command keeps completing its flags after its arguments.
    cases += "    \"" + c.name + " \"" + (subs.empty() ? "*" : "") + ") words=\"" + absl::StrJoin(subs, " ") +
             (subs.empty() ? "" : " ") + FlagWords(c.flags) + "\" ;;\n";
  }
  std::string out = "# bash completion for etcctl; load with: source <(etcctl completion bash)\n";
  out += "_etcctl() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"\" sub=\"\" words=\"\" i w\n";
  out += "  for ((i = 1; i < COMP_CWORD; i++)); do\n    w=\"${COMP_WORDS[i]}\"\n";
  out += "    case \"$w\" in -*) ;; *) if [[ -z $cmd ]]; then cmd=\"$w\"; elif [[ -z $sub ]]; then sub=\"$w\"; fi ;; esac\n";
  out += "  done\n  case \"$cmd $sub\" in\n    \" \") words=\"" + absl::StrJoin(top, " ") + "\" ;;\n";
  out += cases + "  esac\n";
  out += "  words=\"$words " + FlagWords(GlobalFlagSpecs()) + "\"\n";
  out += "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n";
  return out + "complete -F _etcctl etcctl\n";
}

}  // namespace

Command CompletionCommand() {
  return {.name = "completion",
          .usage = "completion bash",
          .short_help = "Prints the bash completion script",
          .long_help = "Examples:\n\tsource <(etcctl completion bash)\n"
                       "\tetcctl completion bash > /etc/bash_completion.d/etcctl\n",
          .run = [](Context& ctx) {
            if (ctx.args.size() != 1 || ctx.args[0] != "bash") {
              return ctx.Usage("completion takes one argument, the shell: bash");
            }
            std::fputs(BashCompletion().c_str(), stdout);
            return kExitOk;
          }};
}

}  // namespace etc::etcctl
