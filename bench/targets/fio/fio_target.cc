#include "bench/targets/fio/fio_target.h"

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/pattern.h"
#include "bench/targets/binary_path.h"
#include "bench/targets/child_process.h"
#include "bench/targets/fio/fio_json.h"

namespace txbuf::bench {
namespace {

using peers::internal::ChildProcess;

constexpr long kFuseSuperMagic = 0x65735546;

// `name` on $PATH, or empty.
std::string OnPath(const char* name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (Executable(candidate)) return candidate;
  }
  return "";
}

std::string FindFio(const std::string& flag) {
  return FindBinary(
      {.flag = flag, .env = "TXBUF_FIO", .fallback = OnPath("fio")});
}

bool IsFuseMount(const std::string& dir) {
  struct statfs s {};
  return statfs(dir.c_str(), &s) == 0 &&
         static_cast<long>(s.f_type) == kFuseSuperMagic;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last line of `text` that is not blank (for error messages).
std::string Tail(const std::string& text, size_t max = 400) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.size() > max) t = t.substr(t.size() - max);
  return t;
}

// Runs `argv` to its end (at most `timeout`; then it is stopped), stdout and
// stderr into `output` (a file, truncated first). OK iff it exited 0.
absl::Status RunToEnd(const std::vector<std::string>& argv,
                      const std::string& output, absl::Duration timeout) {
  std::filesystem::remove(output);
  ChildProcess::Options opt;
  opt.output_path = output;
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Spawn(argv, opt);
  if (!child.ok()) return child.status();
  const absl::Time deadline = absl::Now() + timeout;
  std::string how;
  while ((*child)->Running(&how)) {
    if (absl::Now() > deadline) {
      (*child)->Stop(absl::Seconds(5)).IgnoreError();
      return absl::DeadlineExceededError(absl::StrCat(
          argv[0], " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (how != "exit status 0") {
    return absl::InternalError(absl::StrCat(argv[0], " ended with ", how, ": ",
                                            Tail(ReadAll(output))));
  }
  return absl::OkStatus();
}

// The directory for scratch files and mount points: TMPDIR, or /tmp.
std::string ScratchDir() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && dir[0] != '\0' ? dir : "/tmp";
}

// A scratch file name under ScratchDir() (removed by its owner).
std::string ScratchPath(const char* what) {
  std::string tmpl =
      absl::StrCat(ScratchDir(), "/txbuf-bench-", what, "-XXXXXX");
  int fd = mkstemp(tmpl.data());
  if (fd >= 0) close(fd);
  return tmpl;
}

// `txbuf mount -f` of `server` on a temporary directory, as a child.
class Mount {
 public:
  Mount() = default;
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;
  ~Mount() { Unmount().IgnoreError(); }

  absl::Status Start(const std::string& cli, const std::string& server,
                     int connections) {
    std::string tmpl = absl::StrCat(ScratchDir(), "/txbuf-bench-mnt-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
    }
    dir_ = tmpl;
    log_ = ScratchPath("mount-log");
    ChildProcess::Options opt;
    opt.output_path = log_;
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Spawn({cli, "--connections", absl::StrCat(connections),
                             "mount", server, dir_, "-f"},
                            opt);
    if (!child.ok()) return child.status();
    child_ = *std::move(child);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::string how;
    while (!IsFuseMount(dir_)) {
      if (!child_->Running(&how)) {
        return absl::UnavailableError(absl::StrCat(
            "txbuf mount ended with ", how, ": ", Tail(ReadAll(log_))));
      }
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("txbuf mount: ", dir_,
                         " not mounted after 30 s: ", Tail(ReadAll(log_))));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::OkStatus();
  }

  const std::string& dir() const { return dir_; }

  // fusermount3 -u; the mount process ends (SIGTERM if it does not); if the
  // directory is still a FUSE mount, fusermount3 -u -z. Idempotent.
  absl::Status Unmount() {
    if (dir_.empty()) return absl::OkStatus();
    absl::Status status;
    const std::string out = ScratchPath("umount");
    if (IsFuseMount(dir_)) {
      status = RunToEnd({"fusermount3", "-u", dir_}, out, absl::Seconds(30));
    }
    if (child_ != nullptr) {
      // Unmounted, `txbuf mount -f` exits by itself; else SIGTERM unmounts.
      const absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (child_->Running() && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      absl::Status s = child_->Stop(absl::Seconds(10));
      if (status.ok() && !s.ok()) status = s;
      child_.reset();
    }
    if (IsFuseMount(dir_)) {
      absl::Status s =
          RunToEnd({"fusermount3", "-u", "-z", dir_}, out, absl::Seconds(30));
      if (status.ok()) {
        status = absl::InternalError(
            absl::StrCat("needed a lazy unmount of ", dir_, ": ",
                         s.ok() ? "done" : s.message()));
      }
    }
    std::error_code ec;
    std::filesystem::remove(out, ec);
    std::filesystem::remove(log_, ec);
    if (!IsFuseMount(dir_)) std::filesystem::remove(dir_, ec);
    dir_.clear();
    return status;
  }

 private:
  std::string dir_;
  std::string log_;
  std::unique_ptr<ChildProcess> child_;
};

class FioTarget : public Target {
 public:
  FioTarget(std::string name, std::string fio, std::string dir, bool direct,
            std::unique_ptr<Mount> mount)
      : name_(std::move(name)),
        fio_(std::move(fio)),
        dir_(std::move(dir)),
        direct_(direct),
        mount_(std::move(mount)),
        output_(ScratchPath("fio-out")) {}
  ~FioTarget() override {
    Stop().IgnoreError();
    std::error_code ec;
    std::filesystem::remove(output_, ec);
  }

  const std::string& name() const override { return name_; }
  bool is_engine() const override { return false; }
  bool CanRun(const Workload& w) const override { return FioCanRun(w); }

  // fio-mount: one untimed read of fio's file through the mount, so txbufd's
  // cache is as warm as for the library-level runs.
  absl::Status Prepare(const std::string&, uint64_t size) override {
    if (mount_ == nullptr) return absl::OkStatus();
    const std::string path = absl::StrCat(dir_, "/", kFioFile);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("open ", path, ": ", strerror(errno)));
    }
    std::vector<char> buf(size_t{1} << 20);
    absl::Status status;
    for (uint64_t off = 0; off < size;) {
      ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
      if (n <= 0) {
        if (n < 0) status = absl::InternalError(strerror(errno));
        break;
      }
      off += static_cast<uint64_t>(n);
    }
    close(fd);
    return status;
  }

  absl::StatusOr<RunResult> Run(const Workload& w) override {
    if (!CanRun(w)) {
      return absl::UnimplementedError(
          absl::StrCat(name_, " cannot run ", w.Id()));
    }
    const std::vector<std::string> argv =
        FioCommand(fio_, w, absl::StrCat(dir_, "/", kFioFile), direct_);
    const absl::Duration timeout =
        absl::Seconds(w.duration_s + w.warmup_s) + absl::Seconds(120);
    absl::Status ran = RunToEnd(argv, output_, timeout);
    const std::string out = ReadAll(output_);
    if (!ran.ok()) return ran;
    return ParseFioJson(out, w.kind);
  }

  absl::Status Stop() override {
    if (mount_ == nullptr) return absl::OkStatus();
    absl::Status s = mount_->Unmount();
    mount_.reset();
    return s;
  }

 private:
  std::string name_;
  std::string fio_;
  std::string dir_;
  bool direct_;
  std::unique_ptr<Mount> mount_;
  std::string output_;
};

// Why `txbuf mount` cannot run here, or empty.
std::string MountUnavailable(const std::string& cli) {
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return absl::StrCat("/dev/fuse: ", strerror(errno));
  }
  if (geteuid() != 0 && OnPath("fusermount3").empty()) {
    return "not root and no fusermount3 (Debian: fuse3)";
  }
  if (OnPath("fusermount3").empty()) {
    return "no fusermount3 to unmount with (Debian: fuse3)";
  }
  if (!Executable(cli)) return absl::StrCat("txbuf binary ", cli, " not found");
  return "";
}

}  // namespace

