// txbuf: the command-line client of a txbufd server.
//
//   txbuf [--server HOST:PORT] [--token-file F] [--timeout S] ... CMD [ARGS]
//
// The global flags, before the command word, are Abseil flags (--help is
// made from their help texts); the command's own options follow the command
// word, coreutils style (client/internal/command_options.h).
//
// Exit status: 0 on success, 1 on failure (one line on stderr per failure:
// "txbuf: <what>: <error>"), 2 for usage errors; --help and --version
// exit 0.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/internal/command_options.h"
#include "client/internal/format.h"
#include "client/internal/glob.h"
#include "client/internal/paths.h"
#ifdef TXBUF_HAVE_MOUNT
#include "client/mount/mount_command.h"
#endif
#include "client/status.h"
#include "common/engine_kind.h"
#include "common/mutex_mode.h"
#include "common/socket_util.h"
#include "proto/stats_json.h"

ABSL_FLAG(std::string, server, "",
          "the server, HOST[:PORT] (PORT 7390 if not given; IPv6 as "
          "[::1]:PORT); default: the environment variable TXBUF_SERVER");
ABSL_FLAG(std::string, token_file, "",
          "the file holding the shared secret, if the server requires "
          "authentication (trailing whitespace is ignored)");
ABSL_FLAG(std::string, engine, "auto",
          "how requests reach the kernel: copy, msg_zerocopy, uring_zc, kmod "
          "or auto");
ABSL_FLAG(std::string, export, "",
          "the export to use, by name, on a server with several "
          "(docs/EXPORTS.md); default: the server's first");
ABSL_FLAG(int, connections, 1, "connections to open (at least 1)");
ABSL_FLAG(double, timeout, 60,
          "seconds allowed for connecting (TCP connect and the txbuf "
          "handshake) and for each request; a server that does not answer in "
          "time is a failure (exit 1)");

namespace txbuf::client {
namespace {

constexpr char kUsage[] =
    R"(usage: txbuf --server HOST:PORT [options] COMMAND [ARGS]

A client of a txbufd file server. Remote paths are relative to the server's
export root ('/'-separated; "/" or no path is the root) and may hold the
patterns '*', '?' and '[...]' (quote them for your shell), matched against
the server's directory listing (a '\' quotes the next character).

Commands:
  ls [-l] [-a] [-h] [PATH...]
                         list directories (a file lists itself): names, or
                         with -l type and mode, size, mtime, name; -a shows
                         names starting with '.'; -h sizes as 1.5 KiB
  cat PATH...            write the files to standard output
  cp [-r] LOCAL... :REMOTE
  cp [-r] :REMOTE... LOCAL
                         copy files (-r: directory trees) to or from the
                         server: remote paths start with ':' (as in scp);
                         into an existing directory under their own names
  get REMOTE LOCAL|-     download REMOTE to LOCAL (a file, a directory, or -
                         for standard output)
  put LOCAL|- REMOTE     upload LOCAL (or standard input) to REMOTE (a path,
                         or a directory ending in '/')
  stat PATH...           show the attributes of each PATH
  rm PATH...             remove files
  mkdir [-p] PATH...     create directories (-p: with their parents; an
                         existing directory is no error)
  rmdir PATH...          remove empty directories
  mv FROM... TO          rename FROM to TO, or move into TO if it is an
                         existing directory
  df [-h]                size, free space and inodes of the export (sizes in
                         bytes; -h: as 100.0 GiB)
  stats [--json]         the server's memory-recovery statistics (pinned
                         bytes, destructor latency, completions, engines,
                         slabs, page cache, connections); --json prints one
                         JSON object
  mount SERVER[:PORT] DIR [--token-file F] [--read-only] [-f]
        [--export NAME] [--attr-timeout S] [--entry-timeout S]
        [--timeout S] [--max-uncommitted MIB] [--read-split KIB]
        [--async-read-max KIB] [--writeback-cache]
        [--serial-direct-writes]
                         mount the export on DIR (FUSE): every tool works
                         on it; returns once mounted and serves in the
                         background (-f: in the foreground until
                         unmounted); attributes and names cached 1 s
                         (--attr-timeout, --entry-timeout); close-to-open
                         consistency; survives a server restart (connects
                         again for --timeout, default the global one, then
                         EIO; unstable writes kept, up to 256 MiB, and
                         resent if the server lost them); READs of at
                         least 2x --read-split KiB (256) in pieces while
                         few run at once, of at most --async-read-max KiB
                         (128) answered without a waiting thread; unmount
                         with fusermount3 -u DIR

Command options follow the command word and may be bundled (ls -la); long
forms: --all, --human-readable, --recursive, --parents, --json; "--" ends
them. After the command word -h means human-readable sizes (ls, df), never
help (--help is help anywhere). Uploads are unstable writes then COMMIT into
a temporary file renamed over the target; downloads go to a temporary file
renamed at the end.
)";

