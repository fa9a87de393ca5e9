#include "bench/targets/peer.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/load/harness.h"
#include "bench/targets/binary_path.h"
#include "bench/targets/child_process.h"
#include "bench/targets/peer_factories.h"

namespace txbuf::peers {

PeerServer::~PeerServer() = default;
PeerDriver::~PeerDriver() = default;

namespace {

// Why a peer this binary was built without (PeerBuilt false) cannot run.
absl::Status NotBuiltError(PeerKind kind) {
  const char* what = kind == PeerKind::kGrpc  ? "gRPC"
                     : kind == PeerKind::kNfs ? "NFS (libnfs)"
                                              : PeerKindName(kind);
  return absl::UnavailableError(absl::StrCat(
      "built without ", what, ": run bench/targets/install-peers.sh"));
}

#ifdef TXBUF_HAVE_GRPC
constexpr bool kHaveGrpc = true;
#else
constexpr bool kHaveGrpc = false;
#endif
#ifdef TXBUF_HAVE_NFS
constexpr bool kHaveNfs = true;
#else
constexpr bool kHaveNfs = false;
#endif

// Where a peer server binary is: $ENV, else the path CMake built it at,
// else next to the running executable.
std::string FindBinary(const char* env, const char* built, const char* name) {
  return bench::FindBinary(
      {.env = env, .built = built, .near_self = {name}, .fallback = built});
}

class ListeningServer : public PeerServer {
 public:
  ListeningServer(std::unique_ptr<internal::ChildProcess> child,
                  std::string host_port)
      : child_(std::move(child)), host_port_(std::move(host_port)) {}
  ~ListeningServer() override { Stop().IgnoreError(); }

  std::string host_port() const override { return host_port_; }
  pid_t pid() const override { return child_->pid(); }
  absl::Status Stop() override { return child_->Stop(absl::Seconds(5)); }

 private:
  std::unique_ptr<internal::ChildProcess> child_;
  std::string host_port_;
};

}  // namespace

namespace internal {

absl::StatusOr<std::unique_ptr<PeerServer>> StartListeningServer(
    const std::string& binary, const std::string& export_dir) {
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::UnavailableError(
        absl::StrCat("peer server binary ", binary, " not found"));
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
      {binary, "--root", export_dir, "--listen", "127.0.0.1:0"});
  if (!child.ok()) return child.status();
  absl::StatusOr<std::string> hp =
      (*child)->WaitForLine("listening on ", absl::Seconds(30));
  if (!hp.ok()) {
    return absl::Status(hp.status().code(),
                        absl::StrCat(binary, ": ", hp.status().message()));
  }
  return std::make_unique<ListeningServer>(*std::move(child), *std::move(hp));
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<PeerServer>> StartPeerServer(
    PeerKind kind, const std::string& export_dir) {
  if (!PeerBuilt(kind)) return NotBuiltError(kind);
  switch (kind) {
    case PeerKind::kRaw:
      return internal::StartListeningServer(
          FindBinary("TXBUF_RAW_SERVER", TXBUF_RAW_SERVER_PATH,
                     "txbuf-raw-server"),
          export_dir);
#ifdef TXBUF_HAVE_GRPC
    case PeerKind::kGrpc:
      return internal::StartListeningServer(
          FindBinary("TXBUF_GRPC_SERVER", TXBUF_GRPC_SERVER_PATH,
                     "txbuf-grpc-server"),
          export_dir);
#endif
#ifdef TXBUF_HAVE_NFS
    case PeerKind::kNfs:
      return internal::StartNfsServer(export_dir);
#endif
    default:
      break;
  }
  return absl::InvalidArgumentError("unknown peer kind");
}

absl::StatusOr<std::unique_ptr<PeerDriver>> MakePeerDriver(
    PeerKind kind, const std::string& host_port,
    [[maybe_unused]] const std::string& export_dir) {
  if (!PeerBuilt(kind)) return NotBuiltError(kind);
  switch (kind) {
    case PeerKind::kRaw:
      return internal::MakeRawDriver(host_port);
#ifdef TXBUF_HAVE_GRPC
    case PeerKind::kGrpc:
      return internal::MakeGrpcDriver(host_port);
#endif
#ifdef TXBUF_HAVE_NFS
    case PeerKind::kNfs:
      return internal::MakeNfsDriver(host_port, export_dir);
#endif
    default:
      break;
  }
  return absl::InvalidArgumentError("unknown peer kind");
}

absl::StatusOr<PeerKind> ParsePeerKind(absl::string_view name) {
  if (name == "raw") return PeerKind::kRaw;
  if (name == "grpc") return PeerKind::kGrpc;
  if (name == "nfs") return PeerKind::kNfs;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown peer '", name, "' (raw, grpc, nfs)"));
}

const char* PeerKindName(PeerKind kind) {
  switch (kind) {
    case PeerKind::kRaw:
      return "raw";
    case PeerKind::kGrpc:
      return "grpc";
    case PeerKind::kNfs:
      return "nfs";
  }
  return "?";
}

bool PeerBuilt(PeerKind kind) {
  return kind == PeerKind::kRaw || (kind == PeerKind::kGrpc && kHaveGrpc) ||
         (kind == PeerKind::kNfs && kHaveNfs);
}

}  // namespace txbuf::peers
