// reply_composer.h: a compound's reply frame as one txbuf.
//
// The reply frame is [frame header][Reply envelope][READ data]. The envelope
// is protobuf wire format, but it is never serialized into one big buffer:
// the top-level fields go into the staging page, each per-op result is
// serialized into its own slab object (kmalloc size class) and each
// directory entry of a READDIR into its own slab object, with the length
// prefixes computed up front. Objects shorter than the txbuf context's stage
// threshold are serialized straight into the staging page instead (the
// "buffered" kind); longer ones are referenced. READ data is referenced
// page-cache pages. So `--stage-threshold` switches between the two ideas of
// the reference thread: copy small kmalloc'd data, or reference it and free
// it in the destructor.
//
// Thread-safety: call on the event loop that owns `ctx`.
//
// Example:
//   absl::StatusOr<TxBuf> tx = ComposeReply(ctx, out, [](auto&) {});
//   socket->Send(*std::move(tx));
#ifndef TXBUF_SERVER_REPLY_COMPOSER_H_
#define TXBUF_SERVER_REPLY_COMPOSER_H_

#include "absl/status/statusor.h"
#include "common/frame.h"
#include "common/txbuf.h"
#include "google/protobuf/message_lite.h"
#include "server/executor.h"

namespace txbuf::server {

// The reply frame of `out` (its page references are moved into the txbuf).
absl::StatusOr<TxBuf> ComposeReply(TxBufContext& ctx, CompoundOutput& out,
                                   TxBufDestructor destructor);

// A frame with `msg` as its envelope and no payload (Hello, AuthReply,
// error replies), staged.
absl::StatusOr<TxBuf> ComposeFrame(TxBufContext& ctx, FrameType type,
                                   const google::protobuf::MessageLite& msg,
                                   TxBufDestructor destructor);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_REPLY_COMPOSER_H_