constexpr char kUsageTail[] =
    R"(
Global options come before the command word; "--token-file" and
"--token_file" are the same option, and "--timeout 5" is "--timeout=5".
-h and --help print this text; --version prints the version.

cp, get and put show a progress bar on standard error when it is a terminal.
Exit status: 0 on success (and for --help, --version), 1 on failure (one
line on standard error per failure), 2 for usage errors.
)";

// The global flags, in the order --help lists them, with the word that
// stands for their value there.
struct GlobalFlag {
  absl::string_view name;
  absl::string_view value_name;
};
constexpr GlobalFlag kGlobalFlags[] = {
    {"server", "HOST[:PORT]"}, {"token_file", "FILE"}, {"engine", "ENGINE"},
    {"export", "NAME"},        {"connections", "N"},   {"timeout", "SECONDS"},
};

// "--token-file" for "token_file".
std::string DashedName(absl::string_view name) {
  return absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
}

// `text` wrapped to lines of at most `width` columns, each indented by
// `indent` spaces.
std::string Wrap(absl::string_view text, size_t indent, size_t width) {
  std::string out;
  std::string line(indent, ' ');
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line.size() > indent && line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, line, "\n");
      line.assign(indent, ' ');
    }
    if (line.size() > indent) line += ' ';
    absl::StrAppend(&line, word);
  }
  if (line.size() > indent) absl::StrAppend(&out, line, "\n");
  return out;
}

// The --help text: the usage message, then each global flag with its help
// text and default, from the flag definitions.
std::string HelpText() {
  std::string out(absl::ProgramUsageMessage());
  absl::StrAppend(&out, "\nGlobal options:\n");
  for (const GlobalFlag& g : kGlobalFlags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(g.name);
    if (flag == nullptr) continue;
    std::string help = flag->Help();
    if (!flag->DefaultValue().empty()) {
      absl::StrAppend(&help, " (default ", flag->DefaultValue(), ")");
    }
    absl::StrAppend(&out, "  ", DashedName(g.name), " ", g.value_name, "\n",
                    Wrap(help, 6, 78));
  }
  absl::StrAppend(&out, "  --version\n      print the version and exit\n",
                  "  -h, --help\n      this text\n", kUsageTail);
  return out;
}

// A usage error: one line, exit 2. Names in it are escaped as `ls` prints
// them (internal::EscapeName).
int UsageError(absl::string_view what) {
  std::fprintf(stderr, "txbuf: %s (try 'txbuf --help')\n",
               internal::EscapeName(what).c_str());
  return 2;
}

// A failure: "txbuf: <what>: <error>" on one line, exit 1, escaped as `ls`
// prints names (names are bytes; the server's text quotes them).
int Fail(absl::string_view what, const absl::Status& s) {
  std::string msg = internal::EscapeName(
      s.message().empty() ? s.ToString() : std::string(s.message()));
  if (what.empty()) {
    std::fprintf(stderr, "txbuf: %s\n", msg.c_str());
  } else {
    std::fprintf(stderr, "txbuf: %s: %s\n", internal::EscapeName(what).c_str(),
                 msg.c_str());
  }
  return 1;
}

// What the global flags left: the index of the command word, or an exit
// status (help, version, usage error) to stop with.
struct GlobalParse {
  int command_index = 0;
  int exit_status = -1;  // >= 0: stop with it.
};

