// Several exports in one txbufd, each with its own access rules by client
// address and its own ownership squashing (the configuration file's
// [[export]] tables; docs/OPERATING.md, "Exports and access rules").
//
// Clients connect from two loopback addresses: 127.0.0.1 and 127.0.0.2 (all
// of 127/8 is local), which the rules tell apart.
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/compound.h"
#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

constexpr char kNear[] = "127.0.0.2";  // the trusted host
constexpr char kFar[] = "127.0.0.1";   // every other local address

class ServerExportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(pub_.Join("readme.txt"), "public bytes");
    WriteFile(priv_.Join("notes.txt"), "private bytes");
    WriteFile(hidden_.Join("secret.txt"), "hidden bytes");
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    ServerExit e = server_->Stop();
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_TRUE(absl::StrContains(e.stats_json, "\"pinned_bytes\":0,"))
        << e.stats_json;
  }

  // The three exports: "pub" (first: the default), read-only to 127/8;
  // "priv", read-write to kNear and read-only to the rest of 127/8, squashed
  // to `squash` ("" for none); "hidden", read-write to kNear only.
  std::string Config(const std::string& squash) {
    return absl::StrCat(
        "[[export]]\nname = \"pub\"\npath = \"", pub_.path(),
        "\"\nclients = [ { from = \"127.0.0.0/8\", access = \"ro\" } ]\n\n",
        "[[export]]\nname = \"priv\"\npath = \"", priv_.path(), "\"\n", squash,
        "clients = [ { from = \"", kNear,
        "\", access = \"rw\" },\n"
        "            { from = \"127.0.0.0/8\", access = \"ro\" } ]\n\n",
        "[[export]]\nname = \"hidden\"\npath = \"", hidden_.path(),
        "\"\n[[export.clients]]\nfrom = \"", kNear, "/32\"\naccess = \"rw\"\n");
  }

  void Start(const std::string& config_text,
             std::vector<std::string> extra = {}) {
    WriteFile(conf_.Join("txbufd.conf"), config_text);
    std::vector<std::string> args = {"--config", conf_.Join("txbufd.conf"),
                                     "--cache-size", "64M"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start(args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }

  RawClient From(const char* source) {
    absl::StatusOr<RawClient> c =
        RawClient::ConnectFrom(source, server_->host(), server_->port());
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  // PUTROOTFH `export_name`, then LOOKUP `path` unless empty.
  rpc::Request At(const std::string& export_name, const std::string& path) {
    rpc::Request r = MakeRequest(++id_);
    AddPutRoot(r, export_name);
    if (!path.empty()) AddLookup(r, path);
    return r;
  }

  RawReply Call(RawClient& c, const rpc::Request& r,
                const std::string& payload = "") {
    absl::StatusOr<RawReply> rep = c.Call(r, payload);
    EXPECT_TRUE(rep.ok()) << rep.status();
    return rep.ok() ? *rep : RawReply{};
  }

  // READ of `path` in `export_name`: the bytes, or "" with *status set.
  std::string Read(RawClient& c, const std::string& export_name,
                   const std::string& path, rpc::Status* status) {
    rpc::Request r = At(export_name, path);
    r.add_ops()->mutable_read()->set_length(4096);
    RawReply rep = Call(c, r);
    *status = rep.reply.status();
    return rep.reply.status() == rpc::STATUS_OK ? rep.ReadData(2) : "";
  }

  // CREATE `name` in the root of `export_name`: the status.
  rpc::Status Create(RawClient& c, const std::string& export_name,
                     const std::string& name) {
    rpc::Request r = At(export_name, "");
    r.add_ops()->mutable_create()->set_name(name);
    return Call(c, r).reply.status();
  }

  std::string Handle(RawClient& c, const std::string& export_name,
                     const std::string& path) {
    RawReply rep = Call(c, At(export_name, path));
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    return rep.reply.status() == rpc::STATUS_OK ? rep.reply.results(1).fh().fh()
                                                : "";
  }

  TempDir pub_, priv_, hidden_, conf_;
  std::unique_ptr<ServerProcess> server_;
  uint64_t id_ = 0;
};

TEST_F(ServerExportsTest, EachClientGetsWhatItsAddressIsAllowed) {
  ASSERT_NO_FATAL_FAILURE(Start(Config("")));
  RawClient far = From(kFar);
  RawClient near = From(kNear);
  rpc::Status st;

  // No name: the first export. By name: that export.
  EXPECT_EQ(Read(far, "", "readme.txt", &st), "public bytes");
  EXPECT_EQ(Read(far, "pub", "readme.txt", &st), "public bytes");
  EXPECT_EQ(Read(far, "priv", "notes.txt", &st), "private bytes");
  EXPECT_EQ(Read(near, "hidden", "secret.txt", &st), "hidden bytes");
  // A name from another export's directory does not resolve here.
  Read(far, "pub", "notes.txt", &st);
  EXPECT_EQ(st, rpc::STATUS_NOENT);

  // Not exported to this address: ACCES, and nothing of it is read.
  EXPECT_EQ(Read(far, "hidden", "secret.txt", &st), "");
  EXPECT_EQ(st, rpc::STATUS_ACCES);
  {
    RawReply rep = Call(far, At("hidden", ""));
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_ACCES);
    EXPECT_TRUE(absl::StrContains(rep.reply.error(), "hidden"))
        << rep.reply.error();
  }
  // No export by that name.
  Read(far, "nope", "readme.txt", &st);
  EXPECT_EQ(st, rpc::STATUS_NOENT);

  // Read-only for this address: every change is ROFS, and nothing changes.
  EXPECT_EQ(Create(far, "priv", "far.txt"), rpc::STATUS_ROFS);
  EXPECT_EQ(Create(far, "pub", "far.txt"), rpc::STATUS_ROFS);
  EXPECT_EQ(Create(near, "pub", "near.txt"), rpc::STATUS_ROFS);
  for (auto* op :
       {+[](rpc::Request& r) { r.add_ops()->mutable_mkdir()->set_name("d"); },
        +[](rpc::Request& r) {
          r.add_ops()->mutable_remove()->set_name("notes.txt");
        },
        +[](rpc::Request& r) {
          rpc::Rename* m = r.add_ops()->mutable_rename();
          m->set_from_name("notes.txt");
          m->set_to_name("moved.txt");
        },
        +[](rpc::Request& r) {
          rpc::Symlink* s = r.add_ops()->mutable_symlink();
          s->set_name("l");
          s->set_target("notes.txt");
        }}) {
    rpc::Request r = At("priv", "");
    op(r);
    EXPECT_EQ(Call(far, r).reply.status(), rpc::STATUS_ROFS);
  }
  {
    rpc::Request r = At("priv", "notes.txt");
    rpc::Write* w = r.add_ops()->mutable_write();
    w->set_length(5);
    EXPECT_EQ(Call(far, r, "XXXXX").reply.status(), rpc::STATUS_ROFS);
    rpc::Request t = At("priv", "notes.txt");
    t.add_ops()->mutable_setattr()->set_size(0);
    EXPECT_EQ(Call(far, t).reply.status(), rpc::STATUS_ROFS);
  }
  EXPECT_EQ(ReadFileOrDie(priv_.Join("notes.txt")), "private bytes");
  struct stat st_buf;
  EXPECT_NE(stat(priv_.Join("far.txt").c_str(), &st_buf), 0);
  EXPECT_NE(stat(pub_.Join("near.txt").c_str(), &st_buf), 0);

  // Read-write for the trusted address.
  EXPECT_EQ(Create(near, "priv", "near.txt"), rpc::STATUS_OK);
  EXPECT_EQ(stat(priv_.Join("near.txt").c_str(), &st_buf), 0);
  EXPECT_EQ(Create(near, "hidden", "near.txt"), rpc::STATUS_OK);
  // STATFS with no CFH is of the first export, which both may read.
  {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_statfs();
    EXPECT_EQ(Call(far, r).reply.status(), rpc::STATUS_OK);
  }
}

TEST_F(ServerExportsTest, AHandleCarriesItsExportsRulesNotTheHolders) {
  ASSERT_NO_FATAL_FAILURE(Start(Config("")));
  RawClient near = From(kNear);
  RawClient far = From(kFar);
  const std::string secret = Handle(near, "hidden", "secret.txt");
  std::string hidden_root;
  {
    rpc::Request r = At("hidden", "");
    r.add_ops()->mutable_getfh();
    RawReply rep = Call(near, r);
    ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
    hidden_root = rep.reply.results(1).fh().fh();
  }
  const std::string notes = Handle(near, "priv", "notes.txt");
  ASSERT_FALSE(secret.empty());

  // A handle of an export this address may not use: ACCES on PUTFH, also
  // when asked twice (the connection's handle cache must not let it in).
  for (int i = 0; i < 2; ++i) {
    rpc::Request r = MakeRequest(++id_);
    r.add_ops()->mutable_putfh()->set_fh(secret);
    r.add_ops()->mutable_read()->set_length(4096);
    RawReply rep = Call(far, r);
    EXPECT_EQ(rep.reply.status(), rpc::STATUS_ACCES) << i;
    EXPECT_EQ(rep.payload, "");
  }
  // RENAME into an export this address may not use: it fails (the target
  // directory handle is checked too), and the file stays.
  {
    rpc::Request r = At("priv", "");
    rpc::Rename* m = r.add_ops()->mutable_rename();
    m->set_from_name("notes.txt");
    m->set_to_name("stolen.txt");
    m->set_to_dir(hidden_root);
    EXPECT_NE(Call(far, r).reply.status(), rpc::STATUS_OK);
    // Even the trusted client cannot move a file across exports.
    rpc::Request n = At("priv", "");
    rpc::Rename* k = n.add_ops()->mutable_rename();
    k->set_from_name("notes.txt");
    k->set_to_name("moved.txt");
    k->set_to_dir(hidden_root);
    EXPECT_EQ(Call(near, n).reply.status(), rpc::STATUS_XDEV);
  }
  struct stat st_buf;
  EXPECT_EQ(stat(priv_.Join("notes.txt").c_str(), &st_buf), 0);
  EXPECT_NE(stat(hidden_.Join("stolen.txt").c_str(), &st_buf), 0);

  // A handle of a read-only export for this address: reads, never writes.
  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_putfh()->set_fh(notes);
  r.add_ops()->mutable_read()->set_length(4096);
  RawReply rep = Call(far, r);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(1), "private bytes");
  rpc::Request w = MakeRequest(++id_);
  w.add_ops()->mutable_putfh()->set_fh(notes);
  w.add_ops()->mutable_write()->set_length(4);
  EXPECT_EQ(Call(far, w, "XXXX").reply.status(), rpc::STATUS_ROFS);
  EXPECT_EQ(ReadFileOrDie(priv_.Join("notes.txt")), "private bytes");
}

