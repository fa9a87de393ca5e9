// The frames proto/compose.h writes piece by piece, parsed back: for every
// kind of op result, at stage thresholds that stage, reference and
// heap-allocate the pieces, the envelope is byte for byte the reference
// encoding (the generated Reply::SerializeToString), parses with the
// generated parser to the very message composed, carries every field (a
// Reply, OpResult or ReadDirResult field this code does not name, here
// unknown fields, as a newer .proto's would be), and the READ data follows as
// the pages themselves (referenced, not copied, unless shorter than the stage
// threshold).
#include "proto/compose.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/testing/wire.h"

namespace txbuf {
namespace {

using google::protobuf::util::MessageDifferencer;

// The fields of `m` this build does not know (as a newer .proto's would be).
google::protobuf::UnknownFieldSet* Unknown(google::protobuf::Message* m) {
  return m->GetReflection()->MutableUnknownFields(m);
}
const google::protobuf::UnknownFieldSet& Unknown(
    const google::protobuf::Message& m) {
  return m.GetReflection()->GetUnknownFields(m);
}

// Bytes [offset, offset + len) of a page: a READ's data.
struct Slice {
  PageRef page;
  uint32_t offset = 0;
  uint32_t len = 0;
};

void FillAttr(rpc::Attr* a, uint64_t fileid) {
  a->set_type(rpc::FILE_TYPE_REGULAR);
  a->set_mode(0644);
  a->set_nlink(1);
  a->set_uid(1000);
  a->set_gid(1000);
  a->set_size(123456789);
  a->set_used(4096 * 30);
  a->set_fileid(fileid);
  a->set_atime_ns(1'700'000'000'000'000'001);
  a->set_mtime_ns(1'700'000'000'000'000'002);
  a->set_ctime_ns(-3);
}

void FillReaddir(rpc::ReadDirResult* rd, int entries, bool with_attrs,
                 bool eof) {
  for (int i = 0; i < entries; ++i) {
    rpc::DirEntry* e = rd->add_entries();
    e->set_name(absl::StrCat("entry-", i, std::string(i % 7, 'x')));
    e->set_cookie(static_cast<uint64_t>(i) + 1);
    e->set_fileid(uint64_t{1000} + static_cast<uint64_t>(i));
    e->set_type(i % 2 ? rpc::FILE_TYPE_DIRECTORY : rpc::FILE_TYPE_REGULAR);
    if (with_attrs) {
      FillAttr(e->mutable_attr(), uint64_t{1000} + static_cast<uint64_t>(i));
      e->set_fh(std::string(40, static_cast<char>('a' + i % 26)));
    }
  }
  rd->set_eof(eof);
}

// One OpResult of each kind the protocol has, failures included.
std::vector<std::pair<std::string, rpc::OpResult>> EveryResultKind() {
  std::vector<std::pair<std::string, rpc::OpResult>> out;
  auto add = [&out](std::string name) -> rpc::OpResult& {
    out.emplace_back(std::move(name), rpc::OpResult());
    return out.back().second;
  };
  add("ok, no result");
  {
    rpc::OpResult& r = add("fh");
    r.mutable_fh()->set_fh(std::string(40, 'h'));
    FillAttr(r.mutable_fh()->mutable_attr(), 7);
  }
  FillAttr(add("attr").mutable_attr()->mutable_attr(), 8);
  {
    rpc::ReadResult* rd = add("read").mutable_read();
    rd->set_payload_offset(4096);
    rd->set_length(8192);
    rd->set_eof(true);
  }
  {
    rpc::WriteResult* w = add("write").mutable_write();
    w->set_count(65536);
    w->set_committed(rpc::STABILITY_FILE_SYNC);
    w->set_verifier(0x0123456789abcdef);
  }
  add("commit").mutable_commit()->set_verifier(0xfedcba9876543210);
  FillReaddir(add("readdir, eof").mutable_readdir(), 3, false, true);
  FillReaddir(add("readdir, more to come").mutable_readdir(), 5, true, false);
  FillReaddir(add("readdir, large").mutable_readdir(), 300, true, true);
  FillReaddir(add("readdir, empty").mutable_readdir(), 0, false, true);
  add("readdir, empty, not eof").mutable_readdir();
  {
    rpc::StatFsResult* s = add("statfs").mutable_statfs();
    s->set_total_bytes(1ull << 40);
    s->set_free_bytes(1ull << 39);
    s->set_avail_bytes(1ull << 38);
    s->set_total_files(1 << 20);
    s->set_free_files(1 << 19);
    s->set_block_size(4096);
    s->set_name_max(255);
  }
  {
    rpc::StatsResult* s = add("stats").mutable_stats();
    s->set_pinned_bytes(12345);
    s->set_engine("auto");
    for (int i = 0; i < 40; ++i) {
      rpc::HistogramBucket* b = s->add_destructor_latency_buckets();
      b->set_lo(static_cast<uint64_t>(i) << 10);
      b->set_hi(static_cast<uint64_t>(i + 1) << 10);
      b->set_count(static_cast<uint64_t>(i) * 3 + 1);
    }
    rpc::OpCount* c = s->add_ops();
    c->set_op("read");
    c->set_status(rpc::STATUS_OK);
    c->set_count(99);
    s->mutable_request_latency()->set_mean(1.5);
  }
  add("readlink").mutable_readlink()->set_target("../target/of/the/link");
  // Over the largest kmalloc size class: a heap buffer.
  add("readlink, 9000 bytes")
      .mutable_readlink()
      ->set_target(std::string(9000, 't'));
  {
    rpc::OpResult& r = add("failed");
    r.set_status(rpc::STATUS_NOENT);
    r.set_error("LOOKUP 'a/b': no such file or directory");
  }
  {
    rpc::OpResult& r = add("failed readdir");
    r.set_status(rpc::STATUS_DELAY);
    r.set_error("retry");
    FillReaddir(r.mutable_readdir(), 2, false, false);
  }
  return out;
}

class ComposeReplyFrameTest : public ::testing::TestWithParam<size_t> {
 protected:
  ComposeReplyFrameTest() { ctx_.set_options({.stage_threshold = GetParam()}); }
  ~ComposeReplyFrameTest() override {
    EXPECT_EQ(stats_.txbufs_in_flight(), 0u);
    EXPECT_EQ(stats_.pinned_bytes(), 0u);
  }

