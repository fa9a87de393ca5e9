// corpus_gen: writes the committed seed corpus of the fuzz targets.
//
//   fuzz_corpus_gen DIR    writes DIR/frame_reader_fuzz/* and
//                          DIR/executor_fuzz/*
//
// scripts/run-fuzz.sh --regen-corpus runs it on fuzz/corpus. Every seed is
// built here from the protocol's own types, so the corpus can be regenerated
// after a protocol change; the malformed seeds are malformed on purpose.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "proto/frame.h"
#include "proto/txbuf.pb.h"

namespace {

using txbuf::rpc::Op;
using txbuf::rpc::Request;

void WriteSeed(const std::string& dir, const std::string& name,
               const std::string& bytes) {
  std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "corpus_gen: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::string Frame(txbuf::FrameType type, const std::string& envelope,
                  const std::string& payload = "") {
  return txbuf::EncodeFrame(type, envelope, payload);
}

// ---- frame_reader_fuzz -----------------------------------------------------
//
// Its input is the stream followed by the values FuzzedDataProvider takes
// from the end (limits, then per chunk: size, WritableSpan request, Shrink).
// FuzzedDataProvider reads a value's bytes from the end, most significant
// first; so each value is stored little-endian and the first value read is
// the last one in the file.

struct Chunk {
  size_t size;
  size_t min_bytes = 4096;
  bool shrink = false;
};

// Bytes FuzzedDataProvider::ConsumeIntegralInRange<T> reads for `range`.
size_t BytesFor(uint64_t range, size_t type_bytes) {
  size_t n = 0;
  for (size_t off = 0; off < type_bytes * 8 && (range >> off) > 0; off += 8) {
    ++n;
  }
  return n;
}

class TailWriter {
 public:
  void Add(uint64_t value, uint64_t min, uint64_t max, size_t type_bytes) {
    std::string le;
    uint64_t v = value - min;
    for (size_t i = 0; i < BytesFor(max - min, type_bytes); ++i) {
      le.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    values_.push_back(le);
  }
  std::string Bytes() const {  // first value read last in the file
    std::string out;
    for (auto it = values_.rbegin(); it != values_.rend(); ++it) out += *it;
    return out;
  }

 private:
  std::vector<std::string> values_;
};

std::string FrameReaderSeed(const std::string& stream,
                            const std::vector<size_t>& cuts,
                            uint32_t max_envelope = 1 << 16,
                            uint32_t max_payload = 1 << 20) {
  // Same ranges as frame_reader_fuzz.cc.
  TailWriter tail;
  tail.Add(max_envelope, 0, 1 << 16, 4);
  tail.Add(max_payload, 0, 1 << 20, 4);
  std::vector<Chunk> chunks;
  size_t at = 0;
  for (size_t i = 0; at < stream.size(); ++i) {
    size_t n =
        std::min(i < cuts.size() ? cuts[i] : size_t{8192}, stream.size() - at);
    chunks.push_back({n, i % 2 == 0 ? 4096u : 64u, i == 2});
    at += n;
  }
  for (const Chunk& c : chunks) {
    tail.Add(c.size, 1, 8192, 8);
    tail.Add(c.min_bytes, 1, 64 << 10, 8);
    tail.Add(c.shrink ? 1 : 0, 0, 255, 1);
  }
  std::string seed = stream + tail.Bytes();

  // Decode it the way the target does: the chunks must come back.
  FuzzedDataProvider fdp(reinterpret_cast<const uint8_t*>(seed.data()),
                         seed.size());
  bool ok = fdp.ConsumeIntegralInRange<uint32_t>(0, 1 << 16) == max_envelope &&
            fdp.ConsumeIntegralInRange<uint32_t>(0, 1 << 20) == max_payload;
  std::string back;
  for (const Chunk& c : chunks) {
    ok = ok && fdp.ConsumeIntegralInRange<size_t>(1, 8192) == c.size &&
         fdp.ConsumeIntegralInRange<size_t>(1, 64 << 10) == c.min_bytes &&
         fdp.ConsumeBool() == c.shrink;
    std::vector<uint8_t> b = fdp.ConsumeBytes<uint8_t>(c.size);
    back.append(b.begin(), b.end());
  }
  if (!ok || back != stream || fdp.remaining_bytes() != 0) {
    std::fprintf(stderr, "corpus_gen: frame reader seed does not decode\n");
    std::exit(1);
  }
  return seed;
}

Op PutRoot() {
  Op op;
  op.mutable_putrootfh();
  return op;
}
Op Lookup(const std::string& path) {
  Op op;
  op.mutable_lookup()->set_path(path);
  return op;
}
Op Read(uint64_t offset, uint32_t length) {
  Op op;
  op.mutable_read()->set_offset(offset);
  op.mutable_read()->set_length(length);
  return op;
}
Op Write(uint64_t offset, uint32_t length, uint64_t payload_offset,
         txbuf::rpc::Stability stable = txbuf::rpc::STABILITY_UNSTABLE) {
  Op op;
  txbuf::rpc::Write* w = op.mutable_write();
  w->set_offset(offset);
  w->set_length(length);
  w->set_payload_offset(payload_offset);
  w->set_stable(stable);
  return op;
}
Op ReadDir(uint64_t cookie, uint32_t max, bool attrs) {
  Op op;
  op.mutable_readdir()->set_cookie(cookie);
  op.mutable_readdir()->set_max_entries(max);
  op.mutable_readdir()->set_with_attrs(attrs);
  return op;
}
Op Create(const std::string& name, bool exclusive) {
  Op op;
  op.mutable_create()->set_name(name);
  op.mutable_create()->set_mode(0644);
  op.mutable_create()->set_exclusive(exclusive);
  return op;
}
Op Mkdir(const std::string& name) {
  Op op;
  op.mutable_mkdir()->set_name(name);
  op.mutable_mkdir()->set_mode(0755);
  return op;
}
Op Remove(const std::string& name) {
  Op op;
  op.mutable_remove()->set_name(name);
  return op;
}
Op Rmdir(const std::string& name) {
  Op op;
  op.mutable_rmdir()->set_name(name);
  return op;
}
Op Rename(const std::string& from, const std::string& to,
          const std::string& to_dir = "") {
  Op op;
  op.mutable_rename()->set_from_name(from);
  op.mutable_rename()->set_to_name(to);
  op.mutable_rename()->set_to_dir(to_dir);
  return op;
}
Op PutFh(const std::string& fh) {
  Op op;
  op.mutable_putfh()->set_fh(fh);
  return op;
}
Op Simple(int which) {
  Op op;
  switch (which) {
    case 0:
      op.mutable_getfh();
      break;
    case 1:
      op.mutable_getattr();
      break;
    case 2:
      op.mutable_commit();
      break;
    case 3:
      op.mutable_statfs();
      break;
    default:
      op.mutable_stats();
      break;
  }
  return op;
}
Op GetFh() { return Simple(0); }
Op GetAttr() { return Simple(1); }
Op Commit() { return Simple(2); }

Request Req(uint64_t id, std::vector<Op> ops) {
  Request r;
  r.set_id(id);
  for (Op& op : ops) *r.add_ops() = std::move(op);
  return r;
}

// ---- executor_fuzz: [u32 LE envelope length][envelope][payload] -----------

std::string ExecutorSeed(const std::string& envelope,
                         const std::string& payload = "") {
  std::string s(4, '\0');
  uint32_t n = static_cast<uint32_t>(envelope.size());
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s + envelope + payload;
}
std::string ExecutorSeed(const Request& r, const std::string& payload = "") {
  return ExecutorSeed(r.SerializeAsString(), payload);
}

// A short handle: executor_fuzz rewrites it into a handle of node `id`.
std::string NodeId(uint8_t id) { return std::string(1, static_cast<char>(id)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  const std::string fr = root + "/frame_reader_fuzz";
  const std::string ex = root + "/executor_fuzz";
  mkdir(root.c_str(), 0755);
  mkdir(fr.c_str(), 0755);
  mkdir(ex.c_str(), 0755);

  using txbuf::FrameType;
  const std::string data(300, 'w');

  // Requests, shared by both targets.
  Request read_req =
      Req(1, {PutRoot(), Lookup("dir/b.txt"), GetAttr(), Read(0, 8192)});
  Request write_req =
      Req(2, {PutRoot(), Create("new.txt", false), Write(0, 100, 0),
              Write(4000, 200, 100), Read(0, 4300), Commit()});
  Request readdir_req = Req(3, {PutRoot(), ReadDir(0, 0, true), Lookup("dir"),
                                ReadDir(0, 1, false), ReadDir(0, 2, true)});

  // frame_reader_fuzz: valid streams, whole and in awkward chunks.
  txbuf::rpc::Hello hello;
  hello.set_version(1);
  hello.set_server_nonce(std::string(32, 'n'));
  hello.set_max_envelope(1 << 20);
  hello.set_max_payload(64 << 20);
  hello.set_max_ops(1024);
  hello.set_max_read(16 << 20);
  hello.set_max_reply_payload(64 << 20);
  const std::string hello_f =
      Frame(FrameType::kHello, hello.SerializeAsString());
  const std::string read_f =
      Frame(FrameType::kRequest, read_req.SerializeAsString());
  const std::string write_f =
      Frame(FrameType::kRequest, write_req.SerializeAsString(), data);
  const std::string readdir_f =
      Frame(FrameType::kRequest, readdir_req.SerializeAsString());
  txbuf::rpc::AuthRequest auth;
  auth.set_client_nonce(std::string(32, 'c'));
  auth.set_mac(std::string(32, 'm'));
  const std::string auth_f =
      Frame(FrameType::kAuthRequest, auth.SerializeAsString());
  txbuf::rpc::Reply reply;
  reply.set_id(1);
  reply.add_results()->mutable_read()->set_length(5);
  const std::string reply_f =
      Frame(FrameType::kReply, reply.SerializeAsString(), "hello");

  WriteSeed(fr, "hello", FrameReaderSeed(hello_f, {}));
  WriteSeed(fr, "request_read_split_header", FrameReaderSeed(read_f, {5, 9}));
  WriteSeed(fr, "request_write_payload_small_chunks",
            FrameReaderSeed(write_f, std::vector<size_t>(64, 7)));
  WriteSeed(fr, "three_requests_one_chunk",
            FrameReaderSeed(read_f + write_f + readdir_f, {}));
  WriteSeed(fr, "auth_then_reply", FrameReaderSeed(auth_f + reply_f, {20}));
  WriteSeed(fr, "empty_frames",
            FrameReaderSeed(
                Frame(FrameType::kRequest, "") + Frame(FrameType::kHello, ""),
                {16, 1}));
  // Malformed.
  std::string bad_magic = read_f;
  bad_magic[0] = 'X';
  WriteSeed(fr, "bad_magic", FrameReaderSeed(bad_magic, {}));
  std::string bad_type = read_f;
  bad_type[5] = 9;
  WriteSeed(fr, "valid_then_unknown_type",
            FrameReaderSeed(hello_f + bad_type, {}));
  std::string bad_flags = read_f;
  bad_flags[6] = 1;
  WriteSeed(fr, "nonzero_flags", FrameReaderSeed(bad_flags, {}));
  WriteSeed(fr, "envelope_over_limit",
            FrameReaderSeed(read_f, {}, /*max_envelope=*/8));
  WriteSeed(fr, "payload_over_limit",
            FrameReaderSeed(write_f, {}, 1 << 16, /*max_payload=*/64));
  std::string big(txbuf::kFrameHeaderSize, '\0');
  txbuf::EncodeFrameHeader({FrameType::kRequest, 0, 100, 1 << 20},
                           reinterpret_cast<std::byte*>(big.data()));
  WriteSeed(fr, "header_announces_1mib_sends_20_bytes",
            FrameReaderSeed(big + std::string(20, 'x'), {16, 20}));
  WriteSeed(fr, "truncated_header", FrameReaderSeed(read_f.substr(0, 11), {}));

  // executor_fuzz.
  WriteSeed(ex, "root_getfh_getattr",
            ExecutorSeed(Req(10, {PutRoot(), GetFh(), GetAttr()})));
  WriteSeed(ex, "lookup_read", ExecutorSeed(read_req));
  WriteSeed(ex, "create_write_read_commit", ExecutorSeed(write_req, data));
  WriteSeed(ex, "write_file_sync",
            ExecutorSeed(
                Req(11, {PutRoot(), Lookup("a.txt"),
                         Write(9000, 300, 0, txbuf::rpc::STABILITY_FILE_SYNC),
                         Read(8192, 4096)}),
                data));
  WriteSeed(ex, "readdir", ExecutorSeed(readdir_req));
  WriteSeed(
      ex, "mkdir_create_rename_remove_rmdir",
      ExecutorSeed(Req(12, {PutRoot(), Mkdir("d"), Create("f", true), PutRoot(),
                            Lookup("d"), Rename("f", "g", NodeId(1)), PutRoot(),
                            Remove("g"), Rmdir("d")})));
  WriteSeed(ex, "symlinks_inside",
            ExecutorSeed(
                Req(13, {PutRoot(), Lookup("link_in"), Read(0, 100), PutRoot(),
                         Lookup("link_dir/sub/c.bin"), Read(8000, 1000)})));
  {
    Request r = Req(14, {PutRoot(), Lookup("a.txt"), Simple(1)});
    txbuf::rpc::SetAttr* sa = r.add_ops()->mutable_setattr();
    sa->set_mode(0600);
    sa->set_size(5000);
    sa->set_mtime_ns(-1);
    *r.add_ops() = Read(0, 10000);
    WriteSeed(ex, "setattr_truncate", ExecutorSeed(r));
  }
  WriteSeed(ex, "putfh_short_handles_statfs_stats",
            ExecutorSeed(
                Req(15, {PutFh(NodeId(1)), ReadDir(0, 0, true),
                         PutFh(NodeId(2)), GetAttr(), Simple(3), Simple(4)})));
  // Malformed or hostile.
  WriteSeed(ex, "symlink_out",
            ExecutorSeed(
                Req(16, {PutRoot(), Lookup("link_out/secret"), Read(0, 100)})));
  WriteSeed(
      ex, "symlink_up",
      ExecutorSeed(Req(17, {PutRoot(), Lookup("link_up"), Read(0, 100)})));
  WriteSeed(ex, "dotdot",
            ExecutorSeed(Req(18, {PutRoot(), Lookup("../outside/secret")})));
  WriteSeed(ex, "absolute",
            ExecutorSeed(Req(19, {PutRoot(), Lookup("/etc/passwd")})));
  WriteSeed(ex, "create_through_symlink",
            ExecutorSeed(
                Req(20, {PutRoot(), Create("link_up", false), Write(0, 10, 0)}),
                data));
  WriteSeed(
      ex, "write_outside_payload",
      ExecutorSeed(Req(21, {PutRoot(), Lookup("a.txt"), Write(0, 100, 250)}),
                   data));
  WriteSeed(ex, "no_current_fh", ExecutorSeed(Req(22, {Read(0, 1), GetFh()})));
  WriteSeed(ex, "forged_handle",
            ExecutorSeed(Req(23, {PutFh("TXH\x01xxxxxxxxyyyyyyyy")})));
  {
    std::vector<Op> many(40, PutRoot());
    WriteSeed(ex, "too_many_ops", ExecutorSeed(Req(24, many)));
  }
  WriteSeed(ex, "read_over_limit",
            ExecutorSeed(Req(
                25, {PutRoot(), Lookup("a.txt"), Read(1ull << 62, 17 << 20)})));
  WriteSeed(ex, "empty_op", ExecutorSeed(Req(26, {Op()})));
  WriteSeed(ex, "garbage_envelope",
            ExecutorSeed(std::string("\x0a\xff\xff\x01garbage", 11)));
  std::printf("corpus_gen: wrote %s and %s\n", fr.c_str(), ex.c_str());
  return 0;
}
