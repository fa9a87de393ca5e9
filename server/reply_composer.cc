#include "server/reply_composer.h"

#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace txbuf::server {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

constexpr int kReplyResultsField = 4;  // Reply.results
constexpr int kOpResultReaddir = 8;    // OpResult.readdir
constexpr int kReadDirEntries = 1;     // ReadDirResult.entries

uint8_t* WriteLenPrefix(int field, size_t len, uint8_t* p) {
  p = WireFormatLite::WriteTagToArray(
      field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(len), p);
}

size_t LenPrefixSize(int field, size_t len) {
  return CodedOutputStream::VarintSize32(static_cast<uint32_t>(field << 3)) +
         CodedOutputStream::VarintSize32(static_cast<uint32_t>(len));
}

// Appends [prefix][msg] as a staged span, a slab object, or (over 8 KiB) a
// heap buffer, depending on its size.
void AppendMessage(TxBufContext& ctx, TxBufBuilder& b, int field,
                   const google::protobuf::MessageLite& msg, size_t size) {
  size_t total = LenPrefixSize(field, size) + size;
  auto write = [&](std::byte* dst) {
    auto* p = reinterpret_cast<uint8_t*>(dst);
    p = WriteLenPrefix(field, size, p);
    msg.SerializeWithCachedSizesToArray(p);
  };
  if (total < ctx.options().stage_threshold && total <= kPageSize) {
    absl::Span<std::byte> dst = b.AppendBuffered(total);
    if (!dst.empty()) write(dst.data());
    return;
  }
  if (SlabCache* cache = ctx.slabs().KmallocCache(total)) {
    SlabObject obj = SlabObject::Alloc(cache);
    if (obj) {
      write(obj.data());
      b.AppendSlab(std::move(obj), total);
      return;
    }
  }
  auto* heap = new std::string(total, '\0');
  write(reinterpret_cast<std::byte*>(heap->data()));
  b.AppendExternal(heap->data(), heap->size(),
                   Deleter::Of(std::unique_ptr<std::string>(heap)));
}

// A READDIR result: the OpResult and ReadDirResult headers, then each entry
// as its own object, then the eof field.
void AppendReaddir(TxBufContext& ctx, TxBufBuilder& b, const rpc::OpResult& res,
                   size_t op_size) {
  const rpc::ReadDirResult& rd = res.readdir();
  size_t rd_size = rd.GetCachedSize();
  // OpResult fields before `readdir`: status (1) and error (2).
  rpc::OpResult head;
  head.set_status(res.status());
  head.set_error(res.error());
  size_t head_size = head.ByteSizeLong();
  size_t prefix = LenPrefixSize(kReplyResultsField, op_size) + head_size +
                  LenPrefixSize(kOpResultReaddir, rd_size);
  std::string tmp(prefix, '\0');
  auto* p = reinterpret_cast<uint8_t*>(tmp.data());
  p = WriteLenPrefix(kReplyResultsField, op_size, p);
  p = head.SerializeWithCachedSizesToArray(p);
  WriteLenPrefix(kOpResultReaddir, rd_size, p);
  b.AppendBytes(tmp.data(), tmp.size());
  for (const rpc::DirEntry& e : rd.entries()) {
    AppendMessage(ctx, b, kReadDirEntries, e, e.GetCachedSize());
  }
  if (rd.eof()) {
    uint8_t eof[2] = {static_cast<uint8_t>((2 << 3) | 0), 1};  // eof = true
    b.AppendBytes(eof, sizeof(eof));
  }
}

}  // namespace

absl::StatusOr<TxBuf> ComposeReply(TxBufContext& ctx, CompoundOutput& out,
                                   TxBufDestructor destructor) {
  rpc::Reply& reply = out.reply;
  // Sizes first (this also caches every nested size for serialization).
  size_t total = reply.ByteSizeLong();
  rpc::Reply head;
  head.set_id(reply.id());
  head.set_status(reply.status());
  head.set_error(reply.error());
  size_t head_size = head.ByteSizeLong();

  TxBufBuilder b(ctx);
  // Frame header and top-level fields straight into the staging page (the
  // executor caps error texts, so they fit).
  absl::Span<std::byte> first = b.AppendBuffered(kFrameHeaderSize + head_size);
  if (first.empty()) return b.Finish(std::move(destructor));  // the error
  EncodeFrameHeader({FrameType::kReply, 0, static_cast<uint32_t>(total),
                     static_cast<uint32_t>(out.payload_bytes)},
                    first.data());
  head.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(first.data()) + kFrameHeaderSize);
  for (const rpc::OpResult& res : reply.results()) {
    size_t op_size = res.GetCachedSize();
    if (res.has_readdir() && res.readdir().entries_size() > 0) {
      AppendReaddir(ctx, b, res, op_size);
    } else {
      AppendMessage(ctx, b, kReplyResultsField, res, op_size);
    }
  }
  for (PageSlice& s : out.payload) {
    b.AppendPage(std::move(s.page), s.offset, s.len);
  }
  out.payload.clear();
  return b.Finish(std::move(destructor));
}

absl::StatusOr<TxBuf> ComposeFrame(TxBufContext& ctx, FrameType type,
                                   const google::protobuf::MessageLite& msg,
                                   TxBufDestructor destructor) {
  size_t size = msg.ByteSizeLong();
  std::string bytes(kFrameHeaderSize + size, '\0');
  EncodeFrameHeader({type, 0, static_cast<uint32_t>(size), 0},
                    reinterpret_cast<std::byte*>(bytes.data()));
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(bytes.data()) +
                                      kFrameHeaderSize);
  TxBufBuilder b(ctx);
  b.AppendBytes(bytes.data(), bytes.size());
  return b.Finish(std::move(destructor));
}

}  // namespace txbuf::server
