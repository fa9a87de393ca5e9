#include "bench/targets/nfs/nfs_mount.h"

// libnfs.h uses these types without including their headers.
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

// clang-format off
#include <nfsc/libnfs.h>
// clang-format on

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/socket_util.h"

namespace txbuf::peers::internal {

absl::StatusOr<NfsAddress> ParseNfsAddress(const std::string& host_port) {
  std::vector<std::string> parts = absl::StrSplit(host_port, ',');
  absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitHostPort(parts[0]);
  if (!hp.ok()) return hp.status();
  NfsAddress a;
  a.host = hp->first;
  a.nfs_port = hp->second;
  for (size_t i = 1; i < parts.size(); ++i) {
    uint32_t port = 0;
    absl::string_view p = parts[i];
    if (!absl::ConsumePrefix(&p, "mountport=") || !absl::SimpleAtoi(p, &port) ||
        port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad NFS address '", host_port,
                       "' (want HOST:NFSPORT[,mountport=PORT])"));
    }
    a.mount_port = static_cast<uint16_t>(port);
  }
  return a;
}

std::string FormatNfsAddress(const NfsAddress& a) {
  std::string s = absl::StrCat(a.host, ":", a.nfs_port);
  if (a.mount_port != 0) absl::StrAppend(&s, ",mountport=", a.mount_port);
  return s;
}

absl::StatusOr<std::unique_ptr<NfsMount>> NfsMount::Mount(
    const NfsAddress& addr, const std::string& export_path, int timeout_ms) {
  nfs_context* nfs = nfs_init_context();
  if (nfs == nullptr) return absl::InternalError("nfs_init_context failed");
  std::unique_ptr<NfsMount> m(new NfsMount(nfs));
  if (timeout_ms > 0) nfs_set_timeout(nfs, timeout_ms);
  // The URL only carries the ports to the context (path is mounted below).
  std::string url =
      absl::StrCat("nfs://", addr.host, "/?nfsport=", addr.nfs_port);
  if (addr.mount_port != 0)
    absl::StrAppend(&url, "&mountport=", addr.mount_port);
  nfs_url* parsed = nfs_parse_url_incomplete(nfs, url.c_str());
  if (parsed == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("libnfs: bad URL ", url, ": ", nfs_get_error(nfs)));
  }
  nfs_destroy_url(parsed);
  if (nfs_mount(nfs, addr.host.c_str(), export_path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("libnfs: mount ", addr.host, ":", export_path,
                     " (nfsport ", addr.nfs_port, ", mountport ",
                     addr.mount_port, "): ", nfs_get_error(nfs)));
  }
  return m;
}

NfsMount::~NfsMount() { nfs_destroy_context(nfs_); }

}  // namespace txbuf::peers::internal
