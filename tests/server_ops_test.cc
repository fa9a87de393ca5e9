// End-to-end tests of txbufd's operations, errors and confinement, through
// the raw protocol client (tests/raw_client.h) against a real server process.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

class ServerOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("hello.txt"), "hello, txbuf world\n");
    WriteFile(dir_.Join("docs/a.txt"), std::string(10000, 'a'));
    mkdir(dir_.Join("empty").c_str(), 0755);
    StartServer({});
  }
  void TearDown() override {
    if (server_ != nullptr) {
      ServerExit e = server_->Stop();
      EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
      EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
    }
  }
  void StartServer(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--export", dir_.path(), "--cache-size",
                                     "64M"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start(args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  RawClient Connect() {
    absl::StatusOr<RawClient> c =
        RawClient::Connect(server_->host(), server_->port());
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }
  // PUTROOTFH, LOOKUP path (if any), then `more` ops.
  rpc::Request At(const std::string& path) {
    rpc::Request r = MakeRequest(++id_);
    AddPutRoot(r);
    if (!path.empty()) AddLookup(r, path);
    return r;
  }
  RawReply Call(RawClient& c, const rpc::Request& r,
                const std::string& payload = "") {
    absl::StatusOr<RawReply> rep = c.Call(r, payload);
    EXPECT_TRUE(rep.ok()) << rep.status();
    if (!rep.ok()) return RawReply{};
    EXPECT_EQ(rep->reply.id(), r.id());
    return *rep;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  uint64_t id_ = 0;
};

TEST_F(ServerOpsTest, HelloAnnouncesLimits) {
  RawClient c = Connect();
  EXPECT_EQ(c.hello().version(), 1u);
  EXPECT_FALSE(c.hello().auth_required());
  EXPECT_EQ(c.hello().server_nonce().size(), 32u);
  EXPECT_GT(c.hello().max_envelope(), 0u);
  EXPECT_GT(c.hello().max_ops(), 0u);
}

TEST_F(ServerOpsTest, LookupGetattrReadInOneRoundTrip) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  r.add_ops()->mutable_getattr();
  rpc::Read* rd = r.add_ops()->mutable_read();
  rd->set_length(100);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  ASSERT_EQ(rep.reply.results_size(), 4);
  EXPECT_EQ(rep.reply.results(2).attr().attr().size(), 19u);
  EXPECT_EQ(rep.reply.results(2).attr().attr().type(), rpc::FILE_TYPE_REGULAR);
  EXPECT_EQ(rep.ReadData(3), "hello, txbuf world\n");
  EXPECT_TRUE(rep.reply.results(3).read().eof());
}

TEST_F(ServerOpsTest, MultipleReadsShareThePayload) {
  RawClient c = Connect();
  rpc::Request r = At("docs/a.txt");
  for (int i = 0; i < 3; ++i) {
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(i * 4000);
    rd->set_length(4000);
  }
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK);
  EXPECT_EQ(rep.payload.size(), 10000u);
  EXPECT_EQ(rep.ReadData(2), std::string(4000, 'a'));
  EXPECT_EQ(rep.ReadData(4), std::string(2000, 'a'));
  EXPECT_TRUE(rep.reply.results(4).read().eof());
  EXPECT_EQ(rep.reply.results(4).read().payload_offset(), 8000u);
}

