#include "server/export.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"

namespace txbuf::server {
namespace {

constexpr char kHandleMagic[4] = {'T', 'X', 'H', '\x01'};
constexpr size_t kHandleSize = 20;

// Without openat2 (kernels before 5.6, or valgrind): walks `path` one
// component at a time with O_NOFOLLOW, following only relative symlinks
// without '..' (stricter than RESOLVE_BENEATH, never looser). EXDEV for a
// path that would leave `dirfd`, like openat2.
int OpenBeneathByHand(int dirfd, const std::string& path, uint64_t flags,
                      uint64_t mode, int depth = 0) {
  if (depth > 40) return errno = ELOOP, -1;
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  if (path.empty() || path[0] == '/' || parts.empty()) return errno = EXDEV, -1;
  UniqueFd dir(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& c = parts[i];
    if (c == "..") return errno = EXDEV, -1;
    bool last = i + 1 == parts.size();
    int f = last ? static_cast<int>(flags) | O_NOFOLLOW
                 : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(openat(dir.get(), c.c_str(), f, static_cast<mode_t>(mode)));
    if (!next && errno == ENOTDIR && !last) return -1;
    if (!next && (errno == ELOOP || errno == ENOTDIR)) {
      // A symlink: follow it within the current directory.
      char target[4096];
      ssize_t n = readlinkat(dir.get(), c.c_str(), target, sizeof(target) - 1);
      if (n < 0) return -1;
      std::string t(target, static_cast<size_t>(n));
      for (size_t j = i + 1; j < parts.size(); ++j) t += "/" + parts[j];
      return OpenBeneathByHand(dir.get(), t, flags, mode, depth + 1);
    }
    if (!next) return -1;
    dir = std::move(next);
  }
  return dir.release();
}

int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t mode,
            uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.mode = mode;
  how.resolve = resolve;
  for (;;) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN) {
      if (fd < 0 && errno == ENOSYS) {
        return OpenBeneathByHand(dirfd, path, flags, mode);
      }
      return static_cast<int>(fd);
    }
  }
}

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

std::string ProcPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

rpc::FileType TypeOf(mode_t m) {
  if (S_ISREG(m)) return rpc::FILE_TYPE_REGULAR;
  if (S_ISDIR(m)) return rpc::FILE_TYPE_DIRECTORY;
  if (S_ISLNK(m)) return rpc::FILE_TYPE_SYMLINK;
  return rpc::FILE_TYPE_OTHER;
}

int64_t Ns(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// An error for a failed resolution of `what` beneath the export.
OpError ResolveError(int err, absl::string_view what) {
  if (err == EXDEV || err == ELOOP) {
    return Err(rpc::STATUS_ACCES,
               absl::StrCat(what, ": path leaves the export"));
  }
  return ErrnoError(err, what);
}

}  // namespace

OpError Export::CheckName(absl::string_view name) {
  if (name.empty()) return Err(rpc::STATUS_INVAL, "empty name");
  if (name == ".") return Err(rpc::STATUS_INVAL, "'.' is not a name");
  if (name == "..") {
    return Err(rpc::STATUS_ACCES, "'..' is refused: path leaves the export");
  }
  if (name.size() > 255) {
    return Err(rpc::STATUS_NAMETOOLONG,
               absl::StrCat("name of ", name.size(), " bytes"));
  }
  if (name.find('/') != absl::string_view::npos) {
    return Err(rpc::STATUS_INVAL, "a name cannot contain '/'");
  }
  if (name.find('\0') != absl::string_view::npos) {
    return Err(rpc::STATUS_INVAL, "a name cannot contain NUL");
  }
  return OpError::Ok();
}

absl::StatusOr<std::unique_ptr<Export>> Export::Open(const std::string& dir,
                                                     ExportOptions options) {
  std::unique_ptr<Export> ex(new Export(options));
  UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("export ", dir));
  uint8_t epoch[8];
  RandomBytes(epoch);
  std::memcpy(&ex->epoch_, epoch, sizeof(epoch));
  OpResultOr<NodeRef> root = ex->Adopt(std::move(fd));
  if (!root.ok()) {
    return absl::InternalError(
        absl::StrCat("export ", dir, ": ", root.error.message));
  }
  ex->root_ = root.value;
  return ex;
}

