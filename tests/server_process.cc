#include "tests/server_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/socket_util.h"
#include "gtest/gtest.h"

namespace txbuf::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/txbuf-test-XXXXXX");
  char* p = mkdtemp(tmpl.data());
  if (p == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void WriteSecretFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  UniqueFd fd(
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || fchmod(fd.get(), 0600) != 0 ||
      write(fd.get(), bytes.data(), bytes.size()) !=
          static_cast<ssize_t>(bytes.size())) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string TxbufdPath() {
  // $TXBUFD overrides the build path (e.g. inside the kmod guest).
  const char* env = getenv("TXBUFD");
  return env != nullptr && *env != '\0' ? env : TXBUFD_PATH;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    std::vector<std::string> args, const ProcessOptions& options) {
  bool has_listen = false, has_threads = false;
  for (const auto& a : args) {
    has_listen |= absl::StartsWith(a, "--listen");
    has_threads |= absl::StartsWith(a, "--threads");
  }
  if (!has_listen && options.add_listen) {
    args.push_back("--listen");
    args.push_back("127.0.0.1:0");
  }
  // $TXBUF_TEST_SERVER_THREADS: the worker threads of every server whose
  // test does not choose (the TSan stage of scripts/run-tests.sh sets 2).
  const char* threads = getenv("TXBUF_TEST_SERVER_THREADS");
  int n = 0;
  if (!has_threads && threads != nullptr && absl::SimpleAtoi(threads, &n) &&
      n > 0) {
    args.push_back("--threads");
    args.push_back(absl::StrCat(n));
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  std::string bin = TxbufdPath();
  // The command line, made before fork (the child only execs it).
  std::vector<std::string> wrapper = options.wrapper;
  std::vector<char*> argv;
  for (auto& a : wrapper) argv.push_back(a.data());
  argv.push_back(bin.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // If the test dies without its destructors (an abort, a sanitizer
    // report), the server goes too: an orphan would keep ctest's output pipe
    // open, and ctest would wait for it until its timeout.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out[1], 1);
    if (!options.stderr_path.empty()) {
      const int err = open(options.stderr_path.c_str(),
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (err < 0 || dup2(err, 2) < 0) _exit(125);
    }
    if (options.nofile != 0) {
      rlimit rl{options.nofile, options.nofile};
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
    }
    if (options.memlock.has_value()) {
      rlimit rl{*options.memlock, *options.memlock};
      if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) _exit(126);
    }
#ifdef TXBUF_SANITIZE
    // ASan keeps freed memory in a quarantine (256 MiB by default), which
    // makes the server's RSS grow without a leak and defeats the tests that
    // watch it. Keep it small; LeakSanitizer still checks leaks at exit.
    std::string asan = getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "";
    asan += ":quarantine_size_mb=2:thread_local_quarantine_size_kb=64";
    setenv("ASAN_OPTIONS", asan.c_str(), 1);
#endif
    execv(argv[0], argv.data());
    std::perror(argv[0]);
    _exit(127);
  }
  close(out[1]);
  std::unique_ptr<ServerProcess> p(new ServerProcess());
  p->pid_ = pid;
  p->stderr_path_ = options.stderr_path;
  p->out_fd_ = out[0];
  // Read until "listening on ...\n" (or exit / 120 s: a bound for a hung
  // txbufd, not a guess at how long a start takes; in the emulated kmod
  // guest on a busy host it takes seconds).
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (text.find('\n') == std::string::npos) {
    pollfd pfd{out[0], POLLIN, 0};
    int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - std::chrono::steady_clock::now())
                             .count());
    if (left <= 0) return absl::DeadlineExceededError("txbufd did not start");
    if (poll(&pfd, 1, left) <= 0) continue;
    char buf[256];
    ssize_t r = read(out[0], buf, sizeof(buf));
    if (r <= 0) {
      int st = 0;
      waitpid(pid, &st, 0);
      p->pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("txbufd exited before listening (status ", st, ")"));
    }
    text.append(buf, static_cast<size_t>(r));
  }
  std::string line = text.substr(0, text.find('\n'));
  p->early_out_ = text.substr(text.find('\n') + 1);
  if (!absl::StartsWith(line, "listening on ")) {
    return absl::InternalError(absl::StrCat("unexpected first line: ", line));
  }
  p->address_ = line.substr(strlen("listening on "));
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(p->address_);
  if (!hp.ok()) return hp.status();
  p->host_ = hp->first;
  p->port_ = hp->second;
  return p;
}

