// client/internal/command_options.h: the options of one `txbuf` command
// (`ls -la`, `cp -r`, `mkdir -p`, `df -h`, `stats --json`).
//
// The global flags (--server, --timeout, ...) come before the command word
// and are Abseil flags; what follows the command word is read here, the way
// coreutils reads it: single-letter options may be bundled ("-la" is "-l
// -a"), each has an optional long name ("--all"), options may come before or
// after the operands, "--" ends the options, and "-" alone is an operand.
//
// Not for callers: the CLI only.
//
// Thread-safety: pure functions; thread-safe.
#ifndef TXBUF_CLIENT_INTERNAL_COMMAND_OPTIONS_H_
#define TXBUF_CLIENT_INTERNAL_COMMAND_OPTIONS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::client::internal {

// The options a command accepts: its letters, and long names for some of
// them ({"all", 'a'} makes "--all" mean "-a").
struct CommandSyntax {
  absl::string_view letters;
  std::vector<std::pair<absl::string_view, char>> long_names;
};

// A command's arguments once read: the option letters given, and the
// operands in order.
struct CommandArgs {
  std::string options;
  std::vector<std::string> operands;

  // Whether option `letter` was given.
  bool Has(char letter) const {
    return options.find(letter) != std::string::npos;
  }
};

// Reads `args` (what follows the command word) against `syntax`.
// InvalidArgument naming the option for one the command does not take
// ("unknown option '-x' for ls").
//
// Example:
//   ParseCommandArgs("ls", {.letters = "lah"}, {"-la", "/dir"})
//       -> {.options = "la", .operands = {"/dir"}}
absl::StatusOr<CommandArgs> ParseCommandArgs(
    absl::string_view command, const CommandSyntax& syntax,
    const std::vector<std::string>& args);

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_COMMAND_OPTIONS_H_
