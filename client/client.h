// client/client.h: the txbuf client: pipelined compound RPCs to a txbufd.
//
// A `Client` holds one or more set-up connections to one server
// (docs/PROTOCOL.md) and runs its own io_uring `txbuf::EventLoop` on a
// dedicated thread. Requests are spread over the connections (least loaded
// first), many in flight on each (pipelining), and replies are matched by id
// in whatever order they come.
//
// Each request frame is sent as one client-side txbuf through a
// `txbuf::TxSocket`: frame header and envelope staged, WRITE data referenced
// in place, so the client measures its own memory recovery (memory_stats()).
// A WRITE buffer's Deleter runs exactly once, after the kernel is done with
// the bytes.
//
// Two APIs:
//   - async: Submit(Compound, done), the building block;
//   - blocking: Stat, List, Read, Write, Create, Mkdir, Remove, Rmdir, Rename,
//     Commit, Truncate, StatFs, Stats, GetFile, PutFile: each one round trip
//     (Rename across directories and paged List take more), each error a
//     clear absl::Status with the server's text (client/status.h).
//
// Failures: losing a connection fails each of its pending requests once with
// Unavailable; a reply with an unknown id, or a malformed frame, closes that
// connection the same way; a request with no reply within
// `request_timeout` fails with DeadlineExceeded (a late reply is dropped).
// Connections are not re-established: once all are gone, requests fail with
// Unavailable and the caller makes a new Client.
//
// Paths are '/'-separated and relative to the export root ("", "/" and "."
// are the root; leading and repeated '/' are ignored).
//
// Thread-safety: thread-safe. Every method may be called from any thread,
// except that the blocking methods must not be called from a done callback
// (they return FailedPrecondition there) and the Client must not be
// destroyed from one (it aborts).
//
// Example:
//   absl::StatusOr<std::unique_ptr<txbuf::client::Client>> client =
//       txbuf::client::Client::Connect({.host = "server", .port = 7000});
//   if (!client.ok()) return client.status();
//   absl::StatusOr<txbuf::rpc::Attr> attr = (*client)->Stat("docs/a.txt");
//   absl::StatusOr<std::string> head = (*client)->Read("docs/a.txt", 0, 4096);
#ifndef TXBUF_CLIENT_CLIENT_H_
#define TXBUF_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/compound.h"
#include "client/status.h"
#include "common/engine_kind.h"
#include "common/memory_stats.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client {

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  // The shared secret (the token file's contents without trailing
  // whitespace; see ReadTokenFile()). Needed if the server requires
  // authentication; never sent over the wire.
  std::optional<std::string> token;
  // The export PUTROOTFH goes to when the compound names none (empty: the
  // server's first export). A server serves one or more named exports.
  std::string export_name;
  // Connections to open (>= 1); requests are spread over them.
  int connections = 1;
  // How request txbufs reach the kernel (tx_socket.h).
  EngineKind engine = EngineKind::kAuto;
  // TCP connect plus setup (Hello, authentication) of all connections.
  absl::Duration connect_timeout = absl::Seconds(10);
  // From Submit() to the reply.
  absl::Duration request_timeout = absl::Seconds(60);
  // Requests in flight per connection; more wait in the client, in order.
  int max_in_flight_per_connection = 256;
  // GetFile/PutFile: requests in flight and bytes per READ/WRITE.
  int transfer_window = 8;
  uint32_t transfer_chunk = 1 << 20;
  // Largest reply frame the client accepts (a bigger one closes the
  // connection as malformed).
  uint32_t max_reply_envelope = 64 << 20;
  uint32_t max_reply_payload = 256 << 20;
};

// Called with bytes done and bytes expected (0 if unknown), on the thread
// that called GetFile/PutFile.
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

// How a client received its replies' payloads (Client::receive_stats()).
// Counters since the client started, over all its connections.
struct ReceiveStats {
  // Payloads handed to their CompoundReply in place: a slice of the receive
  // buffer (kReplySliceMinBytes and more).
  uint64_t payloads_sliced = 0;
  uint64_t payload_bytes_sliced = 0;
  // Payloads copied out of the receive buffer (smaller ones).
  uint64_t payloads_copied = 0;
  uint64_t payload_bytes_copied = 0;
  // Receive buffers allocated, and taken back once the replies holding them
  // were dropped.
  uint64_t buffers_allocated = 0;
  uint64_t buffers_reused = 0;
  // Bytes of not yet complete replies copied into a new receive buffer
  // because replies still held the old one.
  uint64_t bytes_carried = 0;
};

