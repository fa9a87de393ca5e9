#include "bench/targets/txbufd/txbufd_process.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/targets/binary_path.h"
#include "common/socket_util.h"

namespace txbuf::bench {

std::string FindTxbufd(const std::string& flag) {
  return FindBinary({.flag = flag,
                     .env = "TXBUF_TXBUFD",
#ifdef TXBUF_TXBUFD_PATH
                     .built = TXBUF_TXBUFD_PATH,
#endif
                     .near_self = {"txbufd", "../../server/txbufd"},
                     .fallback = "txbufd"});
}

absl::StatusOr<std::unique_ptr<TxbufdProcess>> TxbufdProcess::Start(
    const TxbufdOptions& o) {
  if (access(o.binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("txbufd binary '", o.binary,
                                            "' not found (build it, or pass "
                                            "--txbufd PATH)"));
  }
  std::vector<std::string> argv = {
      o.binary,
      "--export",
      o.export_dir,
      "--listen",
      "127.0.0.1:0",
      "--engine",
      std::string(EngineName(o.engine)),
      "--threads",
      absl::StrCat(o.threads),
      "--cache-size",
      absl::StrCat(o.cache_size),
  };
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  absl::StatusOr<std::unique_ptr<peers::internal::ChildProcess>> child =
      peers::internal::ChildProcess::Spawn(argv);
  if (!child.ok()) return child.status();
  absl::StatusOr<std::string> line =
      (*child)->WaitForLine("listening on ", absl::Seconds(30));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat("txbufd --engine ", EngineName(o.engine),
                                     ": ", line.status().message()));
  }
  absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitHostPort(*line);
  if (!hp.ok()) return hp.status();
  return std::unique_ptr<TxbufdProcess>(
      new TxbufdProcess(*std::move(child), std::move(hp->first), hp->second));
}

absl::Status TxbufdProcess::Stop() { return child_->Stop(absl::Seconds(20)); }

}  // namespace txbuf::bench