TEST_F(ServerOpsTest, CreateWriteCommitReadBack) {
  RawClient c = Connect();
  rpc::Request r = At("");
  rpc::Create* cr = r.add_ops()->mutable_create();
  cr->set_name("new.bin");
  cr->set_mode(0640);
  cr->set_exclusive(true);
  std::string data = "0123456789abcdef";
  rpc::Write* w = r.add_ops()->mutable_write();
  w->set_offset(5);
  w->set_length(10);
  w->set_payload_offset(3);
  r.add_ops()->mutable_commit();
  r.add_ops()->mutable_getattr();
  RawReply rep = Call(c, r, data);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.reply.results(2).write().count(), 10u);
  EXPECT_EQ(rep.reply.results(3).commit().verifier(),
            rep.reply.results(2).write().verifier());
  EXPECT_EQ(rep.reply.results(4).attr().attr().size(), 15u);
  EXPECT_EQ(rep.reply.results(4).attr().attr().mode(), 0640u);
  std::string on_disk = ReadFileOrDie(dir_.Join("new.bin"));
  EXPECT_EQ(on_disk, std::string(5, '\0') + "3456789abc");
  // Exclusive create of an existing file: EXIST.
  rep = Call(c, r, data);
  EXPECT_EQ(rep.reply.status(), rpc::STATUS_EXIST);
  EXPECT_EQ(rep.reply.results_size(), 2);  // stopped at the failing op
}

TEST_F(ServerOpsTest, StableWriteIsOnDiskAtOnce) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  rpc::Write* w = r.add_ops()->mutable_write();
  w->set_offset(0);
  w->set_length(5);
  w->set_stable(rpc::STABILITY_FILE_SYNC);
  RawReply rep = Call(c, r, "HELLO");
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.reply.results(2).write().committed(), rpc::STABILITY_FILE_SYNC);
  EXPECT_EQ(ReadFileOrDie(dir_.Join("hello.txt")), "HELLO, txbuf world\n");
}

TEST_F(ServerOpsTest, UnstableWriteIsVisibleToReadsBeforeCommit) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  rpc::Write* w = r.add_ops()->mutable_write();
  w->set_offset(19);
  w->set_length(4);
  r.add_ops()->mutable_getattr();
  rpc::Read* rd = r.add_ops()->mutable_read();
  rd->set_length(100);
  RawReply rep = Call(c, r, "MORE");
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.reply.results(3).attr().attr().size(), 23u);
  EXPECT_EQ(rep.ReadData(4), "hello, txbuf world\nMORE");
}

TEST_F(ServerOpsTest, WriteRangeOutsidePayloadIsInval) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  rpc::Write* w = r.add_ops()->mutable_write();
  w->set_length(100);
  w->set_payload_offset(0);
  RawReply rep = Call(c, r, "short");
  EXPECT_EQ(rep.reply.status(), rpc::STATUS_INVAL);
  EXPECT_EQ(ReadFileOrDie(dir_.Join("hello.txt")), "hello, txbuf world\n");
}

TEST_F(ServerOpsTest, MkdirReaddirPagedByCookie) {
  RawClient c = Connect();
  rpc::Request r = At("");
  r.add_ops()->mutable_mkdir()->set_name("many");
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  std::string many_fh = rep.reply.results(1).fh().fh();
  for (int i = 0; i < 250; ++i) {
    WriteFile(dir_.Join(absl::StrCat("many/f", i)), "x");
  }
  std::set<std::string> names;
  uint64_t cookie = 0;
  int pages = 0;
  for (;;) {
    rpc::Request q = MakeRequest(++id_);
    q.add_ops()->mutable_putfh()->set_fh(many_fh);
    rpc::ReadDir* rd = q.add_ops()->mutable_readdir();
    rd->set_cookie(cookie);
    rd->set_max_entries(64);
    rd->set_with_attrs(pages % 2 == 0);
    RawReply p = Call(c, q);
    ASSERT_EQ(p.reply.status(), rpc::STATUS_OK) << p.reply.error();
    const rpc::ReadDirResult& res = p.reply.results(1).readdir();
    EXPECT_LE(res.entries_size(), 64);
    for (const rpc::DirEntry& e : res.entries()) {
      EXPECT_TRUE(names.insert(e.name()).second) << "duplicate " << e.name();
      EXPECT_NE(e.name(), ".");
      EXPECT_NE(e.name(), "..");
      if (pages % 2 == 0) {
        EXPECT_EQ(e.attr().size(), 1u);
        EXPECT_FALSE(e.fh().empty());
      }
      cookie = e.cookie();
    }
    ++pages;
    if (res.eof()) break;
    ASSERT_LT(pages, 20);
  }
  EXPECT_EQ(names.size(), 250u);
  EXPECT_GE(pages, 4);
}

