// client/mount/inode_table.h: the FUSE inode numbers of a mount and the
// server file handles they stand for.
//
// The kernel names files by inode number; the server by opaque handle. The
// table gives each handle one inode number (1 is the export's root, never
// forgotten), counts the kernel's references (each reply that carries an
// entry adds one; FORGET takes them back) and drops an inode when its count
// reaches zero. It also keeps, per inode, the last attributes the mount
// reported (size, mtime, ctime): OPEN compares the server's with them to
// decide whether the kernel's cached pages are still good (close-to-open).
//
// Surviving a server restart: handles are valid for one server instance
// (their export id is random per start). Each inode keeps the parent and
// name it was last found under and its file id (the server's inode number),
// so after a reconnect to a new instance (NewEpoch(): every handle is from
// the past epoch) the mount rebuilds its path (Path()), looks it up again
// from the root, and Rebind()s it if the file id is the same one (safe: the
// same file, not another one made under that name meanwhile). The table
// follows RENAME (Rename) and UNLINK/RMDIR (Unname: a removed file has no
// path, so it cannot be found again and stays stale).
//
// Thread-safety: thread-safe (one mutex).
//
// Example:
//   InodeTable t(root_fh);
//   uint64_t ino = t.Remember(fh, InodeTable::kRootIno, "a.txt", fileid);
//   std::optional<std::string> h = t.Handle(ino);
//   t.NewEpoch(new_root_fh);                // the server restarted
//   t.Path(ino);                            // "a.txt": look it up again
//   t.Forget(ino, 1);                       // gone
#ifndef TXBUF_CLIENT_MOUNT_INODE_TABLE_H_
#define TXBUF_CLIENT_MOUNT_INODE_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace txbuf::client::mount {

// What tells a changed file from an unchanged one.
struct ChangeStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const ChangeStamp&) const = default;
};

// An inode's handle, and whether it is of the server instance the mount is
// connected to now (else: Path() and Rebind() before using it).
struct Binding {
  std::string fh;
  bool current = true;
  uint64_t fileid = 0;  // 0: unknown (not checked on Rebind)
  uint64_t epoch = 0;   // the table's epoch when this was read
};

class InodeTable {
 public:
  static constexpr uint64_t kRootIno = 1;

  explicit InodeTable(std::string root_fh);
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // The inode number of `fh` (a new one if the table has none), its lookup
  // count one more, found as `name` in directory `parent` (0: no name
  // known). The root's handle gives kRootIno.
  //
  // Example:
  //   e.ino = table.Remember(r.fh(), parent, name, r.attr().fileid());
  uint64_t Remember(const std::string& fh, uint64_t parent = 0,
                    absl::string_view name = {}, uint64_t fileid = 0);

  // The handle of `ino`, or nullopt if the table has no such inode.
  //
  // Example:
  //   std::optional<std::string> fh = table.Handle(ino);
  std::optional<std::string> Handle(uint64_t ino) const;
  // The same with whether it is of the current epoch.
  std::optional<Binding> Bind(uint64_t ino) const;

  // Takes `nlookup` references of `ino` back; at zero the inode is dropped
  // (never the root): returns whether it was.
  //
  // Example:
  //   table.Forget(ino, nlookup);
  bool Forget(uint64_t ino, uint64_t nlookup);

  // Records `stamp` as the attributes last reported for `ino`; returns true
  // if different ones were recorded before (the file changed since).
  //
  // Example:
  //   fi->keep_cache = !table.UpdateStamp(ino, StampOf(attr));
  bool UpdateStamp(uint64_t ino, const ChangeStamp& stamp);

  // --- names and epochs (server restarts) ---------------------------------

  // `name` in `parent` is now what was `old_name` in `old_parent` (RENAME);
  // what `name` named before loses its name.
  void Rename(uint64_t old_parent, absl::string_view old_name, uint64_t parent,
              absl::string_view name);
  // `name` in `parent` is gone (UNLINK, RMDIR).
  void Unname(uint64_t parent, absl::string_view name);

  // The path of `ino` from the export root ("" for the root, "a/b/c"), or
  // nullopt if a link of the chain is unknown (removed, forgotten, or never
  // found by name).
  //
  // Example:
  //   std::optional<std::string> p = table.Path(ino);  // "dir/a.txt"
  std::optional<std::string> Path(uint64_t ino) const;

  // The server is a new instance: every handle is of the past epoch; the
  // root's is now `root_fh`. Returns the new epoch.
  uint64_t NewEpoch(std::string root_fh);
  // `ino`'s handle for the current epoch is `fh` (looked up again by path).
  void Rebind(uint64_t ino, const std::string& fh);
  uint64_t epoch() const;

  // Inodes held (the root included).
  size_t size() const;

 private:
  struct Inode {
    std::string fh;
    uint64_t nlookup = 0;
    std::optional<ChangeStamp> stamp;
    uint64_t parent = 0;  // 0: no name
    std::string name;
    uint64_t fileid = 0;
    uint64_t epoch = 0;
  };
  using Name = std::pair<uint64_t, std::string>;
  // Drops `ino`'s name (and its index entry).
  void UnnameLocked(uint64_t ino, Inode& inode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_ino_ ABSL_GUARDED_BY(mu_) = kRootIno + 1;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Inode> inodes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_fh_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Name, uint64_t> by_name_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_INODE_TABLE_H_