size_t Export::nodes() const {
  absl::MutexLock l(&mu_);
  return by_id_.size();
}

NodeRef Export::FindLocked(const FileKey& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  auto n = by_id_.find(it->second);
  return n == by_id_.end() ? nullptr : n->second;
}

void Export::SweepLocked() {
  // Drop the oldest half of the nodes no operation is using. Their handles
  // become STALE: the price of a bounded table (like NFSv4 volatile handles).
  std::vector<uint64_t> idle;
  for (const auto& [id, n] : by_id_) {
    if (n.use_count() == 1 && n != root_) idle.push_back(id);
  }
  std::sort(idle.begin(), idle.end());
  idle.resize((idle.size() + 1) / 2);
  for (uint64_t id : idle) {
    auto it = by_id_.find(id);
    by_key_.erase(it->second->key);
    by_id_.erase(it);
  }
}

OpResultOr<NodeRef> Export::Adopt(UniqueFd opath) {
  struct stat st;
  if (fstat(opath.get(), &st) != 0) return {ErrnoError(errno, "fstat")};
  FileKey key{st.st_dev, st.st_ino};
  absl::MutexLock l(&mu_);
  if (NodeRef n = FindLocked(key)) return {OpError::Ok(), n};
  if (by_id_.size() >= options_.max_nodes) SweepLocked();
  auto n = std::make_shared<Node>();
  n->id = next_id_++;
  n->key = key;
  n->opath = std::move(opath);
  n->is_dir = S_ISDIR(st.st_mode);
  n->is_regular = S_ISREG(st.st_mode);
  by_id_[n->id] = n;
  by_key_[key] = n->id;
  return {OpError::Ok(), n};
}

std::string Export::HandleOf(const Node& n) const {
  std::string h(kHandleSize, '\0');
  std::memcpy(h.data(), kHandleMagic, 4);
  std::memcpy(h.data() + 4, &epoch_, 8);
  std::memcpy(h.data() + 12, &n.id, 8);
  return h;
}

OpResultOr<NodeRef> Export::FromHandle(absl::string_view fh) {
  if (fh.size() != kHandleSize ||
      std::memcmp(fh.data(), kHandleMagic, 4) != 0) {
    return {Err(rpc::STATUS_BADHANDLE, "not a file handle of this server")};
  }
  uint64_t epoch, id;
  std::memcpy(&epoch, fh.data() + 4, 8);
  std::memcpy(&id, fh.data() + 12, 8);
  if (epoch != epoch_) {
    return {Err(rpc::STATUS_STALE, "file handle from before a server restart")};
  }
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    auto it = by_id_.find(id);
    if (it != by_id_.end()) n = it->second;
  }
  if (n == nullptr)
    return {Err(rpc::STATUS_STALE, "unknown or expired handle")};
  OpResultOr<struct stat> st = Stat(*n);
  if (!st.ok()) return {st.error};
  return {OpError::Ok(), n};
}

OpResultOr<struct stat> Export::Stat(const Node& n) {
  OpResultOr<struct stat> r;
  if (fstat(n.opath.get(), &r.value) != 0) {
    r.error = ErrnoError(errno, "fstat");
  } else if (r.value.st_nlink == 0) {
    const_cast<Node&>(n).removed.store(true, std::memory_order_release);
    r.error = Err(rpc::STATUS_STALE, "the file was removed");
  }
  return r;
}

void Export::ToAttr(const struct stat& st, Node* n, rpc::Attr* a) {
  a->set_type(TypeOf(st.st_mode));
  a->set_mode(st.st_mode & 07777);
  a->set_nlink(static_cast<uint32_t>(st.st_nlink));
  a->set_uid(st.st_uid);
  a->set_gid(st.st_gid);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (n != nullptr && n->is_regular) {
    absl::MutexLock l(&n->mu);
    if (n->file != nullptr) size = n->file->size();
  }
  a->set_size(size);
  a->set_used(static_cast<uint64_t>(st.st_blocks) * 512);
  a->set_fileid(st.st_ino);
  a->set_atime_ns(Ns(st.st_atim));
  a->set_mtime_ns(Ns(st.st_mtim));
  a->set_ctime_ns(Ns(st.st_ctim));
}

