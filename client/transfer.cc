// GetFile and PutFile: pipelined transfers on top of Submit().
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
#include "client/client.h"
#include "client/internal/paths.h"
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

// One WRITE buffer of a PutFile: free, or in flight until both its reply
// came and its txbuf released it.
struct Slot {
  std::unique_ptr<std::byte[]> buf;
  bool busy = false;
  bool replied = false;
  bool released = false;
  uint64_t offset = 0;
  size_t len = 0;
  std::optional<absl::StatusOr<CompoundReply>> reply;
};

struct PutState {
  absl::Mutex mu;
  std::vector<Slot> slots ABSL_GUARDED_BY(mu);
  uint64_t acked ABSL_GUARDED_BY(mu) = 0;
};

bool SlotIdle(const Slot& s) { return !s.busy || (s.replied && s.released); }

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

  bool to_stdout = local == "-";
  UniqueFd out;
  if (!to_stdout) {
    out.reset(
        open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out) {
      return absl::Status(
          errno == EACCES ? absl::StatusCode::kPermissionDenied
                          : absl::StatusCode::kFailedPrecondition,
          absl::StrCat("cannot create ", local, ": ", strerror(errno)));
    }
  }
  int fd = to_stdout ? STDOUT_FILENO : out.get();
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
  if (!status.ok()) {
    if (!to_stdout) {
      out.reset();
      unlink(local.c_str());
    }
    return status;
  }
  if (!to_stdout) {
    if (fsync(fd) != 0 && errno != EINVAL) {
      int err = errno;
      unlink(local.c_str());
      return absl::InternalError(
          absl::StrCat("writing ", local, ": ", strerror(err)));
    }
    if (close(out.release()) != 0) {
      return absl::InternalError(
          absl::StrCat("writing ", local, ": ", strerror(errno)));
    }
  }
  return wrote;
}

absl::StatusOr<uint64_t> Client::PutFile(const std::string& local,
                                         absl::string_view remote,
                                         const ProgressCallback& progress) {
  bool from_stdin = local == "-";
  UniqueFd in;
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
    struct stat sb;
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

  const uint32_t chunk = options().transfer_chunk;
  const int window = options().transfer_window;
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    // Create (or open) and truncate.
    Compound c;
    c.PutRootFh();
    if (!pn->first.empty()) c.Lookup(pn->first);
    c.Create(pn->second, mode, /*exclusive=*/false);
    int create_op = c.size() - 1;
    c.SetAttr({.size = 0});
    int n = c.size();
    absl::StatusOr<CompoundReply> r = Call(std::move(c));
    if (!r.ok()) return r.status();
    if (absl::Status s = r->status(n); !s.ok()) return s;
    std::string fh = r->result(create_op).fh().fh();

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
        s.replied = false;
        s.released = false;
        s.offset = offset;
        s.len = got;
      }
      Compound w;
      w.PutFh(fh).Write(offset, {buf, got}, Deleter::FromCallable([st, slot] {
                          absl::MutexLock l(&st->mu);
                          st->slots[slot].released = true;
                        }),
                        rpc::STABILITY_UNSTABLE);
      Submit(std::move(w), [st, slot, got](absl::StatusOr<CompoundReply> rep) {
        absl::MutexLock l(&st->mu);
        Slot& s = st->slots[slot];
        if (rep.ok() && rep->ok()) st->acked += got;
        s.reply = std::move(rep);
        s.replied = true;
      });
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
    r = Call(std::move(cm));
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
