// server_args.h: the command line shared by the peer server binaries:
//   PROGRAM --root DIR --listen HOST:PORT   (port 0: pick a free one)
// Each prints "listening on HOST:PORT" on stdout once it accepts
// connections.
//
// Thread-safety: a plain function.
#ifndef TXBUF_BENCH_PEERS_SERVER_ARGS_H_
#define TXBUF_BENCH_PEERS_SERVER_ARGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

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

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_PEERS_SERVER_ARGS_H_
