#include "bench/targets/server_args.h"

#include <csignal>
#include <cstdio>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"

ABSL_FLAG(std::string, root, "", "the directory to serve (required)");
ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "HOST:PORT to listen on (port 0: a free one, printed)");

namespace txbuf::peers::internal {
namespace {

constexpr char kDefinedIn[] = "bench/targets/server_args.cc";

}  // namespace

absl::StatusOr<ServerArgs> ParseServerArgs(
    const std::vector<std::string>& args) {
  absl::StatusOr<CommandLine> line = SplitCommandLine(args);
  if (!line.ok()) return line.status();
  if (!line->positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected '", line->positional.front(), "'"));
  }
  ResetFlagsToDefaults(kDefinedIn);
  if (absl::Status s = ApplyCommandLine(*line); !s.ok()) return s;
  ServerArgs a;
  a.root = absl::GetFlag(FLAGS_root);
  a.listen = absl::GetFlag(FLAGS_listen);
  if (a.root.empty()) return absl::InvalidArgumentError("--root is required");
  return a;
}

std::optional<PeerServerStart> StartPeerServer(const char* program, int argc,
                                               char** argv, int* exit_code) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CommandLine> line = SplitCommandLine(args);
  if (line.ok() && line->help) {
    absl::SetProgramUsageMessage(
        absl::StrCat("usage: ", program, " --root DIR --listen HOST:PORT"));
    std::fputs(FlagsHelp(kDefinedIn, {}, {{"root", "DIR"}}).c_str(), stdout);
    *exit_code = 0;
    return std::nullopt;
  }
  if (line.ok() && line->version) {
    std::printf("%s %s\n", program, TXBUF_VERSION);
    *exit_code = 0;
    return std::nullopt;
  }
  absl::StatusOr<ServerArgs> parsed = ParseServerArgs(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\nusage: %s --root DIR --listen HOST:PORT\n",
                 parsed.status().ToString().c_str(), program);
    *exit_code = 2;
    return std::nullopt;
  }
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<ExportRoot> root = ExportRoot::Open(parsed->root);
  if (!root.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, root.status().ToString().c_str());
    *exit_code = 1;
    return std::nullopt;
  }
  return PeerServerStart{*std::move(parsed), *std::move(root)};
}

}  // namespace txbuf::peers::internal