TEST_F(ServerOpsTest, RemoveRmdirRenameAndTheirErrors) {
  RawClient c = Connect();
  auto one = [&](rpc::Request r) { return Call(c, r).reply; };
  rpc::Request r = At("");
  r.add_ops()->mutable_remove()->set_name("nope");
  EXPECT_EQ(one(r).status(), rpc::STATUS_NOENT);
  r = At("");
  r.add_ops()->mutable_remove()->set_name("empty");
  EXPECT_EQ(one(r).status(), rpc::STATUS_ISDIR);
  r = At("");
  r.add_ops()->mutable_rmdir()->set_name("docs");
  EXPECT_EQ(one(r).status(), rpc::STATUS_NOTEMPTY);
  r = At("");
  r.add_ops()->mutable_mkdir()->set_name("docs");
  EXPECT_EQ(one(r).status(), rpc::STATUS_EXIST);
  r = At("hello.txt");
  r.add_ops()->mutable_lookup()->set_path("x");
  EXPECT_EQ(one(r).status(), rpc::STATUS_NOTDIR);
  r = At("docs");
  rpc::Read* rd = r.add_ops()->mutable_read();
  rd->set_length(10);
  EXPECT_EQ(one(r).status(), rpc::STATUS_ISDIR);
  r = At("");
  r.add_ops()->mutable_rmdir()->set_name("empty");
  EXPECT_EQ(one(r).status(), rpc::STATUS_OK);
  EXPECT_NE(access(dir_.Join("empty").c_str(), F_OK), 0);
  r = At("");
  rpc::Rename* rn = r.add_ops()->mutable_rename();
  rn->set_from_name("hello.txt");
  rn->set_to_name("renamed.txt");
  EXPECT_EQ(one(r).status(), rpc::STATUS_OK);
  EXPECT_EQ(ReadFileOrDie(dir_.Join("renamed.txt")), "hello, txbuf world\n");
  r = At("renamed.txt");
  r.add_ops()->mutable_remove()->set_name("x");
  EXPECT_EQ(one(r).status(), rpc::STATUS_NOTDIR);
}

TEST_F(ServerOpsTest, HandlesSurviveRenameAndGoStaleAfterRemove) {
  RawClient c = Connect();
  RawReply rep = Call(c, At("hello.txt"));
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK);
  std::string fh = rep.reply.results(1).fh().fh();
  std::string docs_fh = Call(c, At("docs")).reply.results(1).fh().fh();
  // Move it into another directory under a new name.
  rpc::Request r = At("");
  rpc::Rename* rn = r.add_ops()->mutable_rename();
  rn->set_from_name("hello.txt");
  rn->set_to_name("moved.txt");
  rn->set_to_dir(docs_fh);
  ASSERT_EQ(Call(c, r).reply.status(), rpc::STATUS_OK);
  rpc::Request q = MakeRequest(++id_);
  q.add_ops()->mutable_putfh()->set_fh(fh);
  rpc::Read* rd = q.add_ops()->mutable_read();
  rd->set_length(5);
  RawReply after = Call(c, q);
  ASSERT_EQ(after.reply.status(), rpc::STATUS_OK) << after.reply.error();
  EXPECT_EQ(after.ReadData(1), "hello");
  // Remove it: the handle is STALE.
  r = At("docs");
  r.add_ops()->mutable_remove()->set_name("moved.txt");
  ASSERT_EQ(Call(c, r).reply.status(), rpc::STATUS_OK);
  EXPECT_EQ(Call(c, q).reply.status(), rpc::STATUS_STALE);
  q.mutable_ops(0)->mutable_putfh()->set_fh("garbage");
  EXPECT_EQ(Call(c, q).reply.status(), rpc::STATUS_BADHANDLE);
}

