#include "proto/frame.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace txbuf {
namespace {

constexpr std::byte kMagic[4] = {std::byte{'T'}, std::byte{'X'}, std::byte{'B'},
                                 std::byte{'1'}};

void Put16(std::byte* p, uint16_t v) {
  p[0] = static_cast<std::byte>(v & 0xff);
  p[1] = static_cast<std::byte>(v >> 8);
}
void Put32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
}
uint16_t Get16(const std::byte* p) {
  return static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) |
                               (std::to_integer<uint16_t>(p[1]) << 8));
}
uint32_t Get32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<uint32_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

void EncodeFrameHeader(const FrameHeader& h, std::byte out[kFrameHeaderSize]) {
  std::memcpy(out, kMagic, 4);
  out[4] = std::byte{kFrameVersion};
  out[5] = static_cast<std::byte>(h.type);
  Put16(out + 6, h.flags);
  Put32(out + 8, h.envelope_len);
  Put32(out + 12, h.payload_len);
}

std::string EncodeFrame(FrameType type, absl::string_view envelope,
                        absl::string_view payload) {
  std::string out(kFrameHeaderSize, '\0');
  EncodeFrameHeader({.type = type,
                     .envelope_len = static_cast<uint32_t>(envelope.size()),
                     .payload_len = static_cast<uint32_t>(payload.size())},
                    reinterpret_cast<std::byte*>(out.data()));
  absl::StrAppend(&out, envelope, payload);
  return out;
}

std::string EncodeFrame(FrameType type,
                        const google::protobuf::MessageLite& envelope,
                        absl::string_view payload) {
  return EncodeFrame(type, envelope.SerializeAsString(), payload);
}

absl::StatusOr<FrameHeader> DecodeFrameHeader(absl::Span<const std::byte> b,
                                              const FrameLimits& limits) {
  if (b.size() < kFrameHeaderSize) {
    return absl::InvalidArgumentError("frame header truncated");
  }
  if (std::memcmp(b.data(), kMagic, 4) != 0) {
    return absl::InvalidArgumentError("bad frame magic (not a txbuf stream)");
  }
  if (std::to_integer<uint8_t>(b[4]) != kFrameVersion) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unsupported frame version %d", std::to_integer<int>(b[4])));
  }
  FrameHeader h;
  uint8_t type = std::to_integer<uint8_t>(b[5]);
  if (type < 1 || type > 5) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown frame type %d", type));
  }
  h.type = static_cast<FrameType>(type);
  h.flags = Get16(b.data() + 6);
  if (h.flags != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown frame flags 0x%x", h.flags));
  }
  h.envelope_len = Get32(b.data() + 8);
  h.payload_len = Get32(b.data() + 12);
  if (h.envelope_len > limits.max_envelope) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("envelope of %d bytes over the limit of %d",
                        h.envelope_len, limits.max_envelope));
  }
  if (h.payload_len > limits.max_payload) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("payload of %d bytes over the limit of %d",
                        h.payload_len, limits.max_payload));
  }
  return h;
}

absl::Span<std::byte> FrameReader::WritableSpan(size_t min_bytes) {
  if (buf_.size() - end_ < min_bytes) {
    // Move unconsumed bytes to the front, then grow if still short.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    const size_t want = end_ + min_bytes;
    if (buf_.size() < want) {
      // Doubling keeps the copies of a large frame linear in its size; the
      // cap keeps the buffer within what the frame in progress needs.
      const size_t cap = std::max(want, need_);
      Regrow(std::min(std::max(want, 2 * buf_.size()), cap));
    }
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameReader::Regrow(size_t size) {
  // Whole pages: frames of nearly one size (1 MiB WRITEs whose envelopes
  // differ by a few bytes) then fit each other's buffers.
  constexpr size_t kGrain = 4096;
  size = (size + kGrain - 1) / kGrain * kGrain;
  // A kept buffer large enough for the whole frame in progress saves the
  // doubling steps too.
  std::vector<std::byte> next;
  if (pool_ != nullptr) {
    const size_t whole = std::max(size, need_);
    next = pool_->Take(whole, 2 * whole);
    if (next.empty()) next = pool_->Take(size, 2 * size);
  }
  if (next.empty()) {
    buf_.resize(size);
    return;
  }
  if (end_ > begin_) {  // (an empty buffer's data() may be null)
    std::memcpy(next.data(), buf_.data() + begin_, end_ - begin_);
  }
  end_ -= begin_;
  begin_ = 0;
  pool_->Give(std::exchange(buf_, std::move(next)));
}

FrameReader::~FrameReader() {
  if (pool_ != nullptr) pool_->Give(std::move(buf_));
}

std::vector<std::byte> FrameBufferPool::Take(size_t min_bytes,
                                             size_t max_bytes) {
  auto best = kept_.end();
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (it->size() >= min_bytes && it->size() <= max_bytes &&
        (best == kept_.end() || it->size() < best->size())) {
      best = it;
    }
  }
  if (best == kept_.end()) return {};
  std::vector<std::byte> out = std::move(*best);
  *best = std::move(kept_.back());
  kept_.pop_back();
  bytes_ -= out.size();
  return out;
}

void FrameBufferPool::Give(std::vector<std::byte> buf) {
  if (buf.empty() || bytes_ + buf.size() > max_bytes_) return;  // freed
  bytes_ += buf.size();
  kept_.push_back(std::move(buf));
}

std::optional<absl::StatusOr<Frame>> FrameReader::Next() {
  if (buffered() < kFrameHeaderSize) {
    need_ = kFrameHeaderSize;
    return std::nullopt;
  }
  absl::StatusOr<FrameHeader> h =
      DecodeFrameHeader({buf_.data() + begin_, kFrameHeaderSize}, limits_);
  if (!h.ok()) return absl::StatusOr<Frame>(h.status());
  size_t total = kFrameHeaderSize + size_t{h->envelope_len} + h->payload_len;
  if (buffered() < total) {
    need_ = total;
    return std::nullopt;
  }
  const std::byte* p = buf_.data() + begin_ + kFrameHeaderSize;
  Frame f{*h, {p, h->envelope_len}, {p + h->envelope_len, h->payload_len}};
  begin_ += total;
  need_ = kFrameHeaderSize;
  if (begin_ == end_) begin_ = end_ = 0;
  return absl::StatusOr<Frame>(f);
}

void FrameReader::Shrink(size_t keep) {
  if (buffered() != 0 || buf_.size() <= keep) return;
  begin_ = end_ = 0;
  if (pool_ != nullptr) {
    std::vector<std::byte> small = pool_->Take(keep / 2, keep);
    pool_->Give(std::exchange(buf_, std::move(small)));
    if (!buf_.empty()) return;
    buf_.resize(keep);
    return;
  }
  buf_.resize(keep);
  buf_.shrink_to_fit();
}

}  // namespace txbuf
