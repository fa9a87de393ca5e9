// client/compound.h: one compound request (NFSv4 style) and its reply.
//
// A `Compound` is the list of ops of one txbuf RPC request, built with chained
// calls that mirror docs/PROTOCOL.md section 3. The ops run on the server in
// order against a *current file handle* (CFH) and stop at the first failure:
//
//   txbuf::client::Compound c;
//   c.PutRootFh().Lookup("a/b").GetAttr().Read(0, 1 << 20);
//
// WRITE data is never copied into the protobuf envelope: each WRITE's bytes
// become a segment of the request frame's payload, referenced in place
// (buffers of 1 KiB and more) or staged (smaller ones), and the caller's
// `txbuf::Deleter` runs exactly once when the bytes are no longer needed:
// after the kernel is done with them, or at once if the compound is dropped
// unsent. Until then the caller must neither change nor free the buffer.
//
// A `CompoundReply` is the server's answer: the parsed `rpc::Reply` and the
// reply payload, with helpers to read each op's result, the data of each
// READ, and an absl::Status for the failing op. The payload is an
// `OwnedBytes`: for a large payload (client::kReplySliceMinBytes and more)
// it is the slice of the client's receive buffer the bytes arrived in, held
// by a reference to that buffer, not a copy; a smaller one is copied out, so
// that holding many small replies pins only their own bytes. Either way the
// bytes stay valid and unchanged while the reply lives, and dropping the
// reply (on any thread) releases them.
//
// Thread-safety: thread-compatible. A Compound may be built on any thread and
// handed to Client::Submit(); a CompoundReply may be read and destroyed on
// any thread.
#ifndef TXBUF_CLIENT_COMPOUND_H_
#define TXBUF_CLIENT_COMPOUND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/deleter.h"
#include "common/owned_bytes.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client {

namespace internal {
class CompoundAccess;
}  // namespace internal

// Reply payloads of this many bytes and more are handed to the CompoundReply
// in place, as a slice of the receive buffer they arrived in (no copy); the
// slice keeps that whole buffer (up to about 1 MiB for 1 MiB READs, at most
// the largest reply frame received plus 256 KiB) from being reused or freed
// until the reply is dropped. Smaller payloads are copied, so a caller that
// holds many small replies holds only their bytes. Client::receive_stats()
// counts both.
inline constexpr size_t kReplySliceMinBytes = 64 * 1024;

// A time value for SetAttrArgs meaning "the server's current time".
inline constexpr int64_t kTimeNow = -1;

// The attributes SETATTR changes; unset fields are left alone.
struct SetAttrArgs {
  std::optional<uint32_t> mode;     // permission bits (07777)
  std::optional<uint64_t> size;     // truncate or extend
  std::optional<int64_t> atime_ns;  // ns since the epoch, or kTimeNow
  std::optional<int64_t> mtime_ns;  // ns since the epoch, or kTimeNow
};

class Compound {
 public:
  Compound() = default;
  Compound(Compound&&) noexcept = default;
  Compound& operator=(Compound&&) noexcept = default;
  Compound(const Compound&) = delete;
  Compound& operator=(const Compound&) = delete;
  // Releases (runs the Deleters of) WRITE buffers that were never sent.
  ~Compound() = default;

  // CFH := the root of the export named `export_name`; without a name, the
  // export of ClientOptions::export_name, or else the server's first one.
  //
  // Example:
  //   c.PutRootFh().ReadDir();        // list the root
  //   c.PutRootFh("scratch").GetFh();  // the root of export "scratch"
  Compound& PutRootFh(absl::string_view export_name = {});

  // CFH := `fh`, a handle from an earlier reply (FhResult.fh).
  //
  // Example:
  //   c.PutFh(fh).Read(offset, 1 << 20);
  Compound& PutFh(absl::string_view fh);

  // Returns CFH (FhResult).
  //
  // Example:
  //   c.PutRootFh().Lookup("dir").GetFh();
  Compound& GetFh();

  // CFH := CFH/path, `path` one or more names joined by '/' (relative). A
  // symlink as the last component is followed, unless `no_follow` (then CFH
  // := the link itself: how a mount shows links as links).
  //
  // Example:
  //   c.PutRootFh().Lookup("docs/a.txt").GetAttr();
  //   c.PutFh(dir_fh).Lookup("link", /*no_follow=*/true);  // the link
  Compound& Lookup(absl::string_view path, bool no_follow = false);

  // The attributes of CFH (AttrResult).
  //
  // Example:
  //   c.PutFh(fh).GetAttr();
  Compound& GetAttr();

  // Changes mode, size and/or times of CFH; the result has the attributes
  // after the change.
  //
  // Example:
  //   c.PutFh(fh).SetAttr({.size = 0, .mtime_ns = txbuf::client::kTimeNow});
  Compound& SetAttr(const SetAttrArgs& args);

  // Reads up to `length` bytes at `offset` of CFH (a regular file). The data
  // is in the reply payload: CompoundReply::ReadData(op index).
  //
  // Example:
  //   c.PutRootFh().Lookup("f").Read(0, 4096);   // ReadData(2)
  Compound& Read(uint64_t offset, uint32_t length);

