// Compound encoding (ops, WRITE payload offsets, frames as txbufs), reply
// decoding (READ data, status mapping), paths and CLI formatting.
#include "client/compound.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/internal/compound_access.h"
#include "client/internal/format.h"
#include "client/internal/paths.h"
#include "client/status.h"
#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/txbuf.h"
#include "gtest/gtest.h"
#include "proto/frame.h"

namespace txbuf::client {
namespace {

using internal::CompoundAccess;
using internal::RequestLimits;

absl::Span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Counts runs of a Deleter.
Deleter Counting(int* n) {
  return Deleter::FromCallable([n] { ++*n; });
}

TEST(CompoundTest, BuildsOpsInOrder) {
  Compound c;
  c.PutRootFh().Lookup("a/b").GetAttr().Read(4096, 1 << 20);
  c.SetAttr({.mode = 0600, .size = 10, .mtime_ns = kTimeNow});
  c.Create("f", 0640, true).Mkdir("d").Remove("x").Rmdir("y");
  c.Rename("from", "to", "FH").ReadDir(7, 100, true).StatFs().Stats();
  c.GetFh().PutFh("HANDLE").Commit();
  ASSERT_EQ(c.size(), 16);
  const rpc::Request& r = c.request();
  EXPECT_TRUE(r.ops(0).has_putrootfh());
  EXPECT_EQ(r.ops(1).lookup().path(), "a/b");
  EXPECT_TRUE(r.ops(2).has_getattr());
  EXPECT_EQ(r.ops(3).read().offset(), 4096u);
  EXPECT_EQ(r.ops(3).read().length(), 1u << 20);
  EXPECT_EQ(r.ops(4).setattr().mode(), 0600u);
  EXPECT_EQ(r.ops(4).setattr().size(), 10u);
  EXPECT_FALSE(r.ops(4).setattr().has_atime_ns());
  EXPECT_EQ(r.ops(4).setattr().mtime_ns(), -1);
  EXPECT_EQ(r.ops(5).create().name(), "f");
  EXPECT_EQ(r.ops(5).create().mode(), 0640u);
  EXPECT_TRUE(r.ops(5).create().exclusive());
  EXPECT_EQ(r.ops(6).mkdir().mode(), 0755u);
  EXPECT_EQ(r.ops(7).remove().name(), "x");
  EXPECT_EQ(r.ops(8).rmdir().name(), "y");
  EXPECT_EQ(r.ops(9).rename().to_dir(), "FH");
  EXPECT_EQ(r.ops(10).readdir().cookie(), 7u);
  EXPECT_EQ(r.ops(10).readdir().max_entries(), 100u);
  EXPECT_TRUE(r.ops(10).readdir().with_attrs());
  EXPECT_TRUE(r.ops(11).has_statfs());
  EXPECT_TRUE(r.ops(12).has_stats());
  EXPECT_TRUE(r.ops(13).has_getfh());
  EXPECT_EQ(r.ops(14).putfh().fh(), "HANDLE");
  EXPECT_TRUE(r.ops(15).has_commit());
  EXPECT_EQ(c.DebugString().substr(0, 32), "PUTROOTFH LOOKUP 'a/b' GETATTR R");
}

TEST(CompoundTest, BuildsLinkOps) {
  Compound c;
  c.PutFh("DIR").Lookup("l", /*no_follow=*/true).Lookup("m");
  c.Symlink("new", "../target").Readlink();
  ASSERT_EQ(c.size(), 5);
  const rpc::Request& r = c.request();
  EXPECT_EQ(r.ops(1).lookup().path(), "l");
  EXPECT_TRUE(r.ops(1).lookup().no_follow());
  EXPECT_FALSE(r.ops(2).lookup().no_follow());
  EXPECT_EQ(r.ops(3).symlink().name(), "new");
  EXPECT_EQ(r.ops(3).symlink().target(), "../target");
  EXPECT_TRUE(r.ops(4).has_readlink());
  EXPECT_EQ(c.DebugString(),
            "PUTFH LOOKUP 'l' LOOKUP 'm' SYMLINK 'new' READLINK");
}

TEST(CompoundTest, WritePayloadOffsetsAreCumulativeAndDataNotInEnvelope) {
  std::string a(5000, 'a'), b(100, 'b'), d(3000, 'd');
  int released = 0;
  Compound c;
  c.PutFh("fh")
      .Write(0, Bytes(a), Counting(&released))
      .Write(5000, Bytes(b), Counting(&released), rpc::STABILITY_FILE_SYNC)
      .Write(9000, std::string(d));
  EXPECT_EQ(c.payload_size(), 8100u);
  const rpc::Request& r = c.request();
  EXPECT_EQ(r.ops(1).write().payload_offset(), 0u);
  EXPECT_EQ(r.ops(1).write().length(), 5000u);
  EXPECT_EQ(r.ops(2).write().payload_offset(), 5000u);
  EXPECT_EQ(r.ops(2).write().length(), 100u);
  EXPECT_EQ(r.ops(2).write().stable(), rpc::STABILITY_FILE_SYNC);
  EXPECT_EQ(r.ops(3).write().payload_offset(), 5100u);
  EXPECT_EQ(r.ops(3).write().offset(), 9000u);
  EXPECT_LT(r.ByteSizeLong(), 200u) << "WRITE data must not be in the envelope";
  EXPECT_EQ(released, 0);
  c = Compound();  // dropped unsent: every buffer released once.
  EXPECT_EQ(released, 2);
}

TEST(CompoundTest, EmptyWriteReleasesAtOnce) {
  int released = 0;
  Compound c;
  c.PutFh("fh").Write(0, {}, Counting(&released));
  EXPECT_EQ(released, 1);
  EXPECT_EQ(c.request().ops(1).write().length(), 0u);
}

class FrameTest : public ::testing::Test {
 protected:
  SlabAllocator slabs_;
  PagePool pool_{16 << 20};
  MemoryStats stats_;
  TxBufContext ctx_{slabs_, pool_, stats_};
};

TEST_F(FrameTest, RequestFrameIsHeaderEnvelopeThenPayloadReferenced) {
  std::string big(64 * 1024, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  std::string small = "tiny";
  int released = 0;
  Compound c;
  c.PutRootFh().Lookup("f").Write(0, Bytes(big), Counting(&released));
  c.Write(big.size(), Bytes(small), Counting(&released));
  EXPECT_EQ(released, 0);
  absl::StatusOr<TxBuf> tx =
      CompoundAccess::BuildRequestFrame(ctx_, c, 42, RequestLimits{});
  ASSERT_TRUE(tx.ok()) << tx.status();
  EXPECT_EQ(released, 1) << "a 4-byte buffer is staged and released at once";
  std::string wire(tx->size(), '\0');
  tx->CopyTo({reinterpret_cast<std::byte*>(wire.data()), wire.size()});
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(
      {reinterpret_cast<const std::byte*>(wire.data()), kFrameHeaderSize},
      FrameLimits{});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->type, FrameType::kRequest);
  EXPECT_EQ(h->payload_len, big.size() + small.size());
  EXPECT_EQ(wire.size(), kFrameHeaderSize + h->envelope_len + h->payload_len);
  rpc::Request req;
  ASSERT_TRUE(req.ParseFromArray(wire.data() + kFrameHeaderSize,
                                 static_cast<int>(h->envelope_len)));
  EXPECT_EQ(req.id(), 42u);
  EXPECT_EQ(req.ops_size(), 4);
  EXPECT_EQ(wire.substr(kFrameHeaderSize + h->envelope_len), big + small);
  // The big buffer is referenced, not copied: its segment points at it.
  bool referenced = false;
  tx->ForEachSegment([&](const std::byte* p, size_t, SegmentKind k) {
    if (k == SegmentKind::kExternal &&
        p == reinterpret_cast<const std::byte*>(big.data())) {
      referenced = true;
    }
  });
  EXPECT_TRUE(referenced);
  EXPECT_GT(stats_.pinned_bytes(), big.size());
  tx->reset();
  EXPECT_EQ(released, 2);
  EXPECT_EQ(stats_.pinned_bytes(), 0u);
}

TEST_F(FrameTest, LargeEnvelopeIsStagedAcrossPages) {
  Compound c;
  c.PutRootFh();
  for (int i = 0; i < 500; ++i) c.Lookup(std::string(40, 'a' + i % 26));
  absl::StatusOr<TxBuf> tx =
      CompoundAccess::BuildRequestFrame(ctx_, c, 1, RequestLimits{});
  ASSERT_TRUE(tx.ok()) << tx.status();
  std::string wire(tx->size(), '\0');
  tx->CopyTo({reinterpret_cast<std::byte*>(wire.data()), wire.size()});
  rpc::Request req;
  ASSERT_TRUE(req.ParseFromArray(wire.data() + kFrameHeaderSize,
                                 static_cast<int>(wire.size() - 16)));
  EXPECT_EQ(req.ops_size(), 501);
}

TEST_F(FrameTest, LimitsAreCheckedBeforeSending) {
  int released = 0;
  std::string data(2000, 'z');
  Compound c;
  c.PutFh("fh").Write(0, Bytes(data), Counting(&released));
  RequestLimits l{.max_payload = 1000};
  absl::StatusOr<TxBuf> tx = CompoundAccess::BuildRequestFrame(ctx_, c, 1, l);
  EXPECT_TRUE(absl::IsResourceExhausted(tx.status())) << tx.status();
  EXPECT_EQ(released, 1) << "the buffer is released when the build fails";

  Compound many;
  for (int i = 0; i < 11; ++i) many.GetAttr();
  tx = CompoundAccess::BuildRequestFrame(ctx_, many, 1,
                                         RequestLimits{.max_ops = 10});
  EXPECT_TRUE(absl::IsResourceExhausted(tx.status())) << tx.status();

  Compound empty;
  tx = CompoundAccess::BuildRequestFrame(ctx_, empty, 1, RequestLimits{});
  EXPECT_TRUE(absl::IsInvalidArgument(tx.status())) << tx.status();
  EXPECT_EQ(stats_.pinned_bytes(), 0u);
}

TEST(CompoundReplyTest, ReadDataUsesPayloadOffsets) {
  rpc::Reply r;
  r.set_id(9);
  r.add_results()->mutable_fh()->set_fh("root");
  rpc::ReadResult* a = r.add_results()->mutable_read();
  a->set_payload_offset(0);
  a->set_length(5);
  r.add_results()->mutable_attr();
  rpc::ReadResult* b = r.add_results()->mutable_read();
  b->set_payload_offset(5);
  b->set_length(6);
  b->set_eof(true);
  CompoundReply reply(r, "hello world");
  EXPECT_TRUE(reply.ok());
  EXPECT_TRUE(reply.status().ok());
  EXPECT_TRUE(reply.Validate().ok());
  EXPECT_EQ(reply.id(), 9u);
  EXPECT_EQ(reply.size(), 4);
  EXPECT_EQ(reply.ReadString(1), "hello");
  EXPECT_EQ(reply.ReadString(3), " world");
  EXPECT_TRUE(reply.ReadData(0).empty());
  EXPECT_TRUE(reply.ReadData(99).empty());
}

TEST(CompoundReplyTest, ReadRangeOutsidePayloadIsDataLoss) {
  rpc::Reply r;
  rpc::ReadResult* a = r.add_results()->mutable_read();
  a->set_payload_offset(3);
  a->set_length(10);
  CompoundReply reply(r, "12345");
  EXPECT_TRUE(absl::IsDataLoss(reply.Validate()));
  EXPECT_TRUE(reply.ReadData(0).empty());
}

TEST(CompoundReplyTest, StatusNamesTheFailingOp) {
  rpc::Request req;
  req.add_ops()->mutable_putrootfh();
  req.add_ops()->mutable_lookup()->set_path("a/b");
  rpc::Reply r;
  r.set_status(rpc::STATUS_NOENT);
  r.set_error("no such file or directory: a/b");
  r.add_results()->mutable_fh();
  r.add_results()->set_status(rpc::STATUS_NOENT);
  CompoundReply reply = CompoundAccess::MakeReply(r, {}, &req);
  absl::Status s = reply.status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(),
            "LOOKUP 'a/b': no such file or directory: a/b [NOENT]");
  EXPECT_EQ(RpcStatusOf(s), rpc::STATUS_NOENT);
  EXPECT_EQ(reply.rpc_status(), rpc::STATUS_NOENT);
}

TEST(CompoundReplyTest, ServerTextNamingTheOpIsNotPrefixedAgain) {
  rpc::Request req;
  req.add_ops()->mutable_putrootfh();
  req.add_ops()->mutable_lookup()->set_path("nope");
  rpc::Reply r;
  r.set_status(rpc::STATUS_NOENT);
  r.set_error("lookup 'nope': No such file or directory");
  r.add_results()->mutable_fh();
  r.add_results()->set_status(rpc::STATUS_NOENT);
  CompoundReply reply = CompoundAccess::MakeReply(r, {}, &req);
  EXPECT_EQ(reply.status().message(),
            "lookup 'nope': No such file or directory [NOENT]");
}

TEST(CompoundReplyTest, SuccessWithMissingResultsIsDataLoss) {
  rpc::Reply r;
  r.add_results();
  CompoundReply reply(r, "");
  EXPECT_TRUE(reply.status().ok());
  EXPECT_TRUE(absl::IsDataLoss(reply.status(3)));
}

TEST(StatusTest, MapsEveryCode) {
  struct Case {
    rpc::Status in;
    absl::StatusCode out;
  } cases[] = {
      {rpc::STATUS_NOENT, absl::StatusCode::kNotFound},
      {rpc::STATUS_EXIST, absl::StatusCode::kAlreadyExists},
      {rpc::STATUS_ACCES, absl::StatusCode::kPermissionDenied},
      {rpc::STATUS_PERM, absl::StatusCode::kPermissionDenied},
      {rpc::STATUS_ROFS, absl::StatusCode::kFailedPrecondition},
      {rpc::STATUS_STALE, absl::StatusCode::kFailedPrecondition},
      {rpc::STATUS_BADHANDLE, absl::StatusCode::kInvalidArgument},
      {rpc::STATUS_TOOBIG, absl::StatusCode::kResourceExhausted},
      {rpc::STATUS_NOSPC, absl::StatusCode::kResourceExhausted},
      {rpc::STATUS_AUTH, absl::StatusCode::kUnauthenticated},
      {rpc::STATUS_DELAY, absl::StatusCode::kUnavailable},
      {rpc::STATUS_OP_ILLEGAL, absl::StatusCode::kUnimplemented},
      {rpc::STATUS_NOTEMPTY, absl::StatusCode::kFailedPrecondition},
      {rpc::STATUS_FBIG, absl::StatusCode::kOutOfRange},
      {rpc::STATUS_SERVERFAULT, absl::StatusCode::kInternal},
      {static_cast<rpc::Status>(4242), absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    absl::Status s = StatusFromRpc(c.in, "");
    EXPECT_EQ(s.code(), c.out) << RpcStatusName(c.in);
    EXPECT_EQ(RpcStatusOf(s), c.in);
    EXPECT_TRUE(absl::StrContains(s.message(),
                                  absl::StrCat("[", RpcStatusName(c.in), "]")))
        << s;
  }
  EXPECT_TRUE(StatusFromRpc(rpc::STATUS_OK, "x").ok());
  EXPECT_EQ(RpcStatusName(static_cast<rpc::Status>(4242)), "STATUS_4242");
  EXPECT_EQ(StatusFromRpc(rpc::STATUS_STALE, "").message(),
            "stale file handle (the file no longer exists) [STALE]");
  EXPECT_FALSE(RpcStatusOf(absl::UnavailableError("x")).has_value());
}

TEST(PathsTest, Normalizes) {
  EXPECT_EQ(internal::NormalizePath("/a//b/./"), "a/b");
  EXPECT_EQ(internal::NormalizePath("/"), "");
  EXPECT_EQ(internal::NormalizePath("."), "");
  EXPECT_EQ(internal::NormalizePath("a/../b"), "a/../b");
  auto p = internal::SplitParent("/x/y/z");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->first, "x/y");
  EXPECT_EQ(p->second, "z");
  p = internal::SplitParent("z");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->first, "");
  EXPECT_TRUE(absl::IsInvalidArgument(internal::SplitParent("/").status()));
  EXPECT_EQ(internal::BaseName("a/b/c.txt"), "c.txt");
}

