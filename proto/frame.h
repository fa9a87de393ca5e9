// proto/frame.h: the length-prefixed frames txbuf RPC messages travel in.
//
// A frame is a 16-byte header, an envelope (a protobuf message chosen by the
// header's type), then raw payload bytes:
//
//   offset size  field
//   0      4     magic "TXB1" (0x54 0x58 0x42 0x31)
//   4      1     version (1)
//   5      1     type (FrameType)
//   6      2     flags (0; little-endian)
//   8      4     envelope length (little-endian)
//   12     4     payload length (little-endian)
//
// Limits are checked on the header alone, before anything is allocated.
// `FrameReader` cuts frames out of a byte stream as it arrives; its buffer
// grows with the bytes actually received (geometrically, never past what
// the frame in progress needs), not with what a header announces.
//
// Thread-safety: thread-compatible.
//
// Example:
//   txbuf::FrameReader reader({.max_envelope = 1 << 20});
//   absl::Span<std::byte> buf = reader.WritableSpan(64 * 1024);
//   ssize_t n = recv(fd, buf.data(), buf.size(), 0);
//   reader.Commit(n);
//   while (auto frame = reader.Next()) {
//     if (!frame->ok()) { /* malformed: reply BADXDR and close */ }
//     Handle((*frame)->header, (*frame)->envelope, (*frame)->payload);
//   }
#ifndef TXBUF_PROTO_FRAME_H_
#define TXBUF_PROTO_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "google/protobuf/message_lite.h"

namespace txbuf {

inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint8_t kFrameVersion = 1;

enum class FrameType : uint8_t {
  kRequest = 1,
  kReply = 2,
  kHello = 3,
  kAuthRequest = 4,
  kAuthReply = 5,
};

struct FrameHeader {
  FrameType type = FrameType::kRequest;
  uint16_t flags = 0;
  uint32_t envelope_len = 0;
  uint32_t payload_len = 0;
};

struct FrameLimits {
  uint32_t max_envelope = 1 << 20;  // 1 MiB
  uint32_t max_payload = 64 << 20;  // 64 MiB
};

// Writes the 16 header bytes.
void EncodeFrameHeader(const FrameHeader& h, std::byte out[kFrameHeaderSize]);

// Parses and validates 16 header bytes: magic, version, known type, zero
// flags, lengths within `limits`. InvalidArgument (bad frame) or
// ResourceExhausted (over a limit) otherwise, with the reason.
absl::StatusOr<FrameHeader> DecodeFrameHeader(absl::Span<const std::byte> bytes,
                                              const FrameLimits& limits);

// A whole frame as bytes: the header, `envelope`, then `payload`. For
// blocking senders, tools and tests; the event loops compose frames as
// txbufs instead (proto/compose.h).
//
// Example:
//   std::string f = EncodeFrame(FrameType::kReply, reply.SerializeAsString());
std::string EncodeFrame(FrameType type, absl::string_view envelope,
                        absl::string_view payload = {});

// The same with `envelope` serialized.
//
// Example:
//   std::string f = EncodeFrame(FrameType::kHello, hello);
std::string EncodeFrame(FrameType type,
                        const google::protobuf::MessageLite& envelope,
                        absl::string_view payload = {});

// One complete frame; spans point into the reader's buffer and stay valid
// until the next call to Next(), WritableSpan() or Commit().
struct Frame {
  FrameHeader header;
  absl::Span<const std::byte> envelope;
  absl::Span<const std::byte> payload;
};

// Receive buffers kept between frames for the FrameReaders of one thread.
// A connection that streams large frames (1 MiB WRITEs) gives its large
// buffer back after each frame (FrameReader::Shrink) and takes it again for
// the next: warm memory instead of a fresh allocation per frame (page
// faults, zero fill, regrowth copies), while an idle connection holds only
// its small buffer. Holds at most `max_bytes`; what does not fit is freed.
// Not thread-safe: one per event loop, shared by that loop's readers.
//
// Example:
//   FrameBufferPool pool(16 << 20);
//   FrameReader reader(limits, &pool);
class FrameBufferPool {
 public:
  explicit FrameBufferPool(size_t max_bytes) : max_bytes_(max_bytes) {}
  FrameBufferPool(const FrameBufferPool&) = delete;
  FrameBufferPool& operator=(const FrameBufferPool&) = delete;

  // The smallest kept buffer of `min_bytes` to `max_bytes` bytes, or an
  // empty one.
  std::vector<std::byte> Take(size_t min_bytes, size_t max_bytes = SIZE_MAX);
  // Keeps `buf` for a later Take if it fits within the pool's bound (else
  // frees it).
  void Give(std::vector<std::byte> buf);
  // Bytes of the buffers kept.
  size_t bytes() const { return bytes_; }

 private:
  std::vector<std::vector<std::byte>> kept_;
  size_t bytes_ = 0;
  const size_t max_bytes_;
};

class FrameReader {
 public:
  // With a `pool` (which must outlive the reader), buffers come from it and
  // go back to it.
  explicit FrameReader(FrameLimits limits = {}, FrameBufferPool* pool = nullptr)
      : limits_(limits), pool_(pool) {}
  ~FrameReader();
  FrameReader(FrameReader&&) = default;
  FrameReader& operator=(FrameReader&&) = default;

  // Room for at least `min_bytes` more bytes. Write received bytes there,
  // then Commit(). The buffer grows by doubling as bytes arrive, capped at
  // what the frame in progress still needs (so a header announcing 64 MiB
  // costs nothing until the bytes come).
  absl::Span<std::byte> WritableSpan(size_t min_bytes);
  void Commit(size_t n) { end_ += n; }

  // The next complete frame, nullopt if more bytes are needed, or an error
  // for a malformed header (the stream cannot be resynchronised: close it).
  std::optional<absl::StatusOr<Frame>> Next();

  // Changes the limits the following frame headers are checked against
  // (e.g. tighter ones before a peer has authenticated).
  //
  // Example:
  //   reader.set_limits({.max_envelope = 4096, .max_payload = 0});
  void set_limits(FrameLimits limits) { limits_ = limits; }

  // Bytes received but not yet returned as frames.
  size_t buffered() const { return end_ - begin_; }
  // True if a frame has begun arriving but is not complete (after Next()
  // returned nullopt).
  bool partial() const { return buffered() > 0; }
  // Bytes of buffer memory held.
  size_t capacity() const { return buf_.size(); }
  // Gives back buffer memory beyond `keep` bytes when nothing is buffered
  // (to the pool, if there is one).
  void Shrink(size_t keep);

 private:
  // Replaces the buffer with one of `size` bytes (from the pool if it has
  // one at least that large), keeping the bytes buffered.
  void Regrow(size_t size);

  FrameLimits limits_;
  FrameBufferPool* pool_;
  std::vector<std::byte> buf_;
  size_t begin_ = 0;                // first unconsumed byte
  size_t end_ = 0;                  // one past the last received byte
  size_t need_ = kFrameHeaderSize;  // bytes the frame at begin_ needs
};

}  // namespace txbuf

#endif  // TXBUF_PROTO_FRAME_H_
