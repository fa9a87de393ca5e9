// server/compound/executor.h: runs one compound request against the export.
//
// Ops run in order on the compound's current file handle (CFH) and stop at
// the first failure, as docs/PROTOCOL.md specifies. READ data is not copied:
// it comes back as page-cache `PageSlice`s (each pinning its page) in op
// order, for the reply composer to reference in the reply txbuf.
//
// A compound can run in two halves. On an event loop (ExecMode::kEventLoop)
// only ops that cannot block run (a cached READ, an UNSTABLE WRITE into the
// cache, GETATTR of an open non-directory, PUTFH of a recent handle,
// STATFS),
// at most kMaxEventLoopOps of them; Run() stops before the first other op
// and returns false, and the caller finishes the compound on a blocking
// pool thread (ExecMode::kMayBlock) from where it stopped, with the same
// CompoundState and CompoundOutput.
//
// Exports. An executor serves one or more exports: PUTROOTFH names one (no
// name: the first), a file handle says which it belongs to, and the ops
// after stay in the CFH's export (a RENAME into another is XDEV). What a
// connection may do in each export (access_rules.h) comes with its
// compound (CompoundState::access): an export it has no access to is
// ACCES, a modifying op in one it may only read ROFS.
//
// Protocol. This is where the file system (server/fs/, which knows no
// protobuf) meets the wire: an op's arguments become the export's plain
// types (SetAttrArgs), its results become messages (FileAttr -> rpc::Attr,
// DirEntry -> rpc::DirEntry, FsStats -> rpc::StatFsResult), and a failed
// op's absl::Status becomes its rpc::Status and error text in one place,
// RunOps (through WireStatusOf, status_map.h).
//
// Thread-safety: thread-safe; an Executor is shared by every event loop and
// pool thread (the export and page cache it uses are thread-safe). One
// compound's state is used by one thread at a time.
//
// Example:
//   Executor exec(*export_, limits, verifier, fill_stats);
//   CompoundOutput out(reply);
//   CompoundState state;
//   if (!exec.Run(request, payload, &out, &handles, &state,
//                 ExecMode::kEventLoop)) {
//     // on a pool thread:
//     exec.Run(request, payload, &out, &handles, &state, ExecMode::kMayBlock);
//   }
//   // out.reply has one OpResult per executed op; out.payload the READ data.
#ifndef TXBUF_SERVER_COMPOUND_EXECUTOR_H_
#define TXBUF_SERVER_COMPOUND_EXECUTOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/txbuf.pb.h"
#include "server/access_rules.h"
#include "server/compound/status_map.h"
#include "server/fs/export.h"
#include "server/fs/page_cache.h"
#include "server/stats/op_stats.h"

namespace txbuf::server {

struct ServerLimits {
  uint32_t max_envelope = 1 << 20;        // request envelope bytes
  uint32_t max_payload = 64 << 20;        // request payload bytes
  uint32_t max_ops = 1024;                // ops per compound
  uint32_t max_read = 16 << 20;           // bytes per READ
  uint64_t max_reply_payload = 64 << 20;  // READ bytes per compound
  uint32_t max_error_bytes = 512;         // detail text per error
  // Reply envelope bytes (docs/PROTOCOL.md: clients accept 16 MiB); READDIR
  // pages are cut to stay within it.
  uint32_t max_reply_envelope = 16 << 20;
};

// The result of one compound, in `reply` (cleared first: callers may reuse
// one message for every request, keeping its allocations).
struct CompoundOutput {
  explicit CompoundOutput(rpc::Reply& r) : reply(r) { reply.Clear(); }
  CompoundOutput(const CompoundOutput&) = delete;
  CompoundOutput& operator=(const CompoundOutput&) = delete;

  rpc::Reply& reply;
  std::vector<PageSlice> payload;  // READ data, in op order
  uint64_t payload_bytes = 0;
};

// The file handles a connection used last, with their nodes and page-cache
// files: a PUTFH of one of them costs no table or node lock. It holds no
// descriptor: the file is a weak reference, so a file the export closed
// (evicted or removed) is not kept open by an idle connection.
class HandleCache {
 public:
  struct Entry {
    std::string fh;
    NodeRef node;
    uint32_t export_index = 0;
    std::weak_ptr<PageCache::File> file;  // set on first data op
  };
  // The live entry for `fh`, or nullptr.
  Entry* Find(absl::string_view fh) {
    for (Entry& e : entries_) {
      if (e.node != nullptr && e.fh == fh &&
          !e.node->removed.load(std::memory_order_acquire)) {
        return &e;
      }
    }
    return nullptr;
  }
  Entry* Put(absl::string_view fh, NodeRef node, uint32_t export_index) {
    Entry& e = entries_[next_++ % entries_.size()];
    e.fh.assign(fh.data(), fh.size());
    e.node = std::move(node);
    e.export_index = export_index;
    e.file.reset();
    return &e;
  }

