// in_process.h: a txbufd in the test process, for server/ tests that drive a
// whole Server (server_test.cc, worker_test.cc, session/session_test.cc)
// with the end-to-end tests' raw protocol client (tests/raw_client.h).
//
// Thread-safety: plain functions of their arguments.
//
// Example:
//   TempDir dir;
//   auto server = Server::Start(InProcessOptions(dir.path())).value();
//   auto c = RawClient::Connect("127.0.0.1", PortOf(*server)).value();
#ifndef TXBUF_SERVER_TESTING_IN_PROCESS_H_
#define TXBUF_SERVER_TESTING_IN_PROCESS_H_

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "server/server.h"

namespace txbuf::server {

// Options for a small server of `export_dir`: a free loopback port, one
// event loop, one I/O thread, a 64 MiB cache, no io_uring fixed buffers.
inline ServerOptions InProcessOptions(const std::string& export_dir) {
  ServerOptions o;
  o.export_dir = export_dir;
  o.port = 0;
  o.threads = 1;
  o.io_threads = 1;
  o.cache_bytes = 64ull << 20;
  o.fixed_buffers = false;
  return o;
}

// The port `server` listens on (0 if its address says none).
inline uint16_t PortOf(const Server& server) {
  const std::string& a = server.address();
  uint32_t port = 0;
  if (!absl::SimpleAtoi(a.substr(a.rfind(':') + 1), &port)) return 0;
  return static_cast<uint16_t>(port);
}

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_TESTING_IN_PROCESS_H_