  // Writes `data` at `offset` of CFH. The bytes go into the request frame's
  // payload by reference: they must stay valid and unchanged until `release`
  // runs, which happens exactly once, after the kernel is done with them (or
  // when the compound is destroyed unsent, or at once for buffers under
  // 1 KiB, which are copied). `release` may run on the client's loop thread.
  // More than 4 GiB - 1 bytes in one WRITE makes the compound invalid
  // (status()).
  //
  // Example:
  //   auto buf = std::make_unique<std::byte[]>(n);
  //   std::byte* p = buf.get();
  //   c.PutFh(fh).Write(0, {p, n},
  //                     txbuf::Deleter::FromCallable(
  //                         [b = std::move(buf)]() mutable { b.reset(); }),
  //                     txbuf::rpc::STABILITY_UNSTABLE);
  Compound& Write(uint64_t offset, absl::Span<const std::byte> data,
                  Deleter release,
                  rpc::Stability stable = rpc::STABILITY_UNSTABLE) {
    return Write(offset, OwnedBytes(data, std::move(release)), stable);
  }

  // Writes `data` at `offset` of CFH: the same, with the bytes and their
  // owner together (released exactly once, as above).
  //
  // Example:
  //   c.PutFh(fh).Write(0, txbuf::OwnedBytes::Of(std::move(block)));
  Compound& Write(uint64_t offset, OwnedBytes data,
                  rpc::Stability stable = rpc::STABILITY_UNSTABLE);

  // Writes `data` at `offset` of CFH; the compound takes ownership of the
  // string and frees it when the kernel is done with it.
  //
  // Example:
  //   c.PutRootFh().Lookup("f").Write(0, std::string("hello"));
  Compound& Write(uint64_t offset, std::string data,
                  rpc::Stability stable = rpc::STABILITY_UNSTABLE);

  // Makes the unstable writes of CFH durable (CommitResult).
  //
  // Example:
  //   c.PutFh(fh).Commit();
  Compound& Commit();

  // Creates (or, unless `exclusive`, opens) regular file `name` in CFH;
  // CFH := the file (FhResult). An existing file is not truncated.
  //
  // Example:
  //   c.PutRootFh().Lookup("dir").Create("new.txt", 0644, /*exclusive=*/true);
  Compound& Create(absl::string_view name, uint32_t mode = 0644,
                   bool exclusive = false);

  // Creates directory `name` in CFH; CFH := it (FhResult).
  //
  // Example:
  //   c.PutRootFh().Mkdir("dir", 0755);
  Compound& Mkdir(absl::string_view name, uint32_t mode = 0755);

  // Creates symbolic link `name` in CFH pointing to `target` (stored as
  // given, 1 to 4095 bytes); CFH := the link (FhResult).
  //
  // Example:
  //   c.PutFh(dir_fh).Symlink("latest", "v1.2/bin");
  Compound& Symlink(absl::string_view name, absl::string_view target);

  // The target of CFH, a symbolic link (ReadlinkResult).
  //
  // Example:
  //   c.PutFh(link_fh).Readlink();
  Compound& Readlink();

  // Removes non-directory `name` from CFH.
  //
  // Example:
  //   c.PutRootFh().Lookup("dir").Remove("old.txt");
  Compound& Remove(absl::string_view name);

  // Removes the empty directory `name` from CFH.
  //
  // Example:
  //   c.PutRootFh().Rmdir("empty");
  Compound& Rmdir(absl::string_view name);

  // Moves CFH/from_name to to_dir/to_name, where `to_dir_fh` is a directory
  // handle (empty: CFH).
  //
  // Example:
  //   c.PutRootFh().Lookup("dir").Rename("a", "b");          // in place
  //   c.PutRootFh().Lookup("src").Rename("a", "a", dst_fh);  // elsewhere
  Compound& Rename(absl::string_view from_name, absl::string_view to_name,
                   absl::string_view to_dir_fh = {});

  // Lists CFH (a directory) after `cookie` (0: from the start), at most
  // `max_entries` (0: the server's default); `with_attrs` adds each entry's
  // attributes and handle (ReadDirResult).
  //
  // Example:
  //   c.PutRootFh().Lookup("dir").ReadDir(/*cookie=*/0, 0, true);
  Compound& ReadDir(uint64_t cookie = 0, uint32_t max_entries = 0,
                    bool with_attrs = false);

  // File system statistics of the export (StatFsResult).
  //
  // Example:
  //   c.StatFs();
  Compound& StatFs();

  // The server's memory-recovery statistics (StatsResult).
  //
  // Example:
  //   c.Stats();
  Compound& Stats();

