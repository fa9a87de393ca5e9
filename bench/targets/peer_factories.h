// peer_factories.h: the per-peer constructors behind StartPeerServer and
// MakePeerDriver (peer.h). Internal to txbuf_peers.
//
// Thread-safety: each function is thread-safe.
#ifndef TXBUF_BENCH_TARGETS_PEER_FACTORIES_H_
#define TXBUF_BENCH_TARGETS_PEER_FACTORIES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bench/load/harness.h"
#include "bench/targets/peer.h"

namespace txbuf::peers::internal {

// The drivers' vocabulary: the load model they all run (bench/load/).
using bench::ConnContext;
using bench::kOpTimeoutNs;
using bench::RunHarness;
using bench::RunResult;
using bench::Workload;
using bench::WorkloadKind;

// Runs `binary --root export_dir --listen 127.0.0.1:0` and waits for its
// "listening on HOST:PORT" line.
absl::StatusOr<std::unique_ptr<PeerServer>> StartListeningServer(
    const std::string& binary, const std::string& export_dir);

absl::StatusOr<std::unique_ptr<PeerDriver>> MakeRawDriver(
    const std::string& host_port);

#ifdef TXBUF_HAVE_GRPC
absl::StatusOr<std::unique_ptr<PeerDriver>> MakeGrpcDriver(
    const std::string& host_port);
#endif

#ifdef TXBUF_HAVE_NFS
absl::StatusOr<std::unique_ptr<PeerServer>> StartNfsServer(
    const std::string& export_dir);
absl::StatusOr<std::unique_ptr<PeerDriver>> MakeNfsDriver(
    const std::string& host_port, const std::string& export_dir);
#endif

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_PEER_FACTORIES_H_
