// client/mount/mount_fs.h: a FUSE file system over the txbuf client
// library: what `txbuf mount` serves.
//
// Each FUSE lowlevel operation is one compound on the server's file handles
// (PUTFH + the op, and the attributes after a change in the same round
// trip): LOOKUP is PUTFH(parent) + LOOKUP(name, no_follow) (its result has
// the handle and attributes), CREATE is PUTFH + CREATE (+ SETATTR size 0
// for O_TRUNC), READ is PUTFH + READ, answered straight from the reply's
// payload (fuse_reply_buf: no copy here; the client library has copied it
// out of its receive buffer once); a READ of 2 x read_split bytes or more is
// sent as read_split pieces at once (parallel over the client's
// connections) and answered with the pieces gathered (fuse_reply_iov).
// READDIRPLUS is one READDIR with attributes (and handles) per 1,024
// entries. WRITE is PUTFH + WRITE (UNSTABLE, from the data kept until
// committed: a large WRITE's in the buffer the request was read into, no
// copy (request_reader.h); a small one's copied) + GETATTR, FLUSH of a
// written file and FSYNC are COMMIT. The FUSE threads use the client's blocking
// Call(): many in flight at once from the multi-threaded session, pipelined by
// the client; the client's loop thread never waits.
//
// Durability: each UNSTABLE WRITE the server accepted is kept in the mount
// (WriteLog, with its bytes) until a COMMIT with the same write verifier
// confirms it; a COMMIT whose verifier differs (the server restarted, or
// dropped unstable data) makes the mount write those bytes again and COMMIT
// again. So an fsync() or close() that succeeded left nothing only in a lost
// server cache. Past `max_uncommitted` bytes held, a WRITE commits its file.
//
// Server restarts: a connection lost makes the mount connect again (the
// same options and token: a new Client), for up to `reconnect_timeout`;
// then an op fails with EIO (never a hang). An op that was in flight is
// sent again if it is idempotent (lookup, getattr, read, write, commit,
// setattr, open, readdir, ...), else fails with EIO (it may have been done:
// mkdir, unlink, rename, exclusive create). A new server instance (its
// root handle differs) makes every handle stale: each inode is looked up
// again by its path from the root when next used, if it is still the same
// file (same file id); else ESTALE.
//
// Consistency is close-to-open: OPEN asks the server for the attributes and
// drops the kernel's cached pages (keep_cache off) and attributes of a file
// that changed since the mount last saw it (else keep_cache); attributes and
// entries are cached for the timeouts given. A server status is the errno of
// errno_map.h. Not supported: hard links, special files, extended
// attributes, locks (EOPNOTSUPP/ENOSYS), chown to another owner (EPERM),
// rename flags (EINVAL).
//
// Thread-safety: the operations run on libfuse's threads, concurrently;
// Mount()/Serve()/Unmount() are called by one thread.
//
// Example:
//   absl::StatusOr<std::unique_ptr<MountFs>> fs =
//       MountFs::Create(std::move(client), {.mountpoint = "/mnt/data"});
//   if (absl::Status s = (*fs)->Mount(/*handle_signals=*/true); !s.ok())
//     return s;
//   return (*fs)->Serve(/*handle_signals=*/true);  // until unmounted
#ifndef TXBUF_CLIENT_MOUNT_MOUNT_FS_H_
#define TXBUF_CLIENT_MOUNT_MOUNT_FS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/client.h"
#include "client/mount/inode_table.h"
#include "client/mount/request_reader.h"
#include "client/mount/write_log.h"

struct fuse_session;

