// The `txbuf` binary against the fake server and against a real txbufd:
// output, exit codes (0, 1, 2) and one-line errors.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/testing/fake_server.h"
#include "client/testing/mem_fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

#ifndef TXBUF_CLI_PATH
#error "TXBUF_CLI_PATH must name the txbuf binary"
#endif

namespace txbuf::client {
namespace {

using ::txbuf::client::testing::FakeServer;
using ::txbuf::client::testing::MemFs;

struct CliRun {
  int exit = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs the binary with `args` (stdin from `stdin_path` if not empty),
// capturing stdout and stderr.
CliRun RunCli(const std::vector<std::string>& args,
              const std::string& stdin_path = "") {
  // Unique per process: ctest runs the tests of this file in parallel.
  std::string dir = ::testing::TempDir();
  std::string out = absl::StrCat(dir, "/cli_out.", getpid());
  std::string err = absl::StrCat(dir, "/cli_err.", getpid());
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int i =
        open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    dup2(o, 1);
    dup2(e, 2);
    dup2(i, 0);
    std::vector<char*> argv;
    std::string bin = TXBUF_CLI_PATH;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    unsetenv("TXBUF_SERVER");
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  CliRun r;
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  unlink(out.c_str());
  unlink(err.c_str());
  return r;
}

// Exactly one line, "txbuf: " first.
void ExpectOneLineError(const CliRun& r, absl::string_view starts) {
  EXPECT_TRUE(absl::StartsWith(r.err, starts)) << r.err;
  EXPECT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<MemFs>();
    fs_->PutFile("docs/a.txt", "hello, world\n");
    fs_->MakeDirs("empty");
    absl::StatusOr<std::unique_ptr<FakeServer>> s =
        FakeServer::Start({}, fs_->Handler());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    addr_ = absl::StrCat("127.0.0.1:", server_->port());
  }
  CliRun Cli(std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(), {"--server", addr_});
    return RunCli(args, in);
  }
  // A scratch file name, removed after the test.
  std::string Tmp(absl::string_view name) {
    files_.push_back(
        absl::StrCat(::testing::TempDir(), "/cli_", name, "_", getpid()));
    return files_.back();
  }

  void TearDown() override {
    for (const std::string& f : files_) unlink(f.c_str());
  }

