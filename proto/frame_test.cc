#include "proto/frame.h"

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf {
namespace {

std::vector<std::byte> MakeFrame(FrameType t, const std::string& env,
                                 const std::string& payload) {
  std::vector<std::byte> out(kFrameHeaderSize + env.size() + payload.size());
  EncodeFrameHeader({t, 0, static_cast<uint32_t>(env.size()),
                     static_cast<uint32_t>(payload.size())},
                    out.data());
  std::memcpy(out.data() + kFrameHeaderSize, env.data(), env.size());
  std::memcpy(out.data() + kFrameHeaderSize + env.size(), payload.data(),
              payload.size());
  return out;
}

std::string Str(absl::Span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

TEST(FrameHeaderTest, RoundTripsAndIsLittleEndian) {
  std::byte b[kFrameHeaderSize];
  EncodeFrameHeader({FrameType::kReply, 0, 0x01020304, 0x0a0b0c0d}, b);
  EXPECT_EQ(std::to_integer<char>(b[0]), 'T');
  EXPECT_EQ(std::to_integer<char>(b[3]), '1');
  EXPECT_EQ(std::to_integer<int>(b[4]), 1);
  EXPECT_EQ(std::to_integer<int>(b[5]), 2);
  EXPECT_EQ(std::to_integer<int>(b[8]), 0x04);
  EXPECT_EQ(std::to_integer<int>(b[11]), 0x01);
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(
      b, {.max_envelope = UINT32_MAX, .max_payload = UINT32_MAX});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->type, FrameType::kReply);
  EXPECT_EQ(h->envelope_len, 0x01020304u);
  EXPECT_EQ(h->payload_len, 0x0a0b0c0du);
}

TEST(FrameHeaderTest, RejectsBadHeaders) {
  std::byte b[kFrameHeaderSize];
  EncodeFrameHeader({FrameType::kRequest, 0, 10, 10}, b);
  std::byte bad[kFrameHeaderSize];
  std::memcpy(bad, b, sizeof(b));
  bad[0] = std::byte{'X'};
  EXPECT_EQ(DecodeFrameHeader(bad, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::memcpy(bad, b, sizeof(b));
  bad[4] = std::byte{2};
  EXPECT_FALSE(DecodeFrameHeader(bad, {}).ok());
  std::memcpy(bad, b, sizeof(b));
  bad[5] = std::byte{9};
  EXPECT_FALSE(DecodeFrameHeader(bad, {}).ok());
  std::memcpy(bad, b, sizeof(b));
  bad[6] = std::byte{1};
  EXPECT_FALSE(DecodeFrameHeader(bad, {}).ok());
  EncodeFrameHeader({FrameType::kRequest, 0, 2000, 0}, b);
  EXPECT_EQ(DecodeFrameHeader(b, {.max_envelope = 1000}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EncodeFrameHeader({FrameType::kRequest, 0, 0, 0xffffffff}, b);
  EXPECT_EQ(DecodeFrameHeader(b, {}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(DecodeFrameHeader(absl::MakeSpan(b, 8), {}).ok());
}

TEST(FrameReaderTest, CutsFramesFromAnyChunking) {
  std::mt19937 rng(3);
  std::vector<std::byte> stream;
  std::vector<std::pair<std::string, std::string>> sent;
  for (int i = 0; i < 200; ++i) {
    std::string env(rng() % 300, static_cast<char>('a' + i % 26));
    std::string pay(rng() % 3 ? rng() % 5000 : rng() % 300000,
                    static_cast<char>('A' + i % 26));
    auto f = MakeFrame(FrameType::kRequest, env, pay);
    stream.insert(stream.end(), f.begin(), f.end());
    sent.emplace_back(env, pay);
  }
  FrameReader reader;
  size_t at = 0, got = 0;
  while (at < stream.size() || reader.buffered() > 0) {
    if (at < stream.size()) {
      size_t chunk = std::min<size_t>(stream.size() - at, rng() % 70000 + 1);
      absl::Span<std::byte> w = reader.WritableSpan(chunk);
      ASSERT_GE(w.size(), chunk);
      std::memcpy(w.data(), stream.data() + at, chunk);
      reader.Commit(chunk);
      at += chunk;
    }
    while (auto f = reader.Next()) {
      ASSERT_TRUE(f->ok()) << f->status();
      ASSERT_LT(got, sent.size());
      EXPECT_EQ(Str((*f)->envelope), sent[got].first);
      EXPECT_EQ(Str((*f)->payload), sent[got].second);
      ++got;
    }
    if (at == stream.size() && reader.buffered() > 0 && !reader.Next()) break;
  }
  EXPECT_EQ(got, sent.size());
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, HugeLengthIsRejectedBeforeAllocating) {
  FrameReader reader({.max_envelope = 1 << 20, .max_payload = 1 << 20});
  std::byte b[kFrameHeaderSize];
  EncodeFrameHeader({FrameType::kRequest, 0, 16, 0x7fffffff}, b);
  absl::Span<std::byte> w = reader.WritableSpan(sizeof(b));
  std::memcpy(w.data(), b, sizeof(b));
  reader.Commit(sizeof(b));
  auto f = reader.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LT(reader.capacity(), size_t{1} << 20);
}

TEST(FrameReaderTest, MemoryFollowsTheBytesReceivedNotTheHeader) {
  // A header announcing a 1 MiB envelope and a 64 MiB payload, then a
  // trickle: the buffer stays within twice what arrived (plus one chunk).
  FrameReader reader({.max_envelope = 1 << 20, .max_payload = 64 << 20});
  std::byte b[kFrameHeaderSize];
  EncodeFrameHeader({FrameType::kRequest, 0, 1 << 20, 64 << 20}, b);
  constexpr size_t kChunk = 16 << 10;
  absl::Span<std::byte> w = reader.WritableSpan(kChunk);
  std::memcpy(w.data(), b, sizeof(b));
  reader.Commit(sizeof(b));
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_TRUE(reader.partial());
  EXPECT_LE(reader.capacity(), 2 * kChunk);
  size_t received = sizeof(b);
  for (int i = 0; i < 100; ++i) {
    w = reader.WritableSpan(kChunk);
    ASSERT_GE(w.size(), kChunk);
    reader.Commit(kChunk);
    received += kChunk;
    EXPECT_FALSE(reader.Next().has_value());
    EXPECT_LE(reader.capacity(), 2 * received + kChunk) << i;
  }
  // The whole frame still arrives and comes out whole, the buffer never
  // larger than the frame plus one chunk.
  const size_t total = kFrameHeaderSize + (1 << 20) + (64 << 20);
  while (received < total) {
    const size_t n = std::min(total - received, size_t{256} << 10);
    w = reader.WritableSpan(n);
    ASSERT_GE(w.size(), n);
    reader.Commit(n);
    received += n;
  }
  EXPECT_LE(reader.capacity(), total + (256 << 10));
  auto f = reader.Next();
  ASSERT_TRUE(f.has_value());
  ASSERT_TRUE(f->ok()) << f->status();
  EXPECT_EQ((*f)->payload.size(), size_t{64} << 20);
  EXPECT_FALSE(reader.partial());
}

// Feeds `frame` to `reader` in 16 KiB then doubling chunks (as txbufd's
// session receives) and returns the frame's payload.
std::string ReceiveOne(FrameReader& reader, const std::vector<std::byte>& f) {
  size_t at = 0;
  size_t chunk = 16 << 10;
  while (at < f.size()) {
    const size_t n = std::min(f.size() - at, chunk);
    absl::Span<std::byte> w = reader.WritableSpan(n);
    std::memcpy(w.data(), f.data() + at, n);
    reader.Commit(n);
    at += n;
    chunk = std::min<size_t>(2 * chunk, 256 << 10);
    if (auto got = reader.Next()) {
      EXPECT_TRUE(got->ok()) << got->status();
      EXPECT_EQ(at, f.size());
      return got->ok() ? Str((**got).payload) : "";
    }
  }
  ADD_FAILURE() << "no frame";
  return "";
}

// A connection streaming 1 MiB frames: after the first, each frame is
// received into the buffer the previous one gave back (no allocation, no
// page faults, no zero fill per frame); idle, the reader holds only its
// small buffer. This was txbufd's 1 MiB WRITE cost: each frame freed its
// buffer (Shrink) and grew a new one by doubling.
TEST(FrameReaderTest, APoolLendsTheLargeBufferFrameAfterFrame) {
  FrameBufferPool pool(16 << 20);
  FrameReader reader({.max_envelope = 1 << 20, .max_payload = 2 << 20}, &pool);
  constexpr size_t kKeep = 256 << 10;
  const std::byte* large = nullptr;
  for (int i = 0; i < 5; ++i) {
    const std::string pay((1 << 20) + i, static_cast<char>('a' + i));
    EXPECT_EQ(ReceiveOne(reader, MakeFrame(FrameType::kRequest, "env", pay)),
              pay);
    reader.Shrink(kKeep);
    EXPECT_EQ(reader.capacity(), kKeep) << i;
    EXPECT_EQ(reader.buffered(), 0u);
    ASSERT_EQ(pool.bytes() > 0, true);
    // The next frame's first growth takes the kept buffer.
    std::vector<std::byte> peek = pool.Take(1 << 20);
    ASSERT_FALSE(peek.empty()) << i;
    if (i > 0) {
      EXPECT_EQ(peek.data(), large) << "frame " << i;
    }
    large = peek.data();
    pool.Give(std::move(peek));
  }
  // Small frames never touch the large buffer.
  EXPECT_EQ(ReceiveOne(reader, MakeFrame(FrameType::kRequest, "e", "small")),
            "small");
  EXPECT_EQ(reader.capacity(), kKeep);
}

TEST(FrameReaderTest, FramesCutTheSameWithAPool) {
  FrameBufferPool pool(4 << 20);
  std::mt19937 rng(5);
  std::vector<std::unique_ptr<FrameReader>> readers;
  for (int r = 0; r < 3; ++r) {
    readers.push_back(std::make_unique<FrameReader>(FrameLimits{}, &pool));
  }
  for (int i = 0; i < 60; ++i) {
    FrameReader& reader = *readers[rng() % readers.size()];
    std::string pay(rng() % 2 ? rng() % 3000 : rng() % 1500000,
                    static_cast<char>('A' + i % 26));
    EXPECT_EQ(ReceiveOne(reader, MakeFrame(FrameType::kReply, "x", pay)), pay)
        << i;
    reader.Shrink(64 << 10);
    EXPECT_LE(reader.capacity(), size_t{64} << 10);
  }
  readers.clear();  // each gives its buffer back
  EXPECT_LE(pool.bytes(), size_t{4} << 20);
}

TEST(FrameBufferPoolTest, TakesTheSmallestThatFitsAndKeepsWithinItsBound) {
  FrameBufferPool pool(3000);
  pool.Give(std::vector<std::byte>(1000));
  pool.Give(std::vector<std::byte>(500));
  pool.Give(std::vector<std::byte>(2000));  // over the bound: freed
  EXPECT_EQ(pool.bytes(), 1500u);
  EXPECT_TRUE(pool.Take(1001).empty());
  EXPECT_TRUE(pool.Take(100, 400).empty());
  EXPECT_EQ(pool.Take(100).size(), 500u);
  EXPECT_EQ(pool.Take(100).size(), 1000u);
  EXPECT_EQ(pool.bytes(), 0u);
  EXPECT_TRUE(pool.Take(1).empty());
}

}  // namespace
}  // namespace txbuf
