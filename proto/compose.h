// proto/compose.h: frames composed as txbufs, without serializing a message
// into one big buffer: the reply frame of a compound, and a frame holding one
// small message (Hello, AuthReply, error replies).
//
// A reply frame is [frame header][Reply envelope][READ data]. The envelope
// is protobuf wire format, written piece by piece: the Reply's own fields go
// into the staging page, each per-op result is serialized into its own slab
// object (kmalloc size class) and each directory entry of a READDIR into its
// own slab object, with the length prefixes computed up front from the
// generated field numbers. Objects shorter than the txbuf context's stage
// threshold are serialized straight into the staging page instead (the
// "buffered" kind); longer ones are referenced. The READ data is whatever the
// caller appends (the server: page-cache pages, referenced, never copied).
// So `--stage-threshold` switches between the two ideas of the reference
// thread: copy small kmalloc'd data, or reference it and free it in the
// destructor. A request frame (the client's) is [frame header][Request
// envelope, staged][WRITE data, appended by the caller].
//
// The envelope is byte for byte what `Reply::SerializeToString` gives, every
// field included: those this code names (results, an op's readdir, a
// directory's entries) and every other one, known or unknown, is written as
// the generated serializer writes it (proto/compose_test.cc checks
// this).
//
// Thread-safety: call on the event loop that owns `ctx`.
//
// Example:
//   absl::StatusOr<TxBuf> tx = ComposeReplyFrame(
//       ctx, reply, payload_bytes,
//       [&](TxBufBuilder& b) { b.AppendPage(page, 0, payload_bytes); },
//       [](const TxBufCompletion&) { /* memory is back */ });
//   socket->Send(*std::move(tx));
#ifndef TXBUF_PROTO_COMPOSE_H_
#define TXBUF_PROTO_COMPOSE_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/txbuf.h"
#include "google/protobuf/message_lite.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"

namespace txbuf {

// The Reply frame of `reply`, announcing `payload_len` payload bytes, which
// `append_payload` appends after the envelope (it is not called if the
// envelope could not be composed: then the error is returned).
//
// `reply` is left as it was, except for the sizes its messages cache
// (GetCachedSize()): call ByteSizeLong() before serializing it again with
// cached sizes.
absl::StatusOr<TxBuf> ComposeReplyFrame(
    TxBufContext& ctx, rpc::Reply& reply, uint64_t payload_len,
    absl::FunctionRef<void(TxBufBuilder&)> append_payload,
    TxBufDestructor destructor);

// The Request frame of `request`, whose sizes are cached (ByteSizeLong()
// called since its last change), announcing `payload_len` payload bytes
// that `append_payload` appends after the envelope (the WRITE data). The
// header and envelope are staged, in one piece when they fit a page.
// `append_payload` is always called: on error, what it appends is released
// by the failed builder.
//
// Example:
//   request.ByteSizeLong();
//   absl::StatusOr<TxBuf> tx = ComposeRequestFrame(
//       ctx, request, data.size(), [&](TxBufBuilder& b) {
//         b.AppendExternal(data.data(), data.size(), std::move(release));
//       });
absl::StatusOr<TxBuf> ComposeRequestFrame(
    TxBufContext& ctx, const rpc::Request& request, uint64_t payload_len,
    absl::FunctionRef<void(TxBufBuilder&)> append_payload,
    TxBufDestructor destructor = nullptr);

// A frame of `type` with `msg` as its envelope and no payload, staged.
//
// Example:
//   absl::StatusOr<TxBuf> tx =
//       ComposeFrame(ctx, FrameType::kHello, hello, nullptr);
absl::StatusOr<TxBuf> ComposeFrame(TxBufContext& ctx, FrameType type,
                                   const google::protobuf::MessageLite& msg,
                                   TxBufDestructor destructor);

}  // namespace txbuf

#endif  // TXBUF_PROTO_COMPOSE_H_
