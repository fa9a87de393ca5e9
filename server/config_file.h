// config_file.h: txbufd's configuration file (TOML, read with toml++).
//
// A flat TOML table whose keys are txbufd's long option names without the
// leading "--" and whose values are what the option takes:
//
//   export = "/srv/data"
//   listen = "0.0.0.0:7420"   # or several: ["10.0.0.1", "[fd00::1]:7420"]
//   token-file = "/etc/txbuf/token"
//   conn-budget = "64M"        # or 67108864
//   budget-deadline = 10       # seconds
//   read-only = true           # a switch: true or false
//
// This file only turns the TOML into (option, value) pairs; txbufd sets
// its flags from them before its command line's (which override the file),
// and rejects unknown options (server/flags.h). See docs/OPERATING.md.
//
// Several exports, each with its access rules, are [[export]] tables
// (instead of `export = DIR`), read by ReadConfigExports:
//
//   [[export]]
//   name = "data"                  # what clients ask for (--export data)
//   path = "/srv/data"
//   read-only = false
//   squash-uid = 1000              # owner of what clients create
//   squash-gid = 1000
//   clients = [ { from = "10.0.0.0/8", access = "rw" },
//               { from = "192.168.1.0/24", access = "ro" } ]
//
// Thread-safety: a pure function.
#ifndef TXBUF_SERVER_CONFIG_FILE_H_
#define TXBUF_SERVER_CONFIG_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/fs/export_config.h"

namespace txbuf::server {

// One `key = value` of the file, the value as text: strings as they are,
// integers in decimal, floats as the shortest text that reads back the
// same, booleans as "true" / "false".
struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0;  // where the key is (from 1), for errors
};

// Reads the configuration file at `path`. InvalidArgument, naming the file
// and the line, for a syntax error or a value that is not a string, number
// or boolean (tables, arrays, dates); NotFound etc. if it cannot be read.
// Keys come in the file's order.
//
// Example:
//   absl::StatusOr<std::vector<ConfigEntry>> c =
//       ReadConfigFile("/etc/txbuf/txbufd.conf");
//   if (!c.ok()) Die(c.status().message());
//   for (const ConfigEntry& e : *c) Apply(e.key, e.value);
absl::StatusOr<std::vector<ConfigEntry>> ReadConfigFile(
    const std::string& path);

// The [[export]] tables of the configuration file at `path`, in the file's
// order (none: an empty list). InvalidArgument naming the file, the line
// and the key for an unknown key, a missing name or path, a value of the
// wrong type, a bad address range or access.
//
// Example:
//   absl::StatusOr<std::vector<ExportConfig>> e =
//       ReadConfigExports("/etc/txbuf/txbufd.conf");
absl::StatusOr<std::vector<ExportConfig>> ReadConfigExports(
    const std::string& path);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_CONFIG_FILE_H_
