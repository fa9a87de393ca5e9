// Confinement and special files (issue 9, items 1, 2 and 8): nothing
// resolves outside the export, even through the handle of a directory moved
// out of it on the server host; no FIFO, device or socket in the export can
// block the server; no set-user-ID program can be made through it.
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_fixture.h"

namespace txbuf::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

class MovedOutTest : public ServerTest {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("moveme/inner.txt"), "inner");
    WriteFile(dir_.Join("moveme/sub/deep.txt"), "deep");
    WriteFile(dir_.Join("victim.txt"), "victim");
    chmod(dir_.Join("moveme").c_str(), 0755);
    chmod(dir_.Join("moveme/sub").c_str(), 0755);
  }
  // Moves EXPORT/moveme to OUTSIDE/moved (same file system: both are under
  // the same temporary directory root).
  void MoveOut() {
    ASSERT_EQ(
        rename(dir_.Join("moveme").c_str(), outside_.Join("moved").c_str()), 0);
  }
  void MoveBack() {
    ASSERT_EQ(
        rename(outside_.Join("moved").c_str(), dir_.Join("moveme").c_str()), 0);
  }
  rpc::Request AtFh(const std::string& fh) {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(fh);
    return r;
  }
  // Every op that goes through directory handle `m` is refused with STALE
  // and changes nothing outside the export.
  void ExpectEveryDirOpStale(RawClient& c, const std::string& m,
                             const std::string& where) {
    SCOPED_TRACE(where);
    auto expect_stale = [&](rpc::Request r, const char* what) {
      RawReply rep = Call(c, r);
      EXPECT_EQ(rep.reply.status(), rpc::STATUS_STALE)
          << what << ": " << rep.reply.error();
    };
    rpc::Request r = AtFh(m);
    AddLookup(r, "inner.txt");
    r.add_ops()->mutable_read()->set_length(100);
    expect_stale(r, "LOOKUP+READ");
    r = AtFh(m);
    r.add_ops()->mutable_readdir();
    expect_stale(r, "READDIR");
    r = AtFh(m);
    rpc::Create* cr = r.add_ops()->mutable_create();
    cr->set_name("planted.txt");
    cr->set_mode(0644);
    rpc::Write* w = r.add_ops()->mutable_write();
    w->set_length(7);
    w->set_stable(rpc::STABILITY_FILE_SYNC);
    RawReply rep = Call(c, r, "planted");
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_STALE) << rep.reply.error();
    r = AtFh(m);
    r.add_ops()->mutable_mkdir()->set_name("planted-dir");
    expect_stale(r, "MKDIR");
    r = AtFh(m);
    r.add_ops()->mutable_setattr()->set_mode(0777);
    expect_stale(r, "SETATTR");
    r = AtFh(m);
    r.add_ops()->mutable_getattr();
    expect_stale(r, "GETATTR");
    r = AtFh(m);
    r.add_ops()->mutable_remove()->set_name("inner.txt");
    expect_stale(r, "REMOVE");
    r = AtFh(m);
    r.add_ops()->mutable_rmdir()->set_name("sub");
    expect_stale(r, "RMDIR");
    // RENAME from the root into the moved directory.
    r = At("");
    rpc::Rename* rn = r.add_ops()->mutable_rename();
    rn->set_from_name("victim.txt");
    rn->set_to_name("stolen.txt");
    rn->set_to_dir(m);
    expect_stale(r, "RENAME to_dir");
    // RENAME out of the moved directory into the export.
    r = AtFh(m);
    rn = r.add_ops()->mutable_rename();
    rn->set_from_name("inner.txt");
    rn->set_to_name("fetched.txt");
    rn->set_to_dir(HandleOf(c, ""));
    expect_stale(r, "RENAME from");
  }
  void ExpectNothingChangedOutside() {
    EXPECT_FALSE(Exists(outside_.Join("moved/planted.txt")));
    EXPECT_FALSE(Exists(outside_.Join("moved/planted-dir")));
    EXPECT_FALSE(Exists(outside_.Join("moved/stolen.txt")));
    EXPECT_FALSE(Exists(outside_.Join("moved/sub/planted.txt")));
    EXPECT_TRUE(Exists(outside_.Join("moved/inner.txt")));
    EXPECT_TRUE(Exists(outside_.Join("moved/sub")));
    EXPECT_EQ(ModeOf(outside_.Join("moved")), 0755u);
    EXPECT_EQ(ModeOf(outside_.Join("moved/sub")), 0755u);
    EXPECT_TRUE(Exists(dir_.Join("victim.txt")));
    EXPECT_FALSE(Exists(dir_.Join("fetched.txt")));
  }

  TempDir outside_;
};