TEST_F(ServerOpsTest, SetattrModeSizeTimes) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  rpc::SetAttr* sa = r.add_ops()->mutable_setattr();
  sa->set_mode(0600);
  sa->set_size(5);
  sa->set_mtime_ns(1000000000LL * 1234567);
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  const rpc::Attr& a = rep.reply.results(2).attr().attr();
  EXPECT_EQ(a.mode(), 0600u);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a.mtime_ns(), 1000000000LL * 1234567);
  struct stat st;
  ASSERT_EQ(stat(dir_.Join("hello.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(ServerOpsTest, StatfsAndStats) {
  RawClient c = Connect();
  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_statfs();
  r.add_ops()->mutable_stats();
  RawReply rep = Call(c, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK);
  EXPECT_GT(rep.reply.results(0).statfs().total_bytes(), 0u);
  EXPECT_GT(rep.reply.results(0).statfs().name_max(), 0u);
  const rpc::StatsResult& s = rep.reply.results(1).stats();
  EXPECT_EQ(s.connections(), 1u);
  EXPECT_GE(s.requests(), 1u);
  EXPECT_EQ(s.engine(), "auto");
  EXPECT_EQ(s.engines_size(), 5);
  // The histogram buckets add up to the summary's count.
  uint64_t bucketed = 0;
  for (const auto& b : s.destructor_latency_buckets()) {
    EXPECT_LT(b.lo(), b.hi());
    bucketed += b.count();
  }
  EXPECT_EQ(bucketed, s.destructor_latency().count());
  EXPECT_GT(bucketed, 0u);  // the Hello frames at least
  bool has_node_cache = false;
  for (const auto& sl : s.slabs()) has_node_cache |= sl.name() == "txbuf_node";
  EXPECT_TRUE(has_node_cache);
}

TEST_F(ServerOpsTest, OpsWithoutAFileHandleAndUnknownOps) {
  RawClient c = Connect();
  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_getattr();
  EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_NOFILEHANDLE);
  r = MakeRequest(++id_);
  r.add_ops();  // no op set: what an unknown op number parses as
  RawReply rep = Call(c, r);
  EXPECT_EQ(rep.reply.status(), rpc::STATUS_OP_ILLEGAL);
  // An op number from the future, encoded by hand: field 2 (ops) holding
  // field 99 (varint 1).
  std::string env = rpc::Request(MakeRequest(++id_)).SerializeAsString();
  env += std::string("\x12\x03\x98\x06\x01", 5);
  ASSERT_TRUE(c.SendFrame(FrameType::kRequest, env).ok());
  absl::StatusOr<RawReply> fut = c.ReadReply();
  ASSERT_TRUE(fut.ok()) << fut.status();
  EXPECT_EQ(fut->reply.status(), rpc::STATUS_OP_ILLEGAL);
}

TEST_F(ServerOpsTest, PathsThatLeaveTheExportAreRefused) {
  symlink("/etc", dir_.Join("etc_link").c_str());
  symlink("../..", dir_.Join("docs/up").c_str());
  symlink("a.txt", dir_.Join("docs/inside").c_str());
  RawClient c = Connect();
  for (const char* p :
       {"..", "../etc/passwd", "/etc/passwd", "docs/../..", "etc_link",
        "etc_link/passwd", "docs/up", "docs/up/etc"}) {
    RawReply rep = Call(c, At(p));
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_ACCES)
        << p << ": " << rep.reply.error();
    EXPECT_EQ(rep.reply.results_size(), 2) << p;
  }
  // A symlink that stays inside is followed.
  RawReply ok = Call(c, At("docs/inside"));
  EXPECT_EQ(ok.reply.status(), rpc::STATUS_OK) << ok.reply.error();
  // Names with a slash or '..' are refused by CREATE/MKDIR/REMOVE/RENAME.
  rpc::Request r = At("");
  r.add_ops()->mutable_create()->set_name("../evil");
  EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_INVAL);
  r = At("");
  r.add_ops()->mutable_create()->set_name("..");
  EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_INVAL);
  r = At("");
  rpc::Rename* rn = r.add_ops()->mutable_rename();
  rn->set_from_name("hello.txt");
  rn->set_to_name("../../escaped");
  EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_INVAL);
  EXPECT_EQ(access(dir_.Join("hello.txt").c_str(), F_OK), 0);
  // Creating through a symlink to outside is refused.
  r = At("etc_link");
  EXPECT_EQ(Call(c, r).reply.status(), rpc::STATUS_ACCES);
}