  // A page filled with `c`, as READ data.
  Slice PageOf(char c, uint32_t offset, uint32_t len) {
    PageRef p = pool_.Allocate();
    std::memset(p.data(), c, kPageSize);
    return {std::move(p), offset, len};
  }

  // Composes `want` (a copy of it) with `payload` after it, and checks the
  // frame against the reference encoding of `want`.
  void ExpectReferenceEncoding(const rpc::Reply& want,
                               const std::vector<Slice>& payload = {},
                               rpc::Reply* parsed_out = nullptr) {
    rpc::Reply reply = want;
    const std::string reference = want.SerializeAsString();
    std::string payload_bytes;
    for (const Slice& s : payload) {
      payload_bytes.append(
          reinterpret_cast<const char*>(s.page.data()) + s.offset, s.len);
    }
    int destructor_runs = 0;
    {
      absl::StatusOr<TxBuf> tx = ComposeReplyFrame(
          ctx_, reply, payload_bytes.size(),
          [&payload](TxBufBuilder& b) {
            for (const Slice& s : payload)
              b.AppendPage(s.page.Share(), s.offset, s.len);
          },
          [&destructor_runs](const TxBufCompletion&) { ++destructor_runs; });
      ASSERT_TRUE(tx.ok()) << tx.status();
      testing::WireFrame w = testing::CutFrame(*tx);
      EXPECT_EQ(w.header.type, FrameType::kReply);
      EXPECT_EQ(w.header.payload_len, payload_bytes.size());
      // Byte for byte (EXPECT_TRUE: a diff of two binary strings says
      // nothing more).
      EXPECT_EQ(w.envelope.size(), reference.size());
      EXPECT_TRUE(w.envelope == reference)
          << "the composed envelope differs from SerializeToString";
      rpc::Reply parsed;
      ASSERT_TRUE(parsed.ParseFromString(w.envelope));
      std::string diff;
      MessageDifferencer differ;
      differ.ReportDifferencesToString(&diff);
      EXPECT_TRUE(differ.Compare(want, parsed)) << diff;
      EXPECT_TRUE(w.payload == payload_bytes) << "the READ data differs";
      ExpectPagesReferenced(*tx, payload);
      // The message composed is left as it was.
      EXPECT_TRUE(reply.SerializeAsString() == reference);
      if (parsed_out != nullptr) *parsed_out = parsed;
    }
    EXPECT_EQ(destructor_runs, 1);
  }

