// The client library and the txbuf CLI against a real txbufd process.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

using ::testing::HasSubstr;

std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 3;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s[i] = static_cast<char>(x >> 56);
  }
  return s;
}

struct EnginePair {
  EngineKind server, client;
};

std::string PairName(const ::testing::TestParamInfo<EnginePair>& i) {
  return absl::StrCat("server_", EngineName(i.param.server), "_client_",
                      EngineName(i.param.client));
}

class ClientE2eTest : public ::testing::TestWithParam<EnginePair> {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--export", dir_.path(), "--cache-size",
        "256M",     "--engine",  std::string(EngineName(GetParam().server))};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start(args);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  std::unique_ptr<client::Client> Connect(
      std::optional<std::string> token = {}) {
    client::ClientOptions o;
    o.host = server_->host();
    o.port = server_->port();
    o.token = std::move(token);
    o.connections = 2;
    o.engine = GetParam().client;
    absl::StatusOr<std::unique_ptr<client::Client>> c =
        client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  void TearDown() override {
    if (server_ == nullptr) return;
    ServerExit e = server_->Stop();
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  }
  TempDir dir_;
  TempDir local_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_P(ClientE2eTest, PutGetLargeFileByteExactWithClientMemoryRecovery) {
  Start();
  std::unique_ptr<client::Client> c = Connect();
  ASSERT_NE(c, nullptr);
#ifdef TXBUF_TSAN
  // ThreadSanitizer's slowdown: the same path on a sixth of the bytes.
  constexpr int kMiB = 16;
#else
  constexpr int kMiB = 96;
#endif
  std::string data = Pattern(kMiB << 20, 1);
  WriteFile(local_.Join("in.bin"), data);
  absl::StatusOr<uint64_t> put =
      c->PutFile(local_.Join("in.bin"), "dir/big.bin");
  ASSERT_FALSE(put.ok()) << "no such directory yet: must fail";
  auto mkdir = c->Mkdir("dir");
  ASSERT_TRUE(mkdir.ok()) << mkdir.status();
  put = c->PutFile(local_.Join("in.bin"), "dir/big.bin");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, data.size());
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("dir/big.bin")) == data)
      << "server disk differs after PUT (COMMIT)";
  absl::StatusOr<uint64_t> got =
      c->GetFile("dir/big.bin", local_.Join("out.bin"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(ReadFileOrDie(local_.Join("out.bin")) == data);
  // The client's own txbufs (WRITE payloads) were all destroyed.
  MemoryStatsSnapshot m = c->memory_stats();
  EXPECT_EQ(m.pinned_bytes, 0u);
  EXPECT_EQ(m.txbufs_in_flight, 0u);
  EXPECT_GT(m.destructor_latency.count, kMiB - 6u);
  EXPECT_GE(m.pinned_bytes_max, 1u << 20);
}

TEST_P(ClientE2eTest, BlockingApiAndErrors) {
  Start();
  std::unique_ptr<client::Client> c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Mkdir("a").ok());
  ASSERT_TRUE(c->Create("a/f.txt").ok());
  ASSERT_TRUE(c->Write("a/f.txt", 0, std::string("hello world")).ok());
  absl::StatusOr<rpc::Attr> st = c->Stat("a/f.txt");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->size(), 11u);
  absl::StatusOr<std::string> rd = c->Read("a/f.txt", 6, 100);
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(*rd, "world");
  ASSERT_TRUE(c->Rename("a/f.txt", "g.txt").ok());
  absl::StatusOr<std::vector<rpc::DirEntry>> ls = c->List("");
  ASSERT_TRUE(ls.ok());
  std::set<std::string> names;
  for (const auto& e : *ls) names.insert(e.name());
  EXPECT_THAT(names, ::testing::ElementsAre("a", "g.txt"));
  EXPECT_EQ(c->Stat("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->Mkdir("a").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(c->Rmdir("g.txt").ok());
  EXPECT_EQ(c->Stat("../etc").status().code(),
            absl::StatusCode::kPermissionDenied);
  // A handle goes STALE after remove.
  client::Compound get;
  get.PutRootFh().Lookup("g.txt").GetFh();
  absl::StatusOr<client::CompoundReply> r = c->Call(std::move(get));
  ASSERT_TRUE(r.ok() && r->ok());
  std::string fh = r->result(2).fh().fh();
  ASSERT_TRUE(c->Remove("g.txt").ok());
  client::Compound stale;
  stale.PutFh(fh).GetAttr();
  r = c->Call(std::move(stale));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rpc_status(), rpc::STATUS_STALE);
  absl::StatusOr<rpc::StatsResult> stats = c->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->engine(), EngineName(GetParam().server));
}

