// client/mount/mount_fs.cc: see mount_fs.h.
#include "client/mount/mount_fs.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/types/span.h"
#include "client/compound.h"
#include "client/mount/errno_map.h"
#include "common/deleter.h"
#include "proto/status_map.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::mount {
namespace {

// The most a WRITE carries: libfuse's buffer holds 1 MiB of data
// (FUSE_MAX_MAX_PAGES pages), and the server's request payload limit.
constexpr uint32_t kFuseMaxWrite = 1 << 20;
// READDIR entries asked for per round trip (the server's default page).
constexpr uint32_t kDirPage = 1024;

mode_t TypeBits(rpc::FileType type) {
  switch (type) {
    case rpc::FILE_TYPE_DIRECTORY:
      return S_IFDIR;
    case rpc::FILE_TYPE_SYMLINK:
      return S_IFLNK;
    default:
      // Special files (FILE_TYPE_OTHER) cannot be opened through the
      // server: shown as regular files whose I/O fails with EINVAL.
      return S_IFREG;
  }
}

timespec Timespec(int64_t ns) {
  timespec t{};
  t.tv_sec = ns / 1'000'000'000;
  t.tv_nsec = ns % 1'000'000'000;
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1'000'000'000;
    --t.tv_sec;
  }
  return t;
}

struct stat ToStat(const rpc::Attr& a) {
  struct stat st {};
  st.st_ino = a.fileid();
  st.st_mode = TypeBits(a.type()) | (a.mode() & 07777);
  st.st_nlink = a.nlink();
  st.st_uid = a.uid();
  st.st_gid = a.gid();
  st.st_size = static_cast<off_t>(a.size());
  st.st_blksize = 1 << 20;
  st.st_blocks = static_cast<blkcnt_t>((a.used() + 511) / 512);
  st.st_atim = Timespec(a.atime_ns());
  st.st_mtim = Timespec(a.mtime_ns());
  st.st_ctim = Timespec(a.ctime_ns());
  return st;
}

ChangeStamp StampOf(const rpc::Attr& a) {
  return {.size = a.size(), .mtime_ns = a.mtime_ns(), .ctime_ns = a.ctime_ns()};
}

int64_t Nanos(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// The errno of a Call() that did not fully succeed, or 0: a transport
// error, a failed op, or fewer results than `expected`.
int ErrnoOf(const absl::StatusOr<CompoundReply>& r, int expected) {
  if (!r.ok()) return ErrnoFromStatus(r.status());
  if (!r->ok()) return RpcStatusErrno(r->rpc_status());
  if (r->size() < expected) return EIO;
  return 0;
}

// What OPENDIR leaves in fuse_file_info::fh: the last page READDIR
// returned, so the kernel's small READDIR buffers cost one round trip per
// page, not one each.
struct OpenDir {
  absl::Mutex mu;
  uint64_t page_cookie ABSL_GUARDED_BY(mu) = ~uint64_t{0};  // page follows it
  std::vector<rpc::DirEntry> page ABSL_GUARDED_BY(mu);
  bool page_eof ABSL_GUARDED_BY(mu) = false;
};

OpenDir* DirOf(const fuse_file_info* fi) {
  return reinterpret_cast<OpenDir*>(static_cast<uintptr_t>(fi->fh));
}

}  // namespace

struct MountFs::OpenDirs {
  OpenDir* Add() {
    auto dir = std::make_unique<OpenDir>();
    OpenDir* p = dir.get();
    absl::MutexLock l(&mu);
    dirs.emplace(p, std::move(dir));
    return p;
  }
  void Remove(OpenDir* dir) {
    std::unique_ptr<OpenDir> gone;
    absl::MutexLock l(&mu);
    auto it = dirs.find(dir);
    if (it == dirs.end()) return;
    gone = std::move(it->second);
    dirs.erase(it);
  }

  absl::Mutex mu;
  absl::flat_hash_map<OpenDir*, std::unique_ptr<OpenDir>> dirs
      ABSL_GUARDED_BY(mu);
};

class MountFs::Ops {
 public:
  static MountFs& Fs(fuse_req_t req) {
    return *static_cast<MountFs*>(fuse_req_userdata(req));
  }

