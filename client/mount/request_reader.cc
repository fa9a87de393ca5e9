// client/mount/request_reader.cc: see request_reader.h.
#include "client/mount/request_reader.h"

#include <linux/fuse.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace txbuf::client::mount {

// The request a thread read last: its buffer (the whole request), kept for
// the next request unless a WRITE took it.
struct RequestReader::Buffer {
  std::shared_ptr<RequestReader> reader;
  std::unique_ptr<char[]> bytes;
  size_t size = 0;     // of `bytes`
  size_t request = 0;  // the request's bytes
  // Set when a WRITE's data were not copied to libfuse: their size (they
  // are the request's last bytes).
  std::optional<size_t> skipped_write;

  ~Buffer() { Release(); }
  void Release() {
    if (reader != nullptr && bytes != nullptr) {
      reader->Put(std::move(bytes), size);
    }
    bytes.reset();
    reader.reset();
    skipped_write.reset();
  }
};

RequestReader::~RequestReader() = default;

RequestReader::Buffer& RequestReader::ThisThreads() {
  // Freed (its buffer back to the pool) when the thread exits.
  thread_local Buffer mine;
  return mine;
}

std::unique_ptr<char[]> RequestReader::Get(size_t size) {
  {
    absl::MutexLock l(&mu_);
    if (free_size_ == size && !free_.empty()) {
      std::unique_ptr<char[]> buf = std::move(free_.back());
      free_.pop_back();
      return buf;
    }
  }
  return std::make_unique_for_overwrite<char[]>(size);
}

void RequestReader::Put(std::unique_ptr<char[]> buf, size_t size) {
  absl::MutexLock l(&mu_);
  if (size != free_size_) {
    free_.clear();
    free_size_ = size;
  }
  if (free_.size() < max_free_) free_.push_back(std::move(buf));
}

ssize_t RequestReader::Read(int fd, void* dst, size_t len) {
  Buffer& b = ThisThreads();
  if (b.reader.get() != this || b.size != len) {
    b.Release();
    b.reader = shared_from_this();
    b.size = len;
  }
  if (b.bytes == nullptr) b.bytes = Get(len);
  b.request = 0;
  b.skipped_write.reset();
  const ssize_t n = ::read(fd, b.bytes.get(), len);
  if (n < 0) return n;  // errno is read's
  b.request = static_cast<size_t>(n);
  size_t copied = b.request;
  constexpr size_t kHeaders = sizeof(fuse_in_header) + sizeof(fuse_write_in);
  if (b.request >= kHeaders) {
    fuse_in_header in;
    fuse_write_in w;
    std::memcpy(&in, b.bytes.get(), sizeof(in));
    std::memcpy(&w, b.bytes.get() + sizeof(in), sizeof(w));
    // Only the layout libfuse reads a WRITE with today (protocol 7.9 on):
    // the headers, then exactly the data. Any other is given whole.
    if (in.opcode == FUSE_WRITE && in.len == b.request &&
        b.request - kHeaders == w.size) {
      copied = kHeaders;
      b.skipped_write = w.size;
    }
  }
  std::memcpy(dst, b.bytes.get(), copied);
  return n;
}

std::optional<WriteBytes> RequestReader::TakeWriteData() {
  Buffer& b = ThisThreads();
  if (b.reader.get() != this || !b.skipped_write) return std::nullopt;
  const size_t size = *std::exchange(b.skipped_write, std::nullopt);
  const std::string_view data(b.bytes.get() + (b.request - size), size);
  if (size * 2 < b.size) return WriteBytes::CopyOf(data);
  std::shared_ptr<const void> owner(
      b.bytes.release(), [reader = shared_from_this(), len = b.size](char* p) {
        reader->Put(std::unique_ptr<char[]>(p), len);
      });
  return WriteBytes{.view = data, .owner = std::move(owner), .held = b.size};
}

}  // namespace txbuf::client::mount
