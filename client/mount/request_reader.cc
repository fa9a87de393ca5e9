// client/mount/request_reader.cc: see request_reader.h.
#include "client/mount/request_reader.h"

#include <linux/fuse.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <utility>

namespace txbuf::client::mount {

// The request a thread read last: its buffer (the whole request) and where
// libfuse got its copy; kept for the next request unless a WRITE took it.
struct RequestReader::Buffer {
  std::shared_ptr<RequestReader> reader;
  std::unique_ptr<char[]> bytes;
  size_t size = 0;            // of `bytes`
  const char* dst = nullptr;  // libfuse's buffer
  size_t request = 0;         // the request's bytes
  bool write_data_skipped = false;

  ~Buffer() { Release(); }
  void Release() {
    if (reader != nullptr && bytes != nullptr) {
      reader->Put(std::move(bytes), size);
    }
    bytes.reset();
    reader.reset();
    write_data_skipped = false;
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
  b.dst = static_cast<const char*>(dst);
  b.request = 0;
  b.write_data_skipped = false;
  const ssize_t n = ::read(fd, b.bytes.get(), len);
  if (n < 0) return n;  // errno is read's
  b.request = static_cast<size_t>(n);
  size_t copied = b.request;
  constexpr size_t kHeaders = sizeof(fuse_in_header) + sizeof(fuse_write_in);
  if (b.request >= kHeaders) {
    fuse_in_header in;
    std::memcpy(&in, b.bytes.get(), sizeof(in));
    if (in.opcode == FUSE_WRITE) {
      fuse_write_in w;
      std::memcpy(&w, b.bytes.get() + sizeof(in), sizeof(w));
      // The data are the request's last w.size bytes, whatever the layout
      // of the headers before them (older protocols had shorter ones).
      if (w.size <= b.request - sizeof(in) && size_t{w.size} * 2 >= len) {
        copied = b.request - w.size;
        b.write_data_skipped = true;
      }
    }
  }
  std::memcpy(dst, b.bytes.get(), copied);
  return n;
}

std::optional<WriteBytes> RequestReader::TakeWriteData(const char* data,
                                                       size_t size) {
  Buffer* b = &ThisThreads();
  if (b->reader.get() != this || !b->write_data_skipped) {
    return std::nullopt;
  }
  b->write_data_skipped = false;
  // Compared as integers: `data` may point anywhere.
  const auto base = reinterpret_cast<uintptr_t>(b->dst);
  const auto at = reinterpret_cast<uintptr_t>(data);
  if (at < base || at - base > b->request || size > b->request - (at - base)) {
    return std::nullopt;
  }
  const size_t offset = at - base;
  char* bytes = b->bytes.release();
  std::shared_ptr<const void> owner(
      bytes, [reader = shared_from_this(), len = b->size](char* p) {
        reader->Put(std::unique_ptr<char[]>(p), len);
      });
  return WriteBytes{.view = std::string_view(bytes + offset, size),
                    .owner = std::move(owner)};
}

}  // namespace txbuf::client::mount
