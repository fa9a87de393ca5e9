// tests/server_fixture.h: a gtest fixture around one real txbufd process.
//
// Starts txbufd on the fixture's temporary export (StartServer), talks to it
// with the raw protocol client, and at TearDown stops it with SIGTERM and
// checks that it exited 0 with every txbuf destructor run (pinned bytes 0).
// Helpers build compounds (At), call them with a bounded wait (Call), read
// the server's STATS, and check a well-behaved client is still served.
//
// Thread-safety: thread-compatible (one test thread; RawClients may be used
// from helper threads, one each).
#ifndef TXBUF_TESTS_SERVER_FIXTURE_H_
#define TXBUF_TESTS_SERVER_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/raw_client.h"
#include "tests/server_process.h"

namespace txbuf::testing {

class ServerTest : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts txbufd --export dir_ --cache-size 64M `extra...`.
  void StartServer(std::vector<std::string> extra = {},
                   const ProcessOptions& options = {});
  RawClient Connect();
  // A request: PUTROOTFH, then LOOKUP `path` unless it is empty.
  rpc::Request At(const std::string& path);
  // Sends `r` and reads its reply, waiting at most `timeout_ms` (a failure,
  // not a hang, if the server does not answer).
  RawReply Call(RawClient& c, const rpc::Request& r,
                const std::string& payload = "", int timeout_ms = 20000);
  // The file handle of `path` (LOOKUP from the root), or "" on failure.
  std::string HandleOf(RawClient& c, const std::string& path);
  // The server's STATS result (on a fresh connection).
  rpc::StatsResult Stats();
  // A fresh client can still LOOKUP + READ `probe.txt` (written by
  // StartServer) within `timeout_ms`.
  void ExpectStillServing(int timeout_ms = 10000);

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  uint64_t id_ = 0;
  // Set false by a test that expects the server to exit otherwise.
  bool check_clean_exit_ = true;
};

}  // namespace txbuf::testing

#endif  // TXBUF_TESTS_SERVER_FIXTURE_H_