// Reads the global flags (argv[1] up to the command word) into the Abseil
// flags with each flag's own parser: "--name=value" or "--name value",
// dashes or underscores in the name. Handles -h/--help and --version. A
// name that is not a global flag, a missing value or a value the flag
// refuses is a usage error naming the flag. (absl::ParseCommandLine is not
// used: it reads flags after the command word too, where `ls -la` belongs
// to the command, and exits 1, not 2, on an unknown flag.)
GlobalParse ParseGlobalFlags(int argc, char** argv) {
  int i = 1;
  for (; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "-h" || a == "--help" || a == "-help") {
      std::fputs(HelpText().c_str(), stdout);
      return {.exit_status = 0};
    }
    if (a == "--version" || a == "-version") {
      std::printf("txbuf %s\n", TXBUF_VERSION);
      return {.exit_status = 0};
    }
    if (a == "--") {
      ++i;
      break;
    }
    if (!absl::StartsWith(a, "-") || a == "-") break;
    absl::string_view body = a.substr(absl::StartsWith(a, "--") ? 2 : 1);
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
      has_value = true;
    }
    std::string name = absl::StrReplaceAll(body, {{"-", "_"}});
    bool known = false;
    for (const GlobalFlag& g : kGlobalFlags) known |= g.name == name;
    absl::CommandLineFlag* flag =
        known ? absl::FindCommandLineFlag(name) : nullptr;
    if (flag == nullptr) {
      return {.exit_status =
                  UsageError(absl::StrCat("unknown option '", a, "'"))};
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return {.exit_status = UsageError(
                    absl::StrCat(DashedName(name), " needs a value"))};
      }
      value = argv[++i];
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return {.exit_status =
                  UsageError(absl::StrCat("bad value '", value, "' for ",
                                          DashedName(name), ": ", error))};
    }
  }
  return {.command_index = i};
}

// Writes the progress line to stderr at most 10 times a second.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label)
      : enabled_(isatty(STDERR_FILENO) == 1),
        label_(std::move(label)),
        start_(absl::Now()) {}
  ~ProgressBar() { Finish(); }

  void Update(uint64_t done, uint64_t total) {
    if (!enabled_) return;
    done_ = done;
    total_ = total;
    absl::Time now = absl::Now();
    if (now - last_ < absl::Milliseconds(100) && done != total) return;
    last_ = now;
    Draw();
  }
  void Finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    if (last_ != absl::InfinitePast()) {
      if (drawn_ != done_) Draw();
      std::fputc('\n', stderr);
    }
  }

 private:
  void Draw() {
    drawn_ = done_;
    double secs = absl::ToDoubleSeconds(absl::Now() - start_);
    std::string line =
        absl::StrCat(label_, " ", internal::ProgressLine(done_, total_, secs));
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    std::fflush(stderr);
  }

  const bool enabled_;
  const std::string label_;
  const absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t done_ = 0;
  uint64_t total_ = 0;
  uint64_t drawn_ = ~uint64_t{0};
  bool finished_ = false;
};

bool PrintOut(absl::string_view s) {
  return std::fwrite(s.data(), 1, s.size(), stdout) == s.size();
}

// "a/b" joined with "c"; "" is the root.
std::string RemoteJoin(absl::string_view dir, absl::string_view name) {
  std::string d = internal::NormalizePath(dir);
  return d.empty() ? std::string(name) : absl::StrCat(d, "/", name);
}

std::string LocalJoin(absl::string_view dir, absl::string_view name) {
  return absl::EndsWith(dir, "/") ? absl::StrCat(dir, name)
                                  : absl::StrCat(dir, "/", name);
}

// The last component of a local path ("a/b/" -> "b").
std::string LocalBaseName(absl::string_view path) {
  while (path.size() > 1 && absl::EndsWith(path, "/")) path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path
                                                      : path.substr(slash + 1));
}

// "CMD PATH" for error lines; the root is "/".
std::string What(absl::string_view cmd, absl::string_view path) {
  return absl::StrCat(cmd, " ", path.empty() ? "/" : path);
}

// For cp, of a source that is not a regular file: OK if it is a directory
// copied with -r, else why it is not copied.
absl::Status CopiesAsTree(bool is_directory, bool recursive) {
  if (!is_directory) {
    return absl::FailedPreconditionError(
        "not a regular file or directory; not copied");
  }
  if (!recursive) {
    return absl::FailedPreconditionError(
        "is a directory (use cp -r); not copied");
  }
  return absl::OkStatus();
}

bool LocalIsDir(const std::string& path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}

// One command line's run, connected: the commands, each reporting its
// failures (one line each) and returning its exit status.
class Commands {
 public:
  explicit Commands(Client& client) : c_(client) {}

  // The remote paths `pattern` names (itself if it has no pattern).
  absl::StatusOr<std::vector<std::string>> Expand(absl::string_view pattern) {
    return internal::ExpandGlob(
        pattern, [this](const std::string& dir) { return c_.List(dir); });
  }

