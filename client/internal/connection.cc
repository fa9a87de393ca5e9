#include "client/internal/connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/status.h"

namespace txbuf::client::internal {
namespace {

constexpr size_t kRecvChunk = 256 * 1024;
// Reader memory kept between large replies.
constexpr size_t kReaderKeep = 256 * 1024;
constexpr size_t kReaderShrinkAbove = 4 << 20;

}  // namespace

void FinishCall(EventLoop& loop, PendingCall& call,
                absl::StatusOr<CompoundReply> result) {
  if (call.timer != 0) {
    loop.CancelTimer(call.timer);
    call.timer = 0;
  }
  if (!call.done) return;
  DoneFn done = std::move(call.done);
  call.done = nullptr;
  done(std::move(result));
}

RequestLimits LimitsOf(const rpc::Hello& hello) {
  RequestLimits l;
  if (hello.max_envelope() != 0) l.max_envelope = hello.max_envelope();
  if (hello.max_payload() != 0) l.max_payload = hello.max_payload();
  if (hello.max_ops() != 0) l.max_ops = hello.max_ops();
  return l;
}

Connection::Connection(int index, std::string peer, EventLoop& loop,
                       TxBufContext& ctx, Handshake hs, Callbacks callbacks,
                       ReceiveCounters& rx)
    : index_(index),
      peer_(std::move(peer)),
      loop_(loop),
      ctx_(ctx),
      fd_(std::move(hs.fd)),
      reader_(std::move(hs.reader)),
      rx_(rx),
      hello_(std::move(hs.hello)),
      limits_(LimitsOf(hello_)),
      callbacks_(std::move(callbacks)) {}

Connection::~Connection() = default;

absl::Status Connection::Start(const TxSocketOptions& options,
                               MemoryStats& stats) {
  absl::StatusOr<std::unique_ptr<TxSocket>> tx =
      TxSocket::Create(loop_, std::move(fd_), options, stats);
  if (!tx.ok()) {
    state_ = State::kClosed;
    error_ = tx.status();
    return tx.status();
  }
  // The server closing its side ends the calls waiting here: abort.
  stream_ = std::make_unique<Stream>(
      loop_, std::move(*tx),
      StreamOptions{.peer_close_mode = TxSocket::CloseMode::kAbort,
                    .peer_name = "the server"});
  stream_->Start(*this);
  state_ = State::kOpen;
  // Bytes that arrived with the handshake.
  if (!ProcessFrames()) return absl::OkStatus();
  ArmRecv();
  return absl::OkStatus();
}

absl::Status Connection::Lost(absl::string_view why) const {
  return absl::UnavailableError(
      absl::StrCat("connection to ", peer_, " lost: ", why));
}

void Connection::ArmRecv() {
  absl::Span<std::byte> room = reader_.WritableSpan(kRecvChunk);
  // The reader's block counters, as deltas (it is per connection).
  auto add = [](RelaxedCounter& c, uint64_t now, uint64_t& seen) {
    if (now != seen)
      c.Add(static_cast<int64_t>(now - std::exchange(seen, now)));
  };
  add(rx_.buffers_allocated, reader_.blocks_allocated(), seen_allocated_);
  add(rx_.buffers_reused, reader_.blocks_reused(), seen_reused_);
  add(rx_.bytes_carried, reader_.bytes_carried(), seen_carried_);
  stream_->Receive(room);
}

void Connection::OnReceived(size_t n) {
  reader_.Commit(n);
  bool open = ProcessFrames();
  if (open) {
    if (reader_.buffered() == 0 && reader_.capacity() > kReaderShrinkAbove) {
      reader_.Shrink(kReaderKeep);
    }
    ArmRecv();
  }
  if (callbacks_.on_progress) callbacks_.on_progress();
}

// The stream closed by itself (the server closed, a receive or a send
// failed); no effect after our own Close().
void Connection::OnClosing(const absl::Status& why) {
  Close(Lost(why.message()));
}

void Connection::OnClosed() {
  state_ = State::kClosed;
  if (callbacks_.on_closed) callbacks_.on_closed(this);
}

bool Connection::ProcessFrames() {
  while (state_ == State::kOpen) {
    std::optional<absl::StatusOr<Frame>> f = reader_.Next();
    if (!f.has_value()) break;
    if (!f->ok()) {
      Close(Lost(absl::StrCat("malformed frame from the server: ",
                              f->status().message())));
      break;
    }
    HandleFrame(**f);
  }
  return state_ == State::kOpen;
}

void Connection::HandleFrame(const Frame& frame) {
  if (frame.header.type != FrameType::kReply) {
    Close(Lost(absl::StrFormat(
        "protocol error: the server sent a frame of type %d, not a Reply",
        static_cast<int>(frame.header.type))));
    return;
  }
  rpc::Reply reply;
  if (!reply.ParseFromArray(frame.envelope.data(),
                            static_cast<int>(frame.envelope.size()))) {
    Close(Lost("malformed reply from the server: the envelope does not parse"));
    return;
  }
  auto it = in_flight_.end();
  if (reply.id() == 0) {
    // A frame-level error: it answers the oldest request (the server sends
    // it after the replies of every request before it).
    if (in_flight_.empty()) {
      Close(Lost(absl::StrCat(
          "the server reported an error: ",
          StatusFromRpc(reply.status() == rpc::STATUS_OK ? rpc::STATUS_IO
                                                         : reply.status(),
                        reply.error())
              .message())));
      return;
    }
    it = in_flight_.begin();
  } else {
    it = in_flight_.find(reply.id());
    if (it == in_flight_.end()) {
      Close(Lost(absl::StrFormat(
          "protocol error: a reply for unknown request id %d", reply.id())));
      return;
    }
  }
  PendingCall call = std::move(it->second);
  in_flight_.erase(it);
  if (!call.done) {  // timed out before: drop the late reply.
    --timed_out_;
    return;
  }
  // A large payload stays where it was received (the reply holds the
  // block); a small one is copied, so it pins no block.
  OwnedBytes payload;
  if (frame.payload.size() >= kReplySliceMinBytes) {
    payload = reader_.Slice(frame.payload);
    rx_.payloads_sliced.Add(1);
    rx_.payload_bytes_sliced.Add(static_cast<int64_t>(frame.payload.size()));
  } else if (!frame.payload.empty()) {
    payload = OwnedBytes::Copy(frame.payload);
    rx_.payloads_copied.Add(1);
    rx_.payload_bytes_copied.Add(static_cast<int64_t>(frame.payload.size()));
  }
  CompoundReply r = CompoundAccess::MakeReply(
      std::move(reply), std::move(payload), &call.compound.request());
  if (absl::Status v = r.Validate(); !v.ok()) {
    FinishCall(loop_, call, v);
  } else {
    FinishCall(loop_, call, std::move(r));
  }
}

void Connection::Send(PendingCall call) {
  if (!open()) {
    FinishCall(
        loop_, call,
        error_.ok() ? absl::UnavailableError("connection closed") : error_);
    return;
  }
  absl::StatusOr<TxBuf> tx =
      CompoundAccess::BuildRequestFrame(ctx_, call.compound, call.id, limits_);
  if (!tx.ok()) {
    FinishCall(loop_, call, tx.status());
    return;
  }
  uint64_t id = call.id;
  in_flight_.emplace(id, std::move(call));
  stream_->Send(*std::move(tx));
}

bool Connection::TimeOut(uint64_t id, const absl::Status& why) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end() || !it->second.done) return false;
  it->second.timer = 0;  // it fired.
  ++timed_out_;
  // Keep the entry: a late reply is recognised and dropped.
  FinishCall(loop_, it->second, why);
  return true;
}

void Connection::Close(const absl::Status& why) {
  if (state_ == State::kNew) {  // never started: nothing in flight.
    state_ = State::kClosed;
    error_ = why;
    fd_.reset();
    return;
  }
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  error_ = why;
  if (callbacks_.on_closing) callbacks_.on_closing(this, why);
  std::map<uint64_t, PendingCall> pending;
  pending.swap(in_flight_);
  timed_out_ = 0;
  for (auto& [id, call] : pending) FinishCall(loop_, call, why);
  pending.clear();
  stream_->Close(TxSocket::CloseMode::kAbort, why);
}

}  // namespace txbuf::client::internal