// Names are bytes (PROTOCOL.md, Names and paths): every byte value but '/'
// and NUL, alone and inside longer names, goes through CREATE, MKDIR,
// READDIR, LOOKUP, RENAME, REMOVE and RMDIR exactly. The replies are parsed
// by C++ protobuf, which rejects a proto3 `string` holding invalid UTF-8:
// with names as `string`, the server could not parse the requests and the
// client not the READDIR pages.
TEST_F(ServerOpsTest, NamesAreArbitraryBytesThroughEveryOp) {
  mkdir(dir_.Join("names").c_str(), 0755);
  RawClient c = Connect();
  rpc::Request get_fh = At("names");
  get_fh.add_ops()->mutable_getfh();
  RawReply fh_rep = Call(c, get_fh);
  ASSERT_EQ(fh_rep.reply.status(), rpc::STATUS_OK) << fh_rep.reply.error();
  const std::string dir_fh = fh_rep.reply.results(2).fh().fh();
  auto in_dir = [&] {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(dir_fh);
    return r;
  };
  // One file per byte value, named by that byte alone ('.' is not a name),
  // and one directory per byte value with the byte inside a longer name.
  std::set<std::string> files, dirs;
  for (int b = 1; b <= 255; ++b) {
    if (b == '/') continue;
    const std::string byte(1, static_cast<char>(b));
    if (b != '.') files.insert(byte);
    dirs.insert(absl::StrCat("d", byte, byte, "\xff\xfe", byte, "z"));
  }
  for (const std::string& name : files) {
    rpc::Request r = in_dir();
    r.add_ops()->mutable_create()->set_name(name);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << absl::CEscape(name) << ": " << rep.reply.error();
  }
  for (const std::string& name : dirs) {
    rpc::Request r = in_dir();
    r.add_ops()->mutable_mkdir()->set_name(name);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << absl::CEscape(name) << ": " << rep.reply.error();
  }
  // On the server host, exactly these names.
  auto host_names = [&] {
    std::set<std::string> on_disk;
    DIR* d = opendir(dir_.Join("names").c_str());
    EXPECT_NE(d, nullptr);
    if (d == nullptr) return on_disk;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") on_disk.insert(n);
    }
    closedir(d);
    return on_disk;
  };
  std::set<std::string> all = files;
  all.insert(dirs.begin(), dirs.end());
  EXPECT_EQ(host_names(), all);

  // READDIR, in pages, with and without attributes: every name exactly.
  std::set<std::string> listed;
  uint64_t cookie = 0;
  for (int page = 0;; ++page) {
    ASSERT_LT(page, 100);
    rpc::Request r = in_dir();
    rpc::ReadDir* rd = r.add_ops()->mutable_readdir();
    rd->set_cookie(cookie);
    rd->set_max_entries(64);
    rd->set_with_attrs(page % 2 == 0);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    const rpc::ReadDirResult& res = rep.reply.results(1).readdir();
    for (const rpc::DirEntry& e : res.entries()) {
      EXPECT_TRUE(listed.insert(e.name()).second) << absl::CEscape(e.name());
      EXPECT_EQ(e.type(), dirs.contains(e.name()) ? rpc::FILE_TYPE_DIRECTORY
                                                  : rpc::FILE_TYPE_REGULAR)
          << absl::CEscape(e.name());
      cookie = e.cookie();
    }
    if (res.eof()) break;
  }
  EXPECT_EQ(listed, all);

  // LOOKUP of each by path from the root: the right inode.
  for (const std::string& name : all) {
    rpc::Request r = At(absl::StrCat("names/", name));
    r.add_ops()->mutable_getattr();
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << absl::CEscape(name) << ": " << rep.reply.error();
    struct stat st;
    ASSERT_EQ(lstat(dir_.Join(absl::StrCat("names/", name)).c_str(), &st), 0);
    EXPECT_EQ(rep.reply.results(2).attr().attr().fileid(), st.st_ino)
        << absl::CEscape(name);
  }
  // An error names the name as its bytes, and the reply still parses.
  rpc::Request missing = At("names/no\xff\x80such");
  RawReply miss = Call(c, missing);
  EXPECT_EQ(miss.reply.status(), rpc::STATUS_NOENT);
  EXPECT_THAT(miss.reply.error(), HasSubstr("no\xff\x80such"));

  // RENAME each to another odd name, then REMOVE / RMDIR it.
  std::set<std::string> renamed;
  for (const std::string& name : all) {
    const std::string to = absl::StrCat("\x80", name, "\x01");
    rpc::Request r = in_dir();
    rpc::Rename* rn = r.add_ops()->mutable_rename();
    rn->set_from_name(name);
    rn->set_to_name(to);
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << absl::CEscape(name) << ": " << rep.reply.error();
    renamed.insert(to);
  }
  EXPECT_EQ(host_names(), renamed);
  for (const std::string& name : all) {
    const std::string to = absl::StrCat("\x80", name, "\x01");
    rpc::Request r = in_dir();
    if (dirs.contains(name)) {
      r.add_ops()->mutable_rmdir()->set_name(to);
    } else {
      r.add_ops()->mutable_remove()->set_name(to);
    }
    RawReply rep = Call(c, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK)
        << absl::CEscape(to) << ": " << rep.reply.error();
  }
  EXPECT_TRUE(host_names().empty());

  // What stays refused: empty, '.', '..', and names with '/' or NUL.
  struct Refused {
    std::string name;
    rpc::Status status;
  };
  for (const Refused& bad : std::vector<Refused>{
           {"", rpc::STATUS_INVAL},
           {".", rpc::STATUS_INVAL},
           {"..", rpc::STATUS_INVAL},  // (LOOKUP of ".." is ACCES)
           {"a/b", rpc::STATUS_INVAL},
           {std::string("a\0b", 3), rpc::STATUS_INVAL},
           {std::string(256, '\xff'), rpc::STATUS_NAMETOOLONG}}) {
    rpc::Request r = in_dir();
    r.add_ops()->mutable_create()->set_name(bad.name);
    EXPECT_EQ(Call(c, r).reply.status(), bad.status) << absl::CEscape(bad.name);
  }
  EXPECT_TRUE(host_names().empty());
}

