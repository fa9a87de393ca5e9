// tests/raw_client.h: a minimal blocking client of the wire protocol.
//
// For end-to-end tests that must control every byte: it reads Hello, can
// authenticate, sends any frame (well-formed or not) and reads replies.
// Independent of the client library on purpose (it checks the server
// against docs/PROTOCOL.md, not against our own client).
//
// Thread-safety: thread-compatible.
#ifndef TXBUF_TESTS_RAW_CLIENT_H_
#define TXBUF_TESTS_RAW_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/socket_util.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"

namespace txbuf::testing {

struct RawReply {
  rpc::Reply reply;
  std::string payload;
  // The READ data of result i.
  std::string ReadData(int i) const {
    const rpc::ReadResult& r = reply.results(i).read();
    return payload.substr(r.payload_offset(), r.length());
  }
};

class RawClient {
 public:
  // Connects and reads the Hello frame. `rcvbuf` > 0 fixes the socket's
  // receive buffer before connecting (a peer that reads slowly).
  static absl::StatusOr<RawClient> Connect(const std::string& host,
                                           uint16_t port, int rcvbuf = 0);
  // Connect, from the local IPv4 address `source` (e.g. "127.0.0.2": all
  // of 127/8 is loopback), for tests of per-address access rules.
  static absl::StatusOr<RawClient> ConnectFrom(const std::string& source,
                                               const std::string& host,
                                               uint16_t port);
  // Connects without reading anything (the first frame is then the
  // caller's to read).
  static absl::StatusOr<RawClient> ConnectOnly(const std::string& host,
                                               uint16_t port);
  RawClient(RawClient&&) = default;
  RawClient& operator=(RawClient&&) = default;

  const rpc::Hello& hello() const { return hello_; }
  int fd() const { return fd_.get(); }

  // The challenge-response with `secret`; returns the AuthReply.
  absl::StatusOr<rpc::AuthReply> Authenticate(const std::string& secret,
                                              bool check_server_mac = true);

  // Sends raw bytes.
  absl::Status SendBytes(const std::string& bytes);
  // Sends a frame of `type` with `envelope` and `payload`.
  absl::Status SendFrame(FrameType type, const std::string& envelope,
                         const std::string& payload = "");
  absl::Status SendRequest(const rpc::Request& req,
                           const std::string& payload = "");

  // Reads one frame (blocking, up to timeout).
  absl::StatusOr<std::pair<FrameHeader, std::string>> ReadFrame(
      int timeout_ms = 30000);
  // Reads one Reply frame.
  absl::StatusOr<RawReply> ReadReply(int timeout_ms = 30000);
  // Sends `req` and reads its reply.
  absl::StatusOr<RawReply> Call(const rpc::Request& req,
                                const std::string& payload = "");

  // True if the server closed the connection (EOF or reset) within timeout.
  bool WaitClosed(int timeout_ms = 10000);

 private:
  RawClient() = default;
  // A client on connected `fd`, once it has read the server's Hello.
  static absl::StatusOr<RawClient> WithHello(UniqueFd fd);
  absl::Status ReadExact(char* p, size_t n, int timeout_ms);
  UniqueFd fd_;
  rpc::Hello hello_;
};

// Builders for requests.
rpc::Request MakeRequest(uint64_t id);
// PUTROOTFH of `export_name` (empty: the server's first export).
rpc::Op* AddPutRoot(rpc::Request& r, const std::string& export_name = "");
rpc::Op* AddLookup(rpc::Request& r, const std::string& path);

}  // namespace txbuf::testing

#endif  // TXBUF_TESTS_RAW_CLIENT_H_
