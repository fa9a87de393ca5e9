// proto/testing/wire.h: a composed frame cut back into its parts, for tests
// that check what an encoder produced (proto/compose_test.cc,
// server/compound/reply_composer_test.cc).
//
// Thread-safety: a plain function of its argument.
//
// Example:
//   testing::WireFrame w = testing::CutFrame(*tx);
//   rpc::Reply reply;
//   ASSERT_TRUE(reply.ParseFromString(w.envelope));
#ifndef TXBUF_PROTO_TESTING_WIRE_H_
#define TXBUF_PROTO_TESTING_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/txbuf.h"
#include "gtest/gtest.h"
#include "proto/frame.h"

namespace txbuf::testing {

// A frame's header, envelope and payload.
struct WireFrame {
  FrameHeader header;
  std::string envelope;
  std::string payload;
};

// The frame's parts, copied out of `tx`; a gtest failure (and empty parts)
// if `tx` is not exactly one well-formed frame.
inline WireFrame CutFrame(const TxBuf& tx) {
  std::string bytes(tx.size(), '\0');
  tx.CopyTo({reinterpret_cast<std::byte*>(bytes.data()), bytes.size()});
  WireFrame w;
  EXPECT_GE(bytes.size(), kFrameHeaderSize);
  if (bytes.size() < kFrameHeaderSize) return w;
  absl::StatusOr<FrameHeader> h = DecodeFrameHeader(
      {reinterpret_cast<const std::byte*>(bytes.data()), kFrameHeaderSize},
      {.max_envelope = UINT32_MAX, .max_payload = UINT32_MAX});
  EXPECT_TRUE(h.ok()) << h.status();
  if (!h.ok()) return w;
  w.header = *h;
  EXPECT_EQ(bytes.size(),
            kFrameHeaderSize + size_t{h->envelope_len} + h->payload_len);
  w.envelope = bytes.substr(kFrameHeaderSize, h->envelope_len);
  w.payload = bytes.substr(kFrameHeaderSize + h->envelope_len);
  return w;
}

}  // namespace txbuf::testing

#endif  // TXBUF_PROTO_TESTING_WIRE_H_