  // The handle of `ino`, or replies ESTALE and returns nullopt.
  static std::optional<std::string> HandleOr(fuse_req_t req, fuse_ino_t ino) {
    std::optional<std::string> fh = Fs(req).inodes_.Handle(ino);
    if (!fh) fuse_reply_err(req, ESTALE);
    return fh;
  }

  // Runs `c`; on failure replies its errno and returns nullopt.
  static std::optional<CompoundReply> Run(fuse_req_t req, Compound c) {
    const int expected = c.size();
    absl::StatusOr<CompoundReply> r = Fs(req).client_->Call(std::move(c));
    if (int err = ErrnoOf(r, expected); err != 0) {
      fuse_reply_err(req, err);
      return std::nullopt;
    }
    return std::move(*r);
  }

  static void ReplyAttr(fuse_req_t req, fuse_ino_t ino, const rpc::Attr& a) {
    MountFs& fs = Fs(req);
    fs.inodes_.UpdateStamp(ino, StampOf(a));
    struct stat st = ToStat(a);
    fuse_reply_attr(req, &st, fs.options_.attr_timeout);
  }

  static fuse_entry_param Entry(MountFs& fs, const rpc::FhResult& r) {
    fuse_entry_param e{};
    e.ino = fs.inodes_.Remember(r.fh());
    e.attr = ToStat(r.attr());
    e.attr_timeout = fs.options_.attr_timeout;
    e.entry_timeout = fs.options_.entry_timeout;
    fs.inodes_.UpdateStamp(e.ino, StampOf(r.attr()));
    return e;
  }

  static void ReplyEntry(fuse_req_t req, const rpc::FhResult& r) {
    MountFs& fs = Fs(req);
    fuse_entry_param e = Entry(fs, r);
    // A reply the kernel did not take (the request was interrupted) leaves
    // it no reference.
    if (fuse_reply_entry(req, &e) != 0) fs.inodes_.Forget(e.ino, 1);
  }

  // --- the operations ---------------------------------------------------

