#include "proto/compose.h"

#include <cstring>
#include <string>

#include "absl/container/inlined_vector.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/wire_format_lite.h"

namespace txbuf {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

// The fields written piece by piece; every other field is serialized by the
// generated code.
constexpr int kReplyResults = rpc::Reply::kResultsFieldNumber;
constexpr int kOpResultReaddir = rpc::OpResult::kReaddirFieldNumber;
constexpr int kReadDirEntries = rpc::ReadDirResult::kEntriesFieldNumber;

uint8_t* WriteLenPrefix(int field, size_t len, uint8_t* p) {
  p = WireFormatLite::WriteTagToArray(
      field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(len), p);
}

size_t LenPrefixSize(int field, size_t len) {
  return WireFormatLite::TagSize(field, WireFormatLite::TYPE_MESSAGE) +
         CodedOutputStream::VarintSize32(static_cast<uint32_t>(len));
}

// A message's fields but one, serialized and cut in two: the generated
// serializer writes known fields in field-number order and unknown fields
// last, so the message is [before][the one field][after].
struct FieldsAround {
  absl::InlinedVector<uint8_t, 128> bytes;
  size_t split = 0;  // where `after` begins in `bytes`

  absl::Span<const uint8_t> before() const { return {bytes.data(), split}; }
  absl::Span<const uint8_t> after() const {
    return {bytes.data() + split, bytes.size() - split};
  }
};

// Serializes `msg` without `field` and cuts where the fields that follow it
// begin. `detach` is called twice: to take `field` out of `msg` (no copy),
// then to put it back.
template <typename Message, typename Detach>
FieldsAround SerializeAround(Message& msg, int field, Detach detach) {
  FieldsAround out;
  detach();
  out.bytes.resize(msg.ByteSizeLong());
  msg.SerializeWithCachedSizesToArray(out.bytes.data());
  detach();
  CodedInputStream in(out.bytes.data(), static_cast<int>(out.bytes.size()));
  uint32_t last = 0;
  for (;;) {
    out.split = static_cast<size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    const uint32_t number = WireFormatLite::GetTagFieldNumber(tag);
    // The end, a field after `field`, or the unknown fields (which need
    // not be in order).
    if (tag == 0 || number > static_cast<uint32_t>(field) || number < last ||
        !WireFormatLite::SkipField(&in, tag)) {
      break;
    }
    last = number;
  }
  return out;
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

// A READDIR result (sizes cached): the OpResult's other fields and the
// ReadDirResult's prefix, then each entry as its own object, then the
// ReadDirResult's and the OpResult's fields that follow.
void AppendReaddir(TxBufContext& ctx, TxBufBuilder& b, rpc::OpResult& res) {
  const size_t op_size = res.GetCachedSize();
  rpc::ReadDirResult* rd = res.mutable_readdir();
  const size_t rd_size = rd->GetCachedSize();
  bool detached = false;
  FieldsAround op_fields = SerializeAround(res, kOpResultReaddir, [&] {
    if (detached) {
      res.unsafe_arena_set_allocated_readdir(rd);
    } else {
      res.unsafe_arena_release_readdir();
    }
    detached = !detached;
  });
  google::protobuf::RepeatedPtrField<rpc::DirEntry> entries;
  FieldsAround rd_fields = SerializeAround(
      *rd, kReadDirEntries, [&] { entries.Swap(rd->mutable_entries()); });

  absl::InlinedVector<uint8_t, 128> prefix(
      LenPrefixSize(kReplyResults, op_size) + op_fields.before().size() +
      LenPrefixSize(kOpResultReaddir, rd_size) + rd_fields.before().size());
  uint8_t* p = prefix.data();
  p = WriteLenPrefix(kReplyResults, op_size, p);
  std::memcpy(p, op_fields.before().data(), op_fields.before().size());
  p += op_fields.before().size();
  p = WriteLenPrefix(kOpResultReaddir, rd_size, p);
  std::memcpy(p, rd_fields.before().data(), rd_fields.before().size());
  b.AppendBytes(prefix.data(), prefix.size());
  for (const rpc::DirEntry& e : rd->entries()) {
    AppendMessage(ctx, b, kReadDirEntries, e, e.GetCachedSize());
  }
  if (!rd_fields.after().empty()) {  // e.g. eof
    b.AppendBytes(rd_fields.after().data(), rd_fields.after().size());
  }
  if (!op_fields.after().empty()) {
    b.AppendBytes(op_fields.after().data(), op_fields.after().size());
  }
}

}  // namespace

absl::StatusOr<TxBuf> ComposeReplyFrame(
    TxBufContext& ctx, rpc::Reply& reply, uint64_t payload_len,
    absl::FunctionRef<void(TxBufBuilder&)> append_payload,
    TxBufDestructor destructor) {
  // The Reply's fields but `results` first: sizing the whole message next
  // caches every nested size for the serialization below.
  google::protobuf::RepeatedPtrField<rpc::OpResult> results;
  FieldsAround reply_fields = SerializeAround(
      reply, kReplyResults, [&] { results.Swap(reply.mutable_results()); });
  const size_t total = reply.ByteSizeLong();

  TxBufBuilder b(ctx);
  // Frame header and the fields before `results` straight into the staging
  // page (the executor caps error texts, so they fit).
  absl::Span<std::byte> first =
      b.AppendBuffered(kFrameHeaderSize + reply_fields.before().size());
  if (first.empty()) return b.Finish(std::move(destructor));  // the error
  EncodeFrameHeader({FrameType::kReply, 0, static_cast<uint32_t>(total),
                     static_cast<uint32_t>(payload_len)},
                    first.data());
  std::memcpy(first.data() + kFrameHeaderSize, reply_fields.before().data(),
              reply_fields.before().size());
  for (rpc::OpResult& res : *reply.mutable_results()) {
    if (res.has_readdir() && res.readdir().entries_size() > 0) {
      AppendReaddir(ctx, b, res);
    } else {
      AppendMessage(ctx, b, kReplyResults, res, res.GetCachedSize());
    }
  }
  if (!reply_fields.after().empty()) {
    b.AppendBytes(reply_fields.after().data(), reply_fields.after().size());
  }
  append_payload(b);
  return b.Finish(std::move(destructor));
}

absl::StatusOr<TxBuf> ComposeRequestFrame(
    TxBufContext& ctx, const rpc::Request& request, uint64_t payload_len,
    absl::FunctionRef<void(TxBufBuilder&)> append_payload,
    TxBufDestructor destructor) {
  const size_t envelope_len = request.GetCachedSize();
  const FrameHeader h{.type = FrameType::kRequest,
                      .flags = 0,
                      .envelope_len = static_cast<uint32_t>(envelope_len),
                      .payload_len = static_cast<uint32_t>(payload_len)};
  TxBufBuilder b(ctx);
  const size_t head = kFrameHeaderSize + envelope_len;
  if (head <= kPageSize) {
    absl::Span<std::byte> out = b.AppendBuffered(head);
    if (!out.empty()) {
      EncodeFrameHeader(h, out.data());
      request.SerializeWithCachedSizesToArray(
          reinterpret_cast<uint8_t*>(out.data() + kFrameHeaderSize));
    }
  } else {
    std::string buf(head, '\0');
    EncodeFrameHeader(h, reinterpret_cast<std::byte*>(buf.data()));
    request.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(buf.data() + kFrameHeaderSize));
    b.AppendBytes(buf.data(), buf.size());
  }
  append_payload(b);
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

}  // namespace txbuf