TEST_F(ServerExportsTest, SquashGivesNewFilesTheConfiguredOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "squashing to other ids needs root";
  ASSERT_NO_FATAL_FAILURE(
      Start(Config("squash-uid = 4242\nsquash-gid = 4343\n")));
  RawClient near = From(kNear);
  ASSERT_EQ(Create(near, "priv", "made.txt"), rpc::STATUS_OK);
  rpc::Request m = At("priv", "");
  m.add_ops()->mutable_mkdir()->set_name("dir");
  ASSERT_EQ(Call(near, m).reply.status(), rpc::STATUS_OK);
  rpc::Request s = At("priv", "");
  rpc::Symlink* l = s.add_ops()->mutable_symlink();
  l->set_name("link");
  l->set_target("made.txt");
  ASSERT_EQ(Call(near, s).reply.status(), rpc::STATUS_OK);
  for (const char* name : {"made.txt", "dir", "link"}) {
    struct stat st;
    ASSERT_EQ(lstat(priv_.Join(name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_uid, 4242u) << name;
    EXPECT_EQ(st.st_gid, 4343u) << name;
  }
  // The symlink's target was not given away.
  struct stat target;
  ASSERT_EQ(stat(priv_.Join("notes.txt").c_str(), &target), 0);
  EXPECT_EQ(target.st_uid, geteuid());
  // In an export without squashing, new files are the server's.
  ASSERT_EQ(Create(near, "hidden", "plain.txt"), rpc::STATUS_OK);
  struct stat plain;
  ASSERT_EQ(stat(hidden_.Join("plain.txt").c_str(), &plain), 0);
  EXPECT_EQ(plain.st_uid, geteuid());
}

TEST_F(ServerExportsTest, ClientLibraryNamesTheExport) {
  ASSERT_NO_FATAL_FAILURE(Start(Config("")));
  client::ClientOptions o;
  o.host = server_->host();
  o.port = server_->port();
  o.export_name = "priv";  // PUTROOTFH without a name goes there
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  client::Compound q;
  q.PutRootFh().Lookup("notes.txt").Read(0, 4096);
  absl::StatusOr<client::CompoundReply> r = (*c)->Call(std::move(q));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->status().ok()) << r->status();
  EXPECT_EQ(r->ReadString(2), "private bytes");
  // A name in the compound wins.
  client::Compound p;
  p.PutRootFh("pub").Lookup("readme.txt").Read(0, 4096);
  r = (*c)->Call(std::move(p));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->status().ok()) << r->status();
  EXPECT_EQ(r->ReadString(2), "public bytes");
  // From 127.0.0.1, "hidden" is not exported: the library says so.
  client::Compound h;
  h.PutRootFh("hidden").GetAttr();
  r = (*c)->Call(std::move(h));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status().code(), absl::StatusCode::kPermissionDenied)
      << r->status();
}

