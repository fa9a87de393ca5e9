#include "bench/targets/txbufd/file_setup.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/load/pattern.h"
#include "client/compound.h"
#include "client/write_lease.h"

namespace txbuf::bench {
namespace {

using client::Client;
using client::Compound;
using client::CompoundReply;

// Whether the first and last 4 KiB of the file's first `file_size` bytes
// hold the pattern.
bool HoldsPattern(Client& c, const Workload& w) {
  const uint64_t n = std::min<uint64_t>(4096, w.file_size);
  for (uint64_t off : {uint64_t{0}, w.file_size - n}) {
    absl::StatusOr<std::string> d = c.Read(w.file, off, n);
    if (!d.ok() || !CheckPattern(w.seed, off, d->data(), d->size())) {
      return false;
    }
  }
  return true;
}

// Whether the file's size is `size` and it holds the pattern.
bool LooksRight(Client& c, const Workload& w) {
  absl::StatusOr<rpc::Attr> a = c.Stat(w.file);
  return a.ok() && a->size() == w.file_size && HoldsPattern(c, w);
}

absl::Status WriteTestFile(Client& c, const Workload& w) {
  absl::StatusOr<rpc::FhResult> fh = c.Create(w.file, 0644, false);
  if (!fh.ok()) return fh.status();
  if (absl::StatusOr<rpc::Attr> a = c.Truncate(w.file, w.file_size); !a.ok()) {
    return a.status();
  }
  constexpr uint64_t kChunk = uint64_t{1} << 20;
  constexpr int kWindow = 8;
  // kWindow buffers; one is reused once its WRITE was answered and released.
  struct State {
    absl::Mutex mu;
    int in_flight ABSL_GUARDED_BY(mu) = 0;
    absl::Status status ABSL_GUARDED_BY(mu);
    std::vector<int> free ABSL_GUARDED_BY(mu);
  } st;
  std::vector<std::vector<uint8_t>> bufs(kWindow, std::vector<uint8_t>(kChunk));
  {
    absl::MutexLock l(&st.mu);
    for (int i = 0; i < kWindow; ++i) st.free.push_back(i);
  }
  for (uint64_t off = 0; off < w.file_size; off += kChunk) {
    const auto n = static_cast<size_t>(std::min(kChunk, w.file_size - off));
    int slot;
    {
      absl::MutexLock l(&st.mu);
      auto has_free = [&st]() ABSL_SHARED_LOCKS_REQUIRED(st.mu) {
        return !st.free.empty();
      };
      st.mu.Await(absl::Condition(&has_free));
      if (!st.status.ok()) break;
      slot = st.free.back();
      st.free.pop_back();
      ++st.in_flight;
    }
    std::vector<uint8_t>& b = bufs[static_cast<size_t>(slot)];
    FillPattern(w.seed, off, absl::MakeSpan(b.data(), n));
    // The slot is free again once the reply came and the buffer was released.
    client::WriteLease lease([&st, slot](absl::StatusOr<CompoundReply> r) {
      absl::Status s = !r.ok() ? r.status() : r->status(2);
      absl::MutexLock l(&st.mu);
      if (!s.ok() && st.status.ok()) st.status = s;
      --st.in_flight;
      st.free.push_back(slot);
    });
    Compound q;
    q.PutFh(fh->fh()).Write(off,
                            {reinterpret_cast<const std::byte*>(b.data()), n},
                            lease.BufferRelease(), rpc::STABILITY_UNSTABLE);
    c.Submit(std::move(q), lease.ReplyCallback());
  }
  {
    absl::MutexLock l(&st.mu);
    auto idle = [&st]() ABSL_SHARED_LOCKS_REQUIRED(st.mu) {
      return st.in_flight == 0;
    };
    st.mu.Await(absl::Condition(&idle));
    if (!st.status.ok()) return st.status;
  }
  absl::StatusOr<rpc::CommitResult> commit = c.Commit(w.file);
  return commit.ok() ? absl::OkStatus() : commit.status();
}

absl::Status EnsureMetaDir(Client& c, CreatedFiles& created) {
  absl::StatusOr<rpc::FhResult> d = c.Mkdir(kMetaDir, 0755);
  if (!d.ok() && !absl::IsAlreadyExists(d.status())) return d.status();
  if (d.ok()) created.entries.push_back({kMetaDir, true});
  const std::string content(kMetaFileSize, 'm');
  for (int i = 0; i < kMetaFiles; ++i) {
    std::string path = absl::StrCat(kMetaDir, "/f", i);
    absl::StatusOr<rpc::Attr> a = c.Stat(path);
    if (a.ok() && a->size() == kMetaFileSize) continue;
    if (absl::StatusOr<rpc::FhResult> f = c.Create(path, 0644, false);
        !f.ok()) {
      return f.status();
    }
    if (!a.ok()) created.entries.push_back({path, false});
    if (absl::StatusOr<rpc::Attr> t = c.Truncate(path, 0); !t.ok()) {
      return t.status();
    }
    absl::StatusOr<uint64_t> n =
        c.Write(path, 0, content, rpc::STABILITY_FILE_SYNC);
    if (!n.ok()) return n.status();
  }
  return absl::OkStatus();
}

}  // namespace

SetupResult EnsureWorkloadFiles(Client& client, Workload& w,
                                bool file_size_given, FILE* log) {
  SetupResult out;
  if (w.kind == WorkloadKind::kMeta) {
    out.status = EnsureMetaDir(client, out.created);
    return out;
  }
  const absl::StatusOr<rpc::Attr> existing = client.Stat(w.file);
  if (existing.ok() && w.kind == WorkloadKind::kRead) {
    // Read what is there; never write it.
    if (!file_size_given) w.file_size = existing->size();
    if (existing->size() < w.file_size) {
      out.status = absl::FailedPreconditionError(absl::StrCat(
          w.file, " has ", existing->size(), " bytes, fewer than --file-size ",
          w.file_size, " (a read does not rewrite a file that exists)"));
      return out;
    }
    out.status = ValidateWorkload(w);
    if (out.status.ok()) w.verify_reads = HoldsPattern(client, w);
    return out;
  }
  if (LooksRight(client, w)) return out;
  if (log != nullptr) {
    std::fprintf(log, "txbuf-bench: writing %s (%s of pattern data)\n",
                 w.file.c_str(), FormatBytes(w.file_size).c_str());
  }
  if (!existing.ok() && absl::IsNotFound(existing.status())) {
    // Created by WriteTestFile (first thing it does): ours to remove, even
    // if writing it fails part way.
    out.status = WriteTestFile(client, w);
    absl::StatusOr<rpc::Attr> now = client.Stat(w.file);
    if (now.ok()) out.created.entries.push_back({w.file, false});
    return out;
  }
  out.status = WriteTestFile(client, w);
  return out;
}

absl::Status RemoveCreatedFiles(Client& client, const CreatedFiles& created) {
  absl::Status first;
  for (auto it = created.entries.rbegin(); it != created.entries.rend(); ++it) {
    absl::Status s =
        it->is_dir ? client.Rmdir(it->path) : client.Remove(it->path);
    if (!s.ok() && !absl::IsNotFound(s) && first.ok()) first = s;
  }
  return first;
}

}  // namespace txbuf::bench