TEST_F(MovedOutTest, DirectoryHandlesMovedOutAreStale) {
  StartServer();
  RawClient c = Connect();
  const std::string m = HandleOf(c, "moveme");
  const std::string sub = HandleOf(c, "moveme/sub");
  const std::string inner = HandleOf(c, "moveme/inner.txt");
  ASSERT_FALSE(m.empty());
  ASSERT_FALSE(sub.empty());
  ASSERT_FALSE(inner.empty());
  MoveOut();
  ExpectEveryDirOpStale(c, m, "the moved directory");
  ExpectEveryDirOpStale(c, sub, "a directory beneath it");
  ExpectNothingChangedOutside();
  // A regular file's handle keeps working on that file (as in NFS).
  rpc::Request r = AtFh(inner);
  r.add_ops()->mutable_read()->set_length(100);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(1), "inner");
  // Moved back in, the directory is usable again.
  MoveBack();
  r = AtFh(m);
  AddLookup(r, "inner.txt");
  r.add_ops()->mutable_read()->set_length(100);
  rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(2), "inner");
  ExpectStillServing();
}

TEST_F(MovedOutTest, EvictedDirectoryHandleMovedOutIsStale) {
  // A small descriptor budget: the directory's descriptor is evicted, and
  // the server must find it again (by kernel handle or by name) and still
  // see that it left the export.
  for (int i = 0; i < 300; ++i) {
    WriteFile(dir_.Join(absl::StrCat("many/f", i)), "x");
  }
  StartServer({}, {.nofile = 128});
  RawClient c = Connect();
  const std::string m = HandleOf(c, "moveme");
  ASSERT_FALSE(m.empty());
  for (int i = 0; i < 300; ++i) {
    ASSERT_FALSE(HandleOf(c, absl::StrCat("many/f", i)).empty()) << i;
  }
  MoveOut();
  ExpectEveryDirOpStale(c, m, "evicted, moved directory");
  ExpectNothingChangedOutside();
  MoveBack();
  ExpectStillServing();
}

class SpecialFilesTest : public ServerTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkfifo(dir_.Join("fifo").c_str(), 0666), 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string path = dir_.Join("sock");
    ASSERT_LT(path.size(), sizeof(a.sun_path));
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    close(s);
    names_ = {"fifo", "sock"};
    // A character device like /dev/null (needs CAP_MKNOD: root in CI).
    if (mknod(dir_.Join("chardev").c_str(), S_IFCHR | 0666, makedev(1, 3)) ==
        0) {
      names_.push_back("chardev");
    }
    StartServer();
  }
  std::vector<std::string> names_;
};

