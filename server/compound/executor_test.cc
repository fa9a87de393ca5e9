// executor_test.cc: compounds run against an export in-process: results in
// op order, the stop at the first failure, the event-loop half handing over
// to the blocking half with the same outcome, READ data as pinned page
// slices, and the limits. (The fuzzer, fuzz/executor_fuzz.cc, checks the
// invariants on arbitrary compounds; tests/server_*_test.cc the same over
// the network.)

#include "server/compound/executor.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/page_pool.h"
#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

namespace fs = std::filesystem;

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "executor_test.XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "dir");
    content_.resize(10000);
    for (size_t i = 0; i < content_.size(); ++i) {
      content_[i] = static_cast<char>('a' + i % 26);
    }
    std::ofstream(root_ / "dir" / "f.bin") << content_;
    absl::StatusOr<std::unique_ptr<Export>> ex = Export::Open(root_, {});
    ASSERT_TRUE(ex.ok()) << ex.status();
    ex_ = std::move(*ex);
    ex_->set_cache(&cache_);
    exec_ = std::make_unique<Executor>(*ex_, ServerLimits{.max_ops = 8},
                                       /*verifier=*/42, nullptr);
  }
  void TearDown() override {
    exec_.reset();
    ex_.reset();
    fs::remove_all(root_);
  }

  static rpc::Op PutRoot() {
    rpc::Op op;
    op.mutable_putrootfh();
    return op;
  }
  static rpc::Op Lookup(const std::string& path) {
    rpc::Op op;
    op.mutable_lookup()->set_path(path);
    return op;
  }
  static rpc::Op GetAttr() {
    rpc::Op op;
    op.mutable_getattr();
    return op;
  }
  static rpc::Op Read(uint64_t off, uint32_t len) {
    rpc::Op op;
    op.mutable_read()->set_offset(off);
    op.mutable_read()->set_length(len);
    return op;
  }
  static rpc::Request Req(std::initializer_list<rpc::Op> ops) {
    rpc::Request r;
    r.set_id(7);
    for (const rpc::Op& op : ops) *r.add_ops() = op;
    return r;
  }
  static std::string Payload(const CompoundOutput& out) {
    std::string s;
    for (const PageSlice& p : out.payload) {
      s.append(reinterpret_cast<const char*>(p.bytes().data()), p.len);
    }
    return s;
  }

  fs::path root_;
  std::string content_;
  PagePool pool_{16 << 20};
  PageCache cache_{pool_};
  std::unique_ptr<Export> ex_;
  std::unique_ptr<Executor> exec_;
};

TEST_F(ExecutorTest, ResultsComeInOpOrderWithReadDataAsPageSlices) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(
      Req({PutRoot(), Lookup("dir/f.bin"), GetAttr(), Read(100, 5000)}), {},
      &out);
  EXPECT_EQ(reply.id(), 7u);
  EXPECT_EQ(reply.status(), rpc::STATUS_OK) << reply.error();
  ASSERT_EQ(reply.results_size(), 4);
  EXPECT_TRUE(reply.results(1).has_fh());
  EXPECT_EQ(reply.results(2).attr().attr().size(), content_.size());
  const rpc::ReadResult& read = reply.results(3).read();
  EXPECT_EQ(read.length(), 5000u);
  EXPECT_FALSE(read.eof());
  EXPECT_EQ(out.payload_bytes, 5000u);
  EXPECT_EQ(Payload(out), content_.substr(100, 5000));
  // Not copied: each slice holds a reference on a page of the pool.
  for (const PageSlice& s : out.payload) EXPECT_NE(s.page.get(), nullptr);
}

TEST_F(ExecutorTest, AReadPastTheEndIsShortWithEof) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(Req({PutRoot(), Lookup("dir/f.bin"), Read(9000, 4096)}), {},
                 &out);
  ASSERT_EQ(reply.results_size(), 3);
  EXPECT_EQ(reply.results(2).read().length(), 1000u);
  EXPECT_TRUE(reply.results(2).read().eof());
  EXPECT_EQ(Payload(out), content_.substr(9000));
}

