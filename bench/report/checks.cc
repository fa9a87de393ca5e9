#include "bench/report/checks.h"

#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/report/format.h"

namespace txbuf::bench {
namespace {

// fio's family (fio-mount, fio-local): fio, not a server of its own.
bool IsFio(const CompareReport& r, int t) {
  const TargetInfo& info = r.targets[static_cast<size_t>(t)];
  return !info.is_engine && info.name.rfind("fio-", 0) == 0;
}

bool IsOtherPeer(const CompareReport& r, int t) {
  const TargetInfo& info = r.targets[static_cast<size_t>(t)];
  // fio's family is not a peer to beat.
  return !info.is_engine && info.name != "raw" && !IsFio(r, t);
}

const Cell* CellAt(const CompareReport& r, int w, int t) {
  if (w < 0 || t < 0) return nullptr;
  const Cell& c = r.cells[static_cast<size_t>(w)][static_cast<size_t>(t)];
  return c.ok() ? &c : nullptr;
}

// The other peer minimising `key` (NaN keys skipped).
int BestPeerBy(const CompareReport& r, int w,
               const std::function<double(const Figures&)>& key) {
  int best = -1;
  double best_key = 0;
  for (size_t t = 0; t < r.targets.size(); ++t) {
    const Cell* c = CellAt(r, w, static_cast<int>(t));
    if (c == nullptr || !IsOtherPeer(r, static_cast<int>(t))) continue;
    double k = key(c->median);
    if (std::isnan(k)) continue;
    if (best < 0 || k < best_key) {
      best = static_cast<int>(t);
      best_key = k;
    }
  }
  return best;
}

std::string Name(const CompareReport& r, int t) {
  return r.targets[static_cast<size_t>(t)].name;
}

// The engine checked: auto, else the best engine of the workload.
int Subject(const CompareReport& r, int w) {
  int a = r.TargetIndex("auto");
  if (CellAt(r, w, a) != nullptr) return a;
  int best = -1;
  for (size_t t = 0; t < r.targets.size(); ++t) {
    const Cell* c = CellAt(r, w, static_cast<int>(t));
    if (c == nullptr || !r.targets[t].is_engine) continue;
    if (best < 0 || c->median.ops_s > CellAt(r, w, best)->median.ops_s) {
      best = static_cast<int>(t);
    }
  }
  return best;
}

class Checker {
 public:
  explicit Checker(const CompareReport& r) : r_(r) {}

  // value(subject) OP factor * value(reference), OP ">=" or "<=".
  void Ratio(const std::string& id, const std::string& goal, int ref,
             const std::string& ref_label, const char* unit, bool at_least,
             double factor, const std::function<double(const Figures&)>& get) {
    TargetCheck c;
    c.workload = id;
    c.goal = goal;
    const int w = r_.WorkloadIndex(id);
    if (w < 0) {
      c.detail = "workload not run";
      out_.push_back(c);
      return;
    }
    const int s = Subject(r_, w);
    const Cell* sc = CellAt(r_, w, s);
    const Cell* rc = CellAt(r_, w, ref);
    if (sc == nullptr) {
      c.detail = "no txbufd engine ran it";
    } else if (rc == nullptr) {
      c.detail = absl::StrCat(ref_label, " did not run");
    } else {
      const double a = get(sc->median);
      const double b = get(rc->median);
      if (std::isnan(a) || std::isnan(b) || b <= 0) {
        c.detail = "figure missing";
      } else {
        const double ratio = a / b;
        const bool pass = at_least ? ratio >= factor : ratio <= factor;
        c.outcome = pass ? CheckOutcome::kPass : CheckOutcome::kMiss;
        c.detail = absl::StrFormat(
            "%s %s %s vs %s %s %s %s: %.2fx", Name(r_, s), FormatNumber(a),
            unit, ref_label, Name(r_, ref), FormatNumber(b), unit, ratio);
      }
    }
    out_.push_back(c);
  }