namespace txbuf::client::mount {

struct MountOptions {
  std::string mountpoint;
  // Mounted read-only ("-o ro"): the kernel refuses writes with EROFS.
  bool read_only = false;
  // How long the kernel keeps attributes and names (entries) before asking
  // again, in seconds.
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
  // The FUSE threads at most (requests served at once).
  int max_threads = 16;
  // Shown in /proc/mounts as the source ("txbuf:HOST:PORT").
  std::string fsname = "txbuf";
  // How long the mount tries to connect again after losing the server
  // before an operation fails with EIO.
  absl::Duration reconnect_timeout = absl::Seconds(60);
  // Bytes of UNSTABLE writes kept (for resending; the memory holding them,
  // WriteBytes::held) at most before a WRITE commits its file (and waits
  // for the COMMIT). Past half of it, a WRITE has its file committed in the
  // background, while writes go on.
  uint64_t max_uncommitted = uint64_t{256} << 20;
  // A READ of at least twice this many bytes is sent as pieces of this
  // size, all at once (over the client's connections); 0: whole.
  size_t read_split = size_t{256} << 10;
  // A READ of at most this many bytes is sent without a FUSE thread
  // waiting for it: the client's loop thread answers the kernel when the
  // reply arrives (the FUSE thread goes back to the next request at once),
  // saving a sleep and a wake-up per READ. Larger READs are answered by
  // their FUSE thread, so that the copies into the readers' pages of
  // several large READs run in parallel rather than on the loop thread. 0:
  // every READ waits.
  size_t async_read_max = size_t{128} << 10;
  // The kernel's write-back cache (FUSE_CAP_WRITEBACK_CACHE): write() fills
  // the mount's page cache and returns; the kernel sends the dirty pages as
  // WRITEs later (at the latest on fsync and close, whose COMMIT follows),
  // merged into large ones. Off by default: with it the kernel keeps the
  // file's size and mtime itself, so another client's change is seen only
  // after this mount's attributes expire, and writes reach the server later.
  bool writeback_cache = false;
  // O_DIRECT writes to one file from several threads or processes reach the
  // mount at once (the OPEN reply carries FOPEN_PARALLEL_DIRECT_WRITES;
  // kernel 6.2 / FUSE 7.38 on): the kernel then takes the file's lock
  // shared for a write that does not extend the file, instead of one write
  // at a time. libfuse 3.14 (Debian 12) has no field for it; the mount
  // writes that OPEN reply itself. Off: one at a time, as before.
  bool parallel_direct_writes = true;
};

class MountFs {
 public:
  // Finds the export's root (PUTROOTFH + GETFH) through `client`; connects
  // again with client->options() when the connection is lost.
  static absl::StatusOr<std::unique_ptr<MountFs>> Create(
      std::unique_ptr<Client> client, MountOptions options);
  // Unmounts if still mounted.
  ~MountFs();
  MountFs(const MountFs&) = delete;
  MountFs& operator=(const MountFs&) = delete;

  // Makes the FUSE session and mounts it on options.mountpoint. With
  // `handle_signals`, SIGINT, SIGTERM and SIGHUP end Serve() (and unmount)
  // from before the mount is visible on.
  absl::Status Mount(bool handle_signals = false);
  // Serves the kernel's requests until the file system is unmounted
  // (fusermount3 -u, umount) or, with `handle_signals`, SIGINT, SIGTERM or
  // SIGHUP arrive; then unmounts.
  absl::Status Serve(bool handle_signals);
  // Unmounts (if mounted) and destroys the session.
  void Unmount();

  const MountOptions& options() const { return options_; }
  // How READs were sent (client/mount/read_plan.h). Small ones, without a
  // FUSE thread waiting (MountOptions::async_read_max): answered from the
  // client's loop thread, or done again by a worker through the waiting
  // path (after a lost connection, a stale handle or DELAY).
  // Large ones (at least twice MountOptions::read_split): in pieces, or
  // whole.
  struct ReadStats {
    uint64_t answered_by_loop = 0;
    uint64_t done_again = 0;
    uint64_t large_in_pieces = 0;
    uint64_t large_whole = 0;
  };
  ReadStats read_stats() const ABSL_LOCKS_EXCLUDED(async_mu_);
  // How WRITEs' data were kept until COMMIT: in the request's own buffer
  // (a large WRITE: request_reader.h), or copied.
  struct WriteStats {
    uint64_t kept_in_request = 0;
    uint64_t copied = 0;
  };
  WriteStats write_stats() const {
    return {.kept_in_request = writes_kept_in_request_.load(),
            .copied = writes_copied_.load()};
  }
  // How the current client (since the last reconnect) received its reply
  // payloads: READ data sliced in place or copied (client/client.h).
  ReceiveStats receive_stats() const {
    return CurrentClient().first->receive_stats();
  }

  // The FUSE operations' implementation (mount_fs.cc); public for the
  // C callbacks there only.
  class Ops;

 private:
  MountFs(std::unique_ptr<Client> client, MountOptions options,
          std::string root_fh);