INSTANTIATE_TEST_SUITE_P(
    Engines, ClientE2eTest,
    ::testing::Values(EnginePair{EngineKind::kCopy, EngineKind::kCopy},
                      EnginePair{EngineKind::kMsgZerocopy,
                                 EngineKind::kMsgZerocopy},
                      EnginePair{EngineKind::kUringZc, EngineKind::kUringZc},
                      EnginePair{EngineKind::kAuto, EngineKind::kAuto}),
    PairName);

// The CLI: every command, exit codes and one-line errors.
class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteSecretFile(token_.Join("t"), "secret\n");
    absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::Start(
        {"--export", dir_.path(), "--token-file", token_.Join("t")});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void TearDown() override {
    ServerExit e = Stop();
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  }
  // Stops the server (once): its exit and final stats line.
  ServerExit Stop() {
    if (!exit_.has_value()) exit_ = server_->Stop();
    return *exit_;
  }
  // Runs `txbuf` with the server and token; returns {exit, stdout+stderr}.
  std::pair<int, std::string> Txbuf(const std::string& args,
                                    const std::string& token = "") {
    std::string cmd = absl::StrCat(
        TXBUF_CLI_PATH, " --server ", server_->address(), " --token-file ",
        token.empty() ? token_.Join("t") : token, " ", args, " 2>&1");
    CommandResult r = RunCommand(cmd);
    return {r.exit_code, std::move(r.out)};
  }
  TempDir dir_, token_, local_;
  std::unique_ptr<ServerProcess> server_;
  std::optional<ServerExit> exit_;
};

// Where the layouts of `a` and `b` differ ("" if nowhere): the same JSON
// kinds (numbers of any kind are one kind), objects with the same keys
// (recursively), and arrays whose elements, in both, have the layout of the
// first element of either.
std::string LayoutDifference(const nlohmann::json& a, const nlohmann::json& b,
                             const std::string& path = "") {
  auto kind = [](const nlohmann::json& j) {
    return j.is_number() ? std::string("number") : std::string(j.type_name());
  };
  if (kind(a) != kind(b)) {
    return absl::StrCat(path, ": ", kind(a), " vs ", kind(b));
  }
  if (a.is_object()) {
    for (const auto& [key, value] : a.items()) {
      if (!b.contains(key)) return absl::StrCat(path, ".", key, ": only left");
      std::string d =
          LayoutDifference(value, b.at(key), absl::StrCat(path, ".", key));
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : b.items()) {
      if (!a.contains(key)) return absl::StrCat(path, ".", key, ": only right");
    }
  } else if (a.is_array()) {
    const nlohmann::json* first =
        !a.empty() ? &a.front() : (!b.empty() ? &b.front() : nullptr);
    for (const nlohmann::json* side : {&a, &b}) {
      for (const nlohmann::json& e : *side) {
        std::string d = LayoutDifference(*first, e, path + "[]");
        if (!d.empty()) return d;
      }
    }
  }
  return "";
}

// One layout for the statistics (issue 14): `txbuf stats --json` and the
// line txbufd prints when it stops name the same figures the same way.
TEST_F(CliE2eTest, StatsJsonHasTheLayoutOfTheShutdownLine) {
  WriteFile(local_.Join("f.bin"), Pattern(300000, 5));
  ASSERT_EQ(Txbuf(absl::StrCat("put ", local_.Join("f.bin"), " f.bin")).first,
            0);
  ASSERT_EQ(Txbuf(absl::StrCat("get f.bin ", local_.Join("g.bin"))).first, 0);
  auto [rc, out] = Txbuf("stats --json");
  ASSERT_EQ(rc, 0) << out;
  const nlohmann::json cli = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(cli.is_discarded()) << out;
  ServerExit e = Stop();
  ASSERT_EQ(e.exit_code, 0);
  const nlohmann::json last =
      nlohmann::json::parse(e.stats_json, nullptr, false);
  ASSERT_FALSE(last.is_discarded()) << e.stats_json;
  ASSERT_TRUE(cli.is_object());
  EXPECT_EQ(LayoutDifference(cli, last), "") << out << "\n" << e.stats_json;
  // Both carry what the traffic did.
  EXPECT_GT(cli["requests"].get<uint64_t>(), 0u);
  EXPECT_GE(last["requests"].get<uint64_t>(), cli["requests"].get<uint64_t>());
  EXPECT_FALSE(cli["ops"].empty());
}