// A Submit() completion. Receives a CompoundReply whenever the server
// answered (even if an op failed: see CompoundReply::status()), or a
// transport error: Unavailable (connection lost or none left),
// DeadlineExceeded (timeout), Cancelled (client destroyed), ResourceExhausted
// (over a server limit, nothing sent), InvalidArgument (invalid compound),
// DataLoss (malformed READ ranges in the reply).
using DoneCallback = absl::AnyInvocable<void(absl::StatusOr<CompoundReply>)>;

class Client {
 public:
  // Connects `options.connections` times to options.host:options.port, sets
  // each connection up (Hello, authentication with `options.token` if the
  // server requires it, checking the server's proof), and starts the loop
  // thread.
  //
  // Example:
  //   auto client = txbuf::client::Client::Connect(
  //       {.host = "10.0.0.2", .port = 7000, .token = secret,
  //        .connections = 4});
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  // Fails every pending request with Cancelled, closes the connections
  // (waiting until every request txbuf's destructor has run, so every WRITE
  // Deleter has run) and joins the loop thread.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- async ---------------------------------------------------------------

  // Sends `compound` and calls `done` exactly once with the reply or an
  // error (see DoneCallback). `done` runs on the client's loop thread: keep
  // it short, never block in it, never call the blocking API from it
  // (Submit is fine). Only if the client is being destroyed does `done` run
  // at once on the calling thread, with Cancelled.
  //
  // Example:
  //   txbuf::client::Compound c;
  //   c.PutRootFh().Lookup("a/b").GetAttr().Read(0, 1 << 20);
  //   client->Submit(std::move(c), [](absl::StatusOr<CompoundReply> r) {
  //     if (!r.ok() || !r->ok()) return;  // r.status() / r->status()
  //     absl::Span<const std::byte> data = r->ReadData(3);
  //   });
  void Submit(Compound compound, DoneCallback done);

  // Submit() and wait: the reply (also when an op failed) or a transport
  // error.
  //
  // Example:
  //   absl::StatusOr<CompoundReply> r = client->Call(std::move(c));
  absl::StatusOr<CompoundReply> Call(Compound compound);

  // --- blocking convenience API ----------------------------------------------

  // The attributes of `path`.
  //
  // Example:
  //   absl::StatusOr<rpc::Attr> a = client->Stat("docs/a.txt");
  absl::StatusOr<rpc::Attr> Stat(absl::string_view path);

  // Every entry of directory `path`, with attributes and handles (READDIR
  // pages until eof).
  //
  // Example:
  //   for (const rpc::DirEntry& e : *client->List("docs")) ...
  absl::StatusOr<std::vector<rpc::DirEntry>> List(absl::string_view path);

  // Up to `length` bytes of `path` from `offset` (fewer at end of file).
  //
  // Example:
  //   absl::StatusOr<std::string> data = client->Read("a.txt", 0, 4096);
  absl::StatusOr<std::string> Read(absl::string_view path, uint64_t offset,
                                   uint64_t length);

  // Writes `data` to the existing file `path` at `offset`; returns the bytes
  // written. Returns after the reply and after the kernel let go of `data`
  // (so the caller may reuse it at once). UNSTABLE data is durable only after
  // Commit().
  //
  // Example:
  //   client->Write("log.txt", 0, "hello", rpc::STABILITY_FILE_SYNC);
  absl::StatusOr<uint64_t> Write(
      absl::string_view path, uint64_t offset, absl::string_view data,
      rpc::Stability stable = rpc::STABILITY_UNSTABLE);
  absl::StatusOr<uint64_t> Write(
      absl::string_view path, uint64_t offset, absl::Span<const std::byte> data,
      rpc::Stability stable = rpc::STABILITY_UNSTABLE);

  // Creates (or, unless `exclusive`, opens without truncating) regular file
  // `path`; returns its handle and attributes.
  //
  // Example:
  //   client->Create("dir/new.txt", 0644, /*exclusive=*/true);
  absl::StatusOr<rpc::FhResult> Create(absl::string_view path,
                                       uint32_t mode = 0644,
                                       bool exclusive = false);

  // Creates directory `path`.
  //
  // Example:
  //   client->Mkdir("dir", 0755);
  absl::StatusOr<rpc::FhResult> Mkdir(absl::string_view path,
                                      uint32_t mode = 0755);

  // Removes the non-directory `path`.
  //
  // Example:
  //   client->Remove("dir/old.txt");
  absl::Status Remove(absl::string_view path);

  // Removes the empty directory `path`.
  //
  // Example:
  //   client->Rmdir("dir");
  absl::Status Rmdir(absl::string_view path);

  // Moves `from` to `to` (one round trip in one directory, two across
  // directories: the protocol has no SAVEFH).
  //
  // Example:
  //   client->Rename("a.txt", "archive/a.txt");
  absl::Status Rename(absl::string_view from, absl::string_view to);