bool FioCanRun(const Workload& w) {
  return w.kind == WorkloadKind::kRead || w.kind == WorkloadKind::kWrite;
}

std::vector<std::string> FioCommand(const std::string& fio, const Workload& w,
                                    const std::string& path, bool direct) {
  const bool read = w.kind == WorkloadKind::kRead;
  const char* rw =
      w.random ? (read ? "randread" : "randwrite") : (read ? "read" : "write");
  const int jobs = std::max(1, w.concurrency);
  std::vector<std::string> argv = {
      fio,
      absl::StrCat("--name=", w.Id()),
      absl::StrCat("--filename=", path),
      absl::StrCat("--rw=", rw),
      absl::StrCat("--bs=", w.size),
      "--ioengine=psync",
      absl::StrCat("--numjobs=", jobs),
      "--thread",
      "--group_reporting",
      absl::StrCat("--direct=", direct ? 1 : 0),
      "--invalidate=0",
      "--fallocate=none",
      "--allow_file_create=0",
      absl::StrCat(
          "--runtime=", std::max<int64_t>(1, std::llround(w.duration_s * 1000)),
          "ms"),
      "--time_based",
      "--output-format=json+",
  };
  if (w.warmup_s > 0) {
    argv.push_back(
        absl::StrCat("--ramp_time=", std::llround(w.warmup_s * 1000), "ms"));
  }
  if (w.random || jobs == 1) {
    argv.push_back(absl::StrCat("--size=", w.file_size));
  } else {
    // Each job its own slice, whole ops.
    uint64_t slice = w.file_size / static_cast<uint64_t>(jobs);
    slice -= slice % std::max<uint64_t>(1, w.size);
    slice = std::max<uint64_t>(slice, w.size);
    argv.push_back(absl::StrCat("--size=", slice));
    argv.push_back(absl::StrCat("--offset_increment=", slice));
  }
  return argv;
}

