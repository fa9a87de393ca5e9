// peer.h: the servers txbufd is compared against, and their load drivers.
//
// txbuf-bench runs the same workloads against txbufd and against "peers":
//   raw   a no-framework floor: blocking TCP, one server thread per
//         connection, a fixed binary header, pread + send (txbuf-raw-server);
//   grpc  gRPC C++ unary Read/Write, default ServerBuilder settings, async
//         CompletionQueue client (txbuf-grpc-server);
//   nfs   nfs-ganesha (FSAL VFS, NFSv3) driven by libnfs's async API.
// Each peer is a separate server process started by StartPeerServer on
// loopback; MakePeerDriver returns a client that runs a Workload against it.
//
// Driver model (the same for every peer): `connections` connections, each
// driven by its own client thread; the `concurrency` outstanding requests are
// dealt round-robin to them (connection i keeps concurrency/connections
// requests, plus one when i < concurrency % connections), and every
// completion immediately issues the next request on the same connection, so
// exactly `concurrency` requests are outstanding until the end. Offsets are
// aligned to the op size: sequential ones come from one shared cursor that
// wraps at the file end, random ones are uniform. Writes send pattern data
// (see pattern.h), so the file stays verifiable; every read is verified.
//
// Timeline of Run: connect (not timed), warmup_s of load (not recorded), then
// duration_s of load in which every op that *completes* is counted and its
// latency (request issued -> reply complete) recorded; then no new requests,
// outstanding ones drain (not counted). errors and verify_failures count the
// whole run including warmup (any error is a finding).
//
// Thread-safety: StartPeerServer/MakePeerDriver/ParsePeerKind are
// thread-safe. A PeerServer or PeerDriver object is not: one caller at a
// time. Server processes get PR_SET_PDEATHSIG(SIGTERM), which the kernel
// ties to the *thread* that started them: start servers from a thread that
// outlives them (e.g. main).
//
// Example:
//   auto server = txbuf::peers::StartPeerServer(PeerKind::kRaw, "/tmp/exp");
//   auto driver = txbuf::peers::MakePeerDriver(
//       PeerKind::kRaw, (*server)->host_port(), "/tmp/exp");
//   txbuf::bench::Workload w{.kind = WorkloadKind::kRead, .size = 4096, ...};
//   absl::StatusOr<txbuf::bench::RunResult> r =
//       (*driver)->Run(w, (*server)->pid());
#ifndef TXBUF_BENCH_TARGETS_PEER_H_
#define TXBUF_BENCH_TARGETS_PEER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/load/run_result.h"
#include "bench/load/workload.h"

namespace txbuf::peers {

class PeerServer {
 public:
  virtual ~PeerServer();
  // Where the driver connects: "127.0.0.1:PORT". For nfs:
  // "127.0.0.1:NFSPORT,mountport=MNTPORT".
  virtual std::string host_port() const = 0;
  // The server process (for server CPU from /proc/PID/stat).
  virtual pid_t pid() const = 0;
  // Stops the server (SIGTERM, then SIGKILL after a grace period) and reaps
  // it. Idempotent. The destructor stops it too.
  virtual absl::Status Stop() = 0;
};

class PeerDriver {
 public:
  virtual ~PeerDriver();
  // Runs `w` (read or write; bench/load/workload.h) with the harness
  // (bench/load/harness.h); `server_pid` > 0 adds the server's CPU time.
  virtual absl::StatusOr<bench::RunResult> Run(const bench::Workload& w,
                                               pid_t server_pid) = 0;
};

enum class PeerKind { kRaw, kGrpc, kNfs };

// Starts the peer's server process serving `export_dir` on loopback (port
// chosen free) and waits until it serves. Unavailable if the peer was not
// built (see PeerBuilt) or cannot run on this machine; the message says why.
absl::StatusOr<std::unique_ptr<PeerServer>> StartPeerServer(
    PeerKind kind, const std::string& export_dir);

// A driver connecting to `host_port` (PeerServer::host_port()). `export_dir`
// is the directory the server exports (the NFS driver mounts it).
absl::StatusOr<std::unique_ptr<PeerDriver>> MakePeerDriver(
    PeerKind kind, const std::string& host_port, const std::string& export_dir);

// "raw", "grpc", "nfs".
absl::StatusOr<PeerKind> ParsePeerKind(absl::string_view name);
const char* PeerKindName(PeerKind kind);

// Whether this build includes the peer (raw: always; grpc: TXBUF_HAVE_GRPC;
// nfs: TXBUF_HAVE_NFS).
bool PeerBuilt(PeerKind kind);

}  // namespace txbuf::peers

#endif  // TXBUF_BENCH_TARGETS_PEER_H_
