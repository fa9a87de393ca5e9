// Ownership squashing under the shipped systemd unit, without systemd:
// txbufd runs as an unprivileged uid (no user needed: setpriv takes a
// number) with the capabilities dist/txbufd.service.d/squash.conf grants,
// ambient as systemd's AmbientCapabilities= makes them, and squashes what a
// client creates (docs/OPERATING.md, "Squashing under the unit"). Without
// them, txbufd refuses to start with one line naming what is missing and
// the drop-in.
//
// Needs root (to start txbufd as another uid) and setpriv (util-linux);
// skips otherwise.
//
// Thread-safety: tests run one at a time (gtest).
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "client/compound.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

constexpr char kSetpriv[] = "/usr/bin/setpriv";
constexpr uint32_t kSquashUid = 4242;
constexpr uint32_t kSquashGid = 4343;
// The drop-in's capabilities, in setpriv's spelling.
constexpr char kDropInCaps[] = "+chown,+dac_override,+fowner";

class ServerSquashCapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "starting txbufd as another uid needs root";
    }
    if (access(kSetpriv, X_OK) != 0) {
      GTEST_SKIP() << kSetpriv << " missing (package util-linux)";
    }
    // A uid no one else uses (an unprivileged txbufd of its own).
    uid_ = 2100000000u + static_cast<uint32_t>(getpid()) % 1000000u;
    ASSERT_EQ(chown(export_.path().c_str(), uid_, uid_), 0);
    ASSERT_EQ(chmod(conf_.path().c_str(), 0755), 0);
    WriteFile(conf_.Join("txbufd.conf"),
              absl::StrCat("[[export]]\nname = \"data\"\npath = \"",
                           export_.path(), "\"\nsquash-uid = ", kSquashUid,
                           "\nsquash-gid = ", kSquashGid, "\n"));
    ASSERT_EQ(chmod(conf_.Join("txbufd.conf").c_str(), 0644), 0);
  }

  // txbufd as uid_ (and gid), no supplementary groups, no new privileges,
  // with `caps` ("+chown,...", or "" for none) inheritable, ambient and as
  // the whole bounding set: what systemd makes of User=, NoNewPrivileges=,
  // AmbientCapabilities= and CapabilityBoundingSet=.
  absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& caps) {
    const std::string set = absl::StrCat("-all", caps.empty() ? "" : ",", caps);
    ProcessOptions o;
    o.stderr_path = conf_.Join("txbufd.log");
    o.wrapper = {kSetpriv,
                 "--reuid",
                 absl::StrCat(uid_),
                 "--regid",
                 absl::StrCat(uid_),
                 "--clear-groups",
                 "--no-new-privs",
                 "--inh-caps",
                 set,
                 "--ambient-caps",
                 set,
                 "--bounding-set",
                 set,
                 "--pdeathsig",
                 "KILL"};
    return ServerProcess::Start(
        {"--config", conf_.Join("txbufd.conf"), "--cache-size", "64M"}, o);
  }

  std::string Log() { return ReadFileOrDie(conf_.Join("txbufd.log")); }

  // The log's lines that contain `text`.
  std::vector<std::string> LogLines(const std::string& text) {
    std::vector<std::string> out;
    for (absl::string_view l : absl::StrSplit(Log(), '\n')) {
      if (absl::StrContains(l, text)) out.emplace_back(l);
    }
    return out;
  }

  TempDir export_, conf_;
  uint32_t uid_ = 0;
};