  void AutoVsFixed(int w) {
    TargetCheck c;
    c.workload = r_.workloads[static_cast<size_t>(w)].Id();
    c.goal = "auto ops/s >= 0.95x best fixed engine";
    const int a = r_.TargetIndex("auto");
    const Cell* ac = CellAt(r_, w, a);
    int best = -1;
    for (size_t t = 0; t < r_.targets.size(); ++t) {
      const Cell* cell = CellAt(r_, w, static_cast<int>(t));
      if (cell == nullptr || !r_.targets[t].is_engine ||
          r_.targets[t].name == "auto") {
        continue;
      }
      if (best < 0 || cell->median.ops_s > CellAt(r_, w, best)->median.ops_s) {
        best = static_cast<int>(t);
      }
    }
    if (ac == nullptr) {
      c.detail = "auto did not run";
    } else if (best < 0) {
      c.detail = "no fixed engine ran";
    } else {
      const double x = ac->median.ops_s;
      const double y = CellAt(r_, w, best)->median.ops_s;
      const double ratio = y > 0 ? x / y : kNa;
      c.outcome = ratio >= 0.95 ? CheckOutcome::kPass : CheckOutcome::kMiss;
      c.detail = absl::StrFormat("auto %s ops/s vs %s %s ops/s: %.2fx",
                                 FormatNumber(x), Name(r_, best),
                                 FormatNumber(y), ratio);
    }
    out_.push_back(c);
  }

  // Issue 13: fio on the mount (target `fio`) reaches `factor` of the
  // library-level figure of the engine checked (Subject) on `id`.
  void FioVsLibrary(const std::string& id, int fio, double factor,
                    const char* unit,
                    const std::function<double(const Figures&)>& get) {
    TargetCheck c;
    c.workload = id;
    c.goal = absl::StrFormat("fio-mount %s >= %.1fx library", unit, factor);
    const int w = r_.WorkloadIndex(id);
    const int s = w < 0 ? -1 : Subject(r_, w);
    const Cell* fc = CellAt(r_, w, fio);
    const Cell* sc = CellAt(r_, w, s);
    if (w < 0) {
      c.detail = "workload not run";
    } else if (fc == nullptr) {
      c.detail = "fio-mount did not run";
    } else if (sc == nullptr) {
      c.detail = "no txbufd engine ran it";
    } else {
      const double a = get(fc->median);
      const double b = get(sc->median);
      if (std::isnan(a) || std::isnan(b) || b <= 0) {
        c.detail = "figure missing";
      } else {
        const double ratio = a / b;
        c.outcome = ratio >= factor ? CheckOutcome::kPass : CheckOutcome::kMiss;
        c.detail = absl::StrFormat("fio-mount %s %s vs %s %s %s: %.2fx",
                                   FormatNumber(a), unit, Name(r_, s),
                                   FormatNumber(b), unit, ratio);
      }
    }
    out_.push_back(c);
  }

  std::vector<TargetCheck> Take() { return std::move(out_); }

