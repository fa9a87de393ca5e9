// client/internal/compound_access.h: how the connection turns a Compound into
// a request frame and a reply frame into a CompoundReply.
//
// Not for callers: the client library only.
//
// Thread-safety: BuildRequestFrame runs on the thread that owns `ctx` (the
// client's loop thread); MakeReply is thread-compatible.
#ifndef TXBUF_CLIENT_INTERNAL_COMPOUND_ACCESS_H_
#define TXBUF_CLIENT_INTERNAL_COMPOUND_ACCESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/compound.h"
#include "common/owned_bytes.h"
#include "common/txbuf.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::internal {

// The server's limits a request must respect (from its Hello).
struct RequestLimits {
  uint32_t max_envelope = 1 << 20;
  uint32_t max_payload = 64 << 20;
  uint32_t max_ops = 1024;
};

class CompoundAccess {
 public:
  // Sets the request id and builds the frame as one txbuf: header and
  // envelope staged, each WRITE buffer an external segment owned by its
  // Deleter. The compound's WRITE buffers move into the txbuf (also on
  // failure, where they are released at once). ResourceExhausted if the
  // compound is over a limit, InvalidArgument if it is invalid.
  //
  // Example:
  //   absl::StatusOr<TxBuf> tx =
  //       CompoundAccess::BuildRequestFrame(ctx, compound, 7, limits);
  static absl::StatusOr<TxBuf> BuildRequestFrame(TxBufContext& ctx,
                                                 Compound& compound,
                                                 uint64_t id,
                                                 const RequestLimits& limits);

  // Names `export_name` in the compound's PUTROOTFH ops that name none.
  static void SetDefaultExport(Compound& compound,
                               const std::string& export_name) {
    for (rpc::Op& op : *compound.request_.mutable_ops()) {
      if (op.has_putrootfh() && op.putrootfh().export_name().empty()) {
        op.mutable_putrootfh()->set_export_name(export_name);
      }
    }
  }

  // Drops a compound's WRITE buffers (their Deleters run) and ops, keeping
  // what a reply needs to be described.
  static void ReleasePayload(Compound& compound) { compound.payload_.clear(); }

  // A reply from a parsed envelope and the frame's payload bytes with their
  // owner (a copy, or a slice of the receive buffer: the caller's choice).
  // `request` (may be null) names the failing op in status().
  //
  // Example:
  //   CompoundReply r = CompoundAccess::MakeReply(
  //       std::move(env), reader.Slice(frame.payload), &request);
  static CompoundReply MakeReply(rpc::Reply reply, OwnedBytes payload,
                                 const rpc::Request* request);
};

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_COMPOUND_ACCESS_H_
