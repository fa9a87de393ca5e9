// client/internal/connection.h: one set-up connection of a Client, driven by
// the client's event loop.
//
// A handler on a `Stream` (common/stream.h), which owns the socket, the
// receive op, the TxSocket and the close sequence. Requests go out as txbufs
// through the stream; replies come in through its receive into this
// connection's `FrameReader` and are matched to their calls by id (any
// order). A reply with id 0 (a frame- or envelope-level error) belongs
// to the oldest request still waiting, because the server answers it after
// every request before it (only a COMMIT waiting for the disk may be
// answered after requests sent later: docs/PROTOCOL.md). A reply with an
// unknown id, a frame that is not a Reply, or one that does not parse closes
// the connection, and so does the stream closing by itself (the server closed,
// a receive or send failed; reported posted). Closing fails every waiting call
// exactly once, then aborts the stream, which reports closed once every txbuf
// destructor has run.
//
// Reply payloads of kReplySliceMinBytes and more are handed to their
// CompoundReply in place, as slices of the reader's receive block
// (proto/slicing_frame_reader.h), which the reply keeps alive and which may be
// released on any thread; smaller ones are copied out.
//
// Not for callers: the client library only.
//
// Thread-safety: thread-compatible; everything but the constructor runs on
// the client's loop thread.
#ifndef TXBUF_CLIENT_INTERNAL_CONNECTION_H_
#define TXBUF_CLIENT_INTERNAL_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/compound.h"
#include "client/internal/compound_access.h"
#include "client/internal/handshake.h"
#include "common/event_loop.h"
#include "common/memory_stats.h"
#include "common/relaxed_counter.h"
#include "common/stream.h"
#include "common/tx_socket.h"
#include "common/txbuf.h"
#include "proto/frame.h"
#include "proto/slicing_frame_reader.h"

namespace txbuf::client::internal {

using DoneFn = absl::AnyInvocable<void(absl::StatusOr<CompoundReply>)>;

// One request from Submit() to its done callback.
struct PendingCall {
  uint64_t id = 0;
  Compound compound;  // WRITE buffers move into the txbuf when sent.
  DoneFn done;        // empty once completed (e.g. timed out, reply due).
  EventLoop::TimerId timer = 0;
};

// Runs `call.done` (once) with `result` after cancelling its timer.
//
// Example:
//   FinishCall(loop, call, absl::UnavailableError("connection lost"));
void FinishCall(EventLoop& loop, PendingCall& call,
                absl::StatusOr<CompoundReply> result);

// The limits a request must respect, from the server's Hello (zero fields:
// the protocol's defaults).
//
// Example:
//   RequestLimits limits = LimitsOf(hello);
RequestLimits LimitsOf(const rpc::Hello& hello);

// The client's receive counters (ReceiveStats), shared by its connections:
// written on the loop thread, read from any.
struct ReceiveCounters {
  RelaxedCounter payloads_sliced;
  RelaxedCounter payload_bytes_sliced;
  RelaxedCounter payloads_copied;
  RelaxedCounter payload_bytes_copied;
  RelaxedCounter buffers_allocated;
  RelaxedCounter buffers_reused;
  RelaxedCounter bytes_carried;

  ReceiveStats Snapshot() const {
    return {.payloads_sliced = payloads_sliced.Get(),
            .payload_bytes_sliced = payload_bytes_sliced.Get(),
            .payloads_copied = payloads_copied.Get(),
            .payload_bytes_copied = payload_bytes_copied.Get(),
            .buffers_allocated = buffers_allocated.Get(),
            .buffers_reused = buffers_reused.Get(),
            .bytes_carried = bytes_carried.Get()};
  }
};

class Connection final : private Stream::Handler {
 public:
  struct Callbacks {
    // Replies arrived: slots freed for waiting calls.
    absl::AnyInvocable<void()> on_progress;
    // The connection stopped being usable; `why` is what pending calls got.
    absl::AnyInvocable<void(Connection*, const absl::Status& why)> on_closing;
    // Fully closed: every txbuf destructor has run.
    absl::AnyInvocable<void(Connection*)> on_closed;
  };

  // `peer` is "host:port" for messages. `rx` (which must outlive the
  // connection) counts how payloads were received.
  Connection(int index, std::string peer, EventLoop& loop, TxBufContext& ctx,
             Handshake hs, Callbacks callbacks, ReceiveCounters& rx);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Creates the TxSocket and starts receiving. On error the connection is
  // closed (no callbacks).
  absl::Status Start(const TxSocketOptions& options, MemoryStats& stats);

  // Sends `call` (a fresh id set). On a build error the call completes at
  // once with it.
  void Send(PendingCall call);

  // Fails call `id` with `why` if it is waiting here (its reply, if it comes,
  // is dropped). Returns whether it was here.
  bool TimeOut(uint64_t id, const absl::Status& why);

  // Fails every waiting call with `why` (once) and closes. No effect unless
  // open.
  void Close(const absl::Status& why);

  bool open() const { return state_ == State::kOpen && !stream_->closing(); }
  bool closed() const { return state_ == State::kClosed; }
  // Calls waiting for a reply (timed-out ones excluded).
  size_t load() const { return in_flight_.size() - timed_out_; }
  int index() const { return index_; }
  const rpc::Hello& hello() const { return hello_; }
  const absl::Status& error() const { return error_; }

 private:
  enum class State { kNew, kOpen, kClosing, kClosed };

  // Stream::Handler.
  void OnReceived(size_t n) override;
  void OnClosing(const absl::Status& why) override;
  void OnClosed() override;

  void ArmRecv();
  // Handles complete frames in the reader; false if the connection closed.
  bool ProcessFrames();
  void HandleFrame(const Frame& frame);
  absl::Status Lost(absl::string_view why) const;

  const int index_;
  const std::string peer_;
  EventLoop& loop_;
  TxBufContext& ctx_;
  UniqueFd fd_;  // until Start() hands it to the TxSocket.
  SlicingFrameReader reader_;
  ReceiveCounters& rx_;
  // The reader's counters already added to rx_.
  uint64_t seen_allocated_ = 0;
  uint64_t seen_reused_ = 0;
  uint64_t seen_carried_ = 0;
  rpc::Hello hello_;
  RequestLimits limits_;
  Callbacks callbacks_;

  State state_ = State::kNew;
  absl::Status error_;
  std::unique_ptr<Stream> stream_;  // from Start()
  // Calls sent and not answered, by id (ids grow in send order, so begin()
  // is the oldest).
  std::map<uint64_t, PendingCall> in_flight_;
  size_t timed_out_ = 0;  // entries of in_flight_ already completed.
};

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_CONNECTION_H_