  // Expands every operand; failures reported (status 1 remembered).
  std::vector<std::string> ExpandAll(absl::string_view cmd,
                                     const std::vector<std::string>& operands) {
    std::vector<std::string> out;
    for (const std::string& p : operands) {
      absl::StatusOr<std::vector<std::string>> paths = Expand(p);
      if (!paths.ok()) {
        failed_ = Fail(absl::StrCat(cmd, " ", p), paths.status());
        continue;
      }
      out.insert(out.end(), paths->begin(), paths->end());
    }
    return out;
  }

  int Ls(const internal::CommandArgs& args) {
    const bool long_format = args.Has('l');
    const bool all = args.Has('a');
    const bool human = args.Has('h');
    std::vector<std::string> operands = args.operands;
    if (operands.empty()) operands.push_back("");
    std::vector<std::string> paths = ExpandAll("ls", operands);
    std::vector<rpc::DirEntry> files;
    std::vector<std::pair<std::string, std::vector<rpc::DirEntry>>> dirs;
    for (const std::string& path : paths) {
      absl::StatusOr<std::vector<rpc::DirEntry>> list = c_.List(path);
      if (!list.ok() && RpcStatusOf(list.status()) == rpc::STATUS_NOTDIR) {
        // ls of a file lists the file.
        absl::StatusOr<rpc::Attr> attr = c_.Stat(path);
        if (!attr.ok()) {
          failed_ = Fail(What("ls", path), attr.status());
          continue;
        }
        rpc::DirEntry e;
        e.set_name(internal::NormalizePath(path));
        *e.mutable_attr() = *attr;
        files.push_back(std::move(e));
        continue;
      }
      if (!list.ok()) {
        failed_ = Fail(What("ls", path), list.status());
        continue;
      }
      if (!all) {
        std::erase_if(*list, [](const rpc::DirEntry& e) {
          return absl::StartsWith(e.name(), ".");
        });
      }
      dirs.emplace_back(path, *std::move(list));
    }
    auto format = [&](std::vector<rpc::DirEntry> entries) {
      std::string out = long_format
                            ? internal::FormatListing(std::move(entries), human)
                            : internal::FormatNames(std::move(entries));
      if (!out.empty()) out += '\n';
      return out;
    };
    std::string out;
    if (!files.empty()) out += format(std::move(files));
    const bool headers = paths.size() > 1 || !out.empty();
    for (auto& [path, entries] : dirs) {
      if (headers) {
        if (!out.empty()) out += '\n';
        absl::StrAppend(&out, internal::EscapeName(path.empty() ? "/" : path),
                        ":\n");
      }
      out += format(std::move(entries));
    }
    PrintOut(out);
    return failed_;
  }

  int Cat(const internal::CommandArgs& args) {
    for (const std::string& path : ExpandAll("cat", args.operands)) {
      std::fflush(stdout);  // GetFile writes to the descriptor.
      absl::StatusOr<uint64_t> n = c_.GetFile(path, "-");
      if (!n.ok()) failed_ = Fail(What("cat", path), n.status());
    }
    return failed_;
  }

  int Stat(const internal::CommandArgs& args) {
    for (const std::string& path : ExpandAll("stat", args.operands)) {
      absl::StatusOr<rpc::Attr> attr = c_.Stat(path);
      if (!attr.ok()) {
        failed_ = Fail(What("stat", path), attr.status());
        continue;
      }
      PrintOut(internal::FormatStat(internal::NormalizePath(path), *attr));
    }
    return failed_;
  }

  int Rm(const internal::CommandArgs& args, bool dirs) {
    const char* cmd = dirs ? "rmdir" : "rm";
    for (const std::string& path : ExpandAll(cmd, args.operands)) {
      absl::Status s = dirs ? c_.Rmdir(path) : c_.Remove(path);
      if (!s.ok()) failed_ = Fail(What(cmd, path), s);
    }
    return failed_;
  }

  int Mkdir(const internal::CommandArgs& args) {
    for (const std::string& path : args.operands) {
      absl::Status s =
          args.Has('p') ? MkdirParents(path) : c_.Mkdir(path).status();
      if (!s.ok()) failed_ = Fail(What("mkdir", path), s);
    }
    return failed_;
  }

