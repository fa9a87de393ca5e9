// nfs_mount.h: an NFSv3 mount with libnfs for the NFS peer (the driver's
// connections and the ganesha readiness probe).
//
// The peer's address is "HOST:NFSPORT[,mountport=MNTPORT]". Both ports are
// handed to libnfs (URL arguments nfsport= and mountport=), so the client
// never asks rpcbind; without mountport, libnfs asks rpcbind on HOST for
// the MOUNT port.
//
// Thread-safety: an NfsMount is confined to one thread (libnfs contexts
// are not thread-safe); distinct NfsMounts may be used concurrently.
#ifndef TXBUF_BENCH_TARGETS_NFS_NFS_MOUNT_H_
#define TXBUF_BENCH_TARGETS_NFS_NFS_MOUNT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct nfs_context;

namespace txbuf::peers::internal {

struct NfsAddress {
  std::string host;
  uint16_t nfs_port = 0;
  uint16_t mount_port = 0;  // 0: ask rpcbind
};

absl::StatusOr<NfsAddress> ParseNfsAddress(const std::string& host_port);
std::string FormatNfsAddress(const NfsAddress& a);

class NfsMount {
 public:
  // Mounts `export_path` (the server-side path: ganesha NFSv3 exports by
  // Path) with libnfs's defaults; `timeout_ms` > 0 bounds each sync call.
  static absl::StatusOr<std::unique_ptr<NfsMount>> Mount(
      const NfsAddress& addr, const std::string& export_path,
      int timeout_ms = 0);
  NfsMount(const NfsMount&) = delete;
  NfsMount& operator=(const NfsMount&) = delete;
  ~NfsMount();

  nfs_context* context() const { return nfs_; }

 private:
  explicit NfsMount(nfs_context* nfs) : nfs_(nfs) {}
  nfs_context* nfs_;
};

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_NFS_NFS_MOUNT_H_