  static void Init(void* userdata, fuse_conn_info* conn) {
    MountFs& fs = *static_cast<MountFs*>(userdata);
    conn->max_write = std::min(conn->max_write, fs.max_write_);
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) {
      conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;  // OPEN truncates (one trip)
    }
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    std::optional<std::string> dir = HandleOr(req, parent);
    if (!dir) return;
    Compound c;
    c.PutFh(*dir).Lookup(name, /*no_follow=*/true);
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (r) ReplyEntry(req, r->result(1).fh());
  }

  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Fs(req).inodes_.Forget(ino, nlookup);
    fuse_reply_none(req);
  }

  static void ForgetMulti(fuse_req_t req, size_t count,
                          fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) {
      Fs(req).inodes_.Forget(forgets[i].ino, forgets[i].nlookup);
    }
    fuse_reply_none(req);
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    Compound c;
    c.PutFh(*fh).GetAttr();
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (r) ReplyAttr(req, ino, r->result(1).attr().attr());
  }

  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr,
                      int to_set, fuse_file_info* /*fi*/) {
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
      // The server keeps its own owner: a chown to the owner the file has
      // (tar and cp -p as root do that) is no change; any other is EPERM.
      Compound g;
      g.PutFh(*fh).GetAttr();
      std::optional<CompoundReply> r = Run(req, std::move(g));
      if (!r) return;
      const rpc::Attr& a = r->result(1).attr().attr();
      if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != a.uid()) ||
          ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != a.gid())) {
        fuse_reply_err(req, EPERM);
        return;
      }
    }
    SetAttrArgs args;
    if (to_set & FUSE_SET_ATTR_MODE) args.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_SIZE) {
      args.size = static_cast<uint64_t>(attr->st_size);
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      args.atime_ns = kTimeNow;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      args.atime_ns = Nanos(attr->st_atim);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      args.mtime_ns = kTimeNow;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      args.mtime_ns = Nanos(attr->st_mtim);
    }
    Compound c;
    c.PutFh(*fh);
    // Times or size set on a file with uncommitted writes (tar's futimens
    // before close): COMMIT first, or the server's later write-back of that
    // data would move mtime past the time set.
    if ((args.mtime_ns || args.atime_ns || args.size) &&
        Fs(req).inodes_.TakeDirty(ino)) {
      c.Commit();
    }
    if (args.mode || args.size || args.atime_ns || args.mtime_ns) {
      c.SetAttr(args);
    } else {
      c.GetAttr();  // only ctime (or an owner kept as it is)
    }
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (r) ReplyAttr(req, ino, r->result(r->size() - 1).attr().attr());
  }

  static void Readlink(fuse_req_t req, fuse_ino_t ino) {
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    Compound c;
    c.PutFh(*fh).Readlink();
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    const std::string& target = r->result(1).readlink().target();
    fuse_reply_readlink(req, target.c_str());
  }

  static void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name,
                    mode_t mode) {
    std::optional<std::string> dir = HandleOr(req, parent);
    if (!dir) return;
    Compound c;
    c.PutFh(*dir).Mkdir(name, mode & 07777);
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (r) ReplyEntry(req, r->result(1).fh());
  }

  static void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent,
                      const char* name) {
    std::optional<std::string> dir = HandleOr(req, parent);
    if (!dir) return;
    Compound c;
    c.PutFh(*dir).Symlink(name, link);
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (r) ReplyEntry(req, r->result(1).fh());
  }

  static void RemoveName(fuse_req_t req, fuse_ino_t parent, const char* name,
                         bool dir_entry) {
    std::optional<std::string> dir = HandleOr(req, parent);
    if (!dir) return;
    Compound c;
    c.PutFh(*dir);
    if (dir_entry) {
      c.Rmdir(name);
    } else {
      c.Remove(name);
    }
    if (Run(req, std::move(c))) fuse_reply_err(req, 0);
  }
  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    RemoveName(req, parent, name, false);
  }
  static void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    RemoveName(req, parent, name, true);
  }

  static void Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
                     fuse_ino_t newparent, const char* newname,
                     unsigned int flags) {
    if (flags != 0) {  // RENAME_NOREPLACE, RENAME_EXCHANGE: not in the protocol
      fuse_reply_err(req, EINVAL);
      return;
    }
    std::optional<std::string> from = HandleOr(req, parent);
    if (!from) return;
    std::optional<std::string> to = HandleOr(req, newparent);
    if (!to) return;
    Compound c;
    c.PutFh(*from).Rename(name, newname, *to);
    if (Run(req, std::move(c))) fuse_reply_err(req, 0);
  }

  static void Link(fuse_req_t req, fuse_ino_t /*ino*/, fuse_ino_t /*newparent*/,
                   const char* /*newname*/) {
    fuse_reply_err(req, EOPNOTSUPP);  // no hard links in the protocol
  }

  static void Mknod(fuse_req_t req, fuse_ino_t /*parent*/, const char* /*name*/,
                    mode_t /*mode*/, dev_t /*rdev*/) {
    // CREATE makes regular files only; the kernel uses CREATE for those.
    fuse_reply_err(req, EPERM);
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    MountFs& fs = Fs(req);
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    Compound c;
    c.PutFh(*fh);
    const bool truncate =
        (fi->flags & O_TRUNC) != 0 && (fi->flags & O_ACCMODE) != O_RDONLY;
    if (truncate) {
      c.SetAttr({.size = 0});
    } else {
      c.GetAttr();
    }
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    const rpc::Attr& a = r->result(1).attr().attr();
    if (a.type() == rpc::FILE_TYPE_DIRECTORY) {
      fuse_reply_err(req, EISDIR);
      return;
    }
    // Close-to-open: a file changed since the kernel last heard of it loses
    // its cached pages and attributes now, before the opener can read.
    const bool changed = fs.inodes_.UpdateStamp(ino, StampOf(a));
    if (changed && !truncate) {
      fuse_lowlevel_notify_inval_inode(fs.session_, ino, 0, 0);
    }
    fi->keep_cache = changed ? 0 : 1;
    if (fi->flags & O_DIRECT) fi->direct_io = 1;
    // No state per open file (what a file has uncommitted is its inode's,
    // InodeTable::MarkDirty): nothing for RELEASE to free.
    fi->fh = 0;
    fuse_reply_open(req, fi);
  }

  static void Create(fuse_req_t req, fuse_ino_t parent, const char* name,
                     mode_t mode, fuse_file_info* fi) {
    MountFs& fs = Fs(req);
    std::optional<std::string> dir = HandleOr(req, parent);
    if (!dir) return;
    Compound c;
    const bool exclusive = (fi->flags & O_EXCL) != 0;
    c.PutFh(*dir).Create(name, mode & 07777, exclusive);
    // Not exclusive, the file may exist (made by another client since the
    // kernel looked): O_TRUNC still truncates it.
    const bool truncate = !exclusive && (fi->flags & O_TRUNC) != 0;
    if (truncate) c.SetAttr({.size = 0});
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    rpc::FhResult made = r->result(1).fh();
    if (truncate) *made.mutable_attr() = r->result(2).attr().attr();
    fuse_entry_param e = Entry(fs, made);
    if (fi->flags & O_DIRECT) fi->direct_io = 1;
    fi->fh = 0;
    if (fuse_reply_create(req, &e, fi) != 0) fs.inodes_.Forget(e.ino, 1);
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* /*fi*/) {
    MountFs& fs = Fs(req);
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    Compound c;
    c.PutFh(*fh).Read(
        static_cast<uint64_t>(off),
        static_cast<uint32_t>(std::min<size_t>(size, fs.max_read_)));
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    // Straight from the reply's payload to the kernel.
    absl::Span<const std::byte> data = r->ReadData(1);
    fuse_reply_buf(req, reinterpret_cast<const char*>(data.data()),
                   data.size());
  }

  static void Write(fuse_req_t req, fuse_ino_t ino, const char* buf,
                    size_t size, off_t off, fuse_file_info* /*fi*/) {
    MountFs& fs = Fs(req);
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    // libfuse's buffer is sent in place: it is not reused before the
    // client's Deleter says the kernel is done with it.
    absl::Notification released;
    Compound c;
    c.PutFh(*fh)
        .Write(static_cast<uint64_t>(off),
               {reinterpret_cast<const std::byte*>(buf), size},
               Deleter::FromCallable([&released] { released.Notify(); }),
               rpc::STABILITY_UNSTABLE)
        .GetAttr();
    absl::StatusOr<CompoundReply> r = fs.client_->Call(std::move(c));
    released.WaitForNotification();
    if (int err = ErrnoOf(r, 3); err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    fs.inodes_.MarkDirty(ino);
    fs.inodes_.UpdateStamp(ino, StampOf(r->result(2).attr().attr()));
    fuse_reply_write(req, r->result(1).write().count());
  }

  static void Commit(fuse_req_t req, fuse_ino_t ino) {
    std::optional<std::string> fh = HandleOr(req, ino);
    if (!fh) return;
    Compound c;
    // The attributes after: the write-back moved mtime, and this mount's
    // own writes must not look like another client's change at the next
    // open (which would drop the cached pages).
    c.PutFh(*fh).Commit().GetAttr();
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    Fs(req).inodes_.UpdateStamp(ino, StampOf(r->result(2).attr().attr()));
    fuse_reply_err(req, 0);
  }

  static void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    // close(): what was written is made durable (as NFS does on close).
    if (Fs(req).inodes_.TakeDirty(ino)) {
      Commit(req, ino);
    } else {
      fuse_reply_err(req, 0);
    }
  }

  static void Fsync(fuse_req_t req, fuse_ino_t ino, int /*datasync*/,
                    fuse_file_info* /*fi*/) {
    Fs(req).inodes_.TakeDirty(ino);
    Commit(req, ino);
  }

  static void Release(fuse_req_t req, fuse_ino_t /*ino*/,
                      fuse_file_info* /*fi*/) {
    fuse_reply_err(req, 0);
  }

  static void OpenDirOp(fuse_req_t req, fuse_ino_t /*ino*/,
                        fuse_file_info* fi) {
    OpenDir* dir = Fs(req).open_dirs_->Add();
    fi->fh = reinterpret_cast<uintptr_t>(dir);
    if (fuse_reply_open(req, fi) != 0) Fs(req).open_dirs_->Remove(dir);
  }

  static void ReleaseDir(fuse_req_t req, fuse_ino_t /*ino*/,
                         fuse_file_info* fi) {
    Fs(req).open_dirs_->Remove(DirOf(fi));
    fuse_reply_err(req, 0);
  }

  // Offsets are the server's READDIR cookies: `off` resumes after the entry
  // whose cookie it is (0: from the start). No "." and "..": a cookie has
  // no room for them, and the kernel does not need them.
  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* fi) {
    std::string buf(size, '\0');
    size_t used = 0;
    // Reply only after letting go of the OpenDir: once the kernel has the
    // reply, the directory may be closed and RELEASEDIR free it at once.
    if (int err = FillDir(req, ino, *DirOf(fi), static_cast<uint64_t>(off), buf,
                          &used);
        err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_buf(req, buf.data(), used);
  }

  // Fills `buf` with the entries after `cookie`; 0 or an errno.
  static int FillDir(fuse_req_t req, fuse_ino_t ino, OpenDir& od,
                     uint64_t cookie, std::string& buf, size_t* used) {
    absl::MutexLock l(&od.mu);
    size_t start = 0;
    bool found = od.page_cookie == cookie;
    if (!found) {
      for (size_t i = 0; i < od.page.size(); ++i) {
        if (od.page[i].cookie() == cookie) {
          start = i + 1;
          found = true;
          break;
        }
      }
    }
    if (!found || (start == od.page.size() && !od.page_eof)) {
      std::optional<std::string> fh = Fs(req).inodes_.Handle(ino);
      if (!fh) return ESTALE;
      Compound c;
      c.PutFh(*fh).ReadDir(cookie, kDirPage, /*with_attrs=*/false);
      absl::StatusOr<CompoundReply> r = Fs(req).client_->Call(std::move(c));
      if (int err = ErrnoOf(r, 2); err != 0) return err;
      const rpc::ReadDirResult& res = r->result(1).readdir();
      od.page.assign(res.entries().begin(), res.entries().end());
      od.page_cookie = cookie;
      od.page_eof = res.eof();
      start = 0;
    }
    const size_t size = buf.size();
    for (size_t i = start; i < od.page.size(); ++i) {
      const rpc::DirEntry& e = od.page[i];
      struct stat st {};
      st.st_ino = e.fileid();
      st.st_mode = TypeBits(e.type());
      const size_t n = fuse_add_direntry(req, buf.data() + *used, size - *used,
                                         e.name().c_str(), &st,
                                         static_cast<off_t>(e.cookie()));
      if (n > size - *used) break;
      *used += n;
    }
    return 0;
  }

  static void StatFs(fuse_req_t req, fuse_ino_t /*ino*/) {
    std::optional<std::string> root = HandleOr(req, InodeTable::kRootIno);
    if (!root) return;
    Compound c;
    c.PutFh(*root).StatFs();  // of this export
    std::optional<CompoundReply> r = Run(req, std::move(c));
    if (!r) return;
    const rpc::StatFsResult& s = r->result(1).statfs();
    const uint64_t bs = s.block_size() != 0 ? s.block_size() : 4096;
    struct statvfs v {};
    v.f_bsize = bs;
    v.f_frsize = bs;
    v.f_blocks = s.total_bytes() / bs;
    v.f_bfree = s.free_bytes() / bs;
    v.f_bavail = s.avail_bytes() / bs;
    v.f_files = s.total_files();
    v.f_ffree = s.free_files();
    v.f_favail = s.free_files();
    v.f_namemax = s.name_max() != 0 ? s.name_max() : 255;
    fuse_reply_statfs(req, &v);
  }

  static fuse_lowlevel_ops Table() {
    fuse_lowlevel_ops ops{};
    ops.init = Init;
    ops.lookup = Lookup;
    ops.forget = Forget;
    ops.forget_multi = ForgetMulti;
    ops.getattr = GetAttr;
    ops.setattr = SetAttr;
    ops.readlink = Readlink;
    ops.mknod = Mknod;
    ops.mkdir = Mkdir;
    ops.unlink = Unlink;
    ops.rmdir = Rmdir;
    ops.symlink = Symlink;
    ops.rename = Rename;
    ops.link = Link;
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.flush = Flush;
    ops.release = Release;
    ops.fsync = Fsync;
    ops.opendir = OpenDirOp;
    ops.readdir = ReadDir;
    ops.releasedir = ReleaseDir;
    ops.statfs = StatFs;
    ops.create = Create;
    return ops;
  }
};

