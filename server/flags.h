// flags.h: txbufd's command-line flags (Abseil flags, defined in flags.cc
// with their help) and the ServerOptions they give: the defaults, then the
// configuration file's values (--config, server/config_file.h: its keys are
// the flags' names), then the command line's, which win. At start-up and
// on each SIGHUP the same way.
//
// The flags are compiled into txbufd only (not the txbuf_server library),
// so no other program registers them.
//
// Thread-safety: call from one thread (txbufd's main thread): building
// options sets the process's flags (nothing else reads them).
#ifndef TXBUF_SERVER_FLAGS_H_
#define TXBUF_SERVER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/command_line.h"
#include "server/server.h"

namespace txbuf::server {

// The summary at the head of --help (absl::SetProgramUsageMessage).
extern const char kTxbufdUsage[];

// The --help text, generated from the flags' definitions.
std::string TxbufdHelp();

// Reads txbufd's arguments (without the program name). InvalidArgument (a
// usage error) for an unknown flag, a missing value, an argument that is
// not a flag, or a second --export or --config (txbufd serves one export;
// any other flag given twice takes its last value). Values are checked by
// BuildServerOptions.
//
// Example:
//   absl::StatusOr<CommandLine> cli = ReadTxbufdCommandLine({"--export", d});
absl::StatusOr<CommandLine> ReadTxbufdCommandLine(
    const std::vector<std::string>& args);

// --config's value on `cli` ("" if not given).
std::string ConfigPath(const CommandLine& cli);

// The options in effect: the defaults, then the file named by --config (if
// any: its flags and its [[export]] tables), then `cli`'s flags (--export
// replaces the file's exports); then the token file is read.
// InvalidArgument for a bad value or an unknown key (naming the file, the
// line and the key, or the flag as written), for a configuration file that
// does not parse, and for no export or bad exports (EffectiveExports);
// FailedPrecondition when the token file cannot be used. The process's
// flags are left holding the result.
absl::StatusOr<ServerOptions> BuildServerOptions(const CommandLine& cli);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_FLAGS_H_
