// The command table. A new command: a file with its constructor (declared
// in etcctl_command.h) and one line here.
#include "client/etcctl_command.h"

namespace etc::etcctl {

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> commands = {
      GetCommand(),      PutCommand(),      DelCommand(),      TxnCommand(),
      CompactionCommand(), WatchCommand(),  LeaseCommand(),    MemberCommand(),
      EndpointCommand(), SnapshotCommand(), AlarmCommand(),    DefragCommand(),
      UserCommand(),     RoleCommand(),     AuthCommand(),     LockCommand(),
      ElectCommand(),    LsCommand(),       TreeCommand(),     DuCommand(),
      VersionCommand(),  CompletionCommand(), HelpCommand(),
  };
  return commands;
}

}  // namespace etc::etcctl