absl::StatusOr<std::string> ServerProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (early_out_.find('\n') == std::string::npos) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no line from txbufd in time");
    }
    pollfd pfd{out_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <=
        0) {
      continue;
    }
    char buf[256];
    const ssize_t r = read(out_fd_, buf, sizeof(buf));
    if (r <= 0) return absl::UnavailableError("txbufd closed its stdout");
    early_out_.append(buf, static_cast<size_t>(r));
  }
  const size_t nl = early_out_.find('\n');
  std::string line = early_out_.substr(0, nl);
  early_out_.erase(0, nl + 1);
  return line;
}

namespace {

// A server that exited with ThreadSanitizer's exit code found a data race
// (its report is on the test's stderr). Fail the test even if it does not
// look at the exit status. When the server's stderr went to a file, a
// server that did not exit 0 has it copied to the test's stderr (where a
// sanitizer's report is looked for).
void CheckSanitizerExit(int wait_status, const std::string& stderr_path) {
  if (!stderr_path.empty() &&
      !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)) {
    std::ifstream f(stderr_path);
    std::stringstream ss;
    ss << f.rdbuf();
    std::fprintf(stderr, "--- txbufd's stderr (%s) ---\n%s--- end ---\n",
                 stderr_path.c_str(), ss.str().c_str());
  }
#ifdef TXBUF_TSAN
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 66) {
    ADD_FAILURE() << "txbufd exited with ThreadSanitizer's exit code 66: "
                     "see its report above";
  }
#endif
}

}  // namespace

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    CheckSanitizerExit(st, stderr_path_);
  }
  if (out_fd_ >= 0) close(out_fd_);
}

bool ServerProcess::Running() const {
  return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0;
}

long ServerProcess::RssKib() const { return StatusKib("VmRSS:"); }

long ServerProcess::VmPinKib() const { return StatusKib("VmPin:"); }

long ServerProcess::StatusKib(const std::string& field) const {
  std::ifstream f(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (absl::StartsWith(line, field)) {
      long v = 0;
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &v)) return v;
    }
  }
  return -1;
}

namespace {

// Calls fn(link target) for each descriptor of `pid`; returns the count or
// -1.
template <typename Fn>
long ForEachFd(pid_t pid, Fn fn) {
  std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  long n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[4096];
    ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof(target));
    if (len < 0) continue;  // closed meanwhile
    ++n;
    fn(absl::string_view(target, static_cast<size_t>(len)));
  }
  closedir(d);
  return n;
}

}  // namespace

long ServerProcess::OpenFds() const {
  return ForEachFd(pid_, [](absl::string_view) {});
}

long ServerProcess::DeletedFds() const {
  long deleted = 0;
  long n = ForEachFd(pid_, [&deleted](absl::string_view t) {
    if (absl::EndsWith(t, " (deleted)")) ++deleted;
  });
  return n < 0 ? -1 : deleted;
}

ServerExit ServerProcess::Stop(int timeout_s) {
  ServerExit e;
  if (pid_ <= 0) return e;
  kill(pid_, SIGTERM);
  int st = 0;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string out = early_out_;
  for (;;) {
    char buf[4096];
    pollfd pfd{out_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 50) > 0) {
      ssize_t r = read(out_fd_, buf, sizeof(buf));
      if (r > 0) out.append(buf, static_cast<size_t>(r));
    }
    pid_t w = waitpid(pid_, &st, WNOHANG);
    if (w == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      break;
    }
  }
  // Drain what is left.
  for (;;) {
    char buf[4096];
    ssize_t r = read(out_fd_, buf, sizeof(buf));
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  pid_ = -1;
  CheckSanitizerExit(st, stderr_path_);
  e.stdout_text = out;
  if (WIFEXITED(st)) {
    e.exit_code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    e.term_signal = WTERMSIG(st);
  }
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(l, "{")) e.stats_json = std::string(l);
  }
  return e;
}

CommandResult RunCommand(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int st = pclose(p);
  if (st != -1 && WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  return r;
}

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace txbuf::testing