absl::StatusOr<std::unique_ptr<MountFs>> MountFs::Create(Client* client,
                                                         MountOptions options) {
  Compound c;
  c.PutRootFh().GetFh();
  absl::StatusOr<CompoundReply> r = client->Call(std::move(c));
  if (!r.ok()) return r.status();
  if (absl::Status s = r->status(2); !s.ok()) return s;
  if (r->result(1).fh().attr().type() != rpc::FILE_TYPE_DIRECTORY) {
    return absl::FailedPreconditionError("the export's root is no directory");
  }
  return std::unique_ptr<MountFs>(
      new MountFs(client, std::move(options), r->result(1).fh().fh()));
}

MountFs::MountFs(Client* client, MountOptions options, std::string root_fh)
    : client_(client),
      options_(std::move(options)),
      inodes_(std::move(root_fh)),
      open_dirs_(std::make_unique<OpenDirs>()) {
  const rpc::Hello& hello = client_->hello();
  // 0 in Hello: the protocol's default (docs/PROTOCOL.md section 1).
  max_read_ = hello.max_read() != 0 ? hello.max_read() : 16u << 20;
  max_read_ = std::min(max_read_, hello.max_reply_payload() != 0
                                      ? hello.max_reply_payload()
                                      : 64u << 20);
  const uint32_t max_payload =
      hello.max_payload() != 0 ? hello.max_payload() : 64u << 20;
  max_write_ = std::min(kFuseMaxWrite, max_payload);
}

