#include "bench/load/compare.h"

#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/pattern.h"
#include "bench/targets/fio/fio_target.h"
#include "bench/targets/target.h"
#include "common/clock.h"

namespace txbuf::bench {

int CompareReport::TargetIndex(const std::string& name) const {
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int CompareReport::WorkloadIndex(const std::string& id) const {
  for (size_t i = 0; i < workloads.size(); ++i) {
    if (workloads[i].Id() == id) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<CompareOptions> CompareOptionsFromFlags(const Flags& f) {
  CompareOptions o;
  std::vector<Workload> all = CompareWorkloads();
  for (Workload& w : OptInCompareWorkloads()) {
    if (std::find(f.workloads.begin(), f.workloads.end(), w.Id()) !=
        f.workloads.end()) {
      all.push_back(std::move(w));
    }
  }
  for (const std::string& id : f.workloads) {
    if (std::none_of(all.begin(), all.end(),
                     [&](const Workload& w) { return w.Id() == id; })) {
      std::vector<std::string> ids;
      ids.reserve(all.size());
      for (const Workload& w : all) ids.push_back(w.Id());
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown workload '", id, "' (", absl::StrJoin(ids, ", "), ")"));
    }
  }
  for (Workload w : all) {
    if (!f.workloads.empty() &&
        std::find(f.workloads.begin(), f.workloads.end(), w.Id()) ==
            f.workloads.end()) {
      continue;
    }
    w.duration_s = f.workload.duration_s;
    w.warmup_s = f.workload.warmup_s;
    w.file_size = f.workload.file_size;
    w.seed = f.workload.seed;
    w.file = kDefaultFile;
    if (absl::Status s = ValidateWorkload(w); !s.ok()) return s;
    o.workloads.push_back(w);
  }
  o.engines = f.engines.empty()
                  ? DefaultEngines(access("/dev/txbuf", F_OK) == 0)
                  : f.engines;
  o.peers = f.peers;
  o.fio = f.fio;
  o.repeat = f.repeat;
  o.quick = f.quick;
  o.txbufd = FindTxbufd(f.txbufd);
  o.server_threads =
      f.server_threads > 0
          ? f.server_threads
          : std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  o.cache_size = f.cache_size != 0
                     ? f.cache_size
                     : f.workload.file_size + (uint64_t{256} << 20);
  o.export_dir = f.export_dir;
  o.keep_files = f.keep_files;
  o.client_engine = f.client_engine;
  o.stats_interval_s = f.stats_interval_s;
  o.shared_client = f.shared_client;
  return o;
}

namespace {

// A temporary export directory, removed with its contents.
class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  absl::Status Make() {
    char tmpl[] = "/tmp/txbuf-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
    }
    path_ = tmpl;
    return absl::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void Environment(CompareReport& r) {
  utsname u{};
  if (uname(&u) == 0) {
    r.host = u.nodename;
    r.kernel = absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
  }
  r.cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  r.date =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (in >> one >> five >> fifteen) {
    r.loadavg = absl::StrCat(one, " ", five, " ", fifteen);
  }
}

}  // namespace

absl::StatusOr<CompareReport> RunCompare(const CompareOptions& o,
                                         FILE* progress) {
  const int64_t t0 = MonoNowNs();
  CompareReport report;
  Environment(report);
  report.quick = o.quick;
  report.repeat = o.repeat;
  report.server_threads = o.server_threads;
  report.workloads = o.workloads;
  if (o.workloads.empty()) return absl::InvalidArgumentError("no workloads");

  TempDir temp;
  std::string dir = o.export_dir;
  if (dir.empty()) {
    if (absl::Status s = temp.Make(); !s.ok()) return s;
    dir = temp.path();
  }
  const Workload& first = o.workloads.front();
  const std::string file_path = absl::StrCat(dir, "/", first.file);
  // The test file written into a given export goes at the end, unless kept
  // (a temporary export goes with its directory). Declared before the
  // targets: the servers may hold it open until they stop.
  struct RemoveAtEnd {
    std::string path;
    ~RemoveAtEnd() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  } remove_test_file;
  if (!o.export_dir.empty() && !o.keep_files) remove_test_file.path = file_path;
  if (progress != nullptr) {
    std::fprintf(progress, "txbuf-bench: export %s, test file %s (%s)\n",
                 dir.c_str(), first.file.c_str(),
                 FormatBytes(first.file_size).c_str());
  }
  if (absl::Status s =
          CreatePatternFile(file_path, first.seed, first.file_size);
      !s.ok()) {
    return s;
  }

  // Servers, from this (the main) thread.
  std::vector<std::unique_ptr<Target>> targets;
  for (EngineKind e : o.engines) {
    TxbufdOptions so;
    so.binary = o.txbufd;
    so.export_dir = dir;
    so.engine = e;
    so.threads = o.server_threads;
    so.cache_size = o.cache_size;
    TxbufdDriverOptions dopt;
    dopt.client_engine = o.client_engine;
    dopt.stats_period = absl::Seconds(o.stats_interval_s);
    dopt.shared_client = o.shared_client;
    absl::StatusOr<std::unique_ptr<Target>> t = StartEngineTarget(so, dopt);
    if (!t.ok()) {
      report.notes.push_back(absl::StrCat("engine ", EngineName(e),
                                          " left out: ", t.status().message()));
      continue;
    }
    targets.push_back(*std::move(t));
  }
  for (peers::PeerKind k : o.peers) {
    absl::StatusOr<std::unique_ptr<Target>> t = StartPeerTarget(k, dir);
    if (!t.ok()) {
      report.notes.push_back(absl::StrCat("peer ", peers::PeerKindName(k),
                                          " left out: ", t.status().message()));
      continue;
    }
    targets.push_back(*std::move(t));
  }
  RemoveAtEnd remove_fio_file;
  if (o.fio) {
    FioOptions fo;
    fo.txbuf_cli = o.txbuf_cli;
    fo.export_dir = dir;
    fo.file_size = first.file_size;
    fo.seed = first.seed;
    for (const Workload& w : o.workloads) {
      fo.connections = std::max(fo.connections, w.connections);
    }
    // The mount goes to the engine "auto" if it runs, else the first.
    for (const auto& t : targets) {
      if (!t->is_engine()) continue;
      if (fo.server.empty() || t->name() == "auto") fo.server = t->address();
    }
    FioFamily fam = StartFioTargets(fo);
    for (std::string& n : fam.notes) report.notes.push_back(std::move(n));
    for (auto& t : fam.targets) targets.push_back(std::move(t));
    if (!o.keep_files || o.export_dir.empty()) {
      remove_fio_file.path = fam.created_file;
    }
  }
  for (const std::string& n : report.notes) {
    if (progress != nullptr)
      std::fprintf(progress, "txbuf-bench: %s\n", n.c_str());
  }
  if (targets.empty()) return absl::UnavailableError("no target could start");
  for (auto& t : targets) {
    report.targets.push_back({t->name(), t->is_engine()});
    if (absl::Status s = t->Prepare(first.file, first.file_size); !s.ok()) {
      report.notes.push_back(
          absl::StrCat(t->name(), ": warming its cache failed: ", s.message()));
    }
  }

  const size_t nw = o.workloads.size();
  const size_t nt = targets.size();
  report.cells.assign(nw, std::vector<Cell>(nt));
  int total = 0;
  for (size_t w = 0; w < nw; ++w) {
    for (size_t t = 0; t < nt; ++t) {
      if (targets[t]->CanRun(o.workloads[w])) {
        total += o.repeat;
      } else {
        report.cells[w][t].skipped = true;
      }
    }
  }
  if (progress != nullptr) {
    std::fprintf(progress,
                 "txbuf-bench: %d runs (%zu workloads x %zu targets x %d), "
                 "%.1f s + %.1f s warmup each%s\n",
                 total, nw, nt, o.repeat, first.duration_s, first.warmup_s,
                 o.quick ? " (--quick)" : "");
  }

  int done = 0;
  for (int round = 0; round < o.repeat; ++round) {
    std::vector<size_t> order(nt);
    for (size_t i = 0; i < nt; ++i) order[i] = i;
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (size_t w = 0; w < nw; ++w) {
      const Workload& wl = o.workloads[w];
      for (size_t t : order) {
        Cell& cell = report.cells[w][t];
        if (cell.skipped) continue;
        absl::StatusOr<RunResult> r = targets[t]->Run(wl);
        ++done;
        if (!r.ok()) {
          cell.error = std::string(r.status().message());
          if (progress != nullptr) {
            std::fprintf(progress, "[%3d/%d] %-18s %-13s FAILED: %s\n", done,
                         total, wl.Id().c_str(), targets[t]->name().c_str(),
                         cell.error.c_str());
          }
          continue;
        }
        Figures f = ComputeFigures(*r);
        if (progress != nullptr) {
          std::fprintf(progress,
                       "[%3d/%d] %-18s %-13s %9.0f ops/s %8.1f MiB/s  p99 "
                       "%8.1f us  errors %llu\n",
                       done, total, wl.Id().c_str(), targets[t]->name().c_str(),
                       f.ops_s, f.mib_s, f.latency.p99_us,
                       static_cast<unsigned long long>(f.total_errors()));
        }
        cell.runs.push_back(*std::move(r));
        cell.figures.push_back(f);
      }
    }
  }
  for (auto& row : report.cells) {
    for (Cell& c : row) {
      if (c.figures.empty()) continue;
      c.median = MedianFigures(c.figures);
      c.median_run = MedianRunIndex(c.figures);
    }
  }
  for (auto& t : targets) {
    if (absl::Status s = t->Stop(); !s.ok()) {
      report.notes.push_back(absl::StrCat(t->name(),
                                          " server did not stop "
                                          "cleanly: ",
                                          s.message()));
    }
  }
  report.elapsed_s = static_cast<double>(MonoNowNs() - t0) / 1e9;
  return report;
}

}  // namespace txbuf::bench
