// server_args.h: the command line shared by the peer server binaries:
//   PROGRAM --root DIR [--listen HOST:PORT]   (port 0: pick a free one)
// Each prints "listening on HOST:PORT" on stdout once it accepts
// connections.
//
// The flags are Abseil flags (server_args.cc), read with
// common/command_line.h as txbuf-bench's are. StartPeerServer() is the
// common start of their main(): arguments, SIGPIPE ignored, the export root
// opened.
//
// Thread-safety: StartPeerServer sets the process's flags and changes its
// SIGPIPE disposition: call it from main() before starting threads.
//
// Example:
//   int exit_code = 0;
//   std::optional<PeerServerStart> s =
//       StartPeerServer("txbuf-raw-server", argc, argv, &exit_code);
//   if (!s) return exit_code;
#ifndef TXBUF_BENCH_TARGETS_SERVER_ARGS_H_
#define TXBUF_BENCH_TARGETS_SERVER_ARGS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/targets/export_root.h"

namespace txbuf::peers::internal {

struct ServerArgs {
  std::string root;
  std::string listen = "127.0.0.1:0";
};

// Reads `args` (without the program name) into ServerArgs. InvalidArgument
// for an unknown flag, a missing value, an argument that is not a flag, or
// no --root.
absl::StatusOr<ServerArgs> ParseServerArgs(
    const std::vector<std::string>& args);

struct PeerServerStart {
  ServerArgs args;
  ExportRoot root;
};

// Parses the command line, ignores SIGPIPE and opens the export root. On
// failure prints one line to stderr (with the usage line for a bad command
// line), sets *exit_code (2 for usage, 1 otherwise) and returns nullopt;
// for --help (-h) prints the flags, for --version "PROGRAM VERSION", sets
// *exit_code to 0 and returns nullopt.
std::optional<PeerServerStart> StartPeerServer(const char* program, int argc,
                                               char** argv, int* exit_code);

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_SERVER_ARGS_H_
