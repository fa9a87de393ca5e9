#include "tests/server_fixture.h"

#include "gmock/gmock.h"

namespace txbuf::testing {

using ::testing::HasSubstr;

constexpr char kProbe[] = "probe: a well-behaved client's file\n";

void ServerTest::TearDown() {
  if (server_ == nullptr || !check_clean_exit_) return;
  ServerExit e = server_->Stop();
  EXPECT_EQ(e.exit_code, 0) << e.stdout_text;
  EXPECT_THAT(e.stats_json, HasSubstr("\"pinned_bytes\":0,"));
  EXPECT_THAT(e.stats_json, HasSubstr("\"txbufs_in_flight\":0,"));
}

void ServerTest::StartServer(std::vector<std::string> extra,
                             const ProcessOptions& options) {
  WriteFile(dir_.Join("probe.txt"), kProbe);
  std::vector<std::string> args = {"--export", dir_.path(), "--cache-size",
                                   "64M"};
  args.insert(args.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> s =
      ServerProcess::Start(args, options);
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
}

RawClient ServerTest::Connect() {
  absl::StatusOr<RawClient> c =
      RawClient::Connect(server_->host(), server_->port());
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

rpc::Request ServerTest::At(const std::string& path) {
  rpc::Request r = MakeRequest(++id_);
  AddPutRoot(r);
  if (!path.empty()) AddLookup(r, path);
  return r;
}

RawReply ServerTest::Call(RawClient& c, const rpc::Request& r,
                          const std::string& payload, int timeout_ms) {
  EXPECT_TRUE(c.SendRequest(r, payload).ok());
  absl::StatusOr<RawReply> rep = c.ReadReply(timeout_ms);
  EXPECT_TRUE(rep.ok()) << rep.status();
  if (!rep.ok()) return RawReply{};
  EXPECT_EQ(rep->reply.id(), r.id());
  return *rep;
}

std::string ServerTest::HandleOf(RawClient& c, const std::string& path) {
  RawReply rep = Call(c, At(path));
  if (rep.reply.status() != rpc::STATUS_OK) return "";
  return rep.reply.results(rep.reply.results_size() - 1).fh().fh();
}

rpc::StatsResult ServerTest::Stats() {
  RawClient c = Connect();
  rpc::Request r = MakeRequest(++id_);
  r.add_ops()->mutable_stats();
  RawReply rep = Call(c, r);
  return rep.reply.results_size() > 0 ? rep.reply.results(0).stats()
                                      : rpc::StatsResult();
}

void ServerTest::ExpectStillServing(int timeout_ms) {
  absl::StatusOr<RawClient> c =
      RawClient::Connect(server_->host(), server_->port());
  ASSERT_TRUE(c.ok()) << "no Hello: " << c.status();
  rpc::Request r = At("probe.txt");
  r.add_ops()->mutable_read()->set_length(4096);
  RawReply rep = Call(*c, r, "", timeout_ms);
  ASSERT_EQ(rep.reply.status(), rpc::STATUS_OK) << rep.reply.error();
  EXPECT_EQ(rep.ReadData(2), kProbe);
}

}  // namespace txbuf::testing
