// pattern.h: the content convention of benchmark test files.
//
// Every test file used by txbuf-bench and its peers holds bytes that are a
// pure function of (file seed, byte offset), so any read of any range can be
// verified without keeping a copy, and writes of pattern data keep the file
// verifiable:
//
//   the 8-byte little-endian word at byte offset 8*k is
//     PatternWord(seed, k) = SplitMix64(seed ^ (k * 0x9E3779B97F4A7C15))
//
// where SplitMix64 is the finaliser of Vigna's splitmix64 generator applied
// to state x (x += 0x9E3779B97F4A7C15, then the two xor-shift-multiply
// rounds and a final xor-shift; see SplitMix64 below). Byte i of the file is
// byte (i % 8) of word i / 8 (least significant byte first), so ranges may
// start and end anywhere.
//
// `PatternImage` is an optional helper: a precomputed copy of a whole file's
// content, so a driver can send write payloads and verify reads with
// memcpy/memcmp speed instead of recomputing the words per operation.
//
// Thread-safety: every function is thread-safe (pure or touching only its
// arguments); a built PatternImage is immutable and may be shared.
//
// Example:
//   std::vector<uint8_t> buf(4096);
//   txbuf::peers::FillPattern(seed, 12345, absl::MakeSpan(buf));
//   bool ok = txbuf::peers::CheckPattern(seed, 12345, buf);
#ifndef TXBUF_BENCH_LOAD_PATTERN_H_
#define TXBUF_BENCH_LOAD_PATTERN_H_

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace txbuf::bench {

inline constexpr uint64_t kPatternGamma = 0x9E3779B97F4A7C15ULL;

// One step of splitmix64 from state `x`.
inline constexpr uint64_t SplitMix64(uint64_t x) {
  x += kPatternGamma;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The word at byte offset 8 * k of a file with seed `seed`.
inline constexpr uint64_t PatternWord(uint64_t seed, uint64_t k) {
  return SplitMix64(seed ^ (k * kPatternGamma));
}

// Writes the pattern bytes of file range [offset, offset + out.size()).
inline void FillPattern(uint64_t seed, uint64_t offset,
                        absl::Span<uint8_t> out) {
  uint8_t* p = out.data();
  size_t n = out.size();
  uint64_t k = offset / 8;
  size_t skip = offset % 8;
  if (skip != 0 && n > 0) {  // Unaligned head.
    uint64_t w = absl::little_endian::FromHost64(PatternWord(seed, k));
    size_t take = std::min(n, 8 - skip);
    std::memcpy(p, reinterpret_cast<const uint8_t*>(&w) + skip, take);
    p += take;
    n -= take;
    ++k;
  }
  for (; n >= 8; n -= 8, p += 8, ++k) {
    absl::little_endian::Store64(p, PatternWord(seed, k));
  }
  if (n > 0) {  // Tail.
    uint64_t w = absl::little_endian::FromHost64(PatternWord(seed, k));
    std::memcpy(p, &w, n);
  }
}

inline void FillPattern(uint64_t seed, uint64_t offset, void* out, size_t n) {
  FillPattern(seed, offset, absl::MakeSpan(static_cast<uint8_t*>(out), n));
}

// True iff `data` equals the pattern bytes of [offset, offset + size).
inline bool CheckPattern(uint64_t seed, uint64_t offset,
                         absl::Span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t k = offset / 8;
  size_t skip = offset % 8;
  if (skip != 0 && n > 0) {
    uint64_t w = absl::little_endian::FromHost64(PatternWord(seed, k));
    size_t take = std::min(n, 8 - skip);
    if (std::memcmp(p, reinterpret_cast<const uint8_t*>(&w) + skip, take) !=
        0) {
      return false;
    }
    p += take;
    n -= take;
    ++k;
  }
  uint64_t diff = 0;
  for (; n >= 8; n -= 8, p += 8, ++k) {
    diff |= absl::little_endian::Load64(p) ^ PatternWord(seed, k);
  }
  if (diff != 0) return false;
  if (n > 0) {
    uint64_t w = absl::little_endian::FromHost64(PatternWord(seed, k));
    if (std::memcmp(p, &w, n) != 0) return false;
  }
  return true;
}

inline bool CheckPattern(uint64_t seed, uint64_t offset, const void* data,
                         size_t n) {
  return CheckPattern(
      seed, offset, absl::MakeConstSpan(static_cast<const uint8_t*>(data), n));
}

// Creates (or truncates) `path`, fills it with `size` pattern bytes and
// fdatasyncs it.
inline absl::Status CreatePatternFile(const std::string& path, uint64_t seed,
                                      uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  constexpr size_t kChunk = size_t{1} << 20;
  std::vector<uint8_t> buf(kChunk);
  absl::Status status;
  for (uint64_t off = 0; off < size && status.ok();) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    FillPattern(seed, off, absl::MakeSpan(buf.data(), n));
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::pwrite(fd, buf.data() + done, n - done,
                           static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        status = absl::InternalError(
            absl::StrCat("write ", path, ": ", std::strerror(errno)));
        break;
      }
      done += static_cast<size_t>(w);
    }
    off += n;
  }
  // Written back now, so that writeback does not run during a measurement.
  if (status.ok() && ::fdatasync(fd) != 0) {
    status = absl::InternalError(
        absl::StrCat("fdatasync ", path, ": ", std::strerror(errno)));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = absl::InternalError(
        absl::StrCat("close ", path, ": ", std::strerror(errno)));
  }
  return status;
}

// A precomputed copy of the first `size` bytes of a pattern file.
class PatternImage {
 public:
  // Page-aligned, so At(offset) has the file offset's page alignment (the
  // kernel copies payloads faster when source and destination are equally
  // aligned).
  PatternImage(uint64_t seed, uint64_t size)
      : seed_(seed), size_(static_cast<size_t>(size)) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, std::max<size_t>(size_, 1)) != 0) {
      std::abort();
    }
    bytes_.reset(static_cast<uint8_t*>(p));
    FillPattern(seed, 0, absl::MakeSpan(bytes_.get(), size_));
  }
  uint64_t seed() const { return seed_; }
  uint64_t size() const { return size_; }
  // The pattern bytes of [offset, offset + n); the range must lie within
  // size().
  const uint8_t* At(uint64_t offset) const { return bytes_.get() + offset; }
  // Like CheckPattern, with memcmp; ranges past size() fall back to
  // CheckPattern.
  bool Check(uint64_t offset, absl::Span<const uint8_t> data) const {
    if (offset > size_ || data.size() > size_ - offset) {
      return CheckPattern(seed_, offset, data);
    }
    return data.empty() ||
           std::memcmp(bytes_.get() + offset, data.data(), data.size()) == 0;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  uint64_t seed_;
  size_t size_;
  std::unique_ptr<uint8_t, Free> bytes_;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_LOAD_PATTERN_H_
