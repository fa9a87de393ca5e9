// The raw-TCP floor peer's driver: one blocking connection per client
// thread. Each connection opens the file (kOpen), then pipelines its share
// of the outstanding requests: it sends `slots` requests, and for every
// reply it receives (in order) it sends the next one. Latency is from the
// request's sendmsg to the end of its reply. Reads are verified in the
// receive buffer; write payloads are sent straight from the pattern image.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load/harness.h"
#include "bench/targets/peer_factories.h"
#include "bench/targets/raw/raw_io.h"
#include "bench/targets/raw/raw_protocol.h"
#include "common/clock.h"
#include "common/socket_util.h"

namespace txbuf::peers::internal {
namespace {

using raw::AlignedBuffer;
using raw::DecodeReply;
using raw::Encode;
using raw::kReplyHeaderSize;
using raw::kReplyMagic;
using raw::kRequestHeaderSize;
using raw::RecvAll;
using raw::ReplyHeader;
using raw::RequestHeader;
using raw::SendAllV;

absl::Status SetTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = kOpTimeoutNs / 1000000000;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoStatus(errno, "setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)");
  }
  return absl::OkStatus();
}

// Connects and opens `file`; returns the connection and the file id.
absl::StatusOr<std::pair<UniqueFd, uint32_t>> Setup(const std::string& host,
                                                    uint16_t port,
                                                    const std::string& file) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp(host, port);
  if (!fd.ok()) return fd.status();
  if (absl::Status s = SetTimeouts(fd->get()); !s.ok()) return s;
  RequestHeader req;
  req.op = raw::Op::kOpen;
  req.length = file.size();
  uint8_t hdr[kRequestHeaderSize];
  Encode(req, hdr);
  iovec iov[2] = {{hdr, sizeof(hdr)},
                  {const_cast<char*>(file.data()), file.size()}};
  uint8_t rep_buf[kReplyHeaderSize];
  if (!SendAllV(fd->get(), iov, 2) ||
      !RecvAll(fd->get(), rep_buf, sizeof(rep_buf))) {
    return ErrnoStatus(errno, "raw peer: open request");
  }
  ReplyHeader rep = DecodeReply(rep_buf);
  if (rep.magic != kReplyMagic || rep.length != 0) {
    return absl::DataLossError("raw peer: bad open reply");
  }
  if (rep.status != 0) {
    return ErrnoStatus(-rep.status, absl::StrCat("raw peer: open ", file));
  }
  return std::make_pair(*std::move(fd), static_cast<uint32_t>(rep.value));
}

class RawDriver : public PeerDriver {
 public:
  RawDriver(std::string host, uint16_t port)
      : host_(std::move(host)), port_(port) {}

  absl::StatusOr<RunResult> Run(const Workload& w, pid_t server_pid) override {
    return RunHarness(w, server_pid, [this](int /*index*/, ConnContext& ctx) {
      Connection(ctx);
    });
  }

 private:
  struct Pending {
    int64_t start_ns;
    uint64_t offset;
  };

  void Connection(ConnContext& ctx) const {
    const Workload& w = ctx.workload();
    absl::StatusOr<std::pair<UniqueFd, uint32_t>> conn =
        Setup(host_, port_, w.file);
    if (!ctx.Start(conn.status()) || ctx.slots() == 0) return;
    const int fd = conn->first.get();
    const uint32_t file_id = conn->second;
    const bool is_read = w.kind == WorkloadKind::kRead;
    AlignedBuffer buf(is_read ? w.size : 0);
    std::vector<uint8_t> scratch;
    std::deque<Pending> pending;

    auto issue = [&]() -> bool {
      RequestHeader req;
      req.op = is_read ? raw::Op::kRead : raw::Op::kWrite;
      req.file_id = file_id;
      req.offset = ctx.NextOffset();
      req.length = w.size;
      uint8_t hdr[kRequestHeaderSize];
      Encode(req, hdr);
      iovec iov[2] = {{hdr, sizeof(hdr)}, {nullptr, 0}};
      int iovcnt = 1;
      if (!is_read) {
        iov[1].iov_base = const_cast<uint8_t*>(
            ctx.pattern().Data(req.offset, w.size, scratch));
        iov[1].iov_len = w.size;
        iovcnt = 2;
      }
      pending.push_back({MonoNowNs(), req.offset});
      return SendAllV(fd, iov, iovcnt);
    };

    bool alive = true;
    for (int i = 0; i < ctx.slots() && alive; ++i) {
      if (!ctx.ShouldIssue(MonoNowNs())) break;
      alive = issue();
    }
    while (alive && !pending.empty()) {
      uint8_t rep_buf[kReplyHeaderSize];
      if (!RecvAll(fd, rep_buf, sizeof(rep_buf))) break;
      ReplyHeader rep = DecodeReply(rep_buf);
      if (rep.magic != kReplyMagic || rep.length > w.size) break;
      if (rep.length > 0 && !RecvAll(fd, buf.data(), rep.length)) break;
      const int64_t now = MonoNowNs();
      const Pending op = pending.front();
      pending.pop_front();
      bool ok = rep.status == 0 &&
                (is_read ? rep.length == w.size : rep.value == w.size);
      bool verified =
          !is_read || !ok ||
          ctx.pattern().Check(op.offset,
                              absl::MakeConstSpan(buf.data(), rep.length));
      ctx.Complete(op.start_ns, now, w.size, ok, verified);
      if (ctx.ShouldIssue(now)) alive = issue();
    }
    // Whatever is still pending died with the connection.
    ctx.AddErrors(pending.size());
  }

  std::string host_;
  uint16_t port_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerDriver>> MakeRawDriver(
    const std::string& host_port) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(host_port);
  if (!hp.ok()) return hp.status();
  return std::make_unique<RawDriver>(hp->first, hp->second);
}

}  // namespace txbuf::peers::internal