TEST_F(ExecutorTest, TheCompoundStopsAtTheFirstFailure) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(
      Req({PutRoot(), Lookup("dir/missing"), GetAttr(), Read(0, 10)}), {},
      &out);
  EXPECT_EQ(reply.status(), rpc::STATUS_NOENT);
  EXPECT_FALSE(reply.error().empty());
  ASSERT_EQ(reply.results_size(), 2);  // PUTROOTFH, and the failed LOOKUP.
  EXPECT_EQ(reply.results(0).status(), rpc::STATUS_OK);
  EXPECT_EQ(reply.results(1).status(), rpc::STATUS_NOENT);
  EXPECT_TRUE(out.payload.empty());
}

TEST_F(ExecutorTest, AnOpWithoutAFileHandleIsNofilehandle) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(Req({GetAttr()}), {}, &out);
  EXPECT_EQ(reply.status(), rpc::STATUS_NOFILEHANDLE);
}

TEST_F(ExecutorTest, MoreOpsThanTheLimitIsToobig) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  rpc::Request req = Req({});
  for (int i = 0; i < 9; ++i) *req.add_ops() = PutRoot();
  exec_->Execute(req, {}, &out);
  EXPECT_EQ(reply.status(), rpc::STATUS_TOOBIG);
}

TEST_F(ExecutorTest, TheEventLoopHalfHandsOverWithTheSameOutcome) {
  const rpc::Request req =
      Req({PutRoot(), Lookup("dir/f.bin"), Read(0, 8192), Read(8192, 4096)});
  rpc::Reply reply;
  CompoundOutput out(reply);
  CompoundState state;
  HandleCache handles;
  // Nothing is cached: the loop must stop before anything that would block
  // (the LOOKUP walks the disk, the READ misses the cache).
  bool done = exec_->Run(req, {}, &out, &handles, &state, ExecMode::kEventLoop);
  EXPECT_FALSE(done);
  EXPECT_LT(state.next_op, req.ops_size());
  while (!done) {
    done = exec_->Run(req, {}, &out, &handles, &state, ExecMode::kMayBlock);
  }
  EXPECT_EQ(reply.status(), rpc::STATUS_OK) << reply.error();
  ASSERT_EQ(reply.results_size(), 4);
  EXPECT_EQ(Payload(out), content_);

  // A PUTFH of a handle the connection used recently needs no table or
  // node lock, and READs of cached pages no disk: once the handle is in the
  // connection's cache, the whole compound runs on the loop.
  rpc::Op putfh;
  putfh.mutable_putfh()->set_fh(reply.results(1).fh().fh());
  const rpc::Request cached = Req({putfh, Read(0, 8192), Read(8192, 4096)});
  {
    rpc::Reply first;
    CompoundOutput out1(first);
    exec_->Execute(cached, {}, &out1, &handles);
    ASSERT_EQ(first.status(), rpc::STATUS_OK) << first.error();
  }
  rpc::Reply again;
  CompoundOutput out2(again);
  CompoundState state2;
  EXPECT_TRUE(
      exec_->Run(cached, {}, &out2, &handles, &state2, ExecMode::kEventLoop));
  EXPECT_EQ(again.status(), rpc::STATUS_OK) << again.error();
  EXPECT_EQ(Payload(out2), content_);
}

TEST_F(ExecutorTest, AWriteIsReadBackAndCommittedUnderOneVerifier) {
  const std::string data = "hello, executor";
  rpc::Op write;
  write.mutable_write()->set_offset(3);
  write.mutable_write()->set_length(data.size());
  write.mutable_write()->set_payload_offset(0);
  rpc::Op commit;
  commit.mutable_commit();
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(
      Req({PutRoot(), Lookup("dir/f.bin"), write, commit, Read(0, 20)}),
      absl::MakeSpan(reinterpret_cast<const std::byte*>(data.data()),
                     data.size()),
      &out);
  ASSERT_EQ(reply.status(), rpc::STATUS_OK) << reply.error();
  ASSERT_EQ(reply.results_size(), 5);
  EXPECT_EQ(reply.results(2).write().count(), data.size());
  EXPECT_EQ(reply.results(2).write().verifier(),
            reply.results(3).commit().verifier());
  std::string want = content_.substr(0, 20);
  want.replace(3, data.size(), data);
  EXPECT_EQ(Payload(out), want);
  // COMMIT wrote it to the file.
  std::ifstream in(root_ / "dir" / "f.bin");
  std::string head(20, '\0');
  in.read(head.data(), 20);
  EXPECT_EQ(head, want);
}

}  // namespace
}  // namespace txbuf::server
