#include "common/engine/copy_engine.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "common/internal/txbuf_access.h"
#include "common/socket_util.h"

namespace txbuf {
namespace {

constexpr size_t kMaxIov = 1024;  // IOV_MAX

}  // namespace

SubmitResult SendmsgHead(int fd, const TxBuf& view, EngineKind kind,
                         EngineCounters& c, bool* zerocopy) {
  iovec iov[kMaxIov];
  size_t len = 0;
  size_t n = view.FillIovecs(0, absl::MakeSpan(iov, kMaxIov), &len);
  int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
  if (*zerocopy) flags |= MSG_ZEROCOPY;
  for (;;) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    ssize_t r = sendmsg(fd, &msg, flags);
    c.submissions.fetch_add(1, std::memory_order_relaxed);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        c.would_block.fetch_add(1, std::memory_order_relaxed);
        return {.next = SubmitResult::Next::kPollOut};
      }
      if ((flags & MSG_ZEROCOPY) && (err == ENOBUFS || err == ENOMEM)) {
        // optmem for the notification is exhausted: send the same bytes as a
        // copy, right here, so the stream order is kept.
        c.nobufs_fallbacks.fetch_add(1, std::memory_order_relaxed);
        flags &= ~MSG_ZEROCOPY;
        *zerocopy = false;
        continue;
      }
      return {.next = SubmitResult::Next::kFailed,
              .error = ErrnoStatus(err, "sendmsg"),
              .by = kind};
    }
    c.bytes.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    if (static_cast<size_t>(r) < len) {
      c.partial_sends.fetch_add(1, std::memory_order_relaxed);
    }
    return {.bytes = static_cast<size_t>(r)};
  }
}

absl::StatusOr<std::unique_ptr<SendEngine>> CopyEngine::Create(
    const SendEngineSetup& setup) {
  return std::make_unique<CopyEngine>(setup);
}

CopyEngine::CopyEngine(const SendEngineSetup& setup)
    : host_(setup.host), counters_(setup.stats.engine(EngineKind::kCopy)) {}

SubmitResult CopyEngine::Submit(const TxBuf& view) {
  bool zerocopy = false;
  SubmitResult r =
      SendmsgHead(host_.fd(), view, EngineKind::kCopy, counters_, &zerocopy);
  if (r.next == SubmitResult::Next::kContinue) {
    internal::TxBufEngineAccess::MarkCopied(view);
  }
  return r;
}

void CopyEngine::End(uint64_t, bool) {
  counters_.txbufs.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace txbuf