  // Each READ slice at least as long as the stage threshold is in `tx` as a
  // page segment pointing at the page itself: zero copy.
  void ExpectPagesReferenced(const TxBuf& tx,
                             const std::vector<Slice>& payload) const {
    std::vector<const std::byte*> pages;
    tx.ForEachSegment([&](const std::byte* p, size_t, SegmentKind kind) {
      if (kind == SegmentKind::kPage) pages.push_back(p);
    });
    size_t next = 0;
    for (const Slice& s : payload) {
      if (s.len < ctx_.options().stage_threshold) continue;
      ASSERT_LT(next, pages.size()) << "a READ slice was copied";
      EXPECT_EQ(pages[next++], s.page.data() + s.offset);
    }
  }

  SlabAllocator slabs_;
  PagePool pool_{8 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pool_, stats_};
};

TEST_P(ComposeReplyFrameTest, EachResultKindIsTheReferenceEncoding) {
  for (const auto& [name, result] : EveryResultKind()) {
    SCOPED_TRACE(name);
    rpc::Reply want;
    want.set_id(42);
    want.set_status(result.status());
    want.set_error(result.error());
    *want.add_results() = result;
    ExpectReferenceEncoding(want);
  }
}

TEST_P(ComposeReplyFrameTest, EveryResultKindInOneReply) {
  rpc::Reply want;
  want.set_id(0xffffffffffffffff);
  for (const auto& [name, result] : EveryResultKind()) {
    *want.add_results() = result;
  }
  ExpectReferenceEncoding(want);
}

TEST_P(ComposeReplyFrameTest, ReplyWithoutResults) {
  ExpectReferenceEncoding(rpc::Reply());
  rpc::Reply refused;
  refused.set_status(rpc::STATUS_AUTH);
  refused.set_error("authentication required before requests");
  ExpectReferenceEncoding(refused);
}

TEST_P(ComposeReplyFrameTest, ReadDataFollowsAsThePagesThemselves) {
  rpc::Reply want;
  want.set_id(9);
  rpc::ReadResult* rd = want.add_results()->mutable_read();
  std::vector<Slice> payload;
  payload.push_back(PageOf('a', 100, kPageSize - 100));
  payload.push_back(PageOf('b', 0, kPageSize));
  payload.push_back(PageOf('c', 0, 10));
  rd->set_payload_offset(0);
  rd->set_length(2 * kPageSize - 100 + 10);
  rd->set_eof(true);
  ExpectReferenceEncoding(want, payload);
}

// A field of Reply other than id, status, error and results (one a newer
// .proto adds: unknown to this build), and likewise in the OpResult and the
// ReadDirResult that READDIR writes piece by piece, are carried where
// SerializeToString puts them.
TEST_P(ComposeReplyFrameTest, CarriesEveryReplyField) {
  rpc::Reply want;
  want.set_id(5);
  want.set_status(rpc::STATUS_OK);
  Unknown(&want)->AddVarint(15, 300);
  Unknown(&want)->AddLengthDelimited(16, "a newer field");
  rpc::OpResult* dir = want.add_results();
  FillReaddir(dir->mutable_readdir(), 4, true, true);
  Unknown(dir)->AddVarint(20, 1);
  Unknown(dir->mutable_readdir())->AddLengthDelimited(3, "a cursor");
  rpc::OpResult* attr = want.add_results();
  FillAttr(attr->mutable_attr()->mutable_attr(), 3);
  Unknown(attr)->AddVarint(12, 2);
  rpc::Reply parsed;
  ExpectReferenceEncoding(want, {}, &parsed);
  ASSERT_EQ(Unknown(parsed).field_count(), 2);
  EXPECT_EQ(Unknown(parsed).field(0).number(), 15);
  EXPECT_EQ(Unknown(parsed).field(0).varint(), 300u);
  EXPECT_EQ(Unknown(parsed).field(1).number(), 16);
  EXPECT_EQ(Unknown(parsed).field(1).length_delimited(), "a newer field");
  ASSERT_EQ(parsed.results_size(), 2);
  EXPECT_EQ(Unknown(parsed.results(0)).field_count(), 1);
  EXPECT_EQ(Unknown(parsed.results(0).readdir()).field_count(), 1);
  EXPECT_EQ(parsed.results(0).readdir().entries_size(), 4);
  EXPECT_TRUE(parsed.results(0).readdir().eof());
  EXPECT_EQ(Unknown(parsed.results(1)).field_count(), 1);
}

INSTANTIATE_TEST_SUITE_P(StageThresholds, ComposeReplyFrameTest,
                         ::testing::Values(0, 64, 1024, 65536),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return absl::StrCat("stage", info.param);
                         });

// A request frame: the envelope staged (in one piece or, over a page,
// copied in several), the WRITE data appended by the caller, referenced.
TEST(ComposeRequestFrameTest, IsTheHeaderTheReferenceEncodingAndThePayload) {
  SlabAllocator slabs;
  PagePool pool(1 << 20);
  MemoryStats stats;
  TxBufContext ctx(slabs, pool, stats);
  for (size_t name_len : {size_t{10}, size_t{3 * kPageSize}}) {
    SCOPED_TRACE(name_len);
    rpc::Request req;
    req.set_id(77);
    req.add_ops()->mutable_putrootfh();
    req.add_ops()->mutable_lookup()->set_path(std::string(name_len, 'p'));
    rpc::Write* w = req.add_ops()->mutable_write();
    const std::string data(5000, 'w');
    w->set_length(static_cast<uint32_t>(data.size()));
    req.ByteSizeLong();
    int released = 0;
    {
      absl::StatusOr<TxBuf> tx =
          ComposeRequestFrame(ctx, req, data.size(), [&](TxBufBuilder& b) {
            b.AppendExternal(
                data.data(), data.size(),
                Deleter::FromCallable([&released] { ++released; }));
          });
      ASSERT_TRUE(tx.ok()) << tx.status();
      testing::WireFrame wire = testing::CutFrame(*tx);
      EXPECT_EQ(wire.header.type, FrameType::kRequest);
      EXPECT_TRUE(wire.envelope == req.SerializeAsString());
      EXPECT_TRUE(wire.payload == data);
      bool referenced = false;
      tx->ForEachSegment([&](const std::byte* p, size_t, SegmentKind kind) {
        referenced |= kind == SegmentKind::kExternal &&
                      p == reinterpret_cast<const std::byte*>(data.data());
      });
      EXPECT_TRUE(referenced) << "the WRITE data was copied";
    }
    EXPECT_EQ(released, 1);
  }
}

TEST(ComposeFrameTest, IsTheHeaderAndTheReferenceEncoding) {
  SlabAllocator slabs;
  PagePool pool(1 << 20);
  MemoryStats stats;
  TxBufContext ctx(slabs, pool, stats);
  rpc::Hello hello;
  hello.set_version(1);
  hello.set_auth_required(true);
  hello.set_server_nonce(std::string(32, 'n'));
  hello.set_max_envelope(1 << 20);
  absl::StatusOr<TxBuf> tx =
      ComposeFrame(ctx, FrameType::kHello, hello, nullptr);
  ASSERT_TRUE(tx.ok()) << tx.status();
  testing::WireFrame w = testing::CutFrame(*tx);
  EXPECT_EQ(w.header.type, FrameType::kHello);
  EXPECT_EQ(w.header.payload_len, 0u);
  EXPECT_TRUE(w.envelope == hello.SerializeAsString());
  EXPECT_TRUE(w.payload.empty());
}

}  // namespace
}  // namespace txbuf
