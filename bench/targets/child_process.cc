#include "bench/targets/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"

namespace txbuf::peers::internal {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int out_fd = -1;
  UniqueFd read_end;
  if (options.output_path.empty()) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
    read_end.reset(p[0]);
    out_fd = p[1];
  } else {
    out_fd = ::open(options.output_path.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      return ErrnoStatus(errno, absl::StrCat("open ", options.output_path));
    }
  }
  UniqueFd write_end(out_fd);
  bool to_file = !options.output_path.empty();
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    dup2(out_fd, STDOUT_FILENO);
    if (to_file) dup2(out_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    setpgid(0, 0);  // Own process group: terminal signals are ours to send.
    execv(args[0], args.data());
    const char msg[] = "exec failed\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    static_cast<void>(ignored);
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(
      new ChildProcess(pid, std::move(read_end)));
}

ChildProcess::~ChildProcess() { Stop(absl::Seconds(5)).IgnoreError(); }

std::string ChildProcess::Describe(int wstatus) {
  if (WIFEXITED(wstatus))
    return absl::StrCat("exit status ", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wstatus));
  }
  return absl::StrCat("wait status ", wstatus);
}

bool ChildProcess::Running(std::string* how) {
  if (!reaped_) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      wstatus_ = st;
    } else if (r < 0 && errno == ECHILD) {
      reaped_ = true;
    }
  }
  if (reaped_ && how != nullptr) *how = Describe(wstatus_);
  return !reaped_;
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(absl::string_view prefix,
                                                      absl::Duration timeout) {
  if (!out_) return absl::FailedPreconditionError("stdout is not a pipe");
  const int64_t deadline = MonoNowNs() + absl::ToInt64Nanoseconds(timeout);
  size_t scanned = 0;
  while (true) {
    // Look for a complete line starting with `prefix`.
    size_t nl;
    while ((nl = captured_.find('\n', scanned)) != std::string::npos) {
      absl::string_view line(captured_.data() + scanned, nl - scanned);
      scanned = nl + 1;
      if (line.substr(0, prefix.size()) == prefix) {
        std::string rest(line.substr(prefix.size()));
        return rest;
      }
    }
    int64_t left_ms = (deadline - MonoNowNs()) / 1000000;
    std::string how;
    if (left_ms <= 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no '", prefix, "' line within ",
                       absl::FormatDuration(timeout), "; output: ", captured_));
    }
    pollfd pfd{out_.get(), POLLIN, 0};
    int pr = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 100)));
    if (pr < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    if (pr > 0) {
      char buf[4096];
      ssize_t n = read(out_.get(), buf, sizeof(buf));
      if (n > 0) {
        captured_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 && !Running(&how)) {
        return absl::UnavailableError(absl::StrCat(
            "server exited (", how, ") before ready; output: ", captured_));
      }
      if (n == 0) usleep(10000);  // Closed stdout but still running.
    } else if (!Running(&how)) {
      return absl::UnavailableError(absl::StrCat(
          "server exited (", how, ") before ready; output: ", captured_));
    }
  }
}

void ChildProcess::DrainOutput(int timeout_ms) {
  if (!out_) {
    usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    return;
  }
  pollfd pfd{out_.get(), POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return;
  char buf[65536];
  const ssize_t n = read(out_.get(), buf, sizeof(buf));
  if (n > 0) {
    captured_.append(buf, static_cast<size_t>(n));
  } else {
    usleep(static_cast<useconds_t>(timeout_ms) * 1000);  // closed: no busy loop
  }
}

absl::Status ChildProcess::Stop(absl::Duration grace) {
  if (stopped_) return stop_status_;
  stopped_ = true;
  stop_status_ = StopOnce(grace);
  return stop_status_;
}

absl::Status ChildProcess::StopOnce(absl::Duration grace) {
  if (Running()) {
    kill(pid_, SIGTERM);
    const int64_t deadline = MonoNowNs() + absl::ToInt64Nanoseconds(grace);
    // Drain its stdout meanwhile: a server that prints more than a pipe
    // holds on the way out (txbufd's final statistics line is ~70 KiB)
    // would otherwise block in write() and never exit.
    while (Running() && MonoNowNs() < deadline) DrainOutput(5);
    if (Running()) {
      kill(pid_, SIGKILL);
      int st = 0;
      while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      wstatus_ = st;
      out_.reset();
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " ignored SIGTERM for ",
                       absl::FormatDuration(grace), "; killed"));
    }
    out_.reset();
    if ((WIFSIGNALED(wstatus_) && WTERMSIG(wstatus_) == SIGTERM) ||
        (WIFEXITED(wstatus_) && WEXITSTATUS(wstatus_) == 0)) {
      return absl::OkStatus();
    }
    return absl::InternalError(
        absl::StrCat("pid ", pid_, " ended with ", Describe(wstatus_)));
  }
  out_.reset();
  if (WIFEXITED(wstatus_) && WEXITSTATUS(wstatus_) == 0)
    return absl::OkStatus();
  return absl::InternalError(absl::StrCat("pid ", pid_, " had already ended (",
                                          Describe(wstatus_), ")"));
}

}  // namespace txbuf::peers::internal
