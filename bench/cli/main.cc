// txbuf-bench: read/write/metadata workloads against txbufd, and compare
// mode (every txbufd engine against the peers). See the flags (flags.cc) and
// docs/BENCH.md.
//
// Exit status: 0 success; 1 a failure (or, with --check, errors or missing
// figures); 2 a usage error.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/cli/flags.h"
#include "bench/cli/progress.h"
#include "bench/load/compare.h"
#include "bench/report/charts.h"
#include "bench/report/checks.h"
#include "bench/report/figures.h"
#include "bench/report/report_html.h"
#include "bench/report/report_json.h"
#include "bench/report/report_text.h"
#include "bench/targets/txbufd/file_setup.h"
#include "bench/targets/txbufd/server_pid.h"
#include "bench/targets/txbufd/txbufd_driver.h"
#include "client/client.h"
#include "common/mutex_mode.h"

namespace txbuf::bench {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "txbuf-bench: %s\n", std::string(s.message()).c_str());
  return 1;
}

// Writes `text` to `path` ("-": standard output).
absl::Status WriteOutput(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    return absl::OkStatus();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

int CheckExit(const std::vector<std::string>& problems) {
  if (problems.empty()) return 0;
  for (const std::string& p : problems) {
    std::fprintf(stderr, "txbuf-bench: CHECK: %s\n", p.c_str());
  }
  return 1;
}

// A connection for setting up and removing the test files.
absl::StatusOr<std::unique_ptr<client::Client>> Connect(
    const Flags& f, const std::optional<std::string>& token) {
  client::ClientOptions o;
  o.host = f.server_host;
  o.port = f.server_port;
  o.token = token;
  o.export_name = f.export_name;
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(std::move(o));
  if (!c.ok() && absl::IsUnauthenticated(c.status()) && !token.has_value()) {
    return absl::Status(
        c.status().code(),
        absl::StrCat(c.status().message(), ": give it with --token-file FILE"));
  }
  return c;
}

int Measure(const Flags& f, const Workload& w,
            const std::optional<std::string>& token);

int Single(const Flags& f) {
  std::optional<std::string> token;
  if (!f.token_file.empty()) {
    absl::StatusOr<std::string> t = client::ReadTokenFile(f.token_file);
    if (!t.ok()) return Fail(t.status());
    token = *std::move(t);
  }
  Workload w = f.workload;
  if (!f.setup) return Measure(f, w, token);
  absl::StatusOr<std::unique_ptr<client::Client>> c = Connect(f, token);
  if (!c.ok()) return Fail(c.status());
  SetupResult setup = EnsureWorkloadFiles(**c, w, f.file_size_given,
                                          f.progress ? stderr : nullptr);
  // Not kept open during the run; reconnects to remove the files.
  c->reset();
  const int rc = setup.status.ok() ? Measure(f, w, token) : Fail(setup.status);
  if (f.keep_files || setup.created.entries.empty()) return rc;
  c = Connect(f, token);
  absl::Status removed =
      c.ok() ? RemoveCreatedFiles(**c, setup.created) : c.status();
  if (!removed.ok()) {
    std::fprintf(stderr, "txbuf-bench: removing the test files: %s\n",
                 std::string(removed.message()).c_str());
    return rc != 0 ? rc : 1;
  }
  return rc;
}

// The measured run of `w` (set up) and its report.
int Measure(const Flags& f, const Workload& w,
            const std::optional<std::string>& token) {
  const std::string server = absl::StrCat(f.server_host, ":", f.server_port);
  pid_t pid = f.server_pid;
  if (pid == 0) {
    absl::StatusOr<pid_t> found = FindListeningPid(f.server_port);
    if (found.ok()) {
      pid = *found;
    } else if (f.progress) {
      std::fprintf(stderr, "txbuf-bench: no server CPU figure: %s\n",
                   std::string(found.status().message()).c_str());
    }
  }
  TxbufdDriverOptions dopt;
  dopt.client_engine = f.client_engine;
  dopt.stats_period = absl::Seconds(f.stats_interval_s);
  dopt.shared_client = f.shared_client;
  dopt.token = token;
  dopt.export_name = f.export_name;
  TxbufdDriver driver(f.server_host, f.server_port, dopt);
  LiveCounters live;
  absl::StatusOr<RunResult> r;
  {
    ProgressLine line(f.progress && f.json_path.empty() ? stderr : nullptr,
                      live, w.warmup_s);
    r = driver.Run(w, pid, &live);
  }
  if (!r.ok()) return Fail(r.status());
  const Figures fig = ComputeFigures(*r);
  if (f.json_path != "-") {
    std::fputs(SingleRunText(w, server, fig).c_str(), stdout);
    std::fflush(stdout);
  }
  if (!f.json_path.empty()) {
    if (absl::Status s =
            WriteOutput(f.json_path, SingleRunJson(w, server, fig, *r));
        !s.ok()) {
      return Fail(s);
    }
  }
  if (fig.total_errors() != 0) {
    std::fprintf(stderr, "txbuf-bench: %llu errors, %llu verify failures\n",
                 static_cast<unsigned long long>(fig.errors),
                 static_cast<unsigned long long>(fig.verify_failures));
  }
  if (f.check) {
    std::vector<std::string> p = FigureProblems(w, pid > 0, fig);
    if (pid <= 0) {  // Server CPU cannot be there without a pid.
      std::erase(p, std::string("server CPU missing"));
    }
    return CheckExit(p);
  }
  return fig.total_errors() == 0 ? 0 : 1;
}

int Compare(const Flags& f) {
  absl::StatusOr<CompareOptions> o = CompareOptionsFromFlags(f);
  if (!o.ok()) {
    std::fprintf(stderr, "txbuf-bench: %s (try 'txbuf-bench --help')\n",
                 std::string(o.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<CompareReport> r =
      RunCompare(*o, f.progress ? stderr : nullptr);
  if (!r.ok()) return Fail(r.status());
  const std::vector<TargetCheck> checks = EvaluateTargets(*r);
  if (f.json_path != "-") {
    std::fputs(CompareText(*r, checks, TextStyle::kPlain).c_str(), stdout);
    std::fflush(stdout);
  }
  const std::pair<const std::string*,
                  std::string (*)(const CompareReport&,
                                  const std::vector<TargetCheck>&)>
      outputs[] = {
          {&f.json_path, &CompareJson},
          {&f.html_path, &CompareHtml},
          {&f.markdown_path,
           [](const CompareReport& rep, const std::vector<TargetCheck>& c) {
             return CompareText(rep, c, TextStyle::kMarkdown);
           }},
      };
  for (const auto& [path, render] : outputs) {
    if (path->empty()) continue;
    if (absl::Status s = WriteOutput(*path, render(*r, checks)); !s.ok()) {
      return Fail(s);
    }
  }
  if (!f.svg_dir.empty()) {
    if (absl::Status s = WriteChartFiles(*r, f.svg_dir); !s.ok()) {
      return Fail(s);
    }
  }
  std::vector<std::string> problems = ReportProblems(*r);
  if (f.check) return CheckExit(problems);
  return problems.empty() ? 0 : 1;
}

int Main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  absl::SetProgramUsageMessage(kUsage);
  absl::StatusOr<Flags> f =
      ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!f.ok()) {
    std::fprintf(stderr, "txbuf-bench: %s (try 'txbuf-bench --help')\n",
                 std::string(f.status().message()).c_str());
    return 2;
  }
  if (f->help) {
    std::fputs(BenchHelp().c_str(), stdout);
    return 0;
  }
  if (f->version) {
    std::printf("txbuf-bench %s\n", TXBUF_VERSION);
    return 0;
  }
  return f->compare ? Compare(*f) : Single(*f);
}

}  // namespace
}  // namespace txbuf::bench

int main(int argc, char** argv) {
  txbuf::UseProductionMutexMode();
  return txbuf::bench::Main(argc, argv);
}
