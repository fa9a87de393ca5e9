// tests/server_process.h: a real txbufd process for end-to-end tests.
//
// Starts the txbufd binary on a temporary export (or a given one), waits for
// its "listening on HOST:PORT" line, and stops it with SIGTERM, collecting
// the exit status and the final JSON stats line. Killed if still running at
// destruction.
//
// Thread-safety: thread-compatible.
#ifndef TXBUF_TESTS_SERVER_PROCESS_H_
#define TXBUF_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txbuf::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Join(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Writes `bytes` to `path` (creating directories as needed).
void WriteFile(const std::string& path, const std::string& bytes);
// WriteFile, for a secret: the file is created readable by its owner only
// (mode 0600; txbufd refuses a token file others may read).
void WriteSecretFile(const std::string& path, const std::string& bytes);
std::string ReadFileOrDie(const std::string& path);

struct ServerExit {
  int exit_code = -1;  // -1: killed by a signal
  int term_signal = 0;
  std::string stats_json;  // the final stats line
  std::string stdout_text;
};

// How the server process starts.
struct ProcessOptions {
  // RLIMIT_NOFILE, soft and hard (so the server cannot raise it); 0:
  // inherited.
  unsigned long nofile = 0;
  // RLIMIT_MEMLOCK in bytes, soft and hard (so the server cannot raise
  // it); unset: inherited.
  std::optional<unsigned long> memlock;
  // If set, the server's stderr (its log) goes to this file (appended)
  // instead of the test's.
  std::string stderr_path;
  // Add --listen 127.0.0.1:0 when `args` have no --listen (false: the
  // --config file's `listen`, or the default port, is used).
  bool add_listen = true;
  // A command that runs txbufd, its path and arguments appended (e.g.
  // {"/usr/bin/setpriv", "--reuid", "1234", ...}); empty: txbufd itself.
  std::vector<std::string> wrapper;
};

class ServerProcess {
 public:
  // `args` follow the binary name; --listen 127.0.0.1:0 is added unless
  // given (or options.add_listen is false), and --threads
  // $TXBUF_TEST_SERVER_THREADS when that is set and
  // --threads is not given.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      std::vector<std::string> args, const ProcessOptions& options = {});
  ~ServerProcess();

  const std::string& address() const { return address_; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // The next line txbufd prints on stdout after the first "listening on"
  // (e.g. the next "listening on", with several --listen), without its
  // newline; DeadlineExceeded after `timeout`, an error if stdout closes.
  absl::StatusOr<std::string> ReadLine(
      absl::Duration timeout = absl::Seconds(60));
  // SIGTERM, then waits up to `timeout_s` for exit (SIGKILL after).
  ServerExit Stop(int timeout_s = 60);
  // Resident set size in KiB, from /proc/PID/status.
  long RssKib() const;
  // Memory pinned by the kernel for the process (io_uring fixed buffers),
  // in KiB: VmPin in /proc/PID/status, or -1.
  long VmPinKib() const;
  // Descriptors the process holds open, and how many of them are of files
  // that were removed ("(deleted)" in /proc/PID/fd), or -1.
  long OpenFds() const;
  long DeletedFds() const;
  bool Running() const;

 private:
  ServerProcess() = default;
  // The value of `field` ("VmRSS:") in /proc/PID/status, in KiB, or -1.
  long StatusKib(const std::string& field) const;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string address_, host_;
  uint16_t port_ = 0;
  std::string early_out_;
  std::string stderr_path_;  // ProcessOptions::stderr_path
};

// Path of the built txbufd binary (set by CMake).
std::string TxbufdPath();

// Runs `cmd` with sh (popen) to its end: what it wrote on stdout (add
// "2>&1" for stderr too) and its exit code (-1 if it did not exit).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};
CommandResult RunCommand(const std::string& cmd);

// Polls `cond` every millisecond until it holds or `timeout` passes; whether
// it held. For what another thread or process does: wait for the condition,
// never for a fixed time.
bool WaitFor(const std::function<bool()>& cond,
             absl::Duration timeout = absl::Seconds(10));

}  // namespace txbuf::testing

#endif  // TXBUF_TESTS_SERVER_PROCESS_H_
