// server_args.h: the command line shared by the peer server binaries:
//   PROGRAM --root DIR --listen HOST:PORT   (port 0: pick a free one)
// Each prints "listening on HOST:PORT" on stdout once it accepts
// connections.
//
// StartPeerServer() is the common start of their main(): arguments, SIGPIPE
// ignored, the export root opened.
//
// Thread-safety: plain functions; StartPeerServer changes the process's
// SIGPIPE disposition, so call it from main() before starting threads.
//
// Example:
//   int exit_code = 0;
//   std::optional<PeerServerStart> s =
//       StartPeerServer("txbuf-raw-server", argc, argv, &exit_code);
//   if (!s) return exit_code;
#ifndef TXBUF_BENCH_TARGETS_SERVER_ARGS_H_
#define TXBUF_BENCH_TARGETS_SERVER_ARGS_H_

#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/targets/export_root.h"

namespace txbuf::peers::internal {

struct ServerArgs {
  std::string root;
  std::string listen = "127.0.0.1:0";
};

inline absl::StatusOr<ServerArgs> ParseServerArgs(int argc, char** argv) {
  ServerArgs a;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string* dst = nullptr;
    absl::string_view name;
    if (absl::StartsWith(arg, "--root")) {
      dst = &a.root;
      name = "--root";
    } else if (absl::StartsWith(arg, "--listen")) {
      dst = &a.listen;
      name = "--listen";
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown argument '", arg, "'"));
    }
    absl::string_view rest = arg.substr(name.size());
    if (absl::StartsWith(rest, "=")) {
      dst->assign(rest.data() + 1, rest.size() - 1);
    } else if (rest.empty() && i + 1 < argc) {
      *dst = argv[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("bad argument '", arg, "'"));
    }
  }
  if (a.root.empty()) return absl::InvalidArgumentError("--root is required");
  return a;
}

struct PeerServerStart {
  ServerArgs args;
  ExportRoot root;
};

// Parses the command line, ignores SIGPIPE and opens the export root. On
// failure prints one line to stderr (with the usage line for a bad command
// line), sets *exit_code (2 for usage, 1 otherwise) and returns nullopt.
inline std::optional<PeerServerStart> StartPeerServer(const char* program,
                                                      int argc, char** argv,
                                                      int* exit_code) {
  absl::StatusOr<ServerArgs> args = ParseServerArgs(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "%s\nusage: %s --root DIR --listen HOST:PORT\n",
                 args.status().ToString().c_str(), program);
    *exit_code = 2;
    return std::nullopt;
  }
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<ExportRoot> root = ExportRoot::Open(args->root);
  if (!root.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, root.status().ToString().c_str());
    *exit_code = 1;
    return std::nullopt;
  }
  return PeerServerStart{*std::move(args), *std::move(root)};
}

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_SERVER_ARGS_H_