class ReadOnlyServerTest : public ServerOpsTest {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("hello.txt"), "hello, txbuf world\n");
    StartServer({"--read-only"});
  }
};

TEST_F(ReadOnlyServerTest, EveryChangeIsRofs) {
  RawClient c = Connect();
  std::vector<rpc::Request> changes;
  rpc::Request r = At("");
  r.add_ops()->mutable_create()->set_name("x");
  changes.push_back(r);
  r = At("");
  r.add_ops()->mutable_mkdir()->set_name("d");
  changes.push_back(r);
  r = At("");
  r.add_ops()->mutable_remove()->set_name("hello.txt");
  changes.push_back(r);
  r = At("");
  rpc::Rename* rn = r.add_ops()->mutable_rename();
  rn->set_from_name("hello.txt");
  rn->set_to_name("y");
  changes.push_back(r);
  r = At("hello.txt");
  r.add_ops()->mutable_write()->set_length(1);
  changes.push_back(r);
  r = At("hello.txt");
  r.add_ops()->mutable_setattr()->set_size(0);
  changes.push_back(r);
  for (const rpc::Request& q : changes) {
    RawReply rep = Call(c, q, "z");
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_ROFS) << q.ShortDebugString();
  }
  EXPECT_EQ(ReadFileOrDie(dir_.Join("hello.txt")), "hello, txbuf world\n");
  rpc::Request rd = At("hello.txt");
  rd.add_ops()->mutable_read()->set_length(5);
  EXPECT_EQ(Call(c, rd).ReadData(2), "hello");
}

