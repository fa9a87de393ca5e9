// connection.h: one client connection of txbufd.
//
// Receives request frames (io_uring recv into a FrameReader), performs the
// Hello / challenge-response handshake, runs each compound and sends its
// reply as one txbuf through the connection's TxSocket. Each reply's
// destructor gives its pinned bytes back to the connection's budget; over
// budget the connection stops reading requests (back-pressure), and one that
// stays over its own budget past the deadline is closed.
//
// Lifetime: owned by its Worker; destroyed (deferred) only after its receive
// is done and its TxSocket has closed, i.e. after every reply's destructor
// ran.
//
// Thread-safety: used on its worker's thread only.
#ifndef TXBUF_SERVER_CONNECTION_H_
#define TXBUF_SERVER_CONNECTION_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "common/event_loop.h"
#include "common/frame.h"
#include "common/tx_socket.h"
#include "google/protobuf/message_lite.h"
#include "proto/txbuf.pb.h"
#include "server/executor.h"

namespace txbuf::server {

class Worker;
class Server;

class Connection final : public IoCompletion {
 public:
  Connection(Worker& worker, uint64_t id, std::unique_ptr<TxSocket> tx);
  ~Connection();

  // Sends Hello and starts receiving.
  void Start();
  // Closes: gracefully (replies in flight are sent first, within the
  // server's grace period) or at once.
  void Close(TxSocket::CloseMode mode);
  // Re-checks the budgets of a paused connection.
  void Resume();

  void OnCompletion(const io_uring_cqe& cqe) override;  // the recv
  uint64_t id() const { return id_; }
  uint64_t pinned_bytes() const { return pinned_; }

 private:
  enum class State { kAuth, kReady, kClosing };

  void ArmRecv();
  void Process();
  void HandleFrame(const Frame& f);
  void HandleRequest(const Frame& f);
  void HandleAuth(const Frame& f);
  bool SendTxbuf(absl::StatusOr<TxBuf> tx);
  void SendFrame(FrameType type, const google::protobuf::MessageLite& msg);
  void ReplyError(uint64_t id, rpc::Status status, const std::string& msg);
  void CloseAfterError(uint64_t id, rpc::Status status, const std::string& msg);
  bool OverOwnBudget() const;
  bool OverBudget() const;
  void Pause();
  void OnReleased(uint64_t bytes);
  void CancelTimers();
  void MaybeDestroy();

  Worker& w_;
  Server& s_;
  const uint64_t id_;
  std::unique_ptr<TxSocket> tx_;
  const int fd_;
  FrameReader reader_;
  HandleCache handles_;
  State state_ = State::kReady;
  std::array<uint8_t, 32> nonce_{};

  bool recv_armed_ = false;
  bool paused_ = false;
  bool in_process_ = false;
  bool tx_closed_ = false;
  bool destroy_posted_ = false;
  uint64_t pinned_ = 0;
  EventLoop::TimerId deadline_timer_ = 0;
  EventLoop::TimerId retry_timer_ = 0;
  EventLoop::TimerId auth_timer_ = 0;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_CONNECTION_H_