  // Makes the compound `build` gives for the current handles of `inos`
  // (looked up again by path after a server restart) and sends it. After a
  // lost connection: connects again and, if `idempotent`, sends it again
  // (once); a STALE reply for handles made stale meanwhile is retried too.
  // A DELAY reply (the server is out of a resource for now, or another
  // process holds a lease on the file) is sent again, if `idempotent`, after
  // a pause (20 ms doubling to 500 ms) for up to reconnect_timeout, as NFS
  // clients retry NFS4ERR_DELAY; then, or if not idempotent, it is EAGAIN.
  using Build = absl::FunctionRef<Compound(const std::vector<std::string>&)>;
  absl::StatusOr<CompoundReply> Exec(absl::Span<const uint64_t> inos,
                                     bool idempotent, Build build);
  // One Exec, without the DELAY retries.
  absl::StatusOr<CompoundReply> ExecOnce(absl::Span<const uint64_t> inos,
                                         bool idempotent, Build build);
  // The client now and its generation.
  std::pair<std::shared_ptr<Client>, uint64_t> CurrentClient() const;
  // Connects again unless another thread did since generation `seen`.
  absl::Status Reconnect(uint64_t seen);
  // The handle of `ino` for the current server instance.
  absl::StatusOr<std::string> Resolve(Client& client, uint64_t ino);

  mutable absl::Mutex client_mu_;
  std::shared_ptr<Client> client_ ABSL_GUARDED_BY(client_mu_);
  uint64_t client_gen_ ABSL_GUARDED_BY(client_mu_) = 0;
  absl::Time reconnect_failed_at_ ABSL_GUARDED_BY(client_mu_) =
      absl::InfinitePast();
  WriteLog writes_;
  // Reads the kernel's requests for the session (libfuse's custom I/O).
  std::shared_ptr<RequestReader> requests_;
  std::atomic<uint64_t> writes_kept_in_request_{0};
  std::atomic<uint64_t> writes_copied_{0};
  const MountOptions options_;
  InodeTable inodes_;
  // From the server's Hello.
  uint32_t max_read_;
  uint32_t max_write_;
  // The kernel takes FOPEN_PARALLEL_DIRECT_WRITES (set at INIT).
  bool parallel_direct_writes_ = false;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_set_ = false;  // fuse_set_signal_handlers() done
  // Files to COMMIT in the background (past half of max_uncommitted), and
  // the thread that does, started at the first; stopped (not drained: what
  // it has not committed stays in writes_ for close and fsync) by
  // StopCommitter(), before the client goes.
  void CommitInBackground(uint64_t ino) ABSL_LOCKS_EXCLUDED(commit_mu_);
  void StopCommitter() ABSL_LOCKS_EXCLUDED(commit_mu_);
  absl::Mutex commit_mu_;
  std::vector<uint64_t> commit_queue_ ABSL_GUARDED_BY(commit_mu_);
  bool commit_stop_ ABSL_GUARDED_BY(commit_mu_) = false;
  std::thread committer_;
  // READs answered from the client's loop thread (Ops::ReadAsync): how
  // many are in flight (a reply to the kernel still to come), and work
  // they hand back to be done where blocking is allowed (a READ that needs
  // Exec's reconnect or retries). Deferred work runs on up to
  // options_.max_threads threads, started as needed. Before the session
  // is destroyed, StopAsync() waits until every such READ was answered,
  // then joins those threads.
  void BeginAsync() ABSL_LOCKS_EXCLUDED(async_mu_);
  // `again`: answered by a deferred worker rather than the loop thread.
  void EndAsync(bool again) ABSL_LOCKS_EXCLUDED(async_mu_);
  void Defer(absl::AnyInvocable<void()> work) ABSL_LOCKS_EXCLUDED(async_mu_);
  void StopAsync() ABSL_LOCKS_EXCLUDED(async_mu_);
  void DeferredWorker() ABSL_LOCKS_EXCLUDED(async_mu_);
  mutable absl::Mutex async_mu_;
  int async_in_flight_ ABSL_GUARDED_BY(async_mu_) = 0;
  ReadStats read_stats_ ABSL_GUARDED_BY(async_mu_);
  void CountLargeRead(bool in_pieces) ABSL_LOCKS_EXCLUDED(async_mu_);
  // Large READs being served now (ReadPlanInputs::large_reads_at_once).
  std::atomic<int> large_reads_at_once_{0};
  std::deque<absl::AnyInvocable<void()>> deferred_ ABSL_GUARDED_BY(async_mu_);
  int deferred_idle_ ABSL_GUARDED_BY(async_mu_) = 0;
  bool deferred_stop_ ABSL_GUARDED_BY(async_mu_) = false;
  std::vector<std::thread> deferred_threads_ ABSL_GUARDED_BY(async_mu_);
  // The directories open now (OPENDIR's state), freed at RELEASEDIR, or
  // here for those the kernel had not released when the session ended.
  struct OpenDirs;
  std::unique_ptr<OpenDirs> open_dirs_;
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_MOUNT_FS_H_
