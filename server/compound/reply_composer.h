// server/compound/reply_composer.h: a compound's output (its Reply and the READ
// data as page-cache slices) as one reply frame, through proto/compose.h: the
// pages are referenced, never copied.
//
// Thread-safety: call on the event loop that owns `ctx`.
//
// Example:
//   absl::StatusOr<TxBuf> tx = ComposeReply(ctx, out, [](auto&) {});
//   socket->Send(*std::move(tx));
#ifndef TXBUF_SERVER_COMPOUND_REPLY_COMPOSER_H_
#define TXBUF_SERVER_COMPOUND_REPLY_COMPOSER_H_

#include "absl/status/statusor.h"
#include "common/txbuf.h"
#include "proto/compose.h"
#include "server/compound/executor.h"

namespace txbuf::server {

// The reply frame of `out` (its page references are moved into the txbuf;
// on error they stay in `out.payload`).
absl::StatusOr<TxBuf> ComposeReply(TxBufContext& ctx, CompoundOutput& out,
                                   TxBufDestructor destructor);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_COMPOUND_REPLY_COMPOSER_H_
