// worker_test.cc: one Worker of a server, on a listening socket of its own:
// it accepts a connection (the connection says Hello and is counted),
// destroys it when the peer closes, refuses connections past
// --max-connections with Reply{DELAY}, and at RequestShutdown closes what it
// holds and lets its thread end.

#include "server/worker.h"

#include <memory>
#include <string>
#include <utility>

#include "common/socket_util.h"
#include "gtest/gtest.h"
#include "proto/frame.h"
#include "server/server.h"
#include "server/testing/in_process.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::server {
namespace {

using txbuf::testing::RawClient;
using txbuf::testing::TempDir;
using txbuf::testing::WaitFor;

class WorkerTest : public ::testing::Test {
 protected:
  // Starts a server (for what its workers share) and one more worker on a
  // listening socket of the test's.
  void StartWorker(uint64_t max_connections = 1024) {
    ServerOptions o = InProcessOptions(dir_.path());
    o.max_connections = max_connections;
    absl::StatusOr<std::unique_ptr<Server>> s = Server::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    absl::StatusOr<UniqueFd> fd = ListenTcp("127.0.0.1", 0, false);
    ASSERT_TRUE(fd.ok()) << fd.status();
    absl::StatusOr<uint16_t> port = LocalPort(fd->get());
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    std::vector<UniqueFd> fds;
    fds.push_back(*std::move(fd));
    worker_ = std::make_unique<Worker>(*server_, std::move(fds));
    ASSERT_TRUE(worker_->Start().ok());
  }

  // RequestShutdown and Join, once (a worker's loop takes no post after
  // its thread ended).
  void StopWorker() {
    if (worker_ == nullptr) return;
    worker_->RequestShutdown();
    worker_->Join();
    worker_.reset();
  }

  void TearDown() override {
    StopWorker();
    if (server_ != nullptr) server_->Shutdown();
  }

  uint64_t connections() { return server_->counters().connections.load(); }

  TempDir dir_;
  std::unique_ptr<Server> server_;  // outlives the worker
  std::unique_ptr<Worker> worker_;
  uint16_t port_ = 0;
};

TEST_F(WorkerTest, AcceptsAConnectionAndDestroysItWhenThePeerCloses) {
  ASSERT_NO_FATAL_FAILURE(StartWorker());
  EXPECT_FALSE(worker_->SlabStats().empty());
  {
    absl::StatusOr<RawClient> c = RawClient::Connect("127.0.0.1", port_);
    ASSERT_TRUE(c.ok()) << c.status();  // the connection's Hello
    EXPECT_EQ(connections(), 1u);
    EXPECT_EQ(server_->counters().connections_total.load(), 1u);
  }
  EXPECT_TRUE(WaitFor([&] { return connections() == 0; }));
  // Its frame reader's buffer is given back with it.
  EXPECT_EQ(server_->counters().receive_buffer_bytes.load(), 0u);
}

TEST_F(WorkerTest, RefusesConnectionsPastTheLimit) {
  ASSERT_NO_FATAL_FAILURE(StartWorker(/*max_connections=*/1));
  absl::StatusOr<RawClient> first = RawClient::Connect("127.0.0.1", port_);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<RawClient> second = RawClient::ConnectOnly("127.0.0.1", port_);
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<txbuf::testing::RawReply> r = second->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reply.status(), rpc::STATUS_DELAY);
  EXPECT_TRUE(second->WaitClosed());
  EXPECT_EQ(server_->counters().connections_refused.load(), 1u);
  EXPECT_EQ(connections(), 1u);
}

TEST_F(WorkerTest, ShutdownClosesItsConnectionsAndEndsTheThread) {
  ASSERT_NO_FATAL_FAILURE(StartWorker());
  absl::StatusOr<RawClient> c = RawClient::Connect("127.0.0.1", port_);
  ASSERT_TRUE(c.ok()) << c.status();
  StopWorker();  // Join returns: the thread ended
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(connections(), 0u);
  // No longer listening.
  EXPECT_FALSE(RawClient::Connect("127.0.0.1", port_).ok());
}

}  // namespace
}  // namespace txbuf::server