OpResultOr<rpc::Attr> Export::GetAttr(const Node& n) {
  OpResultOr<struct stat> st = Stat(n);
  if (!st.ok()) return {st.error};
  OpResultOr<rpc::Attr> r;
  ToAttr(st.value, const_cast<Node*>(&n), &r.value);
  return r;
}

OpError Export::CheckWritable() const {
  if (options_.read_only) {
    return Err(rpc::STATUS_ROFS, "the export is read-only");
  }
  return OpError::Ok();
}

OpResultOr<NodeRef> Export::Lookup(const Node& dir, absl::string_view path) {
  if (path.empty()) return {Err(rpc::STATUS_INVAL, "empty path")};
  if (path.front() == '/') {
    return {
        Err(rpc::STATUS_ACCES, "absolute path refused: it leaves the export")};
  }
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (OpError e = CheckName(c); !e.ok()) {
      e.message = absl::StrCat("lookup '", path, "': ", e.message);
      return {e};
    }
  }
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "lookup in a non-directory")};
  std::string p(path);
  UniqueFd fd(
      OpenAt2(dir.opath.get(), p.c_str(), O_PATH | O_CLOEXEC, 0, kBeneath));
  if (!fd) return {ResolveError(errno, absl::StrCat("lookup '", path, "'"))};
  return Adopt(std::move(fd));
}

OpResultOr<NodeRef> Export::Create(const Node& dir, absl::string_view name,
                                   uint32_t mode, bool exclusive) {
  if (OpError e = CheckWritable(); !e.ok()) return {e};
  if (OpError e = CheckName(name); !e.ok()) return {e};
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "create in a non-directory")};
  std::string n(name);
  uint64_t flags =
      O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : 0);
  UniqueFd fd(
      OpenAt2(dir.opath.get(), n.c_str(), flags, mode & 07777, kBeneath));
  if (!fd) return {ResolveError(errno, absl::StrCat("create '", name, "'"))};
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return {ErrnoError(errno, "fstat")};
  if (!S_ISREG(st.st_mode)) {
    return {Err(rpc::STATUS_INVAL,
                absl::StrCat("'", name, "' is not a regular file"))};
  }
  UniqueFd opath(OpenAt2(dir.opath.get(), n.c_str(),
                         O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
  if (!opath) return {ResolveError(errno, absl::StrCat("create '", name, "'"))};
  return Adopt(std::move(opath));
}

OpResultOr<NodeRef> Export::Mkdir(const Node& dir, absl::string_view name,
                                  uint32_t mode) {
  if (OpError e = CheckWritable(); !e.ok()) return {e};
  if (OpError e = CheckName(name); !e.ok()) return {e};
  if (!dir.is_dir) return {Err(rpc::STATUS_NOTDIR, "mkdir in a non-directory")};
  std::string n(name);
  if (mkdirat(dir.opath.get(), n.c_str(), mode & 07777) != 0) {
    return {ErrnoError(errno, absl::StrCat("mkdir '", name, "'"))};
  }
  UniqueFd opath(OpenAt2(dir.opath.get(), n.c_str(),
                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                         kBeneath));
  if (!opath) return {ResolveError(errno, absl::StrCat("mkdir '", name, "'"))};
  return Adopt(std::move(opath));
}

void Export::ForgetIfUnlinked(const FileKey& key, nlink_t links_before) {
  NodeRef n;
  {
    absl::MutexLock l(&mu_);
    n = FindLocked(key);
  }
  bool gone = links_before <= 1;
  if (n != nullptr) {
    struct stat st;
    gone = fstat(n->opath.get(), &st) == 0 && st.st_nlink == 0;
    if (gone) {
      n->removed.store(true, std::memory_order_release);
      absl::MutexLock l(&n->mu);
      n->file.reset();
    }
  }
  // Pages of the file pinned by replies in flight live on in those txbufs.
  if (gone && cache_ != nullptr) cache_->Forget(key);
}

OpError Export::Remove(const Node& dir, absl::string_view name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir) return Err(rpc::STATUS_NOTDIR, "remove in a non-directory");
  std::string n(name);
  struct stat st;
  if (fstatat(dir.opath.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError(errno, absl::StrCat("remove '", name, "'"));
  }
  if (S_ISDIR(st.st_mode)) {
    return Err(rpc::STATUS_ISDIR,
               absl::StrCat("remove '", name, "': is a directory (use rmdir)"));
  }
  if (unlinkat(dir.opath.get(), n.c_str(), 0) != 0) {
    return ErrnoError(errno, absl::StrCat("remove '", name, "'"));
  }
  ForgetIfUnlinked({st.st_dev, st.st_ino}, st.st_nlink);
  return OpError::Ok();
}

OpError Export::Rmdir(const Node& dir, absl::string_view name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(name); !e.ok()) return e;
  if (!dir.is_dir) return Err(rpc::STATUS_NOTDIR, "rmdir in a non-directory");
  std::string n(name);
  if (unlinkat(dir.opath.get(), n.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoError(errno, absl::StrCat("rmdir '", name, "'"));
  }
  return OpError::Ok();
}

OpError Export::Rename(const Node& from_dir, absl::string_view from_name,
                       const Node& to_dir, absl::string_view to_name) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpError e = CheckName(from_name); !e.ok()) return e;
  if (OpError e = CheckName(to_name); !e.ok()) return e;
  if (!from_dir.is_dir || !to_dir.is_dir) {
    return Err(rpc::STATUS_NOTDIR, "rename between non-directories");
  }
  std::string f(from_name), t(to_name);
  struct stat replaced;
  bool had_target = fstatat(to_dir.opath.get(), t.c_str(), &replaced,
                            AT_SYMLINK_NOFOLLOW) == 0;
  if (renameat(from_dir.opath.get(), f.c_str(), to_dir.opath.get(),
               t.c_str()) != 0) {
    return ErrnoError(
        errno, absl::StrCat("rename '", from_name, "' to '", to_name, "'"));
  }
  if (had_target && !S_ISDIR(replaced.st_mode)) {
    ForgetIfUnlinked({replaced.st_dev, replaced.st_ino}, replaced.st_nlink);
  }
  return OpError::Ok();
}