MountFs::~MountFs() { Unmount(); }

absl::Status MountFs::Mount() {
  if (session_ != nullptr) return absl::FailedPreconditionError("mounted");
  // No max_read option: the kernel's READs are at most max_pages (1 MiB)
  // anyway, and READ splits nothing under the server's max_read.
  std::string opts = absl::StrCat("fsname=", options_.fsname, ",subtype=txbuf");
  if (options_.read_only) opts += ",ro";
  std::vector<std::string> argv_s = {"txbuf-mount", "-o", opts};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops ops = Ops::Table();
  session_ = fuse_session_new(&args, &ops, sizeof(ops), this);
  fuse_opt_free_args(&args);
  if (session_ == nullptr) {
    return absl::InternalError("fuse_session_new failed (see above)");
  }
  if (fuse_session_mount(session_, options_.mountpoint.c_str()) != 0) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot mount on '", options_.mountpoint,
        "' (is it an existing directory? /dev/fuse and fusermount3 usable?)"));
  }
  mounted_ = true;
  return absl::OkStatus();
}

absl::Status MountFs::Serve(bool handle_signals) {
  if (session_ == nullptr) return absl::FailedPreconditionError("not mounted");
  if (handle_signals && fuse_set_signal_handlers(session_) != 0) {
    return absl::InternalError("fuse_set_signal_handlers failed");
  }
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, std::max(1, options_.max_threads));
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  const int rc = fuse_session_loop_mt(session_, cfg);
  fuse_loop_cfg_destroy(cfg);
  if (handle_signals) fuse_remove_signal_handlers(session_);
  Unmount();
  if (rc < 0) {
    return absl::InternalError(
        absl::StrCat("FUSE session failed: errno ", -rc));
  }
  return absl::OkStatus();
}

void MountFs::Unmount() {
  if (session_ == nullptr) return;
  if (mounted_) fuse_session_unmount(session_);
  mounted_ = false;
  fuse_session_destroy(session_);
  session_ = nullptr;
}

}  // namespace txbuf::client::mount