 private:
  std::array<Entry, 4> entries_;
  size_t next_ = 0;
};

// Where a compound runs: on an event loop (nothing that may block), or on a
// thread that may block.
enum class ExecMode { kEventLoop, kMayBlock };

// A connection's access to each export, by export index (see
// Executor::AccessOf).
using ClientAccess = std::vector<Access>;

// How far a compound has run.
struct CompoundState {
  int next_op = 0;            // the next op to run
  int ops_after = 0;          // ops after the running one
  NodeRef cfh;                // the current file handle
  uint32_t export_index = 0;  // the export the CFH is in
  // The connection's access to each export; null: every export at its own
  // access (read-only or read-write), as for a server without rules.
  const ClientAccess* access = nullptr;
  HandleCache::Entry* cached = nullptr;  // when set by PUTFH from the cache
  // Set by an op that, on an event loop, found it would have to block; it
  // changed nothing and runs again with ExecMode::kMayBlock.
  bool would_block = false;
  // When the request's frame arrived (MonoNowNs), for the request latency.
  int64_t received_ns = 0;
};

class Executor {
 public:
  using StatsFiller = std::function<void(rpc::StatsResult*)>;
  // Ops run on an event loop per compound at most (then the rest goes to a
  // pool thread, so one big compound cannot hold a loop).
  static constexpr int kMaxEventLoopOps = 64;
  // Ops a pool thread runs of one compound before handing it back to be
  // queued again behind other connections' work.
  static constexpr int kMaxPoolOps = 64;

  // An export as the executor serves it.
  struct ServedExport {
    std::string name;  // what PUTROOTFH names
    Export* ex = nullptr;
    std::vector<AccessRule> rules;  // empty: open to every client
  };

  // Serves `exports` (at least one; the first is the default).
  Executor(std::vector<ServedExport> exports, ServerLimits limits,
           uint64_t verifier, StatsFiller fill_stats);
  // Serves `ex` alone, to every client.
  Executor(Export& ex, ServerLimits limits, uint64_t verifier,
           StatsFiller fill_stats)
      : Executor({ServedExport{"", &ex, {}}}, limits, verifier,
                 std::move(fill_stats)) {}

  // What a client at `peer` may do in each export: its rules' access,
  // never more than the export's own (a read-only export stays so).
  ClientAccess AccessOf(const sockaddr_storage& peer) const;

  const std::vector<ServedExport>& exports() const { return exports_; }

  // Executes all of `req`, blocking as needed; WRITE data is read from
  // `payload`. `handles` (may be null) is the connection's cache of recent
  // file handles.
  void Execute(const rpc::Request& req, absl::Span<const std::byte> payload,
               CompoundOutput* out, HandleCache* handles = nullptr);

  // Runs the ops of `req` from `state->next_op`. Returns true when the
  // compound is done (the reply is complete); false if it stopped: in
  // ExecMode::kEventLoop before an op that may block (finish it with
  // kMayBlock), in kMayBlock after kMaxPoolOps ops (run it again, after
  // other work).
  bool Run(const rpc::Request& req, absl::Span<const std::byte> payload,
           CompoundOutput* out, HandleCache* handles, CompoundState* state,
           ExecMode mode);

  const ServerLimits& limits() const { return limits_; }

  // The write verifier WRITE and COMMIT return: the server's random one,
  // changed whenever dirty pages were dropped because they could not be
  // written back, so that clients resend what they wrote but did not
  // commit (as after a restart).
  uint64_t WriteVerifier() const;

  // Ops run so far, by kind and status; READ and WRITE bytes; the request
  // latency by op kind (recorded by the session, which sends the reply).
  const OpStats& op_stats() const { return op_stats_; }
  OpStats& op_stats() { return op_stats_; }

 private:
  bool RunOps(const rpc::Request& req, absl::Span<const std::byte> payload,
              CompoundOutput* out, HandleCache* handles, CompoundState* state,
              ExecMode mode);
  // Runs one op; on failure returns the error (the caller records it). In
  // kEventLoop, an op that would block sets cur.would_block instead.
  absl::Status RunOp(const rpc::Op& op, absl::Span<const std::byte> payload,
                     CompoundState& cur, HandleCache* handles,
                     rpc::OpResult* res, CompoundOutput* out, ExecMode mode);
  // Whether `op` may run on an event loop at all (see the file comment).
  bool EventLoopSafe(const rpc::Op& op, const CompoundState& cur,
                     HandleCache* handles) const;
  // Runs `use` on the CFH's page-cache file, getting the file again (a few
  // times) if the cache released it meanwhile. In kEventLoop, a file not
  // open yet, or `use` answering WouldBlockError(), sets cur.would_block.
  // `write`: the op writes, so the file must be open read-write.
  absl::Status WithFile(CompoundState& cur, ExecMode mode,
                        absl::FunctionRef<absl::Status(PageCache::File&)> use,
                        bool write = false);
  // The CFH's page-cache file; in kEventLoop only one already open (and
  // read-write if `write`), else null with no error.
  absl::StatusOr<std::shared_ptr<PageCache::File>> FileOf(CompoundState& cur,
                                                          ExecMode mode,
                                                          bool write);
  absl::Status FillFh(Export& ex, const NodeRef& n, rpc::OpResult* res);
  // FillFh for the object CREATE, MKDIR or SYMLINK just made: NOENT, not
  // STALE, if another client removed it meanwhile.
  absl::Status FillNewFh(Export& ex, const NodeRef& n, rpc::OpResult* res);

  // The export the CFH is in.
  Export& Ex(const CompoundState& cur) const {
    return *exports_[cur.export_index].ex;
  }
  // ACCES if the connection has no access to export `index`, ROFS if it
  // may only read and `modifies`.
  absl::Status CheckAccess(const CompoundState& cur, uint32_t index,
                           bool modifies) const;
  // The export a file handle belongs to, or BADHANDLE.
  absl::StatusOr<uint32_t> ExportOfHandle(absl::string_view fh) const;

  std::vector<ServedExport> exports_;
  ServerLimits limits_;
  uint64_t verifier_;
  StatsFiller fill_stats_;
  OpStats op_stats_;
};

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_COMPOUND_EXECUTOR_H_
