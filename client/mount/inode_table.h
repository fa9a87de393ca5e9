// client/mount/inode_table.h: the FUSE inode numbers of a mount and the
// server file handles they stand for.
//
// The kernel names files by inode number; the server by opaque handle. The
// table gives each handle one inode number (1 is the export's root, never
// forgotten), counts the kernel's references (each reply that carries an
// entry adds one; FORGET takes them back) and drops an inode when its count
// reaches zero. It also keeps, per inode, whether it has writes the server
// holds uncommitted (UNSTABLE), and the last attributes the mount
// reported (size, mtime, ctime): OPEN compares the server's with them to
// decide whether the kernel's cached pages are still good (close-to-open).
//
// Not kept: the parent and name an inode was found under (to look a stale
// handle up again after a server restart); handles do not survive a restart
// and this mount does not reconnect yet.
//
// Thread-safety: thread-safe (one mutex).
//
// Example:
//   InodeTable t(root_fh);
//   uint64_t ino = t.Remember(fh);          // lookup count 1
//   std::optional<std::string> h = t.Handle(ino);
//   t.Forget(ino, 1);                        // gone
#ifndef TXBUF_CLIENT_MOUNT_INODE_TABLE_H_
#define TXBUF_CLIENT_MOUNT_INODE_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace txbuf::client::mount {

// What tells a changed file from an unchanged one.
struct ChangeStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const ChangeStamp&) const = default;
};

class InodeTable {
 public:
  static constexpr uint64_t kRootIno = 1;

  explicit InodeTable(std::string root_fh);
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // The inode number of `fh` (a new one if the table has none), its lookup
  // count one more. The root's handle gives kRootIno.
  //
  // Example:
  //   e.ino = table.Remember(result.fh().fh());
  uint64_t Remember(const std::string& fh);

  // The handle of `ino`, or nullopt if the table has no such inode.
  //
  // Example:
  //   std::optional<std::string> fh = table.Handle(ino);
  std::optional<std::string> Handle(uint64_t ino) const;

  // Takes `nlookup` references of `ino` back; at zero the inode is dropped
  // (never the root).
  //
  // Example:
  //   table.Forget(ino, nlookup);
  void Forget(uint64_t ino, uint64_t nlookup);

  // Records `stamp` as the attributes last reported for `ino`; returns true
  // if different ones were recorded before (the file changed since).
  //
  // Example:
  //   fi->keep_cache = !table.UpdateStamp(ino, StampOf(attr));
  bool UpdateStamp(uint64_t ino, const ChangeStamp& stamp);

  // Notes that `ino` has writes the server holds uncommitted.
  void MarkDirty(uint64_t ino);
  // Whether `ino` had uncommitted writes; clears the mark (the caller
  // commits them).
  //
  // Example:
  //   if (table.TakeDirty(ino)) c.Commit();
  bool TakeDirty(uint64_t ino);

  // Inodes held (the root included).
  size_t size() const;

 private:
  struct Inode {
    std::string fh;
    uint64_t nlookup = 0;
    std::optional<ChangeStamp> stamp;
    bool dirty = false;
  };
  mutable absl::Mutex mu_;
  uint64_t next_ino_ ABSL_GUARDED_BY(mu_) = kRootIno + 1;
  absl::flat_hash_map<uint64_t, Inode> inodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_fh_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_INODE_TABLE_H_
