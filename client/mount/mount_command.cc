// client/mount/mount_command.cc: see mount_command.h.
#include "client/mount/mount_command.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/mount/mount_fs.h"
#include "common/socket_util.h"

namespace txbuf::client::mount {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("mount: ", what));
}

absl::StatusOr<double> Seconds(absl::string_view name,
                               absl::string_view value) {
  double s = 0;
  if (!absl::SimpleAtod(value, &s) || !std::isfinite(s) || s < 0 || s > 1e6) {
    return Bad(absl::StrCat("bad value '", value, "' for --", name,
                            " (seconds, 0 or more)"));
  }
  return s;
}

// Writes all of `text` to `fd` (the daemon's report to its parent).
void WriteAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    const ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// Keeps the memory of READ replies and WRITE copies (up to 1 MiB each, many
// in flight) in the process for reuse. glibc's defaults serve a 1 MiB block
// with mmap and give it back with munmap once the threshold has not adapted,
// or trim the heap back to the kernel (madvise) after each free: then every
// reply's buffer is faulted in and zeroed page by page again, and at 8
// readers the mmap/munmap calls contend on the address space lock. Measured
// with fio, 1 MiB O_DIRECT reads over the mount, 8 jobs: 270-390 MiB/s with
// the defaults, 1000-1120 MiB/s with these (1 job: ~600 -> 600-860).
// Set before any thread starts; the limits bound what is kept, not used.
void TuneMallocForMount() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

// Connects, mounts; then reports to `report_fd` (-1: none) and serves.
int MountAndServe(const MountArgs& args, ClientOptions options, int report_fd) {
  TuneMallocForMount();
  auto fail = [&](const absl::Status& s) {
    std::string line = absl::StrCat(
        "txbuf: mount: ", s.message().empty() ? s.ToString() : s.message(),
        "\n");
    if (report_fd >= 0) {
      WriteAll(report_fd, line);
    } else {
      std::fputs(line.c_str(), stderr);
    }
    return 1;
  };
  const absl::Duration timeout = options.request_timeout;
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect(std::move(options));
  if (!client.ok()) return fail(client.status());
  MountOptions mo{.mountpoint = args.mountpoint,
                  .read_only = args.read_only,
                  .attr_timeout = args.attr_timeout,
                  .entry_timeout = args.entry_timeout,
                  .fsname = absl::StrCat("txbuf:", args.server),
                  .reconnect_timeout = timeout,
                  .max_uncommitted = args.max_uncommitted_mib << 20,
                  .read_split = size_t{args.read_split_kib} << 10,
                  .async_read_max = size_t{args.async_read_max_kib} << 10,
                  .writeback_cache = args.writeback_cache,
                  .parallel_direct_writes = !args.serial_direct_writes};
  absl::StatusOr<std::unique_ptr<MountFs>> fs =
      MountFs::Create(*std::move(client), std::move(mo));
  if (!fs.ok()) return fail(fs.status());
  if (absl::Status s = (*fs)->Mount(/*handle_signals=*/true); !s.ok())
    return fail(s);
  if (report_fd >= 0) {
    WriteAll(report_fd, "ok");
    close(report_fd);
    report_fd = -1;
    // A daemon: no terminal, no working directory held.
    if (int null = open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      close(null);
    }
    if (chdir("/") != 0) {
      // Nothing to report to any more; serving works from anywhere.
    }
  }
  absl::Status served = (*fs)->Serve(/*handle_signals=*/true);
  if (report_fd < 0 && args.foreground) {
    // How READ data crossed the client library (tests/mount_test.cc checks
    // that large reads were not copied there), and how READs were sent.
    const ReceiveStats rx = (*fs)->receive_stats();
    std::fprintf(stderr,
                 "txbuf: mount: reply payloads: %llu bytes in place (%llu "
                 "replies), %llu bytes copied (%llu replies)\n",
                 static_cast<unsigned long long>(rx.payload_bytes_sliced),
                 static_cast<unsigned long long>(rx.payloads_sliced),
                 static_cast<unsigned long long>(rx.payload_bytes_copied),
                 static_cast<unsigned long long>(rx.payloads_copied));
    const MountFs::ReadStats rs = (*fs)->read_stats();
    std::fprintf(stderr,
                 "txbuf: mount: small reads: %llu answered from the client's "
                 "loop, %llu done again by a worker; large reads: %llu in "
                 "pieces, %llu whole\n",
                 static_cast<unsigned long long>(rs.answered_by_loop),
                 static_cast<unsigned long long>(rs.done_again),
                 static_cast<unsigned long long>(rs.large_in_pieces),
                 static_cast<unsigned long long>(rs.large_whole));
    const MountFs::WriteStats ws = (*fs)->write_stats();
    std::fprintf(stderr,
                 "txbuf: mount: writes: %llu kept in their request's buffer, "
                 "%llu copied\n",
                 static_cast<unsigned long long>(ws.kept_in_request),
                 static_cast<unsigned long long>(ws.copied));
  }
  fs->reset();
  if (!served.ok()) return fail(served);
  return 0;
}

}  // namespace

