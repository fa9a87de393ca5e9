// txbufd: the txbuf file server.
//
//   txbufd --export DIR [--listen HOST:PORT] [--engine E] [--threads N] ...
//   txbufd --config /etc/txbuf/txbufd.conf [flags that win over it]
//
// The flags and their help are in server/flags.cc (Abseil flags).
// Prints "listening on HOST:PORT" on stdout when ready. On SIGTERM or SIGINT
// it stops accepting, finishes or aborts what is in flight, waits for every
// txbuf destructor, writes back cached data, prints one JSON line of final
// statistics (pinned_bytes is 0) and exits 0; SIGQUIT does the same. On SIGHUP
// it reads the token file again (connections authenticating from then on need
// the new token; an unreadable or empty file keeps the old one) and, with
// --config, the file's budgets and intervals, and goes on (docs/OPERATING.md).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "common/command_line.h"
#include "common/mutex_mode.h"
#include "server/flags.h"
#include "server/logging.h"
#include "server/server.h"

namespace {

[[noreturn]] void Die(const std::string& msg, int code = 2) {
  std::fprintf(stderr, "txbufd: %s\n", msg.c_str());
  if (code == 2) std::fprintf(stderr, "Try 'txbufd --help'.\n");
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  txbuf::UseProductionMutexMode();
  absl::SetProgramUsageMessage(txbuf::server::kTxbufdUsage);
  // The flags (server/flags.cc): the command line is read once; the options
  // are built from the defaults, the --config file and it, here and again
  // on each SIGHUP.
  absl::StatusOr<txbuf::CommandLine> cli = txbuf::server::ReadTxbufdCommandLine(
      std::vector<std::string>(argv + 1, argv + argc));
  if (!cli.ok()) Die(std::string(cli.status().message()));
  if (cli->help) {
    std::fputs(txbuf::server::TxbufdHelp().c_str(), stdout);
    return 0;
  }
  if (cli->version) {
    std::printf("txbufd %s\n", TXBUF_VERSION);
    return 0;
  }
  const std::string config = txbuf::server::ConfigPath(*cli);
  absl::StatusOr<txbuf::server::ServerOptions> built =
      txbuf::server::BuildServerOptions(*cli);
  if (!built.ok()) {
    Die(std::string(built.status().message()),
        built.status().code() == absl::StatusCode::kFailedPrecondition ? 1 : 2);
  }
  const txbuf::server::ServerOptions& o = *built;
  // Each log line's time goes through mktime, whose tzset frees and reloads
  // the zone (reading /etc/localtime) on every call while TZ is unset: name
  // the same zone once, so it is read once (as systemd advises), unless the
  // environment chose one. (ThreadSanitizer also reported the reload's
  // free/strdup across threads: glibc's own lock is invisible to it.)
  setenv("TZ", ":/etc/localtime", /*overwrite=*/0);
  txbuf::server::InitLogging(argv[0], o.log_level);
  // CREATE, MKDIR and SYMLINK get the modes the client asks for, whatever
  // the shell's umask (the client applies its own, as with NFS).
  umask(0);

  // Signals: handled by sigwait on this thread; blocked in every worker.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<txbuf::server::Server>> server =
      txbuf::server::Server::Start(o);
  if (!server.ok()) Die(std::string(server.status().message()), 1);
  // One line per address, the first (--listen's first) first.
  for (const std::string& address : (*server)->addresses()) {
    std::printf("listening on %s\n", address.c_str());
  }
  std::fflush(stdout);

  // SIGHUP reloads what can change under running connections (the token
  // file; with --config, the file's budgets and intervals too); SIGTERM,
  // SIGINT and SIGQUIT drain, write back and exit 0.
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    if (!config.empty()) {
      absl::StatusOr<txbuf::server::ServerOptions> fresh =
          txbuf::server::BuildServerOptions(*cli);
      if (!fresh.ok()) {
        TXBUF_LOG(ERROR) << "SIGHUP: kept the running settings: "
                         << fresh.status().message();
        continue;
      }
      std::vector<std::string> said = (*server)->Reload(*fresh);
      if (said.empty()) said.push_back("nothing changed");
      for (const std::string& line : said) {
        TXBUF_LOG(NOTICE) << "SIGHUP: " << config << ": " << line;
      }
    } else if (o.token_file.empty()) {
      TXBUF_LOG(NOTICE) << "SIGHUP: nothing to reload";
    } else if (absl::Status s = (*server)->ReloadToken(); s.ok()) {
      TXBUF_LOG(NOTICE) << "SIGHUP: reloaded the token file " << o.token_file;
    } else {
      TXBUF_LOG(ERROR) << "SIGHUP: kept the old token: " << s.message();
    }
  }
  TXBUF_LOG(NOTICE) << "stopping on SIG" << sigabbrev_np(sig)
                    << ": draining, then writing back cached data";
  (*server)->Shutdown();
  std::printf("%s\n", (*server)->StatsJson().c_str());
  std::fflush(stdout);
  return 0;
}