TEST_F(ServerExportsTest, CommandLineExportReplacesTheFilesExports) {
  TempDir other;
  WriteFile(other.Join("cli.txt"), "from the command line");
  ASSERT_NO_FATAL_FAILURE(Start(Config(""), {"--export", other.path()}));
  RawClient far = From(kFar);
  rpc::Status st;
  EXPECT_EQ(Read(far, "", "cli.txt", &st), "from the command line");
  EXPECT_EQ(Read(far, "default", "cli.txt", &st), "from the command line");
  Read(far, "pub", "readme.txt", &st);
  EXPECT_EQ(st, rpc::STATUS_NOENT);
}

// A configuration txbufd must refuse at start: exit status `code` (2: a
// usage error, found before starting; 1: found while starting) and a
// message naming what is wrong.
void ExpectRefused(const std::string& text, const std::string& says,
                   int code = 2) {
  TempDir conf;
  WriteFile(conf.Join("txbufd.conf"), text);
  const std::string cmd =
      absl::StrCat(TxbufdPath(), " --listen 127.0.0.1:0 --config ",
                   conf.Join("txbufd.conf"), " > ", conf.Join("out"), " 2>&1");
  const int rc = system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << text;
  EXPECT_EQ(WEXITSTATUS(rc), code) << text;
  const std::string out = ReadFileOrDie(conf.Join("out"));
  EXPECT_TRUE(absl::StrContains(out, says)) << text << "\n" << out;
}

