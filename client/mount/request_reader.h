// client/mount/request_reader.h: reads the kernel's FUSE requests for
// libfuse (its custom I/O read, fuse_custom_io) into buffers of its own, so
// that a large WRITE's data is kept by the mount without a copy.
//
// The mount keeps each UNSTABLE WRITE's bytes until a COMMIT confirms them
// (write_log.h). With libfuse's own read, the bytes are in the FUSE
// thread's buffer, reused for the next request: the mount copied every
// written byte (1 MiB writes with fio: 14% of the mount's CPU). Here each
// request is read from /dev/fuse into a buffer from a pool; libfuse gets a
// copy of it in its buffer, but of a WRITE only the headers (the data's
// place in libfuse's buffer is left as it was: libfuse 3.14 reads it
// nowhere but in the write operation, given no write_buf operation and no
// splice reads). The WRITE operation, on the same thread, then takes the
// data with TakeWriteData: a large WRITE's (at least half a buffer, which
// is max_write plus a page) as the request's buffer itself, no copy; a
// smaller one's copied out of it (kept whole, the buffer would hold a lot
// of memory for few bytes), and the buffer serves the next request.
//
// Thread-safety: thread-safe. Read() and TakeWriteData() pair up per
// thread: the request a thread read last is the one its WRITE takes.
//
// Example (the FUSE session's custom read, then the WRITE operation):
//   auto reader = std::make_shared<RequestReader>(/*max_free=*/8);
//   ssize_t n = reader->Read(fuse_fd, libfuse_buf, len);   // as read(2)
//   ...
//   std::optional<WriteBytes> data = reader->TakeWriteData();
//   if (!data) data = WriteBytes::CopyOf({buf, size});  // libfuse has it
#ifndef TXBUF_CLIENT_MOUNT_REQUEST_READER_H_
#define TXBUF_CLIENT_MOUNT_REQUEST_READER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/mount/write_log.h"

namespace txbuf::client::mount {

class RequestReader : public std::enable_shared_from_this<RequestReader> {
 public:
  // Keeps at most `max_free` unused buffers for the next requests.
  explicit RequestReader(size_t max_free) : max_free_(max_free) {}
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  // As read(2) of one request from the FUSE device `fd` into `dst` (`len`
  // bytes, libfuse's buffer): the request's size, or -1 and errno. A
  // WRITE's data are not copied to `dst` (its headers are). Must be called
  // on an object owned by a shared_ptr (buffers taken by a WRITE keep it
  // alive).
  ssize_t Read(int fd, void* dst, size_t len);

  // In the WRITE operation for the request this thread read last: its data
  // (the kernel's, whatever libfuse's arguments say), owning the request's
  // buffer if large (the next Read takes another) or copied out of it;
  // nullopt if the request was given to libfuse whole (not a WRITE of the
  // usual layout): the caller copies what libfuse gave. Once per request.
  std::optional<WriteBytes> TakeWriteData();

 private:
  struct Buffer;
  // The request this thread read last.
  static Buffer& ThisThreads();
  // A buffer of `size` bytes, from the pool if it has one of that size.
  std::unique_ptr<char[]> Get(size_t size) ABSL_LOCKS_EXCLUDED(mu_);
  void Put(std::unique_ptr<char[]> buf, size_t size) ABSL_LOCKS_EXCLUDED(mu_);

  const size_t max_free_;
  mutable absl::Mutex mu_;
  size_t free_size_ ABSL_GUARDED_BY(mu_) = 0;  // of the buffers in free_
  std::vector<std::unique_ptr<char[]>> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_REQUEST_READER_H_