TEST_F(SpecialFilesTest, NoOpBlocksOrActsOnASpecialFile) {
  if (names_.size() < 3) {
    std::printf("note: no device node (mknod needs root); FIFO and socket\n");
  }
  RawClient c = Connect();
  for (const std::string& name : names_) {
    SCOPED_TRACE(name);
    for (bool exclusive : {false, true}) {
      rpc::Request r = At("");
      rpc::Create* cr = r.add_ops()->mutable_create();
      cr->set_name(name);
      cr->set_exclusive(exclusive);
      RawReply rep = Call(c, r, "", 10000);
      EXPECT_EQ(rep.reply.status(),
                exclusive ? rpc::STATUS_EXIST : rpc::STATUS_INVAL)
          << "CREATE: " << rep.reply.error();
    }
    rpc::Request r = At(name);
    r.add_ops()->mutable_read()->set_length(10);
    RawReply rep = Call(c, r, "", 10000);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_INVAL) << rep.reply.error();
    r = At(name);
    rpc::Write* w = r.add_ops()->mutable_write();
    w->set_length(3);
    w->set_stable(rpc::STABILITY_FILE_SYNC);
    rep = Call(c, r, "abc", 10000);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_INVAL) << rep.reply.error();
    r = At(name);
    r.add_ops()->mutable_setattr()->set_size(0);
    rep = Call(c, r, "", 10000);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_INVAL) << rep.reply.error();
    r = At(name);
    r.add_ops()->mutable_commit();
    rep = Call(c, r, "", 10000);
    EXPECT_NE(rep.reply.status(), rpc::STATUS_OK);
    // Attributes are fine: they open nothing.
    r = At(name);
    r.add_ops()->mutable_getattr();
    rep = Call(c, r, "", 10000);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    EXPECT_EQ(rep.reply.results(2).attr().attr().type(), rpc::FILE_TYPE_OTHER);
    ExpectStillServing();
  }
  struct stat st;
  ASSERT_EQ(lstat(dir_.Join("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

class SetIdTest : public ServerTest {
 protected:
  void SetUp() override { StartServer(); }
};

TEST_F(SetIdTest, NoSetIdBitsThroughTheServer) {
  RawClient c = Connect();
  // CREATE with set-user-ID: created without it.
  rpc::Request r = At("");
  rpc::Create* cr = r.add_ops()->mutable_create();
  cr->set_name("suid");
  cr->set_mode(04755);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(ModeOf(dir_.Join("suid")) & 06000, 0u);
  EXPECT_EQ(rep.reply.results(1).fh().attr().mode() & 06000, 0u);
  // SETATTR cannot set them.
  for (uint32_t mode : {04777u, 02755u, 06755u}) {
    r = At("suid");
    r.add_ops()->mutable_setattr()->set_mode(mode);
    rep = Call(c, r);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_PERM) << mode;
  }
  EXPECT_EQ(ModeOf(dir_.Join("suid")) & 06000, 0u);
  // MKDIR with set-group-ID: created without it.
  r = At("");
  rpc::Mkdir* mk = r.add_ops()->mutable_mkdir();
  mk->set_name("sgid-dir");
  mk->set_mode(02775);
  rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(ModeOf(dir_.Join("sgid-dir")) & 06000, 0u);
  // A set-user-ID file put there on the host loses the bit on WRITE, as the
  // kernel does for ordinary writers.
  WriteFile(dir_.Join("host-suid"), "#!/bin/sh\n");
  ASSERT_EQ(chmod(dir_.Join("host-suid").c_str(), 06755), 0);
  for (rpc::Stability s : {rpc::STABILITY_UNSTABLE, rpc::STABILITY_FILE_SYNC}) {
    ASSERT_EQ(chmod(dir_.Join("host-suid").c_str(), 06755), 0);
    r = At("host-suid");
    rpc::Write* w = r.add_ops()->mutable_write();
    w->set_length(5);
    w->set_stable(s);
    rep = Call(c, r, "exit\n");
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    EXPECT_EQ(ModeOf(dir_.Join("host-suid")), 0755u) << s;
  }
}

// txbufd --user: files are accessed with that user's permissions, and
// evicted handles are found again without kernel file handles (which need
// privileges).
class UnprivilegedTest : public ServerTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
    pw_ = getpwnam("nobody");
    if (pw_ == nullptr) GTEST_SKIP() << "no user 'nobody'";
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    WriteFile(dir_.Join("secret.txt"), "secret");
    ASSERT_EQ(chmod(dir_.Join("secret.txt").c_str(), 0600), 0);
    WriteFile(dir_.Join("world.txt"), "world");
    ASSERT_EQ(chmod(dir_.Join("world.txt").c_str(), 0444), 0);
    WriteFile(dir_.Join("none.txt"), "none");
    ASSERT_EQ(chmod(dir_.Join("none.txt").c_str(), 0), 0);
    ASSERT_EQ(mkdir(dir_.Join("readonly").c_str(), 0555), 0);
    ASSERT_EQ(chmod(dir_.Join("readonly").c_str(), 0555), 0);
    ASSERT_EQ(mkdir(dir_.Join("open").c_str(), 0777), 0);
    ASSERT_EQ(chmod(dir_.Join("open").c_str(), 0777), 0);
    for (int i = 0; i < 300; ++i) {
      WriteFile(dir_.Join(absl::StrCat("many/f", i)), absl::StrCat("c", i));
    }
    ASSERT_EQ(chmod(dir_.Join("many").c_str(), 0777), 0);
    StartServer({"--user", "nobody"}, {.nofile = 128});
  }
  RawReply Read(RawClient& c, const std::string& path) {
    rpc::Request r = At(path);
    r.add_ops()->mutable_read()->set_length(100);
    return Call(c, r);
  }
  passwd* pw_ = nullptr;
};

