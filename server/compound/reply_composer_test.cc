// reply_composer_test.cc: what ComposeReply produces, parsed back: the
// compound's output of a real Executor run (a READ reply whose data are
// page-cache pages, and an error reply) becomes one Reply frame whose
// envelope is the compound's Reply and whose payload is the READ data, the
// pages referenced (moved into the txbuf, which pins them until its
// destructor runs). The byte-level encoding is proto/compose_test.cc's.

#include "server/compound/reply_composer.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "gtest/gtest.h"
#include "proto/frame.h"
#include "proto/testing/wire.h"
#include "server/fs/export.h"
#include "server/fs/page_cache.h"

namespace txbuf::server {
namespace {

namespace fs = std::filesystem;

class ReplyComposerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "reply_composer.XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    content_.resize(3 * kPageSize + 100);
    for (size_t i = 0; i < content_.size(); ++i) {
      content_[i] = static_cast<char>('a' + i % 23);
    }
    std::ofstream(root_ / "f.bin") << content_;
    absl::StatusOr<std::unique_ptr<Export>> ex = Export::Open(root_, {});
    ASSERT_TRUE(ex.ok()) << ex.status();
    ex_ = std::move(*ex);
    ex_->set_cache(&cache_);
    exec_ = std::make_unique<Executor>(*ex_, ServerLimits{}, /*verifier=*/42,
                                       nullptr);
  }
  void TearDown() override {
    exec_.reset();
    ex_.reset();
    fs::remove_all(root_);
  }

  static rpc::Request Req(std::vector<rpc::Op> ops) {
    rpc::Request r;
    r.set_id(99);
    for (rpc::Op& op : ops) *r.add_ops() = std::move(op);
    return r;
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
  static rpc::Op Read(uint64_t off, uint32_t len) {
    rpc::Op op;
    op.mutable_read()->set_offset(off);
    op.mutable_read()->set_length(len);
    return op;
  }

  fs::path root_;
  std::string content_;
  SlabAllocator slabs_;
  PagePool pool_{16 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pool_, stats_};
  PageCache cache_{pool_};
  std::unique_ptr<Export> ex_;
  std::unique_ptr<Executor> exec_;
};

TEST_F(ReplyComposerTest, AReadReplyIsTheReplyThenItsPages) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  // Two READs: the payload is their data in op order, each READ's
  // payload_offset pointing into it.
  exec_->Execute(Req({PutRoot(), Lookup("f.bin"), Read(10, 2 * kPageSize),
                      Read(3 * kPageSize, 4096)}),
                 {}, &out);
  ASSERT_EQ(reply.status(), rpc::STATUS_OK) << reply.error();
  ASSERT_FALSE(out.payload.empty());
  const std::string want_envelope = reply.SerializeAsString();
  const std::string want_payload =
      content_.substr(10, 2 * kPageSize) + content_.substr(3 * kPageSize);
  ASSERT_EQ(out.payload_bytes, want_payload.size());
  std::vector<const std::byte*> pages;
  for (const PageSlice& s : out.payload) pages.push_back(s.bytes().data());

  int destructor_runs = 0;
  {
    absl::StatusOr<TxBuf> tx = ComposeReply(
        ctx_, out,
        [&destructor_runs](const TxBufCompletion&) { ++destructor_runs; });
    ASSERT_TRUE(tx.ok()) << tx.status();
    // The page references went into the txbuf.
    EXPECT_TRUE(out.payload.empty());
    testing::WireFrame w = testing::CutFrame(*tx);
    EXPECT_EQ(w.header.type, FrameType::kReply);
    EXPECT_EQ(w.header.payload_len, want_payload.size());
    EXPECT_TRUE(w.envelope == want_envelope)
        << "the envelope is not the compound's Reply";
    rpc::Reply parsed;
    ASSERT_TRUE(parsed.ParseFromString(w.envelope));
    EXPECT_EQ(parsed.id(), 99u);
    EXPECT_EQ(parsed.status(), rpc::STATUS_OK);
    ASSERT_EQ(parsed.results_size(), 4);
    EXPECT_EQ(parsed.results(2).read().payload_offset(), 0u);
    EXPECT_EQ(parsed.results(2).read().length(), 2 * kPageSize);
    EXPECT_FALSE(parsed.results(2).read().eof());
    EXPECT_EQ(parsed.results(3).read().payload_offset(), 2 * kPageSize);
    EXPECT_EQ(parsed.results(3).read().length(), 100u);
    EXPECT_TRUE(parsed.results(3).read().eof());
    EXPECT_TRUE(w.payload == want_payload) << "the READ data differ";
    // Referenced, not copied: the slices at least as long as the stage
    // threshold are page segments pointing at the cache's pages.
    std::vector<const std::byte*> in_tx;
    tx->ForEachSegment([&](const std::byte* p, size_t, SegmentKind kind) {
      if (kind == SegmentKind::kPage) in_tx.push_back(p);
    });
    for (const std::byte* p : in_tx) {
      EXPECT_NE(std::find(pages.begin(), pages.end(), p), pages.end());
    }
    EXPECT_FALSE(in_tx.empty());
    EXPECT_EQ(destructor_runs, 0);  // pinned while the txbuf lives
  }
  EXPECT_EQ(destructor_runs, 1);
  EXPECT_EQ(stats_.txbufs_in_flight(), 0u);
  EXPECT_EQ(stats_.pinned_bytes(), 0u);
}

TEST_F(ReplyComposerTest, AnErrorReplyCarriesTheStatusAndNoPayload) {
  rpc::Reply reply;
  CompoundOutput out(reply);
  exec_->Execute(Req({PutRoot(), Lookup("missing"), Read(0, 10)}), {}, &out);
  ASSERT_EQ(reply.status(), rpc::STATUS_NOENT);
  EXPECT_TRUE(out.payload.empty());
  int destructor_runs = 0;
  {
    absl::StatusOr<TxBuf> tx = ComposeReply(
        ctx_, out,
        [&destructor_runs](const TxBufCompletion&) { ++destructor_runs; });
    ASSERT_TRUE(tx.ok()) << tx.status();
    testing::WireFrame w = testing::CutFrame(*tx);
    EXPECT_EQ(w.header.type, FrameType::kReply);
    EXPECT_EQ(w.header.payload_len, 0u);
    EXPECT_TRUE(w.payload.empty());
    rpc::Reply parsed;
    ASSERT_TRUE(parsed.ParseFromString(w.envelope));
    EXPECT_EQ(parsed.id(), 99u);
    EXPECT_EQ(parsed.status(), rpc::STATUS_NOENT);
    EXPECT_EQ(parsed.error(), reply.error());
    EXPECT_EQ(parsed.error(), "lookup 'missing': No such file or directory");
    // PUTROOTFH and the failed LOOKUP; the READ never ran.
    ASSERT_EQ(parsed.results_size(), 2);
    EXPECT_EQ(parsed.results(0).status(), rpc::STATUS_OK);
    EXPECT_EQ(parsed.results(1).status(), rpc::STATUS_NOENT);
    EXPECT_EQ(parsed.results(1).error(), reply.error());
    EXPECT_FALSE(parsed.results(1).has_fh());
  }
  EXPECT_EQ(destructor_runs, 1);
}

}  // namespace
}  // namespace txbuf::server