// (The JSON of `stats --json`: proto/stats_json_test.cc.)
TEST(FormatTest, ModesSizesAndProgress) {
  EXPECT_EQ(internal::ModeString(rpc::FILE_TYPE_DIRECTORY, 0755), "drwxr-xr-x");
  EXPECT_EQ(internal::ModeString(rpc::FILE_TYPE_REGULAR, 04644), "-rwSr--r--");
  EXPECT_EQ(internal::HumanBytes(512), "512 B");
  EXPECT_EQ(internal::HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(internal::HumanNanos(70000), "70.0 us");
  EXPECT_TRUE(absl::StrContains(internal::ProgressLine(50, 100, 1), "50%"));
}

TEST(FormatTest, ListingIsSortedAndAligned) {
  std::vector<rpc::DirEntry> e(2);
  e[0].set_name("zeta");
  e[0].mutable_attr()->set_type(rpc::FILE_TYPE_REGULAR);
  e[0].mutable_attr()->set_mode(0644);
  e[0].mutable_attr()->set_size(5);
  e[1].set_name("alpha");
  e[1].mutable_attr()->set_type(rpc::FILE_TYPE_DIRECTORY);
  e[1].mutable_attr()->set_mode(0755);
  e[1].mutable_attr()->set_size(4096);
  std::string out = internal::FormatListing(e);
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(lines[0], "drwxr-xr-x 4096 ")) << lines[0];
  EXPECT_TRUE(absl::EndsWith(lines[0], " alpha"));
  EXPECT_TRUE(absl::StartsWith(lines[1], "-rw-r--r--    5 ")) << lines[1];
}