class AuthServerTest : public ServerOpsTest {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("hello.txt"), "hi");
    WriteSecretFile(token_.Join("token"), "s3cret-token\n");
    StartServer({"--token-file", token_.Join("token")});
  }
  TempDir token_;
};

TEST_F(AuthServerTest, RightTokenIsServed) {
  RawClient c = Connect();
  EXPECT_TRUE(c.hello().auth_required());
  absl::StatusOr<rpc::AuthReply> a = c.Authenticate("s3cret-token");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status(), rpc::STATUS_OK);
  rpc::Request r = At("hello.txt");
  r.add_ops()->mutable_read()->set_length(2);
  EXPECT_EQ(Call(c, r).ReadData(2), "hi");
}

TEST_F(AuthServerTest, WrongTokenIsRefusedAndClosed) {
  RawClient c = Connect();
  absl::StatusOr<rpc::AuthReply> a = c.Authenticate("wrong");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status(), rpc::STATUS_AUTH);
  EXPECT_THAT(a->error(), HasSubstr("wrong token"));
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(AuthServerTest, RequestWithoutAuthIsRefusedAndClosed) {
  RawClient c = Connect();
  rpc::Request r = At("hello.txt");
  absl::StatusOr<RawReply> rep = c.Call(r);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->reply.status(), rpc::STATUS_AUTH);
  EXPECT_EQ(rep->reply.id(), r.id());
  EXPECT_TRUE(c.WaitClosed());
}

// Before it has authenticated, a peer can make the server hold or wait for
// nothing bigger than an AuthRequest: a header announcing more is refused
// at once (TOOBIG), without waiting for the bytes. Authenticated, the
// usual limits apply.
TEST_F(AuthServerTest, BigFramesBeforeAuthAreRefusedAtTheirHeader) {
  for (FrameType type : {FrameType::kAuthRequest, FrameType::kRequest}) {
    for (auto [env, pay] : {std::pair<uint32_t, uint32_t>{1 << 20, 0},
                            {64, 64 << 20},
                            {8192, 0}}) {
      RawClient c = Connect();
      std::string h(kFrameHeaderSize, '\0');
      EncodeFrameHeader({type, 0, env, pay},
                        reinterpret_cast<std::byte*>(h.data()));
      ASSERT_TRUE(c.SendBytes(h + std::string(100, 'x')).ok());
      absl::StatusOr<RawReply> rep = c.ReadReply(10000);
      ASSERT_TRUE(rep.ok()) << "no answer to a " << env << "+" << pay
                            << " byte frame before auth: " << rep.status();
      EXPECT_EQ(rep->reply.status(), rpc::STATUS_TOOBIG) << rep->reply.error();
      EXPECT_TRUE(c.WaitClosed());
    }
  }
  RawClient c = Connect();
  ASSERT_TRUE(c.Authenticate("s3cret-token").ok());
  rpc::Request w = At("hello.txt");
  rpc::Write* wr = w.add_ops()->mutable_write();
  wr->set_length(1 << 20);
  EXPECT_EQ(Call(c, w, std::string(1 << 20, 'w')).reply.status(),
            rpc::STATUS_OK);
}

