// GetFile and PutFile: pipelined transfers on top of Submit().
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/internal/paths.h"
#include "client/write_lease.h"
#include "common/socket_util.h"

namespace txbuf::client {
namespace {

// Completions of a GetFile, keyed by READ offset.
struct GetState {
  absl::Mutex mu;
  std::map<uint64_t, absl::StatusOr<CompoundReply>> done ABSL_GUARDED_BY(mu);
  int in_flight ABSL_GUARDED_BY(mu) = 0;
};

absl::Status WriteAll(int fd, absl::Span<const std::byte> data,
                      const std::string& name) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::Status(
          errno == ENOSPC ? absl::StatusCode::kResourceExhausted
                          : absl::StatusCode::kInternal,
          absl::StrCat("writing ", name, ": ", strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// One WRITE buffer of a PutFile: free, or in flight until its WriteLease
// is done (the reply came and the txbuf released the buffer).
struct Slot {
  std::unique_ptr<std::byte[]> buf;
  bool busy = false;
  bool done = false;
  uint64_t offset = 0;
  size_t len = 0;
  std::optional<absl::StatusOr<CompoundReply>> reply;
};

struct PutState {
  absl::Mutex mu;
  std::vector<Slot> slots ABSL_GUARDED_BY(mu);
  uint64_t acked ABSL_GUARDED_BY(mu) = 0;
};

bool SlotIdle(const Slot& s) { return !s.busy || s.done; }

// 16 random hex digits for a temporary name.
std::string RandomSuffix() {
  uint64_t r = 0;
  if (getrandom(&r, sizeof(r), 0) != static_cast<ssize_t>(sizeof(r))) {
    r = static_cast<uint64_t>(absl::GetCurrentTimeNanos()) ^
        (static_cast<uint64_t>(getpid()) << 32);
  }
  return absl::StrFormat("%016x", r);
}

// The hidden temporary name beside `name` (at most 255 bytes).
std::string TempName(absl::string_view name) {
  return absl::StrCat(".", name.substr(0, 200), ".txbuf-", RandomSuffix());
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
         st.st_mtim.tv_nsec;
}

// Whether the local file `st` is, as far as the client can tell, the very
// file the server describes with `attr`: same inode number, size and mtime to
// the nanosecond. (The server's device is not in Attr; a different file with
// all three equal is very unlikely.)
bool SameFile(const struct stat& st, const rpc::Attr& attr) {
  return S_ISREG(st.st_mode) && attr.type() == rpc::FILE_TYPE_REGULAR &&
         static_cast<uint64_t>(st.st_ino) == attr.fileid() &&
         static_cast<uint64_t>(st.st_size) == attr.size() &&
         MtimeNs(st) == attr.mtime_ns();
}

// Where GetFile writes: standard output, a non-regular file written in place
// (a device, a FIFO), or a temporary file renamed over `path` at the end.
struct LocalOut {
  UniqueFd fd;
  std::string path;  // the destination (a symlink's target)
  std::string tmp;   // the temporary file; empty when writing in place

  // Removes the temporary file, if any.
  void Discard() {
    fd.reset();
    if (!tmp.empty()) unlink(tmp.c_str());
    tmp.clear();
  }
  ~LocalOut() { Discard(); }
};

absl::Status OpenLocalOut(const std::string& local, absl::string_view remote,
                          const rpc::Attr& attr, LocalOut* out) {
  auto create_error = [&](const std::string& name) {
    return absl::Status(
        errno == EACCES ? absl::StatusCode::kPermissionDenied
                        : absl::StatusCode::kFailedPrecondition,
        absl::StrCat("cannot create ", name, ": ", strerror(errno)));
  };
  out->path = local;
  struct stat st;
  const bool exists = stat(local.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(local, " is a directory"));
  }
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a FIFO: written in place, never replaced.
    out->fd.reset(open(local.c_str(), O_WRONLY | O_CLOEXEC));
    if (!out->fd) return create_error(local);
    return absl::OkStatus();
  }
  if (exists && SameFile(st, attr)) {
    return absl::FailedPreconditionError(
        absl::StrCat(local, " and '", remote,
                     "' are the same file (same inode, size and mtime): "
                     "nothing copied"));
  }
  if (exists) {
    // Through a symbolic link: replace its target, not the link.
    char* real = realpath(local.c_str(), nullptr);
    if (real != nullptr) {
      out->path = real;
      free(real);
    }
  }
  const size_t slash = out->path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : out->path.substr(0, slash + 1);
  const std::string base =
      slash == std::string::npos ? out->path : out->path.substr(slash + 1);
  for (int tries = 0;; ++tries) {
    out->tmp = absl::StrCat(dir, slash == std::string::npos ? "/" : "",
                            TempName(base));
    out->fd.reset(
        open(out->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (out->fd) break;
    const int err = errno;
    out->tmp.clear();
    errno = err;
    if (err != EEXIST || tries == 8) return create_error(local);
  }
  if (exists) {
    // Keep the replaced file's owner (where allowed) and permission bits.
    (void)!fchown(out->fd.get(), st.st_uid, st.st_gid);
    (void)!fchmod(out->fd.get(), st.st_mode & 07777);
  }
  return absl::OkStatus();
}

// Makes the temporary file the destination: fsync, rename, fsync the
// directory (best effort).
absl::Status CommitLocalOut(LocalOut* out) {
  if (fsync(out->fd.get()) != 0 && errno != EINVAL) {
    return absl::InternalError(
        absl::StrCat("writing ", out->path, ": ", strerror(errno)));
  }
  if (close(out->fd.release()) != 0) {
    return absl::InternalError(
        absl::StrCat("writing ", out->path, ": ", strerror(errno)));
  }
  if (out->tmp.empty()) return absl::OkStatus();
  if (rename(out->tmp.c_str(), out->path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", out->tmp, " to ",
                                            out->path, ": ", strerror(errno)));
  }
  out->tmp.clear();
  const size_t slash = out->path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : out->path.substr(0, slash + 1);
  UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) (void)!fsync(d.get());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> Client::GetFile(absl::string_view remote,
                                         const std::string& local,
                                         const ProgressCallback& progress) {
  std::string path = internal::NormalizePath(remote);
  Compound c;
  c.PutRootFh();
  if (!path.empty()) c.Lookup(path);
  c.GetFh().GetAttr();
  int n = c.size();
  absl::StatusOr<CompoundReply> r = Call(std::move(c));
  if (!r.ok()) return r.status();
  if (absl::Status s = r->status(n); !s.ok()) return s;
  std::string fh = r->result(n - 2).fh().fh();
  const rpc::Attr& attr = r->result(n - 1).attr().attr();
  if (attr.type() != rpc::FILE_TYPE_REGULAR) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", remote, "' is not a regular file"));
  }
  uint64_t size = attr.size();

  const int64_t mtime_ns = attr.mtime_ns();

  // Never the destination itself: a temporary file beside it, renamed over
  // it once every byte is in (docs/CLIENT.md).
  bool to_stdout = local == "-";
  LocalOut out;
  if (!to_stdout) {
    if (absl::Status s = OpenLocalOut(local, remote, attr, &out); !s.ok()) {
      return s;
    }
  }
  int fd = to_stdout ? STDOUT_FILENO : out.fd.get();
  std::string out_name = to_stdout ? "standard output" : local;

  const uint32_t chunk = options().transfer_chunk;
  const int window = options().transfer_window;
  auto st = std::make_shared<GetState>();
  std::map<uint64_t, uint32_t> issued;  // offset -> length asked
  auto issue = [&](uint64_t off, uint32_t len) {
    issued.emplace(off, len);
    {
      absl::MutexLock l(&st->mu);
      ++st->in_flight;
    }
    Compound rc;
    rc.PutFh(fh).Read(off, len);
    Submit(std::move(rc), [st, off](absl::StatusOr<CompoundReply> rep) {
      absl::MutexLock l(&st->mu);
      st->done.insert_or_assign(off, std::move(rep));
      --st->in_flight;
    });
  };

  uint64_t next = 0;   // next offset to ask for
  uint64_t wrote = 0;  // bytes written, in order
  bool stop_issuing = false;
  absl::Status status;
  for (;;) {
    while (!stop_issuing && static_cast<int>(issued.size()) < window &&
           (next < size || issued.empty())) {
      issue(next, chunk);
      next += chunk;
    }
    if (issued.empty()) break;
    // The chunk to write next is the lowest offset asked for.
    uint64_t off = issued.begin()->first;
    uint32_t asked = issued.begin()->second;
    absl::StatusOr<CompoundReply> rep;
    {
      struct Want {
        GetState* st;
        uint64_t off;
      } want{st.get(), off};
      absl::MutexLock l(&st->mu);
      st->mu.Await(absl::Condition(
          +[](Want* w) {
            w->st->mu.AssertHeld();
            return w->st->done.contains(w->off);
          },
          &want));
      auto it = st->done.find(off);
      rep = std::move(it->second);
      st->done.erase(it);
    }
    issued.erase(issued.begin());
    if (stop_issuing) continue;  // past the end of the file: dropped.
    if (!rep.ok()) {
      status = rep.status();
      break;
    }
    if (absl::Status s = rep->status(2); !s.ok()) {
      status = s;
      break;
    }
    absl::Span<const std::byte> data = rep->ReadData(1);
    if (data.size() > asked) {
      status = absl::DataLossError(absl::StrFormat(
          "protocol error: READ of %d bytes returned %d", asked, data.size()));
      break;
    }
    if (absl::Status s = WriteAll(fd, data, out_name); !s.ok()) {
      status = s;
      break;
    }
    wrote += data.size();
    if (progress) progress(wrote, std::max(size, wrote));
    if (rep->result(1).read().eof()) {
      stop_issuing = true;  // later chunks are drained and dropped.
      continue;
    }
    if (data.empty()) {
      status = absl::DataLossError(absl::StrFormat(
          "protocol error: READ at %d returned no data and no eof", off));
      break;
    }
    if (data.size() < asked) {
      // Short without eof: ask for the rest before anything later.
      issue(off + data.size(), static_cast<uint32_t>(asked - data.size()));
    }
  }
  // Wait for stragglers so nothing of ours runs after we return.
  {
    absl::MutexLock l(&st->mu);
    st->mu.Await(absl::Condition(
        +[](GetState* s) {
          s->mu.AssertHeld();
          return s->in_flight == 0;
        },
        st.get()));
  }
  if (status.ok() && wrote != size) {
    status = absl::DataLossError(absl::StrFormat(
        "'%s' changed during the download: %d bytes read, %d expected (its "
        "size at the start)",
        remote, wrote, size));
  }
  if (status.ok()) {
    // The file must not have changed while it was read (a copy torn
    // between two versions).
    Compound ac;
    ac.PutFh(fh).GetAttr();
    absl::StatusOr<CompoundReply> after = Call(std::move(ac));
    if (!after.ok()) {
      status = after.status();
    } else if (absl::Status s = after->status(2); !s.ok()) {
      status = s;
    } else if (const rpc::Attr& a = after->result(1).attr().attr();
               a.size() != size || a.mtime_ns() != mtime_ns) {
      status = absl::DataLossError(absl::StrFormat(
          "'%s' changed during the download (size %d, then %d; mtime "
          "changed: %s)",
          remote, size, a.size(), a.mtime_ns() != mtime_ns ? "yes" : "no"));
    }
  }
  if (status.ok() && !to_stdout) status = CommitLocalOut(&out);
  if (!status.ok()) {
    if (!to_stdout && !out.tmp.empty()) {
      out.Discard();
      return absl::Status(status.code(), absl::StrCat(status.message(), "; ",
                                                      local, " not changed"));
    }
    return status;
  }
  return wrote;
}

absl::StatusOr<uint64_t> Client::PutFile(const std::string& local,
                                         absl::string_view remote,
                                         const ProgressCallback& progress) {
  bool from_stdin = local == "-";
  UniqueFd in;
  struct stat sb = {};
  uint64_t size = 0;
  uint32_t mode = 0644;
  if (!from_stdin) {
    in.reset(open(local.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) {
      return absl::Status(
          errno == ENOENT ? absl::StatusCode::kNotFound
                          : absl::StatusCode::kPermissionDenied,
          absl::StrCat("cannot open ", local, ": ", strerror(errno)));
    }
    if (fstat(in.get(), &sb) != 0) {
      return absl::InternalError(
          absl::StrCat("stat ", local, ": ", strerror(errno)));
    }
    if (!S_ISREG(sb.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(local, " is not a regular file"));
    }
    size = static_cast<uint64_t>(sb.st_size);
    mode = sb.st_mode & 07777;
  }
  int fd = from_stdin ? STDIN_FILENO : in.get();

  absl::StatusOr<std::pair<std::string, std::string>> pn =
      internal::SplitParent(remote);
  if (!pn.ok()) return pn.status();

  const std::string& name = pn->second;

  // The directory's handle and the target's attributes, if it exists.
  Compound q;
  q.PutRootFh();
  if (!pn->first.empty()) q.Lookup(pn->first);
  q.GetFh();
  const int dir_op = q.size() - 1;
  q.Lookup(name).GetAttr();
  const int nq = q.size();
  absl::StatusOr<CompoundReply> qr = Call(std::move(q));
  if (!qr.ok()) return qr.status();
  const bool target_missing =
      qr->rpc_status() == rpc::STATUS_NOENT && qr->size() == dir_op + 2;
  if (absl::Status s = qr->status(nq); !s.ok() && !target_missing) return s;
  const std::string dir_fh = qr->result(dir_op).fh().fh();
  if (!target_missing) {
    const rpc::Attr& target = qr->result(nq - 1).attr().attr();
    if (target.type() == rpc::FILE_TYPE_DIRECTORY) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", remote, "' is a directory"));
    }
    if (!from_stdin && SameFile(sb, target)) {
      return absl::FailedPreconditionError(
          absl::StrCat(local, " and '", remote,
                       "' are the same file (same inode, size and mtime): "
                       "nothing copied"));
    }
    mode = target.mode() & 07777;  // a replaced file keeps its mode
  }

  // Never the target itself: a temporary file beside it (owner-only until
  // the end), renamed over it once every byte is committed.
  std::string tmp;
  std::string fh;
  for (int tries = 0;; ++tries) {
    tmp = TempName(name);
    Compound c;
    c.PutFh(dir_fh).Create(tmp, 0600, /*exclusive=*/true);
    absl::StatusOr<CompoundReply> r = Call(std::move(c));
    if (!r.ok()) return r.status();
    if (r->rpc_status() == rpc::STATUS_EXIST && tries < 8) continue;
    if (absl::Status s = r->status(2); !s.ok()) return s;
    fh = r->result(1).fh().fh();
    break;
  }

  absl::StatusOr<uint64_t> uploaded =
      UploadTo(fh, fd, from_stdin, local, remote, size, progress);
  if (uploaded.ok() && !from_stdin) {
    // Every byte of the file as it was at the start, and it did not change
    // meanwhile.
    struct stat now;
    if (fstat(fd, &now) != 0) {
      uploaded = absl::InternalError(
          absl::StrCat("stat ", local, ": ", strerror(errno)));
    } else if (*uploaded != size ||
               static_cast<uint64_t>(now.st_size) != size ||
               MtimeNs(now) != MtimeNs(sb)) {
      uploaded = absl::DataLossError(absl::StrFormat(
          "%s changed during the upload: %d bytes read, %d expected (its size "
          "at the start)",
          local, *uploaded, size));
    }
  }
  if (uploaded.ok()) {
    Compound f;
    f.PutFh(fh).SetAttr({.mode = mode}).PutFh(dir_fh).Rename(tmp, name);
    absl::StatusOr<CompoundReply> r = Call(std::move(f));
    if (!r.ok()) {
      uploaded = r.status();
    } else if (absl::Status s = r->status(4); !s.ok()) {
      uploaded = s;
    }
  }
  if (!uploaded.ok()) {
    Compound rm;
    rm.PutFh(dir_fh).Remove(tmp);
    (void)Call(std::move(rm));  // best effort: the connection may be gone
    return absl::Status(uploaded.status().code(),
                        absl::StrCat(uploaded.status().message(), "; '", remote,
                                     "' not changed"));
  }
  return uploaded;
}

absl::StatusOr<uint64_t> Client::UploadTo(
    const std::string& fh, int fd, bool from_stdin, const std::string& local,
    absl::string_view remote, uint64_t size, const ProgressCallback& progress) {
  const uint32_t chunk = options().transfer_chunk;
  const int window = options().transfer_window;
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1) {  // the server restarted: start again from empty
      Compound c;
      c.PutFh(fh).SetAttr({.size = 0});
      absl::StatusOr<CompoundReply> r = Call(std::move(c));
      if (!r.ok()) return r.status();
      if (absl::Status s = r->status(2); !s.ok()) return s;
    }