 private:
  const CompareReport& r_;
  std::vector<TargetCheck> out_;
};

}  // namespace

int BestPeerByOps(const CompareReport& r, int w) {
  return BestPeerBy(r, w, [](const Figures& f) { return -f.ops_s; });
}
int BestPeerByP99(const CompareReport& r, int w) {
  return BestPeerBy(r, w, [](const Figures& f) { return f.latency.p99_us; });
}
int BestPeerByServerCpu(const CompareReport& r, int w) {
  return BestPeerBy(r, w, [](const Figures& f) { return f.server_cpu_us_op; });
}
int RawIndex(const CompareReport& r) {
  for (size_t t = 0; t < r.targets.size(); ++t) {
    if (!r.targets[t].is_engine && r.targets[t].name == "raw") {
      return static_cast<int>(t);
    }
  }
  return -1;
}

double OpsRatio(const CompareReport& r, int w, int t, int ref) {
  const Cell* a = CellAt(r, w, t);
  const Cell* b = CellAt(r, w, ref);
  if (a == nullptr || b == nullptr || b->median.ops_s <= 0) return kNa;
  return a->median.ops_s / b->median.ops_s;
}

const char* CheckOutcomeName(CheckOutcome o) {
  switch (o) {
    case CheckOutcome::kPass:
      return "PASS";
    case CheckOutcome::kMiss:
      return "MISS";
    case CheckOutcome::kNotApplicable:
      return "n/a";
  }
  return "?";
}

std::vector<TargetCheck> EvaluateTargets(const CompareReport& r) {
  Checker k(r);
  auto ops = [](const Figures& f) { return f.ops_s; };
  auto mib = [](const Figures& f) { return f.mib_s; };
  auto p99 = [](const Figures& f) { return f.latency.p99_us; };
  auto srv = [](const Figures& f) { return f.server_cpu_us_op; };
  const int raw = RawIndex(r);
  auto peer_ops = [&](const std::string& id) {
    return BestPeerByOps(r, r.WorkloadIndex(id));
  };

  const std::string r4 = "read-4k-rand-c64";
  k.Ratio(r4, "ops/s >= 2x best peer", peer_ops(r4), "best peer", "ops/s", true,
          2.0, ops);
  k.Ratio(r4, "p99 <= 0.5x best peer", BestPeerByP99(r, r.WorkloadIndex(r4)),
          "best peer", "us", false, 0.5, p99);
  k.Ratio(r4, "ops/s >= 0.75x raw floor", raw, "floor", "ops/s", true, 0.75,
          ops);
  for (const std::string id : {"read-1m-seq-c1", "read-1m-seq-c8"}) {
    k.Ratio(id, "MiB/s >= 0.9x raw floor", raw, "floor", "MiB/s", true, 0.9,
            mib);
    k.Ratio(id, "MiB/s >= 1.3x best peer", peer_ops(id), "best peer", "MiB/s",
            true, 1.3, mib);
  }
  for (const std::string id : {"write-4k-rand-c16", "write-1m-seq-c4"}) {
    k.Ratio(id, "ops/s >= 2x best peer", peer_ops(id), "best peer", "ops/s",
            true, 2.0, ops);
  }
  for (const std::string id : {"read-4k-rand-c1", "read-4k-rand-c64"}) {
    k.Ratio(id, "server CPU/op <= 0.5x best peer",
            BestPeerByServerCpu(r, r.WorkloadIndex(id)), "best peer", "us/op",
            false, 0.5, srv);
  }
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    k.AutoVsFixed(static_cast<int>(w));
  }
  if (const int fio = r.TargetIndex("fio-mount"); fio >= 0) {
    for (const char* id :
         {"read-1m-seq-c1", "read-1m-seq-c8", "write-1m-seq-c4"}) {
      k.FioVsLibrary(id, fio, 0.8, "MiB/s", mib);
    }
    k.FioVsLibrary("read-4k-rand-c16", fio, 0.6, "ops/s", ops);
  }
  return k.Take();
}

std::vector<std::string> FigureProblems(const Workload& w, bool engine,
                                        const Figures& f, bool server_cpu) {
  std::vector<std::string> p;
  auto need = [&p](double v, const char* what) {
    if (std::isnan(v)) p.push_back(absl::StrCat(what, " missing"));
  };
  if (f.ops == 0) p.push_back("no ops completed");
  if (f.errors != 0) p.push_back(absl::StrCat(f.errors, " errors"));
  if (f.verify_failures != 0) {
    p.push_back(absl::StrCat(f.verify_failures, " verify failures"));
  }
  need(f.latency.p50_us, "latency p50");
  need(f.latency.p99_us, "latency p99");
  need(f.latency.max_us, "latency max");
  if (server_cpu) need(f.server_cpu_us_op, "server CPU");
  need(f.client_cpu_us_op, "client CPU");
  if (engine) {
    if (!f.has_server_memory) {
      p.push_back("server memory recovery missing");
    } else {
      need(f.destructor.p99_us, "destructor latency p99");
      need(f.pinned_max_bytes, "pinned bytes max");
      need(f.copied_completions, "copied completions");
    }
    const bool writes =
        w.kind == WorkloadKind::kWrite || w.kind == WorkloadKind::kMixed;
    if (writes && !f.has_client_memory) {
      p.push_back("client memory recovery missing");
    } else if (writes) {
      need(f.client_release.p99_us, "client WRITE release p99");
    }
  }
  return p;
}

std::vector<std::string> ReportProblems(const CompareReport& r) {
  std::vector<std::string> out;
  for (size_t w = 0; w < r.workloads.size(); ++w) {
    for (size_t t = 0; t < r.targets.size(); ++t) {
      const Cell& c = r.cells[w][t];
      if (c.skipped) continue;
      const std::string where =
          absl::StrCat(r.workloads[w].Id(), " ", r.targets[t].name, ": ");
      if (!c.error.empty()) out.push_back(absl::StrCat(where, c.error));
      if (c.figures.empty()) out.push_back(absl::StrCat(where, "no runs"));
      for (const Figures& f : c.figures) {
        for (const std::string& p :
             FigureProblems(r.workloads[w], r.targets[t].is_engine, f,
                            /*server_cpu=*/!IsFio(r, static_cast<int>(t)))) {
          out.push_back(absl::StrCat(where, p));
        }
      }
    }
  }
  return out;
}

}  // namespace txbuf::bench