  // Number of ops, e.g. to find the index of the last one's result.
  //
  // Example:
  //   c.PutRootFh().Lookup("f").GetAttr();
  //   int attr_index = c.size() - 1;  // 2
  int size() const { return request_.ops_size(); }
  // True if no op was added.
  //
  // Example:
  //   if (c.empty()) return;
  bool empty() const { return request_.ops().empty(); }
  // The request envelope (its id is set when it is sent).
  //
  // Example:
  //   const rpc::Op& op = c.request().ops(1);
  const rpc::Request& request() const { return request_; }
  // Bytes of WRITE data in the payload.
  //
  // Example:
  //   if (c.payload_size() > client->hello().max_payload()) split();
  uint64_t payload_size() const { return payload_size_; }
  // Not OK if an op could not be added; Client::Submit fails with it.
  //
  // Example:
  //   if (!c.status().ok()) return c.status();
  const absl::Status& status() const { return status_; }

  // The ops in words, for logs and errors: "PUTROOTFH LOOKUP 'a' READ 0+4096".
  //
  // Example:
  //   LOG(INFO) << "sending " << c.DebugString();
  std::string DebugString() const;

 private:
  friend class internal::CompoundAccess;
  rpc::Op& AddOp() { return *request_.add_ops(); }

  rpc::Request request_;
  std::vector<OwnedBytes> payload_;
  uint64_t payload_size_ = 0;
  absl::Status status_;
};

// The reply to one compound.
class CompoundReply {
 public:
  CompoundReply() = default;
  // A reply and a copy of `payload`. `failing_op` describes the request's
  // op at index results_size() - 1 for status(), e.g. "LOOKUP 'a/b'".
  //
  // Example (tests):
  //   rpc::Reply r;
  //   r.add_results()->mutable_read()->set_length(5);
  //   CompoundReply reply(r, "hello");
  CompoundReply(rpc::Reply reply, absl::string_view payload,
                std::string failing_op = "");
  CompoundReply(CompoundReply&&) noexcept = default;
  CompoundReply& operator=(CompoundReply&&) noexcept = default;
  CompoundReply(const CompoundReply&) = delete;
  CompoundReply& operator=(const CompoundReply&) = delete;

  // The request id this answers.
  //
  // Example:
  //   uint64_t id = reply.id();
  uint64_t id() const { return reply_.id(); }
  // True if every op succeeded.
  //
  // Example:
  //   if (!reply.ok()) return reply.status();
  bool ok() const { return reply_.status() == rpc::STATUS_OK; }
  // The failing op's protocol status (or STATUS_OK).
  //
  // Example:
  //   if (reply.rpc_status() == rpc::STATUS_STALE) { /* look up again */ }
  rpc::Status rpc_status() const { return reply_.status(); }
  // OK, or the failing op as an absl::Status (see client/status.h), e.g.
  // NotFoundError("LOOKUP 'a/b': no such file or directory [NOENT]"). Also
  // not OK when the server claims success but returned fewer results than
  // `expected_results` (if given).
  //
  // Example:
  //   if (absl::Status s = reply.status(); !s.ok()) return s;
  absl::Status status(int expected_results = -1) const;

  // The parsed envelope.
  //
  // Example:
  //   absl::string_view error = reply.reply().error();
  const rpc::Reply& reply() const { return reply_; }
  // Number of results (ops executed, the failing one included).
  //
  // Example:
  //   int failed_op = reply.size() - 1;  // when !reply.ok()
  int size() const { return reply_.results_size(); }
  // The result of op `i` (0 <= i < size()).
  //
  // Example:
  //   const rpc::Attr& attr = reply.result(2).attr().attr();
  const rpc::OpResult& result(int i) const { return reply_.results(i); }

  // The data of the READ at op index `i`: a view of the reply payload, valid
  // (and unchanged) while this CompoundReply lives; for large replies it
  // points into the buffer the bytes were received into (no copy). Empty if op
  // `i` is not a READ result. Ranges are checked against the payload when the
  // reply arrives (Validate()).
  //
  // Example:
  //   c.PutRootFh().Lookup("f").Read(0, 4096);
  //   ... absl::Span<const std::byte> data = reply.ReadData(2);
  absl::Span<const std::byte> ReadData(int i) const;
  // ReadData() as text.
  //
  // Example:
  //   absl::string_view text = reply.ReadString(2);
  absl::string_view ReadString(int i) const;

  // The whole reply payload.
  //
  // Example:
  //   size_t bytes = reply.payload().size();
  absl::Span<const std::byte> payload() const { return payload_.span(); }

  // Checks that every READ result's range lies inside the payload. The
  // client calls it on every reply; a reply that fails it is reported as
  // DataLoss.
  //
  // Example:
  //   if (absl::Status s = reply.Validate(); !s.ok()) return s;
  absl::Status Validate() const;

 private:
  friend class internal::CompoundAccess;
  rpc::Reply reply_;
  // Copied, or a slice of the client's receive buffer (kReplySliceMinBytes).
  OwnedBytes payload_;
  std::string failing_op_;
};

// A short description of one op for messages: "LOOKUP 'a/b'", "READ 0+4096".
//
// Example:
//   OpDescription(request.ops(1)) == "LOOKUP 'a/b'"
std::string OpDescription(const rpc::Op& op);

}  // namespace txbuf::client

#endif  // TXBUF_CLIENT_COMPOUND_H_