absl::StatusOr<MountArgs> ParseMountArgs(const std::vector<std::string>& args,
                                         const MountArgs& defaults) {
  MountArgs out = defaults;
  std::vector<std::string> operands;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (options_done || !absl::StartsWith(a, "-") || a == "-") {
      operands.emplace_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-f" || a == "--foreground") {
      out.foreground = true;
      continue;
    }
    if (a == "--read-only" || a == "-r") {
      out.read_only = true;
      continue;
    }
    if (a == "--writeback-cache") {
      out.writeback_cache = true;
      continue;
    }
    if (a == "--serial-direct-writes") {
      out.serial_direct_writes = true;
      continue;
    }
    if (!absl::StartsWith(a, "--")) {
      return Bad(absl::StrCat("unknown option '", a, "'"));
    }
    absl::string_view name = a.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = std::string(name.substr(eq + 1));
      name = name.substr(0, eq);
    } else {
      if (name != "token-file" && name != "export" && name != "attr-timeout" &&
          name != "entry-timeout" && name != "timeout" &&
          name != "max-uncommitted" && name != "read-split" &&
          name != "async-read-max") {
        return Bad(absl::StrCat("unknown option '", a, "'"));
      }
      if (i + 1 >= args.size()) {
        return Bad(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (name == "token-file") {
      out.token_file = value;
    } else if (name == "export") {
      out.export_name = value;
    } else if (name == "attr-timeout") {
      absl::StatusOr<double> s = Seconds(name, value);
      if (!s.ok()) return s.status();
      out.attr_timeout = *s;
    } else if (name == "entry-timeout") {
      absl::StatusOr<double> s = Seconds(name, value);
      if (!s.ok()) return s.status();
      out.entry_timeout = *s;
    } else if (name == "timeout") {
      absl::StatusOr<double> s = Seconds(name, value);
      if (!s.ok()) return s.status();
      if (*s <= 0) return Bad("--timeout needs a positive number of seconds");
      out.timeout = *s;
    } else if (name == "max-uncommitted") {
      uint64_t mib = 0;
      if (!absl::SimpleAtoi(value, &mib) || mib == 0 || mib > (1u << 20)) {
        return Bad(absl::StrCat("bad value '", value,
                                "' for --max-uncommitted (MiB, 1 or more)"));
      }
      out.max_uncommitted_mib = mib;
    } else if (name == "read-split") {
      uint32_t kib = 0;
      if (!absl::SimpleAtoi(value, &kib) || kib > (1u << 20) ||
          (kib != 0 && kib < 4)) {
        return Bad(absl::StrCat("bad value '", value,
                                "' for --read-split (KiB, 0 or 4 or more)"));
      }
      out.read_split_kib = kib;
    } else if (name == "async-read-max") {
      uint32_t kib = 0;
      if (!absl::SimpleAtoi(value, &kib) || kib > (1u << 20)) {
        return Bad(absl::StrCat("bad value '", value,
                                "' for --async-read-max (KiB, 0 or more)"));
      }
      out.async_read_max_kib = kib;
    } else {
      return Bad(absl::StrCat("unknown option '--", name, "'"));
    }
  }
  if (operands.size() != 2) {
    return Bad(absl::StrCat("usage: ", kMountUsage));
  }
  out.server = operands[0];
  out.mountpoint = operands[1];
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(out.server, kDefaultPort);
  if (!hp.ok() || hp->second == 0) {
    return Bad(
        absl::StrCat("bad server '", out.server, "' (want HOST[:PORT])"));
  }
  return out;
}

int RunMount(const MountArgs& args, ClientOptions options) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(args.server, kDefaultPort);
  if (!hp.ok()) {
    std::fprintf(stderr, "txbuf: mount: %s\n",
                 std::string(hp.status().message()).c_str());
    return 2;
  }
  options.host = hp->first;
  options.port = hp->second;
  options.export_name = args.export_name;
  if (args.timeout > 0) {
    options.request_timeout = absl::Seconds(args.timeout);
    options.connect_timeout = absl::Seconds(args.timeout);
  }
  if (!args.token_file.empty()) {
    absl::StatusOr<std::string> tok = ReadTokenFile(args.token_file);
    if (!tok.ok()) {
      std::fprintf(stderr, "txbuf: mount: %s\n",
                   std::string(tok.status().message()).c_str());
      return 1;
    }
    options.token = *tok;
  }
  if (args.foreground) return MountAndServe(args, std::move(options), -1);

  // In the background: fork before the client starts its thread; the parent
  // waits for the child's word that the file system is mounted (or why
  // not).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    std::perror("txbuf: mount: pipe");
    return 1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("txbuf: mount: fork");
    return 1;
  }
  if (pid == 0) {
    close(report[0]);
    setsid();
    const int rc = MountAndServe(args, std::move(options), report[1]);
    _exit(rc);
  }
  close(report[1]);
  std::string said;
  char buf[512];
  for (;;) {
    const ssize_t n = read(report[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  close(report[0]);
  if (said == "ok") return 0;
  if (said.empty()) said = "txbuf: mount: the mount process died\n";
  std::fputs(said.c_str(), stderr);
  return 1;
}

}  // namespace txbuf::client::mount