  int Mv(const internal::CommandArgs& args) {
    std::vector<std::string> sources(args.operands.begin(),
                                     args.operands.end() - 1);
    const std::string& dest = args.operands.back();
    sources = ExpandAll("mv", sources);
    if (sources.empty()) return failed_;
    absl::StatusOr<rpc::Attr> dest_attr = c_.Stat(dest);
    const bool into_dir =
        dest_attr.ok() && dest_attr->type() == rpc::FILE_TYPE_DIRECTORY;
    if (!into_dir && (sources.size() > 1 || absl::EndsWith(dest, "/"))) {
      return Fail(absl::StrCat("mv ", dest),
                  dest_attr.ok() ? absl::FailedPreconditionError(
                                       "the target is not a directory")
                                 : dest_attr.status());
    }
    for (const std::string& src : sources) {
      std::string to =
          into_dir ? RemoteJoin(dest, internal::BaseName(src)) : dest;
      if (absl::Status s = c_.Rename(src, to); !s.ok()) {
        failed_ = Fail(absl::StrCat("mv ", src, " ", to), s);
      }
    }
    return failed_;
  }

  // get REMOTE LOCAL|- (REMOTE may be a pattern matching one file).
  int Get(const std::vector<std::string>& operands) {
    const std::string what =
        absl::StrCat("get ", operands[0], " ", operands[1]);
    absl::StatusOr<std::vector<std::string>> remote = Expand(operands[0]);
    if (!remote.ok()) return Fail(what, remote.status());
    if (remote->size() != 1) {
      return Fail(what, absl::InvalidArgumentError(absl::StrCat(
                            "the pattern matches ", remote->size(),
                            " files; get takes one (cp takes many)")));
    }
    std::string local = operands[1];
    if (local != "-" && LocalIsDir(local)) {
      local = LocalJoin(local, internal::BaseName(remote->front()));
    }
    absl::Status s = GetOne(remote->front(), local);
    return s.ok() ? 0 : Fail(what, s);
  }

  // put LOCAL|- REMOTE.
  int Put(const std::vector<std::string>& operands) {
    const std::string what =
        absl::StrCat("put ", operands[0], " ", operands[1]);
    std::string remote = operands[1];
    if (absl::EndsWith(remote, "/") ||
        internal::NormalizePath(remote).empty()) {
      if (operands[0] == "-") {
        return UsageError("put from standard input needs a remote file name");
      }
      remote = RemoteJoin(remote, LocalBaseName(operands[0]));
    }
    absl::Status s = PutOne(operands[0], remote);
    return s.ok() ? 0 : Fail(what, s);
  }

  // cp [-r] LOCAL... :REMOTE, or cp [-r] :REMOTE... LOCAL (the operands are
  // checked by the caller).
  int Cp(const internal::CommandArgs& args) {
    const bool recursive = args.Has('r') || args.Has('R');
    const std::string& dest = args.operands.back();
    std::vector<std::string> sources(args.operands.begin(),
                                     args.operands.end() - 1);
    if (absl::StartsWith(dest, ":")) {
      const std::string remote = dest.substr(1);
      absl::StatusOr<rpc::Attr> attr = c_.Stat(remote);
      const bool into_dir =
          internal::NormalizePath(remote).empty() ||
          (attr.ok() && attr->type() == rpc::FILE_TYPE_DIRECTORY);
      // "cp -r DIR :new/" makes new (as coreutils does); a file needs an
      // existing directory there.
      const bool new_tree =
          sources.size() == 1 && recursive && LocalIsDir(sources.front());
      if (!into_dir &&
          (sources.size() > 1 || (absl::EndsWith(remote, "/") && !new_tree))) {
        return Fail(absl::StrCat("cp ", dest),
                    attr.ok() ? absl::FailedPreconditionError(
                                    "the target is not a directory")
                              : attr.status());
      }
      for (const std::string& src : sources) {
        std::string to =
            into_dir ? RemoteJoin(remote, LocalBaseName(src)) : remote;
        Upload(src, to, recursive);
      }
      return failed_;
    }
    for (std::string& s : sources) s = s.substr(1);
    sources = ExpandAll("cp", sources);
    if (sources.empty()) return failed_;
    const bool into_dir = LocalIsDir(dest);
    if (!into_dir && sources.size() > 1) {
      return Fail(absl::StrCat("cp ", dest),
                  absl::FailedPreconditionError(
                      "the target is not an existing directory"));
    }
    for (const std::string& src : sources) {
      std::string to =
          into_dir ? LocalJoin(dest, internal::BaseName(src)) : dest;
      Download(src, to, recursive);
    }
    return failed_;
  }

