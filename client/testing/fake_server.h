// client/testing/fake_server.h: an in-process txbuf server with canned
// behaviour, for client tests.
//
// A thread accepts TCP connections on 127.0.0.1; each connection gets a
// thread that speaks the protocol's setup exactly as docs/PROTOCOL.md section
// 2 says (Hello, optional HMAC challenge-response, or deliberately wrong
// variants), then hands every Request to a scripted handler. The handler
// decides what goes back and when: a reply (with payload), nothing, a reply
// later or from another thread (to reorder), raw bytes (malformed frames),
// or a dropped connection. `MemFs` (mem_fs.h) is a ready handler that serves
// a small in-memory file system.
//
// Thread-safety: thread-safe. The handler runs on the connection's thread;
// Conn methods may be called from any thread.
//
// Example:
//   auto server = FakeServer::Start({}, [](const FakeServer::ConnPtr& conn,
//                                          const rpc::Request& req,
//                                          absl::string_view payload) {
//     rpc::Reply reply;
//     reply.set_id(req.id());
//     conn->SendReply(reply);
//   }).value();
//   auto client = Client::Connect({.port = server->port()}).value();
#ifndef TXBUF_CLIENT_TESTING_FAKE_SERVER_H_
#define TXBUF_CLIENT_TESTING_FAKE_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/socket_util.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::testing {

struct FakeServerOptions {
  // Authentication is required when set (the secret).
  std::optional<std::string> token;
  // Answer a correct AuthRequest with a wrong mac (an impostor server).
  bool bad_server_mac = false;
  // Send nothing after accepting (handshake timeouts).
  bool silent = false;
  // Hello fields.
  uint32_t version = 1;
  uint32_t max_envelope = 1 << 20;
  uint32_t max_payload = 64 << 20;
  uint32_t max_ops = 1024;
  uint32_t max_read = 16 << 20;
};

class FakeServer {
 public:
  // One accepted connection.
  class Conn {
   public:
    // Sends a Reply frame (with payload bytes). Thread-safe.
    //
    // Example:
    //   rpc::Reply r;
    //   r.set_id(request.id());
    //   r.add_results()->mutable_read()->set_length(5);
    //   conn->SendReply(r, "hello");
    absl::Status SendReply(const rpc::Reply& reply,
                           absl::string_view payload = {});
    // Sends any frame. Thread-safe.
    //
    // Example:
    //   conn->SendFrame(FrameType::kHello, "");  // a protocol error
    absl::Status SendFrame(FrameType type, absl::string_view envelope,
                           absl::string_view payload = {});
    // Sends raw bytes (e.g. a malformed header or half a frame).
    //
    // Example:
    //   conn->SendRaw("NOT A FRAME");
    absl::Status SendRaw(absl::string_view bytes);
    // Closes the connection (the client sees end of stream); the server
    // stops reading it once the handler returns.
    //
    // Example:
    //   conn->Close();
    void Close();
    // Closes with a reset (SO_LINGER 0).
    //
    // Example:
    //   conn->Reset();
    void Reset();
    // Accept order, from 0.
    //
    // Example:
    //   if (conn->index() == 0) ...
    int index() const { return index_; }
    // True once closed (by either side).
    //
    // Example:
    //   if (conn->closed()) return;
    bool closed() const;

   private:
    friend class FakeServer;
    Conn(int index, UniqueFd fd) : index_(index), fd_(std::move(fd)) {}
    const int index_;
    mutable absl::Mutex mu_;
    UniqueFd fd_ ABSL_GUARDED_BY(mu_);
    bool shut_ ABSL_GUARDED_BY(mu_) = false;
  };
  using ConnPtr = std::shared_ptr<Conn>;
  using Handler =
      std::function<void(const ConnPtr& conn, const rpc::Request& request,
                         absl::string_view payload)>;

  // A request as received.
  struct Received {
    int conn = 0;
    rpc::Request request;
    std::string payload;
  };

  // Listens on 127.0.0.1 (a free port) and starts accepting.
  //
  // Example:
  //   auto server = FakeServer::Start({.token = "s3cret"}, handler);
  static absl::StatusOr<std::unique_ptr<FakeServer>> Start(
      FakeServerOptions options, Handler handler);
  // Closes every connection and joins the threads.
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // The port it listens on (127.0.0.1).
  //
  // Example:
  //   Client::Connect({.port = server->port()});
  uint16_t port() const { return port_; }
  // Every request received so far, in arrival order (recorded before the
  // handler runs).
  //
  // Example:
  //   EXPECT_EQ(server->received()[0].payload, data);
  std::vector<Received> received() const;
  // Waits until at least `n` requests arrived.
  //
  // Example:
  //   ASSERT_TRUE(server->WaitForRequests(3, absl::Seconds(10)));
  bool WaitForRequests(size_t n, absl::Duration timeout) const;
  // Connections accepted so far.
  //
  // Example:
  //   EXPECT_EQ(server->connections(), 0);
  int connections() const;
  // The accepted connections.
  //
  // Example:
  //   server->conns()[0]->Reset();
  std::vector<ConnPtr> conns() const;
  // Authentications that succeeded / failed.
  //
  // Example:
  //   EXPECT_EQ(server->auth_ok(), 2);
  int auth_ok() const { return auth_ok_.load(); }
  int auth_failed() const { return auth_failed_.load(); }

 private:
  FakeServer(FakeServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  void AcceptLoop();
  void Serve(ConnPtr conn, int fd);

  const FakeServerOptions options_;
  const Handler handler_;
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::atomic<int> auth_ok_{0};
  std::atomic<int> auth_failed_{0};

  mutable absl::Mutex mu_;
  std::vector<ConnPtr> conns_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::client::testing

#endif  // TXBUF_CLIENT_TESTING_FAKE_SERVER_H_
