// command_line.h: reading a command line into the program's Abseil flags,
// and the --help text generated from their definitions (txbufd and
// txbuf-bench).
//
// Why not absl::ParseCommandLine: Abseil 20220623 (Debian 12) exits 1 on a
// bad flag (txbuf's usage errors exit 2), prints --help and exits 1, lets a
// repeated flag silently take its last value (txbufd refuses a second
// --export, txbuf-bench any repeat), has no aliases (fio's --bs for
// --size), and parses one argv per process, so it gives no testable
// function. And a flag's Abseil name is its C++ identifier (conn_budget),
// while txbuf's flags are spelled with dashes (--conn-budget). So this file
// does the small part Abseil's parser would, over Abseil's public
// reflection API (absl::FindCommandLineFlag, CommandLineFlag::ParseFrom):
// the flags, their types, defaults, help and value parsing
// (AbslParseFlag) stay Abseil's.
//
// Syntax (as Abseil's): "--name value" or "--name=value" for a flag that
// takes a value; "--name", "--noname" (or "--no-name") or "--name=true" /
// "--name=false" for a boolean; one leading dash works as two; "--" ends
// the flags. A dash and an underscore in a name are the same character
// ("--conn-budget" sets the flag conn_budget); -h, --help and --version
// are recognised here, not Abseil flags.
//
// Thread-safety: SplitCommandLine and FlagsHelp only read the flag
// registry; SetFlagFromText and ResetFlagsToDefaults change the process's
// flags (Abseil's flags are themselves safe to read and set from any
// thread). ResetFlagsToDefaults starts again (absl::FlagSaver too, but it
// logs on stderr each flag it puts back).
#ifndef TXBUF_COMMON_COMMAND_LINE_H_
#define TXBUF_COMMON_COMMAND_LINE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf {

// Other names of flags: alias as written (e.g. "ramp_time") -> the flag's
// name as written (e.g. "warmup").
using FlagAliases = std::map<std::string, std::string>;

// One flag of a command line.
struct GivenFlag {
  std::string spelled;  // as written, dashes included: "--bs", "-x"
  std::string name;     // the Abseil flag it sets: "size", "file_size"
  std::string value;    // its text: "4K"; "true"/"false" for a boolean
};

// A command line split into flags, in the order given.
struct CommandLine {
  bool help = false;     // -h or --help was given
  bool version = false;  // --version was given
  std::vector<GivenFlag> flags;
  std::vector<std::string> positional;  // arguments that are not flags
};

// Splits `args` (without the program name) into flags. Each flag must be
// a registered Abseil flag (or an alias of one in `aliases`); its value is
// not checked yet. InvalidArgument "unknown flag --bogus" (named as
// written, before any value is taken from the next argument), "--size
// needs a value", "--keep-files=yes: ..." for a malformed boolean.
//
// Example:
//   absl::StatusOr<CommandLine> c = SplitCommandLine({"--bs", "4K"},
//                                                    {{"bs", "size"}});
//   // c->flags[0]: {"--bs", "size", "4K"}
absl::StatusOr<CommandLine> SplitCommandLine(
    const std::vector<std::string>& args, const FlagAliases& aliases = {});

// Sets Abseil flag `name` (dashes or underscores) from `text` with the
// flag's own parser (AbslParseFlag). InvalidArgument "bad value for --NAME:
// 'TEXT'" (then the parser's reason in parentheses when it gives one), the
// flag named `spelled` if not empty; NotFound for a name no flag has.
absl::Status SetFlagFromText(absl::string_view name, absl::string_view text,
                             absl::string_view spelled = "");

// Sets the flags of `line`, in order. The error names each flag as written.
absl::Status ApplyCommandLine(const CommandLine& line);

// The Abseil flag called `name` (dashes or underscores), or nullptr.
const absl::CommandLineFlag* FindFlag(absl::string_view name);

// Puts every flag defined in a file whose path ends with `defined_in`
// (e.g. "server/main.cc") back to its default value.
void ResetFlagsToDefaults(absl::string_view defined_in);

// A flag's name as written on the command line: "conn-budget".
std::string DisplayName(absl::string_view flag_name);

// The --help text: absl::ProgramUsageMessage(), then each flag defined in
// a file whose path ends with `defined_in`, sorted by name, with the kind
// of value it takes, its aliases, its help and its default; then -h/--help
// and --version. `value_names` names the value of a flag in the help (by
// the flag's name as written: {"export", "DIR"}); otherwise the name comes
// from the flag's type (BYTES, SECS, HOST:PORT, N, ...; VALUE for a string).
std::string FlagsHelp(
    absl::string_view defined_in, const FlagAliases& aliases = {},
    const std::map<std::string, std::string>& value_names = {});

}  // namespace txbuf

#endif  // TXBUF_COMMON_COMMAND_LINE_H_
