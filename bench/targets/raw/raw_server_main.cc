// txbuf-raw-server: the no-framework floor peer.
//
//   txbuf-raw-server --root DIR --listen HOST:PORT
//
// Blocking sockets, one thread per connection, the fixed binary header of
// raw_protocol.h. Reads: pread into a per-connection buffer, then one
// sendmsg of [reply header, data]. Writes: recv the payload into the buffer,
// then pwrite. Requests on a connection are served in order (clients
// pipeline). Paths are confined to DIR (export_root.h).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/load/harness.h"
#include "bench/targets/export_root.h"
#include "bench/targets/raw/raw_io.h"
#include "bench/targets/raw/raw_protocol.h"
#include "bench/targets/server_args.h"
#include "common/socket_util.h"

namespace txbuf::peers::raw {
namespace {

int StatusToErrno(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kInvalidArgument:
      return EINVAL;
    case absl::StatusCode::kPermissionDenied:
      return EACCES;
    default:
      return EIO;
  }
}

bool SendReply(int fd, const ReplyHeader& rep, const uint8_t* data) {
  uint8_t hdr[kReplyHeaderSize];
  Encode(rep, hdr);
  iovec iov[2] = {
      {hdr, sizeof(hdr)},
      {const_cast<uint8_t*>(data), static_cast<size_t>(rep.length)}};
  return SendAllV(fd, iov, rep.length > 0 ? 2 : 1);
}

// Serves one connection until EOF, an I/O error or a malformed request.
void Serve(UniqueFd conn, const internal::ExportRoot* root) {
  const int fd = conn.get();
  SetIntSockOpt(fd, IPPROTO_TCP, TCP_NODELAY, 1).IgnoreError();
  std::vector<UniqueFd> files;
  AlignedBuffer buf;
  uint8_t hdr[kRequestHeaderSize];
  while (RecvAll(fd, hdr, sizeof(hdr))) {
    RequestHeader req = DecodeRequest(hdr);
    if (req.magic != kRequestMagic) return;
    ReplyHeader rep;
    const uint8_t* data = nullptr;
    switch (req.op) {
      case Op::kOpen: {
        if (req.length == 0 || req.length > kMaxPathBytes) return;
        std::string path(req.length, '\0');
        if (!RecvAll(fd, path.data(), path.size())) return;
        absl::StatusOr<UniqueFd> f = root->OpenFile(path);
        if (f.ok()) {
          rep.value = files.size();
          files.push_back(*std::move(f));
        } else {
          rep.status = -StatusToErrno(f.status());
        }
        break;
      }
      case Op::kRead: {
        if (req.file_id >= files.size() ||
            req.length > bench::kMaxRequestBytes) {
          rep.status = -EINVAL;
          break;
        }
        buf.Reserve(req.length);
        uint64_t got = 0;
        while (got < req.length) {
          ssize_t r =
              ::pread(files[req.file_id].get(), buf.data() + got,
                      req.length - got, static_cast<off_t>(req.offset + got));
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) {
            rep.status = -errno;
            break;
          }
          if (r == 0) break;  // EOF: a short read.
          got += static_cast<uint64_t>(r);
        }
        if (rep.status == 0) {
          rep.length = got;
          data = buf.data();
        }
        break;
      }
      case Op::kWrite: {
        if (req.length > bench::kMaxRequestBytes) return;
        buf.Reserve(req.length);
        if (!RecvAll(fd, buf.data(), req.length)) return;
        if (req.file_id >= files.size()) {
          rep.status = -EBADF;
          break;
        }
        uint64_t put = 0;
        while (put < req.length) {
          ssize_t w =
              ::pwrite(files[req.file_id].get(), buf.data() + put,
                       req.length - put, static_cast<off_t>(req.offset + put));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) {
            rep.status = w < 0 ? -errno : -EIO;
            break;
          }
          put += static_cast<uint64_t>(w);
        }
        rep.value = put;
        break;
      }
      default:
        return;  // Unknown op: close.
    }
    if (!SendReply(fd, rep, data)) return;
  }
}

int Main(int argc, char** argv) {
  int exit_code = 0;
  std::optional<internal::PeerServerStart> start =
      internal::StartPeerServer("txbuf-raw-server", argc, argv, &exit_code);
  if (!start) return exit_code;
  const internal::ServerArgs* args = &start->args;
  const internal::ExportRoot* root = &start->root;
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(args->listen);
  if (!hp.ok()) {
    std::fprintf(stderr, "txbuf-raw-server: %s\n",
                 hp.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<UniqueFd> lfd = ListenTcp(hp->first, hp->second);
  absl::StatusOr<uint16_t> port =
      lfd.ok() ? LocalPort(lfd->get()) : absl::StatusOr<uint16_t>(lfd.status());
  if (!port.ok()) {
    std::fprintf(stderr, "txbuf-raw-server: %s\n",
                 port.status().ToString().c_str());
    return 1;
  }
  bool v6 = hp->first.find(':') != std::string::npos;
  std::printf("listening on %s%s%s:%u\n", v6 ? "[" : "", hp->first.c_str(),
              v6 ? "]" : "", *port);
  std::fflush(stdout);
  while (true) {
    int c = ::accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
          errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) usleep(10000);
        continue;
      }
      std::perror("txbuf-raw-server: accept");
      return 1;
    }
    std::thread(Serve, UniqueFd(c), &*root).detach();
  }
}

}  // namespace
}  // namespace txbuf::peers::raw

int main(int argc, char** argv) { return txbuf::peers::raw::Main(argc, argv); }
