// server_pid.h: finds the local process listening on a TCP port, so a
// single run against a txbufd started by hand still reports server CPU
// (/proc/PID/stat) without --server-pid.
//
// Reads /proc/net/tcp and /proc/net/tcp6 for a LISTEN socket on the port,
// then looks for the process holding that socket inode among /proc/*/fd.
// Needs the right to read the other process's fd directory (same user, or
// root). The server must be on this machine.
//
// Thread-safety: thread-safe (reads /proc only).
//
// Example:
//   absl::StatusOr<pid_t> pid = FindListeningPid(7000);
#ifndef TXBUF_BENCH_TARGETS_TXBUFD_SERVER_PID_H_
#define TXBUF_BENCH_TARGETS_TXBUFD_SERVER_PID_H_

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::bench {

absl::StatusOr<pid_t> FindListeningPid(uint16_t port);

// The socket inodes in LISTEN state on `port` in the text of a
// /proc/net/tcp or /proc/net/tcp6 file (exposed for tests).
std::vector<uint64_t> ListeningInodes(absl::string_view proc_net_tcp,
                                      uint16_t port);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_TXBUFD_SERVER_PID_H_