std::string FindTxbufCli(const std::string& flag) {
  return FindBinary(
      {.flag = flag,
       .env = "TXBUF_CLI",
#ifdef TXBUF_CLI_PATH
       .built = TXBUF_CLI_PATH,
#endif
       .near_self = {"txbuf", "../../client/txbuf", "../client/txbuf"},
       .fallback = "txbuf"});
}

FioFamily StartFioTargets(const FioOptions& o) {
  FioFamily family;
  const std::string fio = FindFio(o.fio);
  if (!Executable(fio)) {
    family.notes.push_back(
        "fio left out: no fio binary (Debian: fio; scripts/install-deps.sh)");
    return family;
  }
  const std::string file = absl::StrCat(o.export_dir, "/", kFioFile);
  if (absl::Status s = CreatePatternFile(file, o.seed, o.file_size); !s.ok()) {
    family.notes.push_back(
        absl::StrCat("fio left out: creating ", file, ": ", s.message()));
    return family;
  }
  family.created_file = file;

  if (o.server.empty()) {
    family.notes.push_back("fio-mount left out: no txbufd engine is running");
  } else {
    const std::string cli = FindTxbufCli(o.txbuf_cli);
    if (std::string why = MountUnavailable(cli); !why.empty()) {
      family.notes.push_back(absl::StrCat("fio-mount left out: ", why));
    } else {
      auto mount = std::make_unique<Mount>();
      if (absl::Status s = mount->Start(cli, o.server, o.connections);
          !s.ok()) {
        family.notes.push_back(
            absl::StrCat("fio-mount left out: ", s.message()));
      } else {
        std::string dir = mount->dir();
        family.targets.push_back(
            std::make_unique<FioTarget>("fio-mount", fio, std::move(dir),
                                        /*direct=*/true, std::move(mount)));
      }
    }
  }
  family.targets.push_back(std::make_unique<FioTarget>(
      "fio-local", fio, o.export_dir, /*direct=*/false, nullptr));
  return family;
}

}  // namespace txbuf::bench