TEST_F(CliE2eTest, EveryCommand) {
  std::string data = Pattern(3 << 20, 7);
  WriteFile(local_.Join("f.bin"), data);
  EXPECT_EQ(Txbuf("mkdir d").first, 0);
  auto [put_rc, put_out] =
      Txbuf(absl::StrCat("put ", local_.Join("f.bin"), " d/f.bin"));
  EXPECT_EQ(put_rc, 0) << put_out;
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("d/f.bin")) == data);
  auto [ls_rc, ls_out] = Txbuf("ls -l d");
  EXPECT_EQ(ls_rc, 0);
  EXPECT_THAT(ls_out, HasSubstr("f.bin"));
  EXPECT_THAT(ls_out, HasSubstr(std::to_string(data.size())));
  auto [st_rc, st_out] = Txbuf("stat d/f.bin");
  EXPECT_EQ(st_rc, 0);
  EXPECT_THAT(st_out, HasSubstr(std::to_string(data.size())));
  EXPECT_EQ(Txbuf("mv d/f.bin d/g.bin").first, 0);
  auto [get_rc, get_out] =
      Txbuf(absl::StrCat("get d/g.bin ", local_.Join("back.bin")));
  EXPECT_EQ(get_rc, 0) << get_out;
  EXPECT_TRUE(ReadFileOrDie(local_.Join("back.bin")) == data);
  auto [json_rc, json] = Txbuf("stats --json");
  EXPECT_EQ(json_rc, 0);
  EXPECT_THAT(json, HasSubstr("\"pinned_bytes\""));
  EXPECT_THAT(json, HasSubstr("\"destructor_latency"));
  EXPECT_EQ(Txbuf("df").first, 0);
  EXPECT_EQ(Txbuf("rm d/g.bin").first, 0);
  EXPECT_EQ(Txbuf("rmdir d").first, 0);
  // Errors: non-zero status and one line "txbuf: ...".
  auto [err_rc, err] = Txbuf("stat missing");
  EXPECT_EQ(err_rc, 1);
  EXPECT_TRUE(absl::StartsWith(err, "txbuf: ")) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  WriteFile(token_.Join("wrong"), "nope");
  auto [auth_rc, auth] = Txbuf("ls", token_.Join("wrong"));
  EXPECT_EQ(auth_rc, 1);
  EXPECT_THAT(auth, HasSubstr("txbuf: "));
  EXPECT_EQ(Txbuf("frobnicate").first, 2);
}

// The CLI never destroys its source (issue 10): with the client on the
// server's host, the exported file given as both source and destination.
TEST_F(CliE2eTest, PutOfTheExportedFileOntoItselfKeepsIt) {
  const std::string data = Pattern(300000, 11);
  WriteFile(dir_.Join("docs/same.txt"), data);
  auto [rc, out] =
      Txbuf(absl::StrCat("put ", dir_.Join("docs/same.txt"), " docs/same.txt"));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("are the same file")) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("docs/same.txt")) == data)
      << "the source was destroyed";
}

TEST_F(CliE2eTest, GetOfTheExportedFileOntoItselfKeepsIt) {
  const std::string data = Pattern(300000, 12);
  WriteFile(dir_.Join("docs/same.txt"), data);
  auto [rc, out] =
      Txbuf(absl::StrCat("get docs/same.txt ", dir_.Join("docs/same.txt")));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("are the same file")) << out;
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("docs/same.txt")) == data)
      << "the source was destroyed";
}

// Names of the directory `dir` on this host (no "." and "..").
std::set<std::string> NamesIn(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.insert(n);
  }
  closedir(d);
  return names;
}

