// client/mount/mount_command.h: `txbuf mount`: its command line, and the
// command itself (connect, mount, serve until unmounted).
//
//   txbuf [GLOBAL FLAGS] mount SERVER[:PORT] DIR [--token-file F]
//         [--read-only] [-f] [--export NAME] [--attr-timeout S]
//         [--entry-timeout S] [--timeout S] [--max-uncommitted MIB]
//         [--read-split KIB] [--async-read-max KIB] [--writeback-cache]
//         [--serial-direct-writes]
//
// Without -f the command returns once the file system is mounted (exit 0),
// or with the error (exit 1), and a child process serves it; with -f it
// serves in the foreground until unmounted (fusermount3 -u DIR, umount, or
// SIGINT/SIGTERM/SIGHUP, which unmount).
//
// Thread-safety: ParseMountArgs is a pure function; RunMount runs once per
// process (it may fork and installs signal handlers).
#ifndef TXBUF_CLIENT_MOUNT_MOUNT_COMMAND_H_
#define TXBUF_CLIENT_MOUNT_MOUNT_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace txbuf::client::mount {

struct MountArgs {
  std::string server;      // HOST[:PORT]
  std::string mountpoint;  // DIR
  std::string token_file;  // empty: none
  std::string export_name;
  bool read_only = false;
  bool foreground = false;
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  // Seconds: each request, connecting, and connecting again after the
  // server is lost before an op fails with EIO (0: the global --timeout's,
  // default 60).
  double timeout = 0;
  // UNSTABLE write bytes the mount keeps (to resend after a server restart)
  // before a WRITE commits its file.
  uint64_t max_uncommitted_mib = 256;
  // A READ of at least twice this many KiB is sent as pieces of this size
  // in parallel (0: whole).
  uint32_t read_split_kib = 256;
  // A READ of at most this many KiB is answered from the client's loop
  // thread, no FUSE thread waiting for it (MountOptions::async_read_max;
  // 0: none).
  uint32_t async_read_max_kib = 128;
  // The kernel's write-back cache (MountOptions::writeback_cache).
  bool writeback_cache = false;
  // O_DIRECT writes to one file one at a time (MountOptions::
  // parallel_direct_writes off).
  bool serial_direct_writes = false;
};

// The usage line.
inline constexpr char kMountUsage[] =
    "mount SERVER[:PORT] DIR [--token-file F] [--read-only] [-f] "
    "[--export NAME] [--attr-timeout S] [--entry-timeout S] [--timeout S] "
    "[--max-uncommitted MIB] [--read-split KIB] [--async-read-max KIB] "
    "[--writeback-cache] [--serial-direct-writes]";

// Reads what follows the word "mount". `defaults` holds the global flags'
// values (--token-file, --export), which the command's own options override.
// Options take "--name VALUE" or "--name=VALUE"; "-f" is "--foreground".
// InvalidArgument for an unknown option, a missing or bad value, or not
// exactly two operands.
//
// Example:
//   ParseMountArgs({"srv:7390", "/mnt", "--read-only"}, {})
//       -> {.server = "srv:7390", .mountpoint = "/mnt", .read_only = true}
absl::StatusOr<MountArgs> ParseMountArgs(const std::vector<std::string>& args,
                                         const MountArgs& defaults);

// Connects with `options` (host, port and token from `args` replace
// those), mounts and serves. Returns the exit status; errors go to stderr
// as "txbuf: mount: <error>".
int RunMount(const MountArgs& args, ClientOptions options);

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_MOUNT_COMMAND_H_
