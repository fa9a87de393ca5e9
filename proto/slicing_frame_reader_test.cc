// slicing_frame_reader_test: frames are cut as FrameReader cuts them, and
// slices of the receive block stay valid and unchanged while held (more
// frames arriving, the reader destroyed, released on another thread).
//
// Thread-safety: tests run single-threaded except ReleasedOnOtherThreads.
#include "proto/slicing_frame_reader.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::string MakeFrame(FrameType t, const std::string& env,
                      const std::string& payload) {
  return EncodeFrame(t, env, payload);
}

std::string Str(absl::Span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// A payload of `n` bytes that differs per `seed`.
std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Feeds `bytes` to `r` in pieces of at most `chunk` (asking for `ask`
// bytes of room each time).
void Feed(SlicingFrameReader& r, absl::string_view bytes, size_t chunk,
          size_t ask) {
  while (!bytes.empty()) {
    absl::Span<std::byte> room = r.WritableSpan(ask);
    ASSERT_GE(room.size(), ask);
    size_t n = std::min({chunk, room.size(), bytes.size()});
    std::memcpy(room.data(), bytes.data(), n);
    r.Commit(n);
    bytes.remove_prefix(n);
  }
}

TEST(SlicingFrameReaderTest, CutsFramesInAnyChunking) {
  std::string stream;
  std::vector<std::pair<std::string, std::string>> want;
  for (uint32_t i = 0; i < 40; ++i) {
    std::string env = absl::StrCat("env", i);
    std::string pay = Pattern((i * 7919) % 70000, i);
    want.emplace_back(env, pay);
    stream += MakeFrame(FrameType::kReply, env, pay);
  }
  for (size_t chunk : {1ul, 7ul, 4096ul, 65536ul, stream.size()}) {
    SCOPED_TRACE(chunk);
    SlicingFrameReader r;
    size_t got = 0;
    absl::string_view rest = stream;
    while (!rest.empty() || r.buffered() > 0) {
      while (auto f = r.Next()) {
        ASSERT_TRUE(f->ok()) << f->status();
        ASSERT_LT(got, want.size());
        EXPECT_EQ(Str((*f)->envelope), want[got].first);
        EXPECT_EQ(Str((*f)->payload), want[got].second);
        ++got;
      }
      if (rest.empty()) break;
      size_t n = std::min(chunk, rest.size());
      Feed(r, rest.substr(0, n), n, 1);
      rest.remove_prefix(n);
    }
    EXPECT_EQ(got, want.size());
    EXPECT_FALSE(r.partial());
  }
}

TEST(SlicingFrameReaderTest, MalformedHeaderIsAnError) {
  SlicingFrameReader r;
  Feed(r, std::string(16, 'x'), 16, 16);
  auto f = r.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->ok());
}

TEST(SlicingFrameReaderTest, UnheldBlockIsReusedInPlace) {
  // Nobody holds a slice: one block serves every frame (compaction in
  // place, as FrameReader), nothing is carried.
  SlicingFrameReader r;
  std::string frame = MakeFrame(FrameType::kReply, "e", Pattern(100000, 1));
  for (int i = 0; i < 50; ++i) {
    Feed(r, frame, 65536, 65536);
    auto f = r.Next();
    ASSERT_TRUE(f.has_value() && f->ok());
    ASSERT_EQ((*f)->payload.size(), 100000u);
  }
  // Growth to the frame's size: a few blocks at first, then none.
  uint64_t after_growth = r.blocks_allocated();
  EXPECT_LE(after_growth, 4u);
  for (int i = 0; i < 50; ++i) {
    Feed(r, frame, 65536, 65536);
    ASSERT_TRUE(r.Next().has_value());
  }
  EXPECT_EQ(r.blocks_allocated(), after_growth);
  EXPECT_EQ(r.bytes_carried(), 0u);
}

TEST(SlicingFrameReaderTest, SlicePointsIntoTheBlockAndIsNotCopied) {
  SlicingFrameReader r;
  const std::string pay = Pattern(1 << 20, 7);
  Feed(r, MakeFrame(FrameType::kReply, "env", pay), 256 << 10, 256 << 10);
  auto f = r.Next();
  ASSERT_TRUE(f.has_value() && f->ok());
  const std::byte* where = (*f)->payload.data();
  OwnedBytes s = r.Slice((*f)->payload);
  EXPECT_EQ(s.data(), where);  // the receive block itself
  EXPECT_EQ(s.size(), pay.size());
  EXPECT_EQ(Str(s.span()), pay);
}

TEST(SlicingFrameReaderTest, HeldSlicesStayByteExactWhileFramesArrive) {
  // Held slices of many frames, while many more frames arrive in chunks
  // that split frames anywhere: none of their bytes moves or changes.
  SlicingFrameReader r;
  std::vector<std::string> sent;
  std::string stream;
  for (uint32_t i = 0; i < 300; ++i) {
    sent.push_back(Pattern(1000 + (i * 104729) % 300000, i));
    stream += MakeFrame(FrameType::kReply, absl::StrCat(i), sent.back());
  }
  std::vector<std::pair<size_t, OwnedBytes>> held;
  std::vector<const std::byte*> where;
  size_t got = 0;
  std::mt19937 rng(5);
  absl::string_view rest = stream;
  while (!rest.empty()) {
    size_t n = std::min<size_t>(1 + rng() % 300000, rest.size());
    Feed(r, rest.substr(0, n), n, 256 << 10);
    rest.remove_prefix(n);
    while (auto f = r.Next()) {
      ASSERT_TRUE(f->ok());
      // Keep every third; drop the rest at once.
      OwnedBytes s = r.Slice((*f)->payload);
      if (got % 3 == 0) {
        where.push_back(s.data());
        held.emplace_back(got, std::move(s));
      }
      ++got;
    }
  }
  ASSERT_EQ(got, sent.size());
  for (size_t k = 0; k < held.size(); ++k) {
    EXPECT_EQ(held[k].second.data(), where[k]);
    ASSERT_EQ(Str(held[k].second.span()), sent[held[k].first])
        << "frame " << held[k].first;
  }
  // Blocks were replaced under the held slices, with only partial frames
  // carried over (less than the stream: never the slices' bytes).
  EXPECT_GT(r.blocks_allocated(), 1u);
  EXPECT_LT(r.bytes_carried(), stream.size());
}

TEST(SlicingFrameReaderTest, ReleasedBlockIsTakenBack) {
  // A caller holding one reply while the next arrives: two blocks take
  // turns, no allocation per frame.
  SlicingFrameReader r;
  std::string frame = MakeFrame(FrameType::kReply, "e", Pattern(1 << 20, 3));
  OwnedBytes previous;
  for (int i = 0; i < 20; ++i) {
    Feed(r, frame, 256 << 10, 256 << 10);
    auto f = r.Next();
    ASSERT_TRUE(f.has_value() && f->ok());
    OwnedBytes s = r.Slice((*f)->payload);
    previous = std::move(s);  // releases the one before
  }
  EXPECT_GE(r.blocks_reused(), 10u);
  EXPECT_LE(r.blocks_allocated(), 8u);
}

TEST(SlicingFrameReaderTest, SliceOutlivesTheReader) {
  OwnedBytes s;
  const std::string pay = Pattern(200000, 9);
  {
    SlicingFrameReader r;
    Feed(r, MakeFrame(FrameType::kReply, "e", pay), 4096, 4096);
    auto f = r.Next();
    ASSERT_TRUE(f.has_value() && f->ok());
    s = r.Slice((*f)->payload);
  }
  EXPECT_EQ(Str(s.span()), pay);  // (ASan: no use after free, no leak)
}

TEST(SlicingFrameReaderTest, ShrinkDropsLargeAndRetiredBlocks) {
  SlicingFrameReader r;
  Feed(r, MakeFrame(FrameType::kReply, "e", Pattern(3 << 20, 1)), 1 << 20,
       256 << 10);
  ASSERT_TRUE(r.Next().has_value());
  EXPECT_GE(r.capacity(), 3u << 20);
  r.Shrink(256 << 10);
  EXPECT_EQ(r.capacity(), 0u);
  EXPECT_GE(r.WritableSpan(100).size(), 100u);
}

TEST(SlicingFrameReaderTest, MovedReaderKeepsItsBytes) {
  SlicingFrameReader a;
  std::string f1 = MakeFrame(FrameType::kHello, "hello", "");
  std::string f2 = MakeFrame(FrameType::kReply, "r", Pattern(70000, 2));
  Feed(a, f1 + f2.substr(0, 100), 1 << 20, 1);
  ASSERT_TRUE(a.Next().has_value());
  SlicingFrameReader b(std::move(a));
  Feed(b, f2.substr(100), 1 << 20, 1);
  auto f = b.Next();
  ASSERT_TRUE(f.has_value() && f->ok());
  EXPECT_EQ(Str((*f)->envelope), "r");
}

TEST(SlicingFrameReaderTest, ReleasedOnOtherThreads) {
  // Slices released by other threads while the reader keeps receiving
  // (into new blocks or ones taken back): run under TSan (threads_tests).
  SlicingFrameReader r;
  std::vector<std::string> sent;
  for (uint32_t i = 0; i < 8; ++i) sent.push_back(Pattern(300000, 100 + i));
  std::vector<OwnedBytes> batch;
  std::vector<std::thread> threads;
  for (int round = 0; round < 40; ++round) {
    for (size_t i = 0; i < sent.size(); ++i) {
      Feed(r, MakeFrame(FrameType::kReply, "e", sent[i]), 128 << 10, 128 << 10);
      while (auto f = r.Next()) {
        ASSERT_TRUE(f->ok());
        batch.push_back(r.Slice((*f)->payload));
      }
    }
    threads.emplace_back([b = std::move(batch), &sent]() mutable {
      for (size_t i = 0; i < b.size(); ++i) {
        if (Str(b[i].span()) != sent[i]) std::abort();  // bytes changed
      }
      b.clear();  // the releases, on this thread
    });
    batch.clear();
  }
  for (std::thread& t : threads) t.join();
  EXPECT_GT(r.blocks_allocated(), 1u);
}

}  // namespace
}  // namespace txbuf