    auto st = std::make_shared<PutState>();
    {
      absl::MutexLock l(&st->mu);
      st->slots.resize(window);
      for (Slot& s : st->slots) s.buf.reset(new std::byte[chunk]);
    }
    absl::Status status;
    std::set<uint64_t> verifiers;
    uint64_t offset = 0;
    uint64_t reported = 0;
    // Checks a finished slot; frees it.
    auto reap = [&](Slot& s) {
      if (!s.busy) return;
      s.busy = false;
      absl::StatusOr<CompoundReply> rep = std::move(*s.reply);
      s.reply.reset();
      if (!status.ok()) return;
      if (!rep.ok()) {
        status = rep.status();
      } else if (absl::Status e = rep->status(2); !e.ok()) {
        status = e;
      } else if (rep->result(1).write().count() != s.len) {
        status = absl::DataLossError(absl::StrFormat(
            "short write: the server wrote %d of %d bytes at offset %d",
            rep->result(1).write().count(), s.len, s.offset));
      } else {
        verifiers.insert(rep->result(1).write().verifier());
      }
    };
    bool at_end = false;
    while (status.ok() && !at_end) {
      // A free slot (reaping finished ones).
      int slot = -1;
      uint64_t acked = 0;
      {
        absl::MutexLock l(&st->mu);
        st->mu.Await(absl::Condition(
            +[](PutState* p) {
              p->mu.AssertHeld();
              for (const Slot& s : p->slots) {
                if (SlotIdle(s)) return true;
              }
              return false;
            },
            st.get()));
        for (int i = 0; i < window; ++i) {
          Slot& s = st->slots[i];
          if (!SlotIdle(s)) continue;
          reap(s);
          if (slot < 0) slot = i;
        }
        acked = st->acked;
      }
      if (progress && acked != reported) {
        reported = acked;
        progress(acked, from_stdin ? 0 : size);
      }
      if (!status.ok()) break;
      // Fill it. Only this thread touches a free slot's buffer.
      std::byte* buf = nullptr;
      {
        absl::MutexLock l(&st->mu);
        buf = st->slots[slot].buf.get();
      }
      size_t got = 0;
      while (got < chunk) {
        ssize_t k = from_stdin ? read(fd, buf + got, chunk - got)
                               : pread(fd, buf + got, chunk - got,
                                       static_cast<off_t>(offset + got));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
          status = absl::InternalError(
              absl::StrCat("reading ", local, ": ", strerror(errno)));
          break;
        }
        if (k == 0) {
          at_end = true;
          break;
        }
        got += static_cast<size_t>(k);
      }
      if (!status.ok() || got == 0) break;
      {
        absl::MutexLock l(&st->mu);
        Slot& s = st->slots[slot];
        s.busy = true;
        s.done = false;
        s.offset = offset;
        s.len = got;
      }
      WriteLease lease([st, slot, got](absl::StatusOr<CompoundReply> rep) {
        absl::MutexLock l(&st->mu);
        Slot& s = st->slots[slot];
        if (rep.ok() && rep->ok()) st->acked += got;
        s.reply = std::move(rep);
        s.done = true;
      });
      Compound w;
      w.PutFh(fh).Write(offset, {buf, got}, lease.BufferRelease(),
                        rpc::STABILITY_UNSTABLE);
      Submit(std::move(w), lease.ReplyCallback());
      offset += got;
    }
    // Wait until every WRITE is answered and every buffer released.
    {
      absl::MutexLock l(&st->mu);
      st->mu.Await(absl::Condition(
          +[](PutState* p) {
            p->mu.AssertHeld();
            for (const Slot& s : p->slots) {
              if (!SlotIdle(s)) return false;
            }
            return true;
          },
          st.get()));
      for (Slot& s : st->slots) reap(s);
      if (progress && st->acked != reported) {
        progress(st->acked, from_stdin ? 0 : std::max(size, st->acked));
      }
    }
    if (!status.ok()) return status;

    Compound cm;
    cm.PutFh(fh).Commit();
    absl::StatusOr<CompoundReply> r = Call(std::move(cm));
    if (!r.ok()) return r.status();
    if (absl::Status s = r->status(2); !s.ok()) return s;
    uint64_t commit_verifier = r->result(1).commit().verifier();
    bool restarted =
        verifiers.size() > 1 ||
        (verifiers.size() == 1 && *verifiers.begin() != commit_verifier);
    if (!restarted) return offset;
    if (from_stdin || attempt >= kAttempts) {
      return absl::AbortedError(absl::StrFormat(
          "the server restarted during the upload of %s (write verifier "
          "changed); unstable data may be lost: upload again",
          remote));
    }
  }
}

}  // namespace txbuf::client
