#include "bench/load/workload.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace txbuf::bench {

absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name) {
  if (name == "read") return WorkloadKind::kRead;
  if (name == "write") return WorkloadKind::kWrite;
  if (name == "mixed") return WorkloadKind::kMixed;
  if (name == "meta") return WorkloadKind::kMeta;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown workload '", name, "' (read, write, mixed, meta)"));
}

const char* WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kRead:
      return "read";
    case WorkloadKind::kWrite:
      return "write";
    case WorkloadKind::kMixed:
      return "mixed";
    case WorkloadKind::kMeta:
      return "meta";
  }
  return "?";
}

namespace {

// "4k", "1m", "1000".
std::string ShortBytes(uint64_t b) {
  if (b >= (uint64_t{1} << 30) && b % (uint64_t{1} << 30) == 0) {
    return absl::StrCat(b >> 30, "g");
  }
  if (b >= (uint64_t{1} << 20) && b % (uint64_t{1} << 20) == 0) {
    return absl::StrCat(b >> 20, "m");
  }
  if (b >= 1024 && b % 1024 == 0) return absl::StrCat(b >> 10, "k");
  return absl::StrCat(b);
}

}  // namespace

std::string Workload::Id() const {
  if (kind == WorkloadKind::kMeta) return absl::StrCat("meta-c", concurrency);
  std::string k = WorkloadKindName(kind);
  if (kind == WorkloadKind::kMixed) {
    absl::StrAppend(&k, static_cast<int>(std::lround(read_ratio * 100)));
  }
  return absl::StrCat(k, "-", ShortBytes(size), "-", random ? "rand" : "seq",
                      "-c", concurrency);
}

std::string Workload::Describe() const {
  std::string what;
  if (kind == WorkloadKind::kMeta) {
    what = "meta (LOOKUP/GETATTR/READDIR)";
  } else {
    what = absl::StrCat(WorkloadKindName(kind), " ", FormatBytes(size), " ",
                        random ? "rand" : "seq");
    if (kind == WorkloadKind::kMixed) {
      absl::StrAppend(&what, " (",
                      static_cast<int>(std::lround(read_ratio * 100)),
                      "% reads)");
    }
  }
  return absl::StrCat(what, ", c", concurrency, " over ", connections,
                      connections == 1 ? " connection" : " connections");
}

absl::Status ValidateWorkload(const Workload& w) {
  if (w.kind != WorkloadKind::kMeta) {
    if (w.size == 0 || w.size > (uint64_t{16} << 20)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--size must be in [1, 16M], got ", w.size));
    }
    if (w.file_size < w.size) {
      return absl::InvalidArgumentError(
          absl::StrCat("--file-size ", w.file_size,
                       " is smaller than the request size ", w.size));
    }
  }
  if (w.concurrency < 1 || w.connections < 1) {
    return absl::InvalidArgumentError(
        "--concurrency and --connections must be >= 1");
  }
  if (w.connections > w.concurrency) {
    return absl::InvalidArgumentError(
        "--connections must not exceed --concurrency");
  }
  if (!(w.duration_s > 0) || !(w.warmup_s >= 0)) {
    return absl::InvalidArgumentError("--duration must be > 0, --warmup >= 0");
  }
  if (!(w.read_ratio >= 0 && w.read_ratio <= 1)) {
    return absl::InvalidArgumentError("--read-ratio must be in [0, 1]");
  }
  if (w.file.empty()) return absl::InvalidArgumentError("no file given");
  return absl::OkStatus();
}

std::string FormatBytes(uint64_t b) {
  if (b >= (uint64_t{1} << 30) && b % (uint64_t{1} << 30) == 0) {
    return absl::StrCat(b >> 30, " GiB");
  }
  if (b >= (uint64_t{1} << 20) && b % (uint64_t{1} << 20) == 0) {
    return absl::StrCat(b >> 20, " MiB");
  }
  if (b >= 1024 && b % 1024 == 0) return absl::StrCat(b >> 10, " KiB");
  return absl::StrCat(b, " B");
}

std::vector<Workload> CompareWorkloads() {
  struct Row {
    WorkloadKind kind;
    uint64_t size;
    bool random;
    int concurrency;
  };
  constexpr uint64_t kK = 1024;
  constexpr uint64_t kM = 1024 * 1024;
  const Row rows[] = {
      {WorkloadKind::kRead, 4 * kK, true, 1},
      {WorkloadKind::kRead, 4 * kK, true, 64},
      {WorkloadKind::kRead, kM, false, 1},
      {WorkloadKind::kRead, kM, false, 8},
      {WorkloadKind::kWrite, 4 * kK, true, 16},
      {WorkloadKind::kWrite, kM, false, 4},
  };
  std::vector<Workload> out;
  for (const Row& r : rows) {
    Workload w;
    w.kind = r.kind;
    w.size = r.size;
    w.random = r.random;
    w.concurrency = r.concurrency;
    w.connections = std::min(r.concurrency, 4);
    out.push_back(w);
  }
  return out;
}

std::vector<Workload> OptInCompareWorkloads() {
  Workload w;
  w.kind = WorkloadKind::kRead;
  w.size = 4096;
  w.random = true;
  w.concurrency = 16;
  w.connections = 4;
  return {w};
}

}  // namespace txbuf::bench