TEST_F(UnprivilegedTest, FilesAreAccessedAsTheUser) {
  std::ifstream status(absl::StrCat("/proc/", server_->pid(), "/status"));
  std::string line, uid_line;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) uid_line = line;
  }
  EXPECT_THAT(uid_line, ::testing::HasSubstr(absl::StrCat(pw_->pw_uid)));
  EXPECT_THAT(uid_line, ::testing::Not(::testing::HasSubstr("\t0\t")));
  RawClient c = Connect();
  EXPECT_EQ(Read(c, "secret.txt").reply.status(), rpc::STATUS_ACCES);
  EXPECT_EQ(Read(c, "none.txt").reply.status(), rpc::STATUS_ACCES);
  RawReply world = Read(c, "world.txt");
  ASSERT_EQ(world.reply.status(), rpc::STATUS_OK) << world.reply.error();
  EXPECT_EQ(world.ReadData(2), "world");
  // Writing a file it may only read.
  rpc::Request w = At("world.txt");
  rpc::Write* wr = w.add_ops()->mutable_write();
  wr->set_length(3);
  wr->set_stable(rpc::STABILITY_FILE_SYNC);
  EXPECT_EQ(Call(c, w, "xyz").reply.status(), rpc::STATUS_ACCES);
  EXPECT_EQ(ReadFileOrDie(dir_.Join("world.txt")), "world");
  // CREATE in a directory it may not write.
  for (const char* dir : {"", "readonly"}) {
    rpc::Request r = At(dir);
    r.add_ops()->mutable_create()->set_name("new.txt");
    EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_ACCES) << dir;
  }
  // And where it may: the file is the user's.
  rpc::Request r = At("open");
  r.add_ops()->mutable_create()->set_name("mine.txt");
  ASSERT_EQ(Call(c, r).reply.status(), rpc::STATUS_OK);
  struct stat st;
  ASSERT_EQ(stat(dir_.Join("open/mine.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, pw_->pw_uid);
}

// Issue 10 item 7: a file is opened for what the op needs. The user's own
// 0444 file is read (opened read-only); once SETATTR makes it writable a
// WRITE works (the read-only descriptor is upgraded; it was ACCES).
TEST_F(UnprivilegedTest, WriteAfterTheFileBecomesWritable) {
  const std::string path = dir_.Join("open/own.txt");
  WriteFile(path, "own data");
  ASSERT_EQ(chown(path.c_str(), pw_->pw_uid, pw_->pw_gid), 0);
  ASSERT_EQ(chmod(path.c_str(), 0444), 0);
  RawClient c = Connect();
  RawReply rep = Read(c, "open/own.txt");
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(2), "own data");
  auto write = [&](rpc::Stability how) {
    rpc::Request w = At("open/own.txt");
    rpc::Write* wr = w.add_ops()->mutable_write();
    wr->set_length(3);
    wr->set_stable(how);
    w.add_ops()->mutable_commit();
    return Call(c, w, "OWN");
  };
  rep = write(rpc::STABILITY_UNSTABLE);
  EXPECT_EQ(rep.reply.status(), rpc::STATUS_ACCES) << rep.reply.error();
  // READs go on.
  EXPECT_EQ(Read(c, "open/own.txt").ReadData(2), "own data");
  rpc::Request chmod_req = At("open/own.txt");
  chmod_req.add_ops()->mutable_setattr()->set_mode(0644);
  ASSERT_EQ(Call(c, chmod_req).reply.status(), rpc::STATUS_OK);
  rep = write(rpc::STABILITY_UNSTABLE);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(ReadFileOrDie(path), "OWN data");
  rep = Read(c, "open/own.txt");
  EXPECT_EQ(rep.ReadData(2), "OWN data");
  // SETATTR size needs it read-write too.
  rpc::Request trunc = At("open/own.txt");
  trunc.add_ops()->mutable_setattr()->set_size(3);
  ASSERT_EQ(Call(c, trunc).reply.status(), rpc::STATUS_OK);
  EXPECT_EQ(ReadFileOrDie(path), "OWN");
}

// A symlink's handle (from READDIR) whose target dangles is found again by
// name after eviction: the link itself, never followed (it was STALE).
TEST_F(UnprivilegedTest, EvictedSymlinkHandleIsFoundAgain) {
  ASSERT_EQ(symlink("no/such/file", dir_.Join("many/dangling").c_str()), 0);
  RawClient c = Connect();
  rpc::Request r = At("many");
  r.add_ops()->mutable_readdir()->set_with_attrs(true);
  r.mutable_ops(2)->mutable_readdir()->set_max_entries(1000);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  std::string fh;
  for (const rpc::DirEntry& e : rep.reply.results(2).readdir().entries()) {
    if (e.name() == "dangling") fh = e.fh();
  }
  ASSERT_FALSE(fh.empty());
  for (int i = 0; i < 300; ++i) HandleOf(c, absl::StrCat("many/f", i));
  r = MakeRequest(++id_);
  r.add_ops()->mutable_putfh()->set_fh(fh);
  r.add_ops()->mutable_getattr();
  rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.reply.results(1).attr().attr().type(), rpc::FILE_TYPE_SYMLINK);
}