 private:
  absl::Status GetOne(const std::string& remote, const std::string& local) {
    ProgressBar bar(internal::BaseName(remote));
    absl::StatusOr<uint64_t> n = c_.GetFile(
        remote, local,
        [&](uint64_t done, uint64_t total) { bar.Update(done, total); });
    bar.Finish();
    return n.status();
  }

  absl::Status PutOne(const std::string& local, const std::string& remote) {
    ProgressBar bar(local == "-" ? internal::BaseName(remote)
                                 : LocalBaseName(local));
    absl::StatusOr<uint64_t> n = c_.PutFile(
        local, remote,
        [&](uint64_t done, uint64_t total) { bar.Update(done, total); });
    bar.Finish();
    return n.status();
  }

  // Creates `path` and its missing parents; existing directories are fine.
  absl::Status MkdirParents(absl::string_view path) {
    std::string prefix;
    for (absl::string_view comp : absl::StrSplit(internal::NormalizePath(path),
                                                 '/', absl::SkipEmpty())) {
      prefix = RemoteJoin(prefix, comp);
      absl::StatusOr<rpc::FhResult> r = c_.Mkdir(prefix);
      if (r.ok()) continue;
      if (RpcStatusOf(r.status()) != rpc::STATUS_EXIST) return r.status();
      absl::StatusOr<rpc::Attr> attr = c_.Stat(prefix);
      if (!attr.ok()) return attr.status();
      if (attr->type() != rpc::FILE_TYPE_DIRECTORY) {
        return absl::AlreadyExistsError(
            absl::StrCat("'", prefix, "' exists and is not a directory"));
      }
    }
    return absl::OkStatus();
  }

  // Copies local `src` (a file, or with `recursive` a tree) to `remote`.
  void Upload(const std::string& src, const std::string& remote,
              bool recursive) {
    const std::string what = absl::StrCat("cp ", src);
    struct stat sb;
    if (lstat(src.c_str(), &sb) != 0) {
      failed_ = Fail(what, ErrnoStatus(errno, "stat"));
      return;
    }
    if (S_ISREG(sb.st_mode)) {
      if (absl::Status s = PutOne(src, remote); !s.ok())
        failed_ = Fail(what, s);
      return;
    }
    if (absl::Status s = CopiesAsTree(S_ISDIR(sb.st_mode), recursive);
        !s.ok()) {
      failed_ = Fail(what, s);
      return;
    }
    if (absl::Status s = MkdirParents(remote); !s.ok()) {
      failed_ = Fail(absl::StrCat("cp ", src, ": mkdir ", remote), s);
      return;
    }
    DIR* d = opendir(src.c_str());
    if (d == nullptr) {
      failed_ = Fail(what, ErrnoStatus(errno, "opendir"));
      return;
    }
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      Upload(LocalJoin(src, n), RemoteJoin(remote, n), recursive);
    }
  }

  // Copies remote `src` (a file, or with `recursive` a tree) to `local`.
  void Download(const std::string& src, const std::string& local,
                bool recursive) {
    const std::string what = absl::StrCat("cp :", src);
    absl::StatusOr<rpc::Attr> attr = c_.Stat(src);
    if (!attr.ok()) {
      failed_ = Fail(what, attr.status());
      return;
    }
    if (attr->type() == rpc::FILE_TYPE_REGULAR) {
      if (absl::Status s = GetOne(src, local); !s.ok()) failed_ = Fail(what, s);
      return;
    }
    if (absl::Status s =
            CopiesAsTree(attr->type() == rpc::FILE_TYPE_DIRECTORY, recursive);
        !s.ok()) {
      failed_ = Fail(what, s);
      return;
    }
    if (mkdir(local.c_str(), 0755) != 0 &&
        !(errno == EEXIST && LocalIsDir(local))) {
      failed_ = Fail(absl::StrCat(what, ": mkdir ", local),
                     ErrnoStatus(errno, "mkdir"));
      return;
    }
    absl::StatusOr<std::vector<rpc::DirEntry>> list = c_.List(src);
    if (!list.ok()) {
      failed_ = Fail(what, list.status());
      return;
    }
    std::sort(list->begin(), list->end(),
              [](const rpc::DirEntry& a, const rpc::DirEntry& b) {
                return a.name() < b.name();
              });
    for (const rpc::DirEntry& e : *list) {
      if (e.name() == "." || e.name() == "..") continue;
      Download(RemoteJoin(src, e.name()), LocalJoin(local, e.name()),
               recursive);
    }
  }

  Client& c_;
  int failed_ = 0;  // 1 once a failure was reported.
};