// Undoes EscapeName: "\\", the C escapes and three-digit octal.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    const char* simple = strchr("abtnvfr", c);
    if (c == '\\') {
      out += '\\';
    } else if (simple != nullptr && c != '\0') {
      out += "\a\b\t\n\v\f\r"[simple - "abtnvfr"];
    } else {
      out += static_cast<char>((c - '0') * 64 + (s[i + 1] - '0') * 8 +
                               (s[i + 2] - '0'));
      i += 2;
    }
  }
  return out;
}

TEST(FormatTest, EscapeNameIsReversibleAndTerminalSafe) {
  EXPECT_EQ(internal::EscapeName("plain name.txt"), "plain name.txt");
  EXPECT_EQ(internal::EscapeName("a\xff"
                                 "b\\c\n"),
            "a\\377b\\\\c\\n");
  EXPECT_EQ(internal::EscapeName("\x01\x1b\x7f\t"), "\\001\\033\\177\\t");
  EXPECT_EQ(internal::EscapeName("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");     // valid UTF-8
  EXPECT_EQ(internal::EscapeName("\xc2\x9b"), "\\302\\233");  // C1 CSI
  EXPECT_EQ(internal::EscapeName("\xc0\xaf"), "\\300\\257");  // overlong
  EXPECT_EQ(internal::EscapeName("\xed\xa0\x80"), "\\355\\240\\200");
  EXPECT_EQ(internal::EscapeName("\xf4\x90\x80\x80"),
            "\\364\\220\\200\\200");                          // above U+10FFFF
  EXPECT_EQ(internal::EscapeName("\xe2\x82"), "\\342\\202");  // cut short
  // Every name of one or two bytes: no control byte in the output, and the
  // output gives the name back.
  for (int a = 1; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string name(1, static_cast<char>(a));
      if (b > 0) name += static_cast<char>(b);
      std::string shown = internal::EscapeName(name);
      for (char c : shown) {
        auto u = static_cast<unsigned char>(c);
        ASSERT_TRUE(u >= 0x20 && u != 0x7f) << shown;
      }
      ASSERT_EQ(Unescape(shown), name) << shown;
    }
  }
}

}  // namespace
}  // namespace txbuf::client