TEST_F(ServerSquashCapsTest, TheDropInsCapabilitiesAreEnoughToSquash) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> s = Start(kDropInCaps);
  ASSERT_TRUE(s.ok()) << s.status() << "\n" << Log();
  client::ClientOptions o;
  o.host = (*s)->host();
  o.port = (*s)->port();
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  client::Client& cl = **c;
  // Each step needs one of the capabilities once the file is given away:
  // CREATE reopens what it just chowned, writes and MKDIR inside a
  // directory that is no longer txbufd's (CAP_DAC_OVERRIDE), mode and times
  // of a file it does not own (CAP_FOWNER).
  ASSERT_TRUE(cl.Mkdir("dir").ok());
  ASSERT_TRUE(cl.Create("dir/a.txt", 0600).ok());
  ASSERT_TRUE(cl.Write("dir/a.txt", 0, "hello", rpc::STABILITY_FILE_SYNC).ok());
  ASSERT_TRUE(cl.Mkdir("dir/sub").ok());
  ASSERT_TRUE(cl.Create("dir/sub/b.txt").ok());
  ASSERT_TRUE(cl.Write("dir/sub/b.txt", 0, "bytes").ok());
  ASSERT_TRUE(cl.Commit("dir/sub/b.txt").ok());
  ASSERT_TRUE(cl.Truncate("dir/sub/b.txt", 2).ok());
  constexpr int64_t kMtimeNs = 978307200LL * 1000000000LL;  // 2001-01-01
  client::Compound set;
  set.PutRootFh()
      .Lookup("dir/a.txt")
      .SetAttr({.mode = 0640, .mtime_ns = kMtimeNs});
  absl::StatusOr<client::CompoundReply> r = cl.Call(std::move(set));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->status().ok()) << r->status();
  ASSERT_TRUE(cl.Rename("dir/sub/b.txt", "dir/c.txt").ok());
  absl::StatusOr<std::string> back = cl.Read("dir/a.txt", 0, 100);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "hello");
  client::Compound link;
  link.PutRootFh().Lookup("dir").Symlink("link", "a.txt");
  r = cl.Call(std::move(link));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->status().ok()) << r->status();
  for (const char* name :
       {"dir", "dir/a.txt", "dir/sub", "dir/c.txt", "dir/link"}) {
    struct stat st;
    ASSERT_EQ(lstat(export_.Join(name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_uid, kSquashUid) << name;
    EXPECT_EQ(st.st_gid, kSquashGid) << name;
  }
  struct stat a;
  ASSERT_EQ(stat(export_.Join("dir/a.txt").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  EXPECT_EQ(a.st_mtim.tv_sec, kMtimeNs / 1000000000LL);
  EXPECT_EQ(ReadFileOrDie(export_.Join("dir/c.txt")), "by");
  ASSERT_TRUE(cl.Remove("dir/c.txt").ok());
  ASSERT_TRUE(cl.Rmdir("dir/sub").ok());
  c->reset();
  ServerExit e = (*s)->Stop();
  EXPECT_EQ(e.exit_code, 0) << Log();
  EXPECT_TRUE(LogLines("squash.conf").empty()) << Log();
}

// Each capability the drop-in grants is needed: without any one, txbufd
// does not start, and says so in one line naming it and the drop-in.
TEST_F(ServerSquashCapsTest, WithoutACapabilityTxbufdSaysWhichAndWhere) {
  struct Case {
    std::string caps, missing;
  };
  for (const Case& k :
       std::vector<Case>{{"", "CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER"},
                         {"+dac_override,+fowner", "CAP_CHOWN"},
                         {"+chown,+fowner", "CAP_DAC_OVERRIDE"},
                         {"+chown,+dac_override", "CAP_FOWNER"}}) {
    SCOPED_TRACE(k.caps);
    ASSERT_EQ(
        truncate(conf_.Join("txbufd.log").c_str(), 0) == 0 || errno == ENOENT,
        true);
    absl::StatusOr<std::unique_ptr<ServerProcess>> s = Start(k.caps);
    ASSERT_FALSE(s.ok()) << "txbufd started without " << k.missing;
    const std::vector<std::string> lines = LogLines("squash.conf");
    ASSERT_EQ(lines.size(), 1u) << Log();
    EXPECT_TRUE(absl::StrContains(
        lines[0], absl::StrCat("uid ", uid_, " without ", k.missing, ":")))
        << lines[0];
    EXPECT_TRUE(absl::StrContains(
        lines[0], "/etc/systemd/system/txbufd.service.d/squash.conf"))
        << lines[0];
    EXPECT_TRUE(absl::StrContains(lines[0], "export 'data'")) << lines[0];
  }
}

}  // namespace
}  // namespace txbuf::testing
