#include "server/compound/reply_composer.h"

#include <utility>

namespace txbuf::server {

absl::StatusOr<TxBuf> ComposeReply(TxBufContext& ctx, CompoundOutput& out,
                                   TxBufDestructor destructor) {
  return ComposeReplyFrame(
      ctx, out.reply, out.payload_bytes,
      [&out](TxBufBuilder& b) {
        for (PageSlice& s : out.payload) {
          b.AppendPage(std::move(s.page), s.offset, s.len);
        }
        out.payload.clear();
      },
      std::move(destructor));
}

}  // namespace txbuf::server