// A command: its options and how many operands it takes.
struct CommandSpec {
  absl::string_view name;
  internal::CommandSyntax syntax;
  size_t min_operands;
  size_t max_operands;
  absl::string_view usage;
};

constexpr size_t kMany = ~size_t{0};

const std::vector<CommandSpec>& Specs() {
  static const auto* specs = new std::vector<CommandSpec>{
      {"ls",
       {"lah", {{"all", 'a'}, {"human-readable", 'h'}}},
       0,
       kMany,
       "ls [-l] [-a] [-h] [PATH...]"},
      {"cat", {}, 1, kMany, "cat PATH..."},
      {"cp",
       {"rR", {{"recursive", 'r'}}},
       2,
       kMany,
       "cp [-r] LOCAL... :REMOTE | cp [-r] :REMOTE... LOCAL"},
      {"get", {}, 2, 2, "get REMOTE LOCAL|-"},
      {"put", {}, 2, 2, "put LOCAL|- REMOTE"},
      {"stat", {}, 1, kMany, "stat PATH..."},
      {"rm", {}, 1, kMany, "rm PATH..."},
      {"mkdir", {"p", {{"parents", 'p'}}}, 1, kMany, "mkdir [-p] PATH..."},
      {"rmdir", {}, 1, kMany, "rmdir PATH..."},
      {"mv", {}, 2, kMany, "mv FROM... TO"},
      {"df", {"h", {{"human-readable", 'h'}}}, 0, 0, "df [-h]"},
      {"stats", {"", {{"json", 'j'}}}, 0, 0, "stats [--json]"},
  };
  return *specs;
}

// Checks cp's operands: exactly one side remote (':'), sources all on one
// side. Returns a usage error's exit status, or 0.
int CheckCpOperands(const std::vector<std::string>& operands) {
  size_t remote_sources = 0;
  for (size_t i = 0; i + 1 < operands.size(); ++i) {
    remote_sources += absl::StartsWith(operands[i], ":") ? 1 : 0;
  }
  const bool remote_dest = absl::StartsWith(operands.back(), ":");
  const size_t sources = operands.size() - 1;
  if (remote_dest && remote_sources > 0) {
    return UsageError("cp: copying from remote to remote is not supported");
  }
  if (!remote_dest && remote_sources == 0) {
    return UsageError(
        "cp: name the remote side with a leading ':' (cp LOCAL... :REMOTE or "
        "cp :REMOTE... LOCAL)");
  }
  if (!remote_dest && remote_sources != sources) {
    return UsageError("cp: the sources must be all local or all remote (':')");
  }
  return 0;
}

