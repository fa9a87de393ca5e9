// client/mount/mount_fs.h: a FUSE file system over the txbuf client
// library: what `txbuf mount` serves.
//
// Each FUSE lowlevel operation is one compound on the server's file handles
// (PUTFH + the op, and the attributes after a change in the same round
// trip): LOOKUP is PUTFH(parent) + LOOKUP(name, no_follow) (its result has
// the handle and attributes), CREATE is PUTFH + CREATE (+ SETATTR size 0
// for O_TRUNC), READ is PUTFH + READ, answered straight from the reply's
// payload (fuse_reply_buf: no copy here; the client library has copied it
// out of its receive buffer once), WRITE is PUTFH + WRITE (UNSTABLE, the data
// referenced in place) + GETATTR, FLUSH of a written file and FSYNC are COMMIT.
// The FUSE threads use the client's blocking Call(): many in flight at once
// from the multi-threaded session, pipelined by the client; the client's loop
// thread never waits.
//
// Consistency is close-to-open: OPEN asks the server for the attributes and
// drops the kernel's cached pages and attributes of a file that changed
// since the mount last saw it (else keep_cache); attributes and entries are
// cached for the timeouts given. A server status is the errno of
// errno_map.h. Not supported: hard links, special files, extended
// attributes, locks (EOPNOTSUPP/ENOSYS), chown to another owner (EPERM),
// rename flags (EINVAL).
//
// Thread-safety: the operations run on libfuse's threads, concurrently;
// Mount()/Serve()/Unmount() are called by one thread.
//
// Example:
//   absl::StatusOr<std::unique_ptr<MountFs>> fs =
//       MountFs::Create(client.get(), {.mountpoint = "/mnt/data"});
//   if (absl::Status s = (*fs)->Mount(); !s.ok()) return s;
//   return (*fs)->Serve(/*handle_signals=*/true);  // until unmounted
#ifndef TXBUF_CLIENT_MOUNT_MOUNT_FS_H_
#define TXBUF_CLIENT_MOUNT_MOUNT_FS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/mount/inode_table.h"

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
};

class MountFs {
 public:
  // Finds the export's root (PUTROOTFH + GETFH) through `client`, which must
  // outlive the MountFs.
  static absl::StatusOr<std::unique_ptr<MountFs>> Create(Client* client,
                                                         MountOptions options);
  // Unmounts if still mounted.
  ~MountFs();
  MountFs(const MountFs&) = delete;
  MountFs& operator=(const MountFs&) = delete;

  // Makes the FUSE session and mounts it on options.mountpoint.
  absl::Status Mount();
  // Serves the kernel's requests until the file system is unmounted
  // (fusermount3 -u, umount) or, with `handle_signals`, SIGINT, SIGTERM or
  // SIGHUP arrive; then unmounts.
  absl::Status Serve(bool handle_signals);
  // Unmounts (if mounted) and destroys the session.
  void Unmount();

  const MountOptions& options() const { return options_; }

  // The FUSE operations' implementation (mount_fs.cc); public for the
  // C callbacks there only.
  class Ops;

 private:
  MountFs(Client* client, MountOptions options, std::string root_fh);

  Client* const client_;
  const MountOptions options_;
  InodeTable inodes_;
  // From the server's Hello.
  uint32_t max_read_;
  uint32_t max_write_;
  fuse_session* session_ = nullptr;
  bool mounted_ = false;
  // The directories open now (OPENDIR's state), freed at RELEASEDIR, or
  // here for those the kernel had not released when the session ended.
  struct OpenDirs;
  std::unique_ptr<OpenDirs> open_dirs_;
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_MOUNT_FS_H_
