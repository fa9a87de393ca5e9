// child_process.h: a server process started by the benchmark (fork + exec),
// with its stdout on a pipe (to read a readiness line) or in a file, killed
// with the parent (PR_SET_PDEATHSIG), stopped with SIGTERM then SIGKILL.
//
// Thread-safety: not thread-safe; one owner.
//
// Example:
//   auto child = ChildProcess::Spawn({"/usr/bin/server", "--listen", "..."});
//   absl::StatusOr<std::string> line =
//       (*child)->WaitForLine("listening on ", absl::Seconds(10));
//   (*child)->Stop(absl::Seconds(5));
#ifndef TXBUF_BENCH_TARGETS_CHILD_PROCESS_H_
#define TXBUF_BENCH_TARGETS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/socket_util.h"

namespace txbuf::peers::internal {

class ChildProcess {
 public:
  struct Options {
    // Empty: stdout goes to a pipe read by WaitForLine. Else appended here,
    // as is stderr.
    std::string output_path;
  };

  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const Options& options);
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv) {
    return Spawn(argv, Options{});
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Reads stdout lines until one starts with `prefix` and returns the rest
  // of it. Fails if the child exits or `timeout` passes first (the message
  // includes what it printed).
  absl::StatusOr<std::string> WaitForLine(absl::string_view prefix,
                                          absl::Duration timeout);

  // True while the child runs; once it has exited, false and `*how` says
  // how ("exit status 1", "killed by signal 9").
  bool Running(std::string* how = nullptr);

  // SIGTERM, wait up to `grace`, then SIGKILL; reaps. OK if it exited from
  // the SIGTERM (or earlier with status 0); otherwise says how it ended.
  // Later calls return the first call's status.
  absl::Status Stop(absl::Duration grace);

 private:
  ChildProcess(pid_t pid, UniqueFd out) : pid_(pid), out_(std::move(out)) {}
  static std::string Describe(int wstatus);
  absl::Status StopOnce(absl::Duration grace);
  // Reads what stdout's pipe holds into captured_, waiting up to
  // `timeout_ms` for it (just waits when there is no pipe or it is closed).
  void DrainOutput(int timeout_ms);

  pid_t pid_;
  UniqueFd out_;
  bool reaped_ = false;
  bool stopped_ = false;
  absl::Status stop_status_;
  int wstatus_ = 0;
  std::string captured_;
};

}  // namespace txbuf::peers::internal

#endif  // TXBUF_BENCH_TARGETS_CHILD_PROCESS_H_