TEST(ServerExportsConfigTest, BadExportTablesAreRefused) {
  TempDir a, b;
  const std::string pa = a.path(), pb = b.path();
  auto exp = [](const std::string& body) {
    return absl::StrCat("[[export]]\n", body);
  };
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa + "\"\nwho = 1\n"), "who");
  ExpectRefused(exp("path = \"" + pa + "\"\n"), "no `name`");
  ExpectRefused(exp("name = \"x\"\n"), "no `path`");
  ExpectRefused(exp("name = \"a b\"\npath = \"" + pa + "\"\n"),
                "export name 'a b'");
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa + "\"\n") +
                    exp("name = \"x\"\npath = \"" + pb + "\"\n"),
                "two exports are named 'x'");
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa + "\"\n") +
                    exp("name = \"y\"\npath = \"" + pa + "\"\n"),
                "the same directory", 1);
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa +
                    "\"\nclients = [ { from = \"10.1.0.0/8\" } ]\n"),
                "beyond the /8 prefix");
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa +
                    "\"\nclients = [ { from = \"10.0.0.0/8\", access = "
                    "\"all\" } ]\n"),
                "clients.access");
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa + "\"\nclients = []\n"),
                "clients: empty");
  ExpectRefused(exp("name = \"x\"\npath = \"" + pa + "\"\nsquash-uid = -5\n"),
                "squash-uid");
}

}  // namespace
}  // namespace txbuf::testing