// The client options of the global flags --engine, --connections and
// --timeout. Returns 0, or a usage error's exit status.
int CommonClientOptions(ClientOptions* opts) {
  absl::StatusOr<EngineKind> kind =
      ParseEngineKind(absl::GetFlag(FLAGS_engine));
  if (!kind.ok()) return UsageError(kind.status().message());
  const int connections = absl::GetFlag(FLAGS_connections);
  if (connections < 1) return UsageError("--connections needs a number >= 1");
  const double timeout_s = absl::GetFlag(FLAGS_timeout);
  if (!(timeout_s > 0) || timeout_s > 1e9) {
    return UsageError("--timeout needs a positive number of seconds");
  }
  opts->engine = *kind;
  opts->connections = connections;
  // --timeout bounds everything: connect and handshake, and each request.
  opts->connect_timeout = absl::Seconds(timeout_s);
  opts->request_timeout = absl::Seconds(timeout_s);
  return 0;
}

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  GlobalParse g = ParseGlobalFlags(argc, argv);
  if (g.exit_status >= 0) return g.exit_status;
  int i = g.command_index;
  if (i >= argc) return UsageError("no command given");
  const std::string cmd = argv[i++];
  const std::vector<std::string> raw_args(argv + i, argv + argc);

  // --help after the command word is help too (-h there is an option).
  for (const std::string& a : raw_args) {
    if (a == "--") break;
    if (a == "--help") {
      std::fputs(HelpText().c_str(), stdout);
      return 0;
    }
  }

  if (cmd == "mount") {
#ifndef TXBUF_HAVE_MOUNT
    std::fputs(
        "txbuf: mount: built without libfuse3; install libfuse3-dev and "
        "rebuild (CMake option TXBUF_BUILD_MOUNT)\n",
        stderr);
    return 1;
#else
    absl::StatusOr<mount::MountArgs> ma = mount::ParseMountArgs(
        raw_args, {.token_file = absl::GetFlag(FLAGS_token_file),
                   .export_name = absl::GetFlag(FLAGS_export)});
    if (!ma.ok()) return UsageError(ma.status().message());
    ClientOptions opts;
    if (int rc = CommonClientOptions(&opts); rc != 0) return rc;
    return mount::RunMount(*ma, std::move(opts));
#endif
  }

  // Check the command line completely before connecting.
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& s : Specs()) {
    if (s.name == cmd) spec = &s;
  }
  if (spec == nullptr) {
    return UsageError(absl::StrCat("unknown command '", cmd, "'"));
  }
  absl::StatusOr<internal::CommandArgs> args =
      internal::ParseCommandArgs(cmd, spec->syntax, raw_args);
  if (!args.ok()) return UsageError(args.status().message());
  if (args->operands.size() < spec->min_operands ||
      args->operands.size() > spec->max_operands) {
    return UsageError(absl::StrCat("usage: ", spec->usage));
  }
  if (cmd == "cp") {
    if (int rc = CheckCpOperands(args->operands); rc != 0) return rc;
  }

  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    if (const char* env = std::getenv("TXBUF_SERVER")) server = env;
  }
  if (server.empty()) {
    return UsageError("no server given (--server HOST:PORT)");
  }
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(server, kDefaultPort);
  if (!hp.ok() || hp->second == 0) {
    return UsageError(
        absl::StrCat("bad --server '", server, "' (want HOST[:PORT])"));
  }
  ClientOptions opts;
  if (int rc = CommonClientOptions(&opts); rc != 0) return rc;
  opts.host = hp->first;
  opts.port = hp->second;
  opts.export_name = absl::GetFlag(FLAGS_export);
  if (const std::string token_file = absl::GetFlag(FLAGS_token_file);
      !token_file.empty()) {
    absl::StatusOr<std::string> tok = ReadTokenFile(token_file);
    if (!tok.ok()) return Fail("", tok.status());
    opts.token = *tok;
  }
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(opts);
  if (!client.ok()) return Fail("", client.status());
  Client& c = **client;
  Commands commands(c);

  int rc = 0;
  if (cmd == "ls") {
    rc = commands.Ls(*args);
  } else if (cmd == "cat") {
    rc = commands.Cat(*args);
  } else if (cmd == "cp") {
    rc = commands.Cp(*args);
  } else if (cmd == "get") {
    rc = commands.Get(args->operands);
  } else if (cmd == "put") {
    rc = commands.Put(args->operands);
  } else if (cmd == "stat") {
    rc = commands.Stat(*args);
  } else if (cmd == "rm" || cmd == "rmdir") {
    rc = commands.Rm(*args, /*dirs=*/cmd == "rmdir");
  } else if (cmd == "mkdir") {
    rc = commands.Mkdir(*args);
  } else if (cmd == "mv") {
    rc = commands.Mv(*args);
  } else if (cmd == "stats") {
    absl::StatusOr<rpc::StatsResult> st = c.Stats();
    if (!st.ok()) return Fail(cmd, st.status());
    PrintOut(args->Has('j') ? absl::StrCat(StatsJsonLine(*st), "\n")
                            : internal::FormatStats(*st));
  } else if (cmd == "df") {
    absl::StatusOr<rpc::StatFsResult> fs = c.StatFs();
    if (!fs.ok()) return Fail(cmd, fs.status());
    PrintOut(internal::FormatStatFs(*fs, /*human_sizes=*/args->Has('h')));
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    return Fail("standard output", absl::InternalError("write error"));
  }
  return rc;
}

}  // namespace
}  // namespace txbuf::client

int main(int argc, char** argv) {
  txbuf::UseProductionMutexMode();
  return txbuf::client::Run(argc, argv);
}