  std::shared_ptr<MemFs> fs_;
  std::unique_ptr<FakeServer> server_;
  std::string addr_;
  std::vector<std::string> files_;
};

// --help and --version succeed (exit 0, on stdout); usage errors exit 2.
TEST_F(CliTest, HelpAndVersionExitZeroUsageErrorsTwo) {
  for (const char* help : {"--help", "-h"}) {
    CliRun r = RunCli({help});
    EXPECT_EQ(r.exit, 0) << help;
    EXPECT_TRUE(absl::StartsWith(r.out, "usage: txbuf --server HOST:PORT"))
        << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "stats [--json]"));
    EXPECT_TRUE(r.err.empty());
  }
  CliRun r = RunCli({"--version"});
  EXPECT_EQ(r.exit, 0);
  EXPECT_THAT(r.out,
              ::testing::MatchesRegex("txbuf [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  EXPECT_TRUE(r.err.empty());

  r = RunCli({});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: no command given");

  r = Cli({"frobnicate"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown command 'frobnicate'");

  r = Cli({"stat"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: usage: stat PATH");

  r = Cli({"get", "a"});
  EXPECT_EQ(r.exit, 2);

  r = Cli({"stats", "--xml"});
  EXPECT_EQ(r.exit, 2);

  r = RunCli({"ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: no server given");

  r = RunCli({"--server", "host:99999", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: bad --server 'host:99999'");

  r = Cli({"--engine", "warp", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown engine 'warp'");

  r = RunCli({"--bogus", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown option '--bogus'");

  r = RunCli({"--server"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(server_->connections(), 0) << "usage errors never connect";
}

TEST_F(CliTest, LsStatDfStats) {
  CliRun r = Cli({"ls", "-l"});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "drwxr-xr-x ")) << lines[0];
  EXPECT_TRUE(absl::EndsWith(lines[0], " docs")) << lines[0];
  EXPECT_TRUE(absl::EndsWith(lines[1], " empty")) << lines[1];

  r = Cli({"ls"});  // names only, as coreutils' ls
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "docs\nempty\n");

  r = Cli({"ls", "-l", "docs"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "-rw-r--r-- 13 ")) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, " a.txt\n")) << r.out;

  r = Cli({"ls", "-l", "docs/a.txt"});  // a file lists itself
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::EndsWith(r.out, " docs/a.txt\n")) << r.out;

  r = Cli({"stat", "/docs/a.txt"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "  File: docs/a.txt\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "  Type: regular file\n"));
  EXPECT_TRUE(absl::StrContains(r.out, "  Mode: 0644 (-rw-r--r--)\n"));
  EXPECT_TRUE(absl::StrContains(r.out, "  Size: 13 (13 B)\n"));

  r = Cli({"df", "-h"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "Avail")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "100.0 GiB")) << r.out;

  r = Cli({"stats"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "destructor latency  n=10")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "pinned bytes")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "attr_reply")) << r.out;

  r = Cli({"stats", "--json"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "{\"pinned_bytes\":4096,")) << r.out;
  EXPECT_TRUE(absl::EndsWith(r.out, "}\n")) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  EXPECT_TRUE(absl::StrContains(r.out, "\"p50\":70000")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\"engine\":\"auto \\\"quoted\\\"\""))
      << r.out;
}

TEST_F(CliTest, PutGetMkdirMvRmRmdir) {
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  std::string local = Tmp("up");
  {
    std::ofstream f(local, std::ios::binary);
    f << data;
  }
  CliRun r = Cli({"mkdir", "d"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = Cli({"put", local, "d/"});  // into a directory: keeps the name
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_TRUE(r.err.empty()) << "no progress bar when stderr is not a tty";
  std::string name = absl::StrCat("cli_up_", getpid());
  EXPECT_TRUE(fs_->GetFile(absl::StrCat("d/", name)) == data);

  std::string down = Tmp("down");
  r = Cli({"get", absl::StrCat("d/", name), down});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(Slurp(down) == data);

  r = Cli({"get", "docs/a.txt", "-"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "hello, world\n");

  std::string in = Tmp("stdin");
  {
    std::ofstream f(in, std::ios::binary);
    f << "from stdin";
  }
  r = Cli({"put", "-", "d/piped"}, in);
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(*fs_->GetFile("d/piped"), "from stdin");

  r = Cli({"mv", absl::StrCat("d/", name), "moved"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(fs_->Exists("moved"));
  r = Cli({"rm", "moved"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = Cli({"rm", "d/piped"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = Cli({"rmdir", "d"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_FALSE(fs_->Exists("d"));
}

TEST_F(CliTest, FailuresAreOneLineWithExitOne) {
  CliRun r = Cli({"stat", "missing"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: stat missing: LOOKUP 'missing': ");
  EXPECT_TRUE(absl::StrContains(r.err, "[NOENT]")) << r.err;
  EXPECT_TRUE(r.out.empty());

  r = Cli({"rmdir", "docs"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: rmdir docs: RMDIR 'docs': ");
  EXPECT_TRUE(absl::StrContains(r.err, "[NOTEMPTY]")) << r.err;

  r = Cli({"mkdir", "docs"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: mkdir docs: ");

  r = Cli({"get", "missing", Tmp("never")});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: get missing ");

  r = Cli({"put", Tmp("no_such_file"), "x"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: put ");
  EXPECT_TRUE(absl::StrContains(r.err, "No such file")) << r.err;

  uint16_t dead;
  {
    auto s = FakeServer::Start({}, nullptr);
    ASSERT_TRUE(s.ok());
    dead = (*s)->port();
  }
  r = RunCli({"--server", absl::StrCat("127.0.0.1:", dead), "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, absl::StrCat("txbuf: connect 127.0.0.1:", dead,
                                     ": Connection refused"));
}

// A scratch directory of its own (temporary names can be checked), removed
// with its files.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = absl::StrCat(::testing::TempDir(), "/cli_scratch_XXXXXX");
    path_ = mkdtemp(t.data()) != nullptr ? t : "";
  }
  ~ScratchDir() {
    for (const std::string& n : Names()) unlink(Join(n).c_str());
    rmdir(path_.c_str());
  }
  std::string Join(absl::string_view name) const {
    return absl::StrCat(path_, "/", name);
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    DIR* d = opendir(path_.c_str());
    if (d == nullptr) return names;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    return names;
  }

 private:
  std::string path_;
};

// `get` into an existing file when the remote file changes (or goes away)
// after the client saw its size: exit 1, one line, and the destination as it
// was (no partial or empty file, no temporary file left).
TEST_F(CliTest, GetThatFailsMidwayLeavesTheDestinationAsItWas) {
  struct Case {
    const char* what;
    rpc::Op change;  // applied to docs/a.txt at the first READ
    const char* error;
  };
  rpc::Op shrink, grow, remove;
  shrink.mutable_setattr()->set_size(5);
  grow.mutable_setattr()->set_size(4096);
  remove.mutable_remove()->set_name("a.txt");
  for (const Case& c : {Case{"shrinks", shrink, "changed during the download"},
                        Case{"grows", grow, "changed during the download"},
                        Case{"is removed", remove, "[STALE]"}}) {
    SCOPED_TRACE(c.what);
    auto fs = std::make_shared<MemFs>();
    fs->PutFile("docs/a.txt", "hello, world\n");
    auto read_seen = std::make_shared<std::atomic<bool>>(false);
    FakeServer::Handler inner = fs->Handler();
    FakeServer::Handler handler = [inner, fs, read_seen, change = c.change](
                                      const FakeServer::ConnPtr& conn,
                                      const rpc::Request& req,
                                      absl::string_view payload) {
      bool reads = false;
      for (const rpc::Op& op : req.ops()) reads |= op.has_read();
      if (reads && !read_seen->exchange(true)) {
        rpc::Request r;
        r.add_ops()->mutable_putrootfh();
        r.add_ops()->mutable_lookup()->set_path(
            change.has_remove() ? "docs" : "docs/a.txt");
        *r.add_ops() = change;
        rpc::Reply reply;
        std::string out;
        fs->Execute(r, "", &reply, &out);
        EXPECT_EQ(reply.status(), rpc::STATUS_OK) << reply.error();
      }
      inner(conn, req, payload);
    };
    absl::StatusOr<std::unique_ptr<FakeServer>> server =
        FakeServer::Start({}, handler);
    ASSERT_TRUE(server.ok()) << server.status();
    ScratchDir dir;
    const std::string dest = dir.Join("dest.txt");
    { std::ofstream(dest) << "the old destination\n"; }
    CliRun r =
        RunCli({"--server", absl::StrCat("127.0.0.1:", (*server)->port()),
                "get", "docs/a.txt", dest});
    EXPECT_TRUE(read_seen->load());
    EXPECT_EQ(r.exit, 1);
    ExpectOneLineError(r, "txbuf: get docs/a.txt ");
    EXPECT_TRUE(absl::StrContains(r.err, c.error)) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "not changed")) << r.err;
    EXPECT_EQ(Slurp(dest), "the old destination\n");
    EXPECT_EQ(dir.Names(), std::vector<std::string>{"dest.txt"});
  }
}

// Names are bytes: `ls`, `stat` and error lines print them escaped as
// `ls -b` does (docs/CLIENT.md), one name per line whatever its bytes.
TEST_F(CliTest, OddNamesArePrintedEscaped) {
  const std::vector<std::pair<std::string, std::string>> names = {
      {"a\xff"
       "b",
       "a\\377b"},
      {"tab\there", "tab\\there"},
      {"new\nline", "new\\nline"},
      {"back\\slash", "back\\\\slash"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // valid UTF-8 stays
      {"csi\xc2\x9b"
       "2J",
       "csi\\302\\2332J"},  // a C1 control
      {"esc\x1b[31m", "esc\\033[31m"},
      {"half\xe2\x82", "half\\342\\202"},
  };
  for (const auto& [raw, shown] : names) fs_->PutFile("odd/" + raw, "x");
  CliRun r = Cli({"ls", "odd"});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), names.size()) << r.out;
  std::set<std::string> listed;
  for (const std::string& l : lines) listed.insert(l.substr(l.rfind(' ') + 1));
  std::set<std::string> expected;
  for (const auto& [raw, shown] : names) expected.insert(shown);
  EXPECT_EQ(listed, expected) << r.out;

  r = Cli({"stat",
           "odd/a\xff"
           "b"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "  File: odd/a\\377b\n")) << r.out;

  r = Cli({"stat", "odd/no\xff\nsuch"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: stat odd/no\\377\\nsuch: ");
  EXPECT_FALSE(absl::StrContains(r.err, "\xff")) << r.err;
}

TEST(CliAuthTest, TokenFile) {
  auto fs = std::make_shared<MemFs>();
  absl::StatusOr<std::unique_ptr<FakeServer>> s =
      FakeServer::Start({.token = "tok en"}, fs->Handler());
  ASSERT_TRUE(s.ok());
  std::string addr = absl::StrCat("127.0.0.1:", (*s)->port());
  std::string good =
      absl::StrCat(::testing::TempDir(), "/cli_token_good_", getpid());
  std::string bad =
      absl::StrCat(::testing::TempDir(), "/cli_token_bad_", getpid());
  {
    std::ofstream(good) << "tok en\n";
    std::ofstream(bad) << "nope\n";
  }
  CliRun r = RunCli({"--server", addr, "--token-file", good, "ls"});
  EXPECT_EQ(r.exit, 0) << r.err;
  r = RunCli({"--server", addr, "--token-file", bad, "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: authentication refused by the server: ");
  r = RunCli({"--server", addr, "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: the server requires authentication");
  r = RunCli({"--server", addr, "--token-file", good + ".missing", "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: token file ");
}

TEST(CliEngineTest, EveryEngineWorks) {
  auto fs = std::make_shared<MemFs>();
  fs->PutFile("f", std::string(1 << 20, 'e'));
  absl::StatusOr<std::unique_ptr<FakeServer>> s =
      FakeServer::Start({}, fs->Handler());
  ASSERT_TRUE(s.ok());
  std::string addr = absl::StrCat("127.0.0.1:", (*s)->port());
  for (const char* e : {"copy", "msg_zerocopy", "uring_zc", "auto"}) {
    std::string local =
        absl::StrCat(::testing::TempDir(), "/cli_engine_", getpid());
    { std::ofstream(local, std::ios::binary) << std::string(2 << 20, 'u'); }
    CliRun r = RunCli({"--server", addr, "--engine", e, "--connections", "2",
                       "put", local, absl::StrCat("up_", e)});
    if (r.exit == 1 && absl::StrContains(r.err, "SENDMSG_ZC")) continue;
    EXPECT_EQ(r.exit, 0) << e << ": " << r.err;
    EXPECT_EQ(fs->GetFile(absl::StrCat("up_", e))->size(), 2u << 20) << e;
  }
  CliRun r = RunCli({"--server", addr, "--engine", "kmod", "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: engine kmod: ");
}

// `df` prints sizes in bytes; `df -h` human-readable ones.
TEST_F(CliTest, DfPrintsBytesAndHumanSizesWithH) {
  CliRun r = Cli({"df"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat(uint64_t{100} << 30)))
      << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "GiB")) << r.out;
  for (const char* h : {"-h", "--human-readable"}) {
    r = Cli({"df", h});
    ASSERT_EQ(r.exit, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "100.0 GiB")) << r.out;
  }
}

// --help is made from the Abseil flags' help texts; -h is help before the
// command word and human sizes after it; flags take "--f v", "--f=v", and
// dashes or underscores; bad values are usage errors naming the flag.
TEST_F(CliTest, GlobalFlagsAreAbseilFlagsAndCommandOptionsFollowTheCommand) {
  CliRun r = RunCli({"--help"});
  ASSERT_EQ(r.exit, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "  --timeout SECONDS\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "seconds allowed for connecting"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "  --token-file FILE\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "(default auto)")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ls [-l] [-a] [-h] [PATH...]"));

  r = RunCli({"--server", addr_, "-h", "ls"});  // before the command: help
  EXPECT_EQ(r.exit, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "usage: txbuf")) << r.out;

  r = Cli({"ls", "--help"});  // --help is help anywhere
  EXPECT_EQ(r.exit, 0);
  EXPECT_TRUE(absl::StartsWith(r.out, "usage: txbuf")) << r.out;

  r = Cli({"ls", "-h"});  // after it: human sizes
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "docs\nempty\n");

  r = RunCli({absl::StrCat("--server=", addr_), "--timeout=30", "--connections",
              "2", "ls"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "docs\nempty\n");

  const int connections = server_->connections();
  r = Cli({"--timeout", "soon", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: bad value 'soon' for --timeout");
  r = Cli({"--timeout=0", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: --timeout needs a positive number");
  r = Cli({"--connections", "0", "ls"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: --connections needs a number >= 1");
  r = Cli({"--flagfile=/etc/passwd", "ls"});  // not one of txbuf's flags
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown option '--flagfile=/etc/passwd'");
  r = Cli({"ls", "-lz"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown option '-z' for ls");
  r = Cli({"stats", "-h"});  // -h after the command is never help
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: unknown option '-h' for stats");
  r = Cli({"cp", "a", "b"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: cp: name the remote side with a leading ':'");
  r = Cli({"cp", ":a", ":b"});
  EXPECT_EQ(r.exit, 2);
  ExpectOneLineError(r, "txbuf: cp: copying from remote to remote");
  EXPECT_EQ(server_->connections(), connections)
      << "usage errors never connect";
}

// --timeout bounds a request the server never answers.
TEST(CliTimeoutTest, ARequestWithNoReplyFailsAfterTheTimeout) {
  absl::StatusOr<std::unique_ptr<FakeServer>> s =
      FakeServer::Start({}, [](const FakeServer::ConnPtr&, const rpc::Request&,
                               absl::string_view) {});  // never replies
  ASSERT_TRUE(s.ok()) << s.status();
  CliRun r = RunCli({"--server", absl::StrCat("127.0.0.1:", (*s)->port()),
                     "--timeout", "1", "ls"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: ls /: no reply from ");
}

// A listening socket nobody accepts on: the kernel completes the TCP
// connect, then nothing answers (as a SIGSTOPped txbufd). --timeout bounds
// the handshake too (it took 10 s whatever --timeout said).
TEST(CliTimeoutTest, AServerThatNeverAnswersFailsWithinTheTimeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  absl::Time start = absl::Now();
  CliRun r = RunCli({"--server", absl::StrCat("127.0.0.1:", ntohs(a.sin_port)),
                     "--timeout", "1", "ls"});
  absl::Duration took = absl::Now() - start;
  close(fd);
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: ");
  EXPECT_TRUE(absl::StrContains(r.err, "timed out")) << r.err;
  // 1 s asked; a generous bound for a busy machine (was 10 s).
  EXPECT_LT(took, absl::Seconds(8)) << r.err;
}

// --- against a real txbufd -------------------------------------------------

using ::txbuf::testing::ReadFileOrDie;
using ::txbuf::testing::ServerProcess;
using ::txbuf::testing::TempDir;
using ::txbuf::testing::WriteFile;

bool Exists(const std::string& path) {
  struct stat sb;
  return lstat(path.c_str(), &sb) == 0;
}
bool IsDir(const std::string& path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode);
}
// Bytes that differ from offset to offset (a shifted copy would show).
std::string Pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 2654435761u + seed) >> 13);
  }
  return s;
}

class CliTxbufdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start({"--export", export_.path()});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_->address()});
    return RunCli(args);
  }
  std::string Remote(const std::string& rel) { return export_.Join(rel); }

  TempDir export_, local_;
  std::unique_ptr<ServerProcess> server_;
};

// --export NAME picks one of a server's exports (docs/EXPORTS.md); without
// it, the first.
TEST(CliExportTest, ExportFlagPicksTheExport) {
  TempDir first, second, conf;
  WriteFile(first.Join("one.txt"), "first export\n");
  WriteFile(second.Join("two.txt"), "second export\n");
  WriteFile(conf.Join("txbufd.conf"),
            absl::StrCat("[[export]]\nname = \"first\"\npath = \"",
                         first.path(), "\"\n[[export]]\nname = \"second\"\n",
                         "path = \"", second.path(), "\"\nread-only = true\n"));
  absl::StatusOr<std::unique_ptr<ServerProcess>> s =
      ServerProcess::Start({"--config", conf.Join("txbufd.conf")});
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string addr = (*s)->address();
  CliRun r = RunCli({"--server", addr, "cat", "one.txt"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "first export\n");
  r = RunCli({"--server", addr, "--export", "second", "cat", "two.txt"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "second export\n");
  r = RunCli({"--server", addr, "--export=second", "mkdir", "new"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: mkdir new: ");
  r = RunCli({"--server", addr, "--export", "third", "ls"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no export named 'third'")) << r.err;
}

// cat writes the files in order; a missing one is reported and the others
// still printed (exit 1), as coreutils' cat.
TEST_F(CliTxbufdTest, CatWritesFilesToStandardOutput) {
  WriteFile(Remote("d/a.txt"), "alpha\n");
  WriteFile(Remote("d/b.txt"), "beta\n");
  const std::string big = Pattern(3 << 20, 1);
  WriteFile(Remote("big.bin"), big);
  CliRun r = Cli({"cat", "d/a.txt", "d/b.txt"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "alpha\nbeta\n");
  r = Cli({"cat", "big.bin"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(r.out == big);
  r = Cli({"cat", "d/*.txt"});  // a pattern
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "alpha\nbeta\n");
  r = Cli({"cat", "d/a.txt", "d/missing", "d/b.txt"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.out, "alpha\nbeta\n");
  ExpectOneLineError(r, "txbuf: cat d/missing: ");
  r = Cli({"cat", "d"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: cat d: ");
  EXPECT_TRUE(absl::StrContains(r.err, "not a regular file")) << r.err;
}

// ls: names; -l long; -a dot files; -h human sizes; options bundled; several
// operands get headers; patterns expand against the listing.
TEST_F(CliTxbufdTest, LsLongAllHumanAndPatterns) {
  WriteFile(Remote("d/big"), std::string(1536, 'x'));
  WriteFile(Remote("d/.hidden"), "h");
  WriteFile(Remote("d/small"), "s");
  WriteFile(Remote("e/x1"), "1");
  CliRun r = Cli({"ls", "d"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "big\nsmall\n");
  r = Cli({"ls", "-a", "d"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, ".hidden\nbig\nsmall\n");
  r = Cli({"ls", "-l", "d"});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "-rw")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], " 1536 ")) << lines[0];
  EXPECT_TRUE(absl::EndsWith(lines[0], " big")) << lines[0];
  for (const char* opts : {"-lah", "-l -a -h", "--all -lh"}) {
    std::vector<std::string> args = {"ls"};
    for (absl::string_view o : absl::StrSplit(opts, ' ')) {
      args.emplace_back(o);
    }
    args.push_back("d");
    r = Cli(args);
    ASSERT_EQ(r.exit, 0) << opts << ": " << r.err;
    lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 3u) << opts << ": " << r.out;
    EXPECT_TRUE(absl::EndsWith(lines[0], " .hidden")) << lines[0];
    EXPECT_TRUE(absl::StrContains(lines[1], "1.5 KiB")) << lines[1];
  }
  r = Cli({"ls", "d/b*"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "d/big\n");
  r = Cli({"ls", "d/*"});  // '*' skips dot files, as sh does
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "d/big\nd/small\n");
  r = Cli({"ls", "d/[bs]?[ga]*"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "d/big\nd/small\n");
  r = Cli({"ls", "?"});  // directories matched: listed with headers
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "d:\nbig\nsmall\n\ne:\nx1\n");
  r = Cli({"ls", "*/x?"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "e/x1\n");
  r = Cli({"ls", "d/zz*"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: ls d/zz*: no match for 'd/zz*'");
}

// mkdir -p makes the missing parents and accepts an existing directory;
// without -p an existing one is an error.
TEST_F(CliTxbufdTest, MkdirParents) {
  CliRun r = Cli({"mkdir", "-p", "a/b/c", "x/y"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(IsDir(Remote("a/b/c")));
  EXPECT_TRUE(IsDir(Remote("x/y")));
  r = Cli({"mkdir", "--parents", "a/b/c"});
  EXPECT_EQ(r.exit, 0) << r.err;
  r = Cli({"mkdir", "a"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: mkdir a: ");
  r = Cli({"mkdir", "a/new"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(IsDir(Remote("a/new")));
  WriteFile(Remote("f"), "file");
  r = Cli({"mkdir", "-p", "f/sub"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: mkdir f/sub: 'f' exists and is not a dir");
  EXPECT_EQ(ReadFileOrDie(Remote("f")), "file");
}

// mv into an existing directory keeps the name (as coreutils' mv); several
// sources (or a pattern) need a directory.
TEST_F(CliTxbufdTest, MvIntoAnExistingDirectory) {
  WriteFile(Remote("a.txt"), "a");
  WriteFile(Remote("b.txt"), "b");
  WriteFile(Remote("c.log"), "c");
  WriteFile(Remote("d.log"), "d");
  WriteFile(Remote("dir/keep"), "k");
  CliRun r = Cli({"mv", "a.txt", "dir"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("dir/a.txt")), "a");
  EXPECT_FALSE(Exists(Remote("a.txt")));
  r = Cli({"mv", "b.txt", "dir/"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("dir/b.txt")), "b");
  r = Cli({"mv", "*.log", "dir"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("dir/c.log")), "c");
  EXPECT_EQ(ReadFileOrDie(Remote("dir/d.log")), "d");
  r = Cli({"mv", "dir/a.txt", "renamed.txt"});  // not a directory: a rename
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("renamed.txt")), "a");
  r = Cli({"mv", "dir/b.txt", "dir/c.log", "renamed.txt"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: mv renamed.txt: the target is not a dir");
  EXPECT_EQ(ReadFileOrDie(Remote("renamed.txt")), "a");
  EXPECT_EQ(ReadFileOrDie(Remote("dir/b.txt")), "b");
}

// cp both ways: remote paths start with ':'; -r copies trees (dot files
// included); into an existing directory under the source's name; a
// directory without -r is refused; patterns in remote sources.
TEST_F(CliTxbufdTest, CpBothWaysWithTrees) {
  const std::string big = Pattern(3 << 20, 2);
  WriteFile(local_.Join("src/big.bin"), big);
  WriteFile(local_.Join("src/sub/deep/y.txt"), "why\n");
  WriteFile(local_.Join("src/.dot"), "dot");
  mkdir(local_.Join("src/emptydir").c_str(), 0755);

  CliRun r = Cli({"cp", local_.Join("src"), ":up"});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: cp ");
  EXPECT_TRUE(absl::StrContains(r.err, "use cp -r")) << r.err;
  EXPECT_FALSE(Exists(Remote("up")));

  r = Cli({"cp", "-r", local_.Join("src"), ":up"});  // up is new: the copy
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(ReadFileOrDie(Remote("up/big.bin")) == big);
  EXPECT_EQ(ReadFileOrDie(Remote("up/sub/deep/y.txt")), "why\n");
  EXPECT_EQ(ReadFileOrDie(Remote("up/.dot")), "dot");
  EXPECT_TRUE(IsDir(Remote("up/emptydir")));
  r = Cli({"cp", "-R", local_.Join("src/"), ":up"});  // up exists: into it
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("up/src/sub/deep/y.txt")), "why\n");
  r = Cli({"cp", "-r", local_.Join("src"), ":up2/"});  // new, with a '/'
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("up2/sub/deep/y.txt")), "why\n");
  r = Cli({"cp", local_.Join("src/.dot"), ":nodir/"});  // a file: refused
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: cp :nodir/: ");
  EXPECT_FALSE(Exists(Remote("nodir")));

  r = Cli({"cp", local_.Join("src/.dot"), local_.Join("src/sub/deep/y.txt"),
           ":"});  // files into the root
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote(".dot")), "dot");
  EXPECT_EQ(ReadFileOrDie(Remote("y.txt")), "why\n");
  r = Cli({"cp", local_.Join("src/.dot"), ":renamed"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(Remote("renamed")), "dot");

  // Remote to local.
  r = Cli({"cp", ":up/big.bin", local_.Join("got.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(ReadFileOrDie(local_.Join("got.bin")) == big);
  r = Cli({"cp", "--recursive", ":up", local_.Join("tree")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_TRUE(ReadFileOrDie(local_.Join("tree/big.bin")) == big);
  EXPECT_EQ(ReadFileOrDie(local_.Join("tree/sub/deep/y.txt")), "why\n");
  EXPECT_EQ(ReadFileOrDie(local_.Join("tree/.dot")), "dot");
  EXPECT_EQ(ReadFileOrDie(local_.Join("tree/src/sub/deep/y.txt")), "why\n");
  EXPECT_TRUE(IsDir(local_.Join("tree/emptydir")));
  mkdir(local_.Join("pick").c_str(), 0755);
  r = Cli({"cp", "-r", ":up/sub", local_.Join("pick")});  // pick exists
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(local_.Join("pick/sub/deep/y.txt")), "why\n");
  r = Cli({"cp", ":*.txt", ":renamed", local_.Join("pick")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(local_.Join("pick/y.txt")), "why\n");
  EXPECT_EQ(ReadFileOrDie(local_.Join("pick/renamed")), "dot");
  r = Cli({"cp", ":up", local_.Join("nodir")});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: cp :up: is a directory (use cp -r)");
  EXPECT_FALSE(Exists(local_.Join("nodir")));
  r = Cli({"cp", ":y.txt", ":renamed", local_.Join("got.bin")});
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: cp ");
  EXPECT_TRUE(absl::StrContains(r.err, "not an existing directory")) << r.err;
  EXPECT_TRUE(ReadFileOrDie(local_.Join("got.bin")) == big);
}

// Runs `txbuf` with `args` and standard error on a terminal (a pty);
// returns {exit status, what it wrote there}.
std::pair<int, std::string> RunWithTerminalStderr(
    const std::vector<std::string>& args) {
  int master = -1, slave = -1;
  if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return {-1, ""};
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(slave, 2);
    std::vector<std::string> copy = args;
    std::string bin = TXBUF_CLI_PATH;
    std::vector<char*> argv = {bin.data()};
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(slave);
  std::string out;
  char buf[4096];
  for (;;) {  // until the child's end of the pty is closed (EIO)
    ssize_t n = read(master, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// cp draws the progress bar (as get and put do) when standard error is a
// terminal, and finishes it at 100%.
TEST_F(CliTxbufdTest, CpShowsProgressOnATerminal) {
  const std::string big = Pattern(4 << 20, 3);
  WriteFile(local_.Join("big.bin"), big);
  auto [rc, err] = RunWithTerminalStderr(
      {"--server", server_->address(), "cp", local_.Join("big.bin"), ":"});
  ASSERT_EQ(rc, 0) << err;
  EXPECT_TRUE(ReadFileOrDie(Remote("big.bin")) == big);
  EXPECT_TRUE(absl::StrContains(err, "big.bin ")) << err;
  EXPECT_TRUE(absl::StrContains(err, "4.0 MiB / 4.0 MiB")) << err;
  EXPECT_TRUE(absl::StrContains(err, "100%")) << err;
  std::tie(rc, err) = RunWithTerminalStderr(
      {"--server", server_->address(), "cp", ":big.bin", local_.Join("back")});
  ASSERT_EQ(rc, 0) << err;
  EXPECT_TRUE(ReadFileOrDie(local_.Join("back")) == big);
  EXPECT_TRUE(absl::StrContains(err, "100%")) << err;
}

// A stopped txbufd (SIGSTOP: the kernel completes the connect, nobody
// answers) fails `txbuf --timeout 1` with a timeout, well before the old
// fixed 10 s.
TEST_F(CliTxbufdTest, AStoppedServerFailsWithinTheTimeout) {
  ASSERT_EQ(kill(server_->pid(), SIGSTOP), 0);
  absl::Time start = absl::Now();
  CliRun r = Cli({"--timeout", "1", "ls"});
  absl::Duration took = absl::Now() - start;
  ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
  EXPECT_EQ(r.exit, 1);
  ExpectOneLineError(r, "txbuf: ");
  EXPECT_TRUE(absl::StrContains(r.err, "timed out")) << r.err;
  EXPECT_LT(took, absl::Seconds(8)) << r.err;
  r = Cli({"ls"});  // and it serves again once continued
  EXPECT_EQ(r.exit, 0) << r.err;
}

}  // namespace
}  // namespace txbuf::client
