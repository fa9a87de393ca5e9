// frame_reader_fuzz: arbitrary bytes into txbuf::FrameReader, in chunks.
//
// Input layout (FuzzedDataProvider): the reader's limits and each chunk's
// size and WritableSpan() request are taken from the END of the input; the
// stream bytes themselves from the front. So a seed that is one valid frame
// stream still parses as mostly that stream.
//
// Checked after every step:
//   * WritableSpan(n) returns at least n bytes;
//   * buffered() == bytes committed - bytes of frames returned;
//   * a returned frame's envelope/payload lengths equal its header's, are
//     within the limits, and its header and bytes are exactly those of the
//     stream at that offset (nothing skipped, nothing reordered);
//   * Next() returns nothing only while the frame at the front is incomplete,
//     an error only when that header is invalid; after an error we stop (the
//     stream cannot be resynchronised).
//
// Memory check (on unless FRAME_READER_FUZZ_CHECK_MEMORY=0): capacity() must
// stay within twice the most bytes ever held or requested, plus 64 KiB: the
// buffer follows the bytes that arrive, not the lengths a header announces.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/frame.h"

namespace {

[[noreturn]] void Fail(const char* what, size_t a = 0, size_t b = 0) {
  std::fprintf(stderr, "frame_reader_fuzz: invariant violated: %s (%zu, %zu)\n",
               what, a, b);
  std::abort();
}

#define CHECK_OR_FAIL(cond, ...)             \
  do {                                       \
    if (!(cond)) Fail(#cond, ##__VA_ARGS__); \
  } while (0)

bool CheckMemory() {
  static const bool on = [] {
    const char* e = std::getenv("FRAME_READER_FUZZ_CHECK_MEMORY");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }();
  return on;
}

constexpr size_t kMemorySlack = 64 << 10;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Limits small enough that over-limit headers are easy to hit, large
  // enough for multi-chunk frames. (The server's are 1 MiB and 64 MiB.)
  txbuf::FrameLimits limits;
  limits.max_envelope = fdp.ConsumeIntegralInRange<uint32_t>(0, 1 << 16);
  limits.max_payload = fdp.ConsumeIntegralInRange<uint32_t>(0, 1 << 20);
  txbuf::FrameReader reader(limits);

  // The whole stream as committed so far, to check frames against.
  std::vector<std::byte> stream;
  size_t consumed = 0;    // stream bytes returned as frames
  size_t high_water = 0;  // most bytes held or requested at once
  bool stop = false;
  while (!stop && fdp.remaining_bytes() > 0) {
    size_t chunk = fdp.ConsumeIntegralInRange<size_t>(1, 8192);
    size_t min_bytes = fdp.ConsumeIntegralInRange<size_t>(1, 64 << 10);
    bool shrink = fdp.ConsumeBool();
    std::vector<uint8_t> bytes = fdp.ConsumeBytes<uint8_t>(chunk);
    if (bytes.empty()) break;

    if (shrink) {
      reader.Shrink(4096);
      CHECK_OR_FAIL(reader.buffered() == stream.size() - consumed,
                    reader.buffered(), stream.size() - consumed);
    }
    high_water = std::max(high_water, reader.buffered() + min_bytes);
    absl::Span<std::byte> span = reader.WritableSpan(min_bytes);
    CHECK_OR_FAIL(span.size() >= min_bytes, span.size(), min_bytes);
    CHECK_OR_FAIL(reader.buffered() == stream.size() - consumed,
                  reader.buffered(), stream.size() - consumed);
    if (CheckMemory()) {
      CHECK_OR_FAIL(reader.capacity() <= 2 * high_water + kMemorySlack,
                    reader.capacity(), high_water);
    }
    size_t n = std::min(bytes.size(), span.size());
    std::memcpy(span.data(), bytes.data(), n);
    reader.Commit(n);
    const auto* b = reinterpret_cast<const std::byte*>(bytes.data());
    stream.insert(stream.end(), b, b + n);
    CHECK_OR_FAIL(reader.buffered() == stream.size() - consumed,
                  reader.buffered(), stream.size() - consumed);

    for (;;) {
      std::optional<absl::StatusOr<txbuf::Frame>> f = reader.Next();
      size_t avail = stream.size() - consumed;
      absl::StatusOr<txbuf::FrameHeader> want =
          avail >= txbuf::kFrameHeaderSize
              ? txbuf::DecodeFrameHeader(
                    {stream.data() + consumed, txbuf::kFrameHeaderSize}, limits)
              : absl::StatusOr<txbuf::FrameHeader>(
                    absl::InvalidArgumentError("incomplete"));
      if (!f.has_value()) {
        // Only an incomplete frame may hold things up.
        if (avail >= txbuf::kFrameHeaderSize) {
          CHECK_OR_FAIL(want.ok());
          size_t total = txbuf::kFrameHeaderSize + want->envelope_len +
                         size_t{want->payload_len};
          CHECK_OR_FAIL(avail < total, avail, total);
        }
        break;
      }
      if (!f->ok()) {
        CHECK_OR_FAIL(avail >= txbuf::kFrameHeaderSize, avail);
        CHECK_OR_FAIL(!want.ok());
        CHECK_OR_FAIL(f->status().code() == want.status().code());
        stop = true;  // the stream cannot be resynchronised
        break;
      }
      const txbuf::Frame& fr = **f;
      CHECK_OR_FAIL(want.ok());
      CHECK_OR_FAIL(fr.header.type == want->type);
      CHECK_OR_FAIL(fr.header.flags == 0, fr.header.flags);
      CHECK_OR_FAIL(fr.header.envelope_len == want->envelope_len);
      CHECK_OR_FAIL(fr.header.payload_len == want->payload_len);
      CHECK_OR_FAIL(fr.envelope.size() == fr.header.envelope_len,
                    fr.envelope.size(), fr.header.envelope_len);
      CHECK_OR_FAIL(fr.payload.size() == fr.header.payload_len,
                    fr.payload.size(), fr.header.payload_len);
      CHECK_OR_FAIL(fr.header.envelope_len <= limits.max_envelope);
      CHECK_OR_FAIL(fr.header.payload_len <= limits.max_payload);
      size_t total =
          txbuf::kFrameHeaderSize + fr.envelope.size() + fr.payload.size();
      CHECK_OR_FAIL(total <= avail, total, avail);
      const std::byte* at = stream.data() + consumed + txbuf::kFrameHeaderSize;
      CHECK_OR_FAIL(std::memcmp(fr.envelope.data(), at, fr.envelope.size()) ==
                    0);
      CHECK_OR_FAIL(std::memcmp(fr.payload.data(), at + fr.envelope.size(),
                                fr.payload.size()) == 0);
      consumed += total;
      CHECK_OR_FAIL(reader.buffered() == stream.size() - consumed,
                    reader.buffered(), stream.size() - consumed);
    }
    if (CheckMemory()) {
      CHECK_OR_FAIL(reader.capacity() <= 2 * high_water + kMemorySlack,
                    reader.capacity(), high_water);
    }
  }
  return 0;
}
