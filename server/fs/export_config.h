// server/fs/export_config.h: how one export is configured (path, access,
// ownership).
//
// txbufd serves one export from --export DIR, or several from the
// configuration file's [[export]] tables (config_file.h). See
// docs/OPERATING.md, "Exports and access rules".
//
// Thread-safety: a plain value.
//
// Example:
//   ExportConfig e;
//   e.name = "data";
//   e.path = "/srv/data";
//   e.clients.push_back({*AddressRange::Parse("10.0.0.0/8"),
//                        Access::kReadWrite});
#ifndef TXBUF_SERVER_FS_EXPORT_CONFIG_H_
#define TXBUF_SERVER_FS_EXPORT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/access_rules.h"

namespace txbuf::server {

struct ExportConfig {
  // What clients name it by (PUTROOTFH, `txbuf --export NAME`): 1 to 64
  // letters, digits, '.', '-', '_'. The first export is also the default
  // one (a PUTROOTFH without a name).
  std::string name;
  std::string path;
  bool read_only = false;
  // Who may use it, and how (access_rules.h); empty: every client.
  std::vector<AccessRule> clients;
  // Owner and group of what clients create in it (ExportOptions).
  std::optional<uint32_t> squash_uid;
  std::optional<uint32_t> squash_gid;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_FS_EXPORT_CONFIG_H_
