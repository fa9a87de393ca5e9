// in_process.h: a txbufd in the test process, for server/ tests that drive a
// whole Server (server_test.cc, worker_test.cc, session/session_test.cc)
// with the end-to-end tests' raw protocol client (tests/raw_client.h).
//
// Thread-safety: plain functions of their arguments; InProcessServerTest is
// a gtest fixture (the test's thread).
//
// Example:
//   TempDir dir;
//   auto server = Server::Start(InProcessOptions(dir.path())).value();
//   auto c = RawClient::Connect("127.0.0.1", PortOf(*server)).value();
#ifndef TXBUF_SERVER_TESTING_IN_PROCESS_H_
#define TXBUF_SERVER_TESTING_IN_PROCESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

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

// A fixture with a temporary export and one in-process server started by
// Start(); Connect() opens a raw protocol connection to it.
//
// Example:
//   class MyTest : public InProcessServerTest {};
//   TEST_F(MyTest, Serves) {
//     ASSERT_NO_FATAL_FAILURE(Start(Options()));
//     testing::RawClient c = Connect();
//   }
class InProcessServerTest : public ::testing::Test {
 protected:
  ServerOptions Options() const { return InProcessOptions(dir_.path()); }

  void Start(ServerOptions o) {
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    port_ = PortOf(*server_);
  }

  // `rcvbuf` > 0 sets the client socket's SO_RCVBUF.
  testing::RawClient Connect(int rcvbuf = 0) {
    absl::StatusOr<testing::RawClient> c =
        testing::RawClient::Connect("127.0.0.1", port_, rcvbuf);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_TESTING_IN_PROCESS_H_
