#include "common/engine/msg_zerocopy_engine.h"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/engine/copy_engine.h"
#include "common/internal/txbuf_access.h"
#include "common/socket_util.h"

namespace txbuf {

absl::StatusOr<std::unique_ptr<SendEngine>> MsgZerocopyEngine::Create(
    const SendEngineSetup& setup) {
  if (absl::Status s =
          SetIntSockOpt(setup.host.fd(), SOL_SOCKET, SO_ZEROCOPY, 1);
      !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("engine msg_zerocopy: SO_ZEROCOPY: ", s.message()));
  }
  return std::make_unique<MsgZerocopyEngine>(setup);
}

MsgZerocopyEngine::MsgZerocopyEngine(const SendEngineSetup& setup)
    : host_(setup.host),
      counters_(setup.stats.engine(EngineKind::kMsgZerocopy)),
      errqueue_(
          setup.loop, POLLERR, [this](int res) { OnErrqueue(res); },
          [this] { host_.OnSettled(); }) {}

SubmitResult MsgZerocopyEngine::Submit(const TxBuf& view) {
  bool zerocopy = true;
  SubmitResult r = SendmsgHead(host_.fd(), view, EngineKind::kMsgZerocopy,
                               counters_, &zerocopy);
  if (r.next != SubmitResult::Next::kContinue) return r;
  if (zerocopy) {
    tracker_.Add(view.Slice(0, r.bytes));
    if (!closed_) errqueue_.Arm(host_.fd());
  } else {
    internal::TxBufEngineAccess::MarkCopied(view);
  }
  return r;
}

void MsgZerocopyEngine::End(uint64_t, bool) {
  counters_.txbufs.fetch_add(1, std::memory_order_relaxed);
}

void MsgZerocopyEngine::ReleaseAll() {
  tracker_.ReleaseAll();
  closed_ = true;
}

void MsgZerocopyEngine::OnErrqueue(int res) {
  if (res < 0) return;
  DrainErrqueue();
  if (!tracker_.empty() && !errqueue_.armed() && !closed_) {
    errqueue_.Arm(host_.fd());
  }
}

void MsgZerocopyEngine::DrainErrqueue() {
  const int fd = host_.fd();
  if (fd < 0) return;
  bool any = false;
  for (;;) {
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t r = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr;
         cm = CMSG_NXTHDR(&msg, cm)) {
      bool recverr =
          (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
          (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR);
      if (!recverr) continue;
      sock_extended_err serr;
      std::memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
      if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY || serr.ee_errno != 0) {
        continue;
      }
      any = true;
      bool copied = (serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) != 0;
      uint32_t lo = serr.ee_info, hi = serr.ee_data;
      uint64_t ids = static_cast<uint32_t>(hi - lo) + uint64_t{1};
      counters_.zc_notifications.fetch_add(ids, std::memory_order_relaxed);
      if (copied) counters_.zc_copied.fetch_add(ids, std::memory_order_relaxed);
      host_.OnNotification(copied, ids);
      tracker_.Complete(lo, hi, copied);  // destructors may run here.
    }
  }
  if (!any) host_.OnErrorQueueEmpty();
}

}  // namespace txbuf