  // Makes the unstable writes of `path` durable.
  //
  // Example:
  //   absl::StatusOr<rpc::CommitResult> c = client->Commit("big.bin");
  absl::StatusOr<rpc::CommitResult> Commit(absl::string_view path);

  // Sets the size of `path`; returns the attributes after.
  //
  // Example:
  //   client->Truncate("log.txt", 0);
  absl::StatusOr<rpc::Attr> Truncate(absl::string_view path, uint64_t size);

  // File system statistics of the export.
  //
  // Example:
  //   uint64_t avail = client->StatFs()->avail_bytes();
  absl::StatusOr<rpc::StatFsResult> StatFs();

  // The server's memory-recovery statistics.
  //
  // Example:
  //   uint64_t pinned = client->Stats()->pinned_bytes();
  absl::StatusOr<rpc::StatsResult> Stats();

  // Downloads `remote` into `local` ("-" is standard output) with pipelined
  // READs (transfer_window of transfer_chunk bytes in flight) written in
  // order. Returns the bytes written. The bytes go to a temporary file beside
  // `local` that is fsynced and renamed over it at the end (a device or FIFO
  // is written in place); on any failure the temporary file is removed and
  // `local` is not changed. Fails with DataLoss if the file changed while it
  // was read (bytes read differ from its size at the start, or its size or
  // mtime changed), FailedPrecondition if `local` is the remote file itself
  // (same inode, size and mtime).
  //
  // Example:
  //   client->GetFile("big.bin", "/tmp/big.bin",
  //                   [](uint64_t done, uint64_t total) { ... });
  absl::StatusOr<uint64_t> GetFile(absl::string_view remote,
                                   const std::string& local,
                                   const ProgressCallback& progress = nullptr);

  // Uploads `local` ("-": standard input) to `remote` with pipelined UNSTABLE
  // WRITEs from transfer_window reusable buffers (a buffer is reused only
  // after its txbuf destructor ran), then COMMIT, into a temporary file beside
  // `remote`; then SETATTR mode (an existing file's, else the local file's
  // permission bits) and RENAME over `remote`: readers see the old file or
  // the new one, never a part. If the server's write verifier changed
  // meanwhile (a restart), the upload is repeated (not from standard input).
  // On failure the temporary file is removed and `remote` is not changed.
  // Returns the bytes written. Fails with DataLoss if the local file changed
  // while it was read, FailedPrecondition if `remote` is a directory or is
  // the local file itself (same inode, size and mtime).
  //
  // Example:
  //   client->PutFile("/tmp/big.bin", "backup/big.bin");
  absl::StatusOr<uint64_t> PutFile(const std::string& local,
                                   absl::string_view remote,
                                   const ProgressCallback& progress = nullptr);

  // --- state -----------------------------------------------------------------

  // The client's own memory-recovery accounting: request txbufs, WRITE
  // buffers pinned, destructor latency, engine counters.
  //
  // Example:
  //   uint64_t pinned = client->memory_stats().pinned_bytes;
  MemoryStatsSnapshot memory_stats() const;

  // How reply payloads were received: sliced in place or copied
  // (kReplySliceMinBytes, client/compound.h), and the receive buffers.
  //
  // Example:
  //   uint64_t copied = client->receive_stats().payload_bytes_copied;
  ReceiveStats receive_stats() const;

  // The server's Hello (limits) on the first connection.
  //
  // Example:
  //   uint32_t max_read = client->hello().max_read();
  const rpc::Hello& hello() const;
  // Connections still usable.
  //
  // Example:
  //   if (client->open_connections() == 0) client = Reconnect();
  int open_connections() const;
  // The options the client was made with.
  //
  // Example:
  //   uint32_t chunk = client->options().transfer_chunk;
  const ClientOptions& options() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  // FailedPrecondition on the client's loop thread (a done callback), where
  // a blocking call would deadlock.
  absl::Status CheckBlockingCallAllowed() const;
  // PutFile's WRITEs and COMMIT into the file `fh` (repeated after a server
  // restart). Returns the bytes written.
  absl::StatusOr<uint64_t> UploadTo(const std::string& fh, int fd,
                                    bool from_stdin, const std::string& local,
                                    absl::string_view remote, uint64_t size,
                                    const ProgressCallback& progress);
  std::unique_ptr<Impl> impl_;
};

// Reads a token file: its contents without trailing whitespace (spaces,
// tabs, CR, LF), as PROTOCOL.md section 2 defines the secret. An empty token
// is an error.
//
// Example:
//   absl::StatusOr<std::string> secret = ReadTokenFile("/etc/txbuf/token");
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace txbuf::client

#endif  // TXBUF_CLIENT_CLIENT_H_