TEST_F(UnprivilegedTest, EvictedHandlesAreFoundAgainByName) {
  RawClient c = Connect();
  std::vector<std::string> fhs;
  for (int i = 0; i < 300; ++i) {
    fhs.push_back(HandleOf(c, absl::StrCat("many/f", i)));
    ASSERT_FALSE(fhs.back().empty()) << i;
  }
  for (int i = 0; i < 300; i += 7) {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(fhs[i]);
    r.add_ops()->mutable_read()->set_length(100);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << i << rep.reply.error();
    EXPECT_EQ(rep.ReadData(1), absl::StrCat("c", i));
  }
  // Renamed through the server after eviction: still found.
  rpc::Request mv = At("many");
  rpc::Rename* rn = mv.add_ops()->mutable_rename();
  rn->set_from_name("f0");
  rn->set_to_name("renamed");
  ASSERT_EQ(Call(c, mv).reply.status(), rpc::STATUS_OK);
  for (int i = 100; i < 300; ++i) HandleOf(c, absl::StrCat("many/f", i));
  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_putfh()->set_fh(fhs[0]);
  r.add_ops()->mutable_read()->set_length(100);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(1), "c0");
}

TEST(ListenTest, NoTokenMeansLoopbackOnly) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<ServerProcess>> s =
      ServerProcess::Start({"--export", dir.path(), "--listen", "0.0.0.0:0"});
  EXPECT_FALSE(s.ok()) << "listened on 0.0.0.0 without a token";
  s = ServerProcess::Start({"--export", dir.path(), "--listen", "0.0.0.0:0",
                            "--allow-unauthenticated"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->Stop().exit_code, 0);
  TempDir secrets;
  WriteSecretFile(secrets.Join("token"), "sekrit\n");
  s = ServerProcess::Start({"--export", dir.path(), "--listen", "0.0.0.0:0",
                            "--token-file", secrets.Join("token")});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->Stop().exit_code, 0);
}

}  // namespace
}  // namespace txbuf::testing