// The library's GetFile/PutFile against a real txbufd, with small chunks so
// that the progress callback runs in the middle of a transfer.
class TransferSafetyE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start({"--export", dir_.path()});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    client::ClientOptions o;
    o.host = server_->host();
    o.port = server_->port();
    o.transfer_chunk = 64 << 10;
    o.transfer_window = 2;
    absl::StatusOr<std::unique_ptr<client::Client>> c =
        client::Client::Connect(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }
  void TearDown() override {
    client_.reset();
    ServerExit e = server_->Stop();
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  }
  TempDir dir_, local_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(TransferSafetyE2eTest, PutReplacesTheTargetAtomically) {
  const std::string old_data = Pattern(100000, 21);
  const std::string new_data = Pattern(1 << 20, 22);
  WriteFile(dir_.Join("d/target.bin"), old_data);
  ASSERT_EQ(chmod(dir_.Join("d/target.bin").c_str(), 0640), 0);
  WriteFile(local_.Join("new.bin"), new_data);
  int calls = 0;
  bool old_intact = true;
  std::set<std::string> mid;
  absl::StatusOr<uint64_t> put = client_->PutFile(
      local_.Join("new.bin"), "d/target.bin", [&](uint64_t done, uint64_t) {
        if (done == 0 || done >= new_data.size()) return;
        ++calls;
        old_intact =
            old_intact && ReadFileOrDie(dir_.Join("d/target.bin")) == old_data;
        if (mid.empty()) mid = NamesIn(dir_.Join("d"));
      });
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(*put, new_data.size());
  ASSERT_GT(calls, 0) << "no progress in the middle of the upload";
  EXPECT_TRUE(old_intact) << "readers saw a partial target during the upload";
  EXPECT_EQ(mid.size(), 2u) << "the target and one temporary file";
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("d/target.bin")) == new_data);
  EXPECT_EQ(NamesIn(dir_.Join("d")), std::set<std::string>{"target.bin"})
      << "a temporary file was left behind";
  struct stat st;
  ASSERT_EQ(stat(dir_.Join("d/target.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "a replaced file keeps its mode";
}

TEST_F(TransferSafetyE2eTest, PutOfAChangingFileFailsAndLeavesTheTarget) {
  const std::string old_data = Pattern(100000, 23);
  WriteFile(dir_.Join("d/target.bin"), old_data);
  WriteFile(local_.Join("new.bin"), Pattern(1 << 20, 24));
  bool shrunk = false;
  absl::StatusOr<uint64_t> put = client_->PutFile(
      local_.Join("new.bin"), "d/target.bin", [&](uint64_t done, uint64_t) {
        if (done == 0 || shrunk) return;
        shrunk = true;
        ASSERT_EQ(truncate(local_.Join("new.bin").c_str(), 300000), 0);
      });
  ASSERT_TRUE(shrunk);
  ASSERT_FALSE(put.ok()) << "the source shrank during the upload";
  EXPECT_EQ(put.status().code(), absl::StatusCode::kDataLoss) << put.status();
  EXPECT_THAT(put.status().message(), HasSubstr("changed during the upload"));
  EXPECT_TRUE(ReadFileOrDie(dir_.Join("d/target.bin")) == old_data);
  EXPECT_EQ(NamesIn(dir_.Join("d")), std::set<std::string>{"target.bin"})
      << "the temporary file was not removed";
}

TEST_F(TransferSafetyE2eTest, GetOfAChangingFileFailsAndLeavesTheDestination) {
  // The remote file shrinks, or grows, after GetFile saw its size.
  for (uint64_t new_size : {uint64_t{300000}, uint64_t{3 << 20}}) {
    SCOPED_TRACE(new_size);
    WriteFile(dir_.Join("src.bin"), Pattern(1 << 20, 25));
    WriteFile(local_.Join("dst.bin"), "the old destination\n");
    bool changed = false;
    absl::StatusOr<uint64_t> got = client_->GetFile(
        "src.bin", local_.Join("dst.bin"), [&](uint64_t done, uint64_t) {
          if (done == 0 || changed) return;
          changed = true;
          absl::StatusOr<rpc::Attr> t = client_->Truncate("src.bin", new_size);
          ASSERT_TRUE(t.ok()) << t.status();
        });
    ASSERT_TRUE(changed);
    ASSERT_FALSE(got.ok()) << "the file changed during the download";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
    EXPECT_THAT(got.status().message(),
                HasSubstr("changed during the download"));
    EXPECT_EQ(ReadFileOrDie(local_.Join("dst.bin")), "the old destination\n");
    EXPECT_EQ(NamesIn(local_.path()), std::set<std::string>{"dst.bin"})
        << "the temporary file was not removed";
  }
}

TEST_F(TransferSafetyE2eTest, GetReplacesTheDestinationOnlyAtTheEnd) {
  const std::string data = Pattern(1 << 20, 26);
  WriteFile(dir_.Join("src.bin"), data);
  WriteFile(local_.Join("dst.bin"), "the old destination\n");
  ASSERT_EQ(chmod(local_.Join("dst.bin").c_str(), 0600), 0);
  int calls = 0;
  bool old_intact = true;
  absl::StatusOr<uint64_t> got = client_->GetFile(
      "src.bin", local_.Join("dst.bin"), [&](uint64_t done, uint64_t) {
        if (done >= data.size()) return;
        ++calls;
        old_intact = old_intact && ReadFileOrDie(local_.Join("dst.bin")) ==
                                       "the old destination\n";
      });
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_GT(calls, 0);
  EXPECT_TRUE(old_intact) << "the destination was changed before the end";
  EXPECT_TRUE(ReadFileOrDie(local_.Join("dst.bin")) == data);
  EXPECT_EQ(NamesIn(local_.path()), std::set<std::string>{"dst.bin"});
  struct stat st;
  ASSERT_EQ(stat(local_.Join("dst.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "a replaced file keeps its mode";
}

}  // namespace
}  // namespace txbuf::testing
