// session.h: one client's session with txbufd (one accepted connection).
//
// A handler on a `Stream` (common/stream.h), which owns the socket, the
// receive op, the TxSocket and the close sequence. The session owns the
// FrameReader the stream receives into and decides when to read: it
// performs the Hello / challenge-response handshake, runs each compound and
// sends its reply as one txbuf through the stream.
//
// Liveness. A compound runs on the event loop only as far as its ops cannot
// block (see compound/executor.h); the rest runs on the server's
// BlockingPool, and the session reads nothing more until that reply is sent,
// so its frames keep their order and their bytes stay where they are. One
// exception: a rest that is only COMMITs and GETATTRs (a COMMIT waiting for
// the disk: an fsync of what was written, tens of milliseconds to seconds)
// runs aside (one at a time; another holds the session, as any compound
// that blocks, so a connection takes two pool threads at most) while the
// session goes on reading and answering the requests after it; its reply
// comes when it is done (docs/PROTOCOL.md, "Pipelining"). A request whose
// envelope does not parse is answered (id 0) after that COMMIT, as the
// oldest one waiting.
// A session handles at most kFramesPerTurn frames per loop turn, then lets
// the others run.
//
// Memory. The receive buffer grows with the bytes that arrive, from a small
// first chunk; a frame that stops arriving (no byte for the server's frame
// timeout while the session is reading) closes the session. Each reply's
// destructor gives its pinned bytes back to the session's budget
// (budget.h: its own budget, and its fair share of the global one). Over
// budget, the session stops reading requests (back-pressure) and looks
// again when bytes come back (and every few milliseconds, for what the
// others give back); one that stays over past the deadline is closed. A
// session under its fair share is never stalled by others.
//
// Lifetime: owned by its Worker; destroyed from the stream's OnClosed, i.e.
// after its receive is done, its blocking job (a Stream::Hold) has come
// back, and its TxSocket has closed: after every reply's destructor ran.
//
// Log lines and STATS speak of "connections": that is what a user sees.
//
// Thread-safety: used on its worker's thread only (its job's fields are
// handed to a pool thread and back through EventLoop::Post).
#ifndef TXBUF_SERVER_SESSION_SESSION_H_
#define TXBUF_SERVER_SESSION_SESSION_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "common/event_loop.h"
#include "common/stream.h"
#include "common/tx_socket.h"
#include "google/protobuf/message_lite.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"
#include "server/compound/executor.h"
#include "server/session/budget.h"

namespace txbuf::server {

class Worker;
class Server;

class Session final : private Stream::Handler {
 public:
  // Frames handled per loop turn before the others get theirs.
  static constexpr int kFramesPerTurn = 16;

  Session(Worker& worker, uint64_t id, std::unique_ptr<TxSocket> tx);
  ~Session();

  // Sends Hello and starts receiving.
  void Start();
  // Closes: gracefully (replies in flight, and a compound running on the
  // pool, are sent first, within the server's grace period) or at once.
  void Close(TxSocket::CloseMode mode);
  // Re-checks the budget of a paused session.
  void Resume();

  uint64_t id() const { return id_; }
  uint64_t pinned_bytes() const { return budget_.pinned(); }
  // Still authenticating (or, without a token, no request yet).
  bool pending() const { return pending_; }
  // Its stream began closing (its posted OnClosing may not have run yet).
  bool closing() const { return stream_->closing(); }

 private:
  enum class State { kAuth, kReady };
  // A compound finishing on a pool thread.
  struct Job;

  // Stream::Handler.
  void OnReceived(size_t n) override;
  void OnClosing(const absl::Status& why) override;
  void OnClosed() override;

  // What a close stops on this side (timers, pending); once.
  void WindDown();
  void ArmRecv();
  void Process();
  void ContinueLater();
  void HandleFrame(const Frame& f);
  void HandleRequest(const Frame& f);
  void HandleAuth(const Frame& f);
  void StartJob(rpc::Request& req, CompoundOutput& out, CompoundState state,
                absl::Span<const std::byte> payload);
  // Runs (the rest of) `job` on the server's pool, then OnJobDone(job) on
  // the loop of `w`. `handles` null: the job uses no cached handle.
  static void RunOnPool(Server& s, Job* job, HandleCache* handles, Worker* w,
                        uint64_t id);
  // Sends `done`'s reply (job_ or commit_aside_) and, if the session
  // stopped reading for it, reads on.
  void OnJobDone(Job* done);
  // Reads no frame: a job it waits for, or a reply that must come after
  // the COMMIT aside.
  bool Waiting() const { return job_ != nullptr || malformed_after_commit_; }
  // Composes and sends the reply to `req`, whose frame arrived at
  // `received_ns` (MonoNowNs), and records its latency: the request's, and
  // under each op it ran (OpStats::RecordLatency).
  void SendReply(CompoundOutput& out, const rpc::Request& req,
                 int64_t received_ns);
  bool SendTxbuf(absl::StatusOr<TxBuf> tx);
  void SendFrame(FrameType type, const google::protobuf::MessageLite& msg);
  void ReplyError(uint64_t id, rpc::Status status, const std::string& msg);
  void CloseAfterError(uint64_t id, rpc::Status status, const std::string& msg);
  void Established();
  // Counts and logs (server/logging.h) what the peer did wrong.
  void NoteAuthFailure(absl::string_view why);
  void NoteMalformed(absl::string_view what);
  // Over budget: stops reading, and closes the session if it stays so past
  // the deadline.
  void Pause();
  void OnReleased(uint64_t bytes);
  void CancelTimers();
  void ArmFrameTimer();
  void OnFrameTimer();
  void AccountBuffer();

  Worker& w_;
  Server& s_;
  const uint64_t id_;
  const std::string peer_;  // "HOST:PORT", for the log
  // What this client's address may do in each export (access_rules.h).
  const ClientAccess access_;
  std::unique_ptr<Stream> stream_;
  FrameReader reader_;
  HandleCache handles_;
  State state_ = State::kReady;
  std::array<uint8_t, 32> nonce_{};
  std::unique_ptr<Job> job_;  // the job the session waits for
  // The COMMIT running aside (see Liveness above), if any.
  std::unique_ptr<Job> commit_aside_;
  // A request that did not parse came while a COMMIT ran aside: its reply
  // waits for it.
  bool malformed_after_commit_ = false;
  SessionBudget budget_;

  bool pending_ = true;
  bool wound_down_ = false;
  size_t recv_size_ = 0;       // bytes the armed recv may fill
  size_t recv_chunk_;          // grows while the peer keeps the socket full
  size_t counted_buffer_ = 0;  // reader capacity counted in the server's stats
  bool paused_ = false;
  bool warned_malformed_ = false;
  bool in_process_ = false;
  bool yielded_ = false;  // frames left for a later turn
  int64_t last_progress_ns_ = 0;
  EventLoop::TimerId deadline_timer_ = 0;
  EventLoop::TimerId retry_timer_ = 0;
  EventLoop::TimerId auth_timer_ = 0;
  EventLoop::TimerId frame_timer_ = 0;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_SESSION_SESSION_H_