OpResultOr<std::shared_ptr<PageCache::File>> Export::File(const Node& n) {
  if (n.is_dir) return {Err(rpc::STATUS_ISDIR, "is a directory")};
  if (!n.is_regular) return {Err(rpc::STATUS_INVAL, "not a regular file")};
  Node& node = const_cast<Node&>(n);
  absl::MutexLock l(&node.mu);
  if (node.file != nullptr) return {OpError::Ok(), node.file};
  int opath = n.opath.get();
  bool ro = options_.read_only;
  absl::StatusOr<std::shared_ptr<PageCache::File>> f =
      cache_->GetFile(n.key, [opath, ro]() -> absl::StatusOr<int> {
        std::string p = ProcPath(opath);
        int fd = open(p.c_str(), (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0) return ErrnoStatus(errno, "open");
        return fd;
      });
  if (!f.ok()) return {FromAbsl(f.status())};
  node.file = *f;
  return {OpError::Ok(), node.file};
}

OpError Export::SetAttr(const Node& n, const rpc::SetAttr& a) {
  if (OpError e = CheckWritable(); !e.ok()) return e;
  if (OpResultOr<struct stat> st = Stat(n); !st.ok()) return st.error;
  std::string p = ProcPath(n.opath.get());
  if (a.has_mode() && fchmodat(AT_FDCWD, p.c_str(), a.mode() & 07777, 0) != 0) {
    return ErrnoError(errno, "chmod");
  }
  if (a.has_size()) {
    OpResultOr<std::shared_ptr<PageCache::File>> f = File(n);
    if (!f.ok()) return f.error;
    if (absl::Status s = f.value->Truncate(a.size()); !s.ok())
      return FromAbsl(s);
  }
  if (a.has_atime_ns() || a.has_mtime_ns()) {
    timespec ts[2];
    auto set = [](bool has, int64_t v, timespec* t) {
      if (!has) {
        t->tv_nsec = UTIME_OMIT;
      } else if (v < 0) {
        t->tv_nsec = UTIME_NOW;
      } else {
        t->tv_sec = v / 1000000000;
        t->tv_nsec = v % 1000000000;
      }
    };
    set(a.has_atime_ns(), a.atime_ns(), &ts[0]);
    set(a.has_mtime_ns(), a.mtime_ns(), &ts[1]);
    if (utimensat(AT_FDCWD, p.c_str(), ts, 0) != 0) {
      return ErrnoError(errno, "utimensat");
    }
  }
  return OpError::Ok();
}

OpResultOr<Export::DirPage> Export::ReadDir(const Node& dir, uint64_t cookie,
                                            uint32_t max_entries,
                                            bool with_attrs) {
  if (!dir.is_dir)
    return {Err(rpc::STATUS_NOTDIR, "readdir of a non-directory")};
  if (OpResultOr<struct stat> st = Stat(dir); !st.ok()) return {st.error};
  UniqueFd fd(openat(dir.opath.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return {ErrnoError(errno, "opendir")};
  if (cookie != 0 &&
      lseek(fd.get(), static_cast<off_t>(cookie), SEEK_SET) < 0) {
    return {Err(rpc::STATUS_INVAL, "bad readdir cookie")};
  }
  if (max_entries == 0) max_entries = 1024;
  OpResultOr<DirPage> r;
  alignas(8) char buf[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf, sizeof(buf));
    if (n < 0) return {ErrnoError(errno, "getdents64")};
    if (n == 0) {
      r.value.eof = true;
      break;
    }
    for (long at = 0; at < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + at);
      at += d->d_reclen;
      absl::string_view name(d->d_name);
      if (name == "." || name == "..") continue;
      if (r.value.entries.size() == max_entries) return r;  // more remain
      rpc::DirEntry& e = r.value.entries.emplace_back();
      e.set_name(std::string(name));
      e.set_cookie(static_cast<uint64_t>(d->d_off));
      e.set_fileid(d->d_ino);
      switch (d->d_type) {
        case DT_REG:
          e.set_type(rpc::FILE_TYPE_REGULAR);
          break;
        case DT_DIR:
          e.set_type(rpc::FILE_TYPE_DIRECTORY);
          break;
        case DT_LNK:
          e.set_type(rpc::FILE_TYPE_SYMLINK);
          break;
        case DT_UNKNOWN:
          e.set_type(rpc::FILE_TYPE_UNKNOWN);
          break;
        default:
          e.set_type(rpc::FILE_TYPE_OTHER);
      }
      if (with_attrs) {
        UniqueFd op(OpenAt2(fd.get(), d->d_name,
                            O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kBeneath));
        if (!op) continue;  // removed meanwhile: keep the bare entry
        OpResultOr<NodeRef> node = Adopt(std::move(op));
        if (!node.ok()) continue;
        struct stat st;
        if (fstat(node.value->opath.get(), &st) == 0) {
          ToAttr(st, node.value.get(), e.mutable_attr());
          e.set_type(e.attr().type());
        }
        e.set_fh(HandleOf(*node.value));
      }
    }
  }
  return r;
}

OpResultOr<rpc::StatFsResult> Export::StatFs() {
  struct statvfs sv;
  std::string p = ProcPath(root_->opath.get());
  if (statvfs(p.c_str(), &sv) != 0) return {ErrnoError(errno, "statvfs")};
  OpResultOr<rpc::StatFsResult> r;
  uint64_t bs = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
  r.value.set_total_bytes(sv.f_blocks * bs);
  r.value.set_free_bytes(sv.f_bfree * bs);
  r.value.set_avail_bytes(sv.f_bavail * bs);
  r.value.set_total_files(sv.f_files);
  r.value.set_free_files(sv.f_ffree);
  r.value.set_block_size(static_cast<uint32_t>(sv.f_bsize));
  r.value.set_name_max(static_cast<uint32_t>(sv.f_namemax));
  return r;
}

}  // namespace txbuf::server