// SIGHUP reads the token file again: new connections need the new token,
// an authenticated connection goes on, and an empty file keeps the token.
TEST_F(AuthServerTest, SighupReloadsTheTokenFile) {
  RawClient before = Connect();
  ASSERT_EQ(before.Authenticate("s3cret-token")->status(), rpc::STATUS_OK);
  WriteFile(token_.Join("token"), "new-token\n");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  // The reload is done when the new token works (the signal is handled
  // asynchronously).
  bool reloaded = false;
  for (int i = 0; i < 200 && !reloaded; ++i) {
    RawClient c = Connect();
    absl::StatusOr<rpc::AuthReply> a = c.Authenticate("new-token");
    ASSERT_TRUE(a.ok()) << a.status();
    reloaded = a->status() == rpc::STATUS_OK;
    if (!reloaded) usleep(50 * 1000);
  }
  ASSERT_TRUE(reloaded) << "the new token never worked";
  RawClient old = Connect();
  EXPECT_EQ(old.Authenticate("s3cret-token")->status(), rpc::STATUS_AUTH);
  // The connection authenticated before goes on.
  rpc::Request r = At("hello.txt");
  r.add_ops()->mutable_read()->set_length(2);
  EXPECT_EQ(Call(before, r).ReadData(2), "hi");
  // An empty file is refused; the token stays. (Checked once the server
  // has taken the signal: no longer pending for the process.)
  WriteFile(token_.Join("token"), "");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  auto hup_pending = [&] {
    std::ifstream st(absl::StrCat("/proc/", server_->pid(), "/status"));
    for (std::string line; std::getline(st, line);) {
      if (absl::StartsWith(line, "ShdPnd:")) {
        return (std::stoull(line.substr(7), nullptr, 16) &
                (uint64_t{1} << (SIGHUP - 1))) != 0;
      }
    }
    return false;
  };
  for (int i = 0; i < 200 && hup_pending(); ++i) usleep(20 * 1000);
  EXPECT_FALSE(hup_pending());
  RawClient after = Connect();
  EXPECT_EQ(after.Authenticate("new-token")->status(), rpc::STATUS_OK);
  // Still alive, and SIGTERM still ends it cleanly.
  ServerExit e = server_->Stop();
  server_.reset();
  EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
}

// Issue 14: a token file its group or others may access is refused at the
// start, with a message saying what to do (as ssh refuses such a key),
// unless --allow-readable-token-file says so.
TEST_F(AuthServerTest, ATokenFileOthersMayReadIsRefused) {
  const std::string tok = token_.Join("token");
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(chmod(tok.c_str(), mode), 0);
    EXPECT_FALSE(
        ServerProcess::Start({"--export", dir_.path(), "--token-file", tok})
            .ok())
        << std::oct << mode;
  }
  absl::StatusOr<std::unique_ptr<ServerProcess>> loose =
      ServerProcess::Start({"--export", dir_.path(), "--token-file", tok,
                            "--allow-readable-token-file"});
  ASSERT_TRUE(loose.ok()) << loose.status();
  EXPECT_EQ((*loose)->Stop().exit_code, 0);
  ASSERT_EQ(chmod(tok.c_str(), 0400), 0);
  absl::StatusOr<std::unique_ptr<ServerProcess>> owner =
      ServerProcess::Start({"--export", dir_.path(), "--token-file", tok});
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ((*owner)->Stop().exit_code, 0);
}

TEST_F(AuthServerTest, TheSecretNeverCrossesTheWire) {
  // The client sends only a nonce and an HMAC; check the AuthRequest bytes.
  RawClient c = Connect();
  absl::StatusOr<rpc::AuthReply> a = c.Authenticate("s3cret-token");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->status(), rpc::STATUS_OK);
  EXPECT_FALSE(absl::StrContains(a->SerializeAsString(), "s3cret-token"));
  EXPECT_FALSE(
      absl::StrContains(c.hello().SerializeAsString(), "s3cret-token"));
}

}  // namespace
}  // namespace txbuf::testing
