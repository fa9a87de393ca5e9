// executor_fuzz: arbitrary compound requests against a temporary export.
//
// Input: [u32 little-endian envelope length][envelope][payload]. The
// envelope is parsed as an rpc::Request (unparseable inputs are rejected);
// the rest is the frame payload WRITE data comes from. A PUTFH (or RENAME
// to_dir) handle of 1 to 8 bytes is read as a little-endian node id and
// rewritten into a handle of this export (the export's epoch is random, so
// the fuzzer could not guess real handles); node 1 is the export root.
//
// The export is built once in a dedicated parent directory:
//
//   PARENT/export/            the export
//     a.txt  empty  dir/b.txt  dir/sub/c.bin
//     link_in -> dir/b.txt    link_dir -> dir          (inside)
//     link_out -> PARENT/outside   link_up -> ../outside/secret  (outside)
//   PARENT/outside/secret     a decoy: the only thing outside the export
//
// The outside symlink points at the decoy rather than at /etc so that an
// escape the fuzzer finds (say, a chmod or truncate through a symlink)
// damages nothing on the machine, and is detected: after every run the
// parent must hold exactly `export` and `outside`, `outside` exactly
// `secret`, and the decoy's and the outside directory's inode, mode, size,
// link count, mtime and ctime must be unchanged; no reply may carry the
// inode number of the parent, of `outside` or of the decoy, and no READ the
// decoy's contents. (Those are random per process and looked for by code
// without coverage instrumentation: libFuzzer learns the operands of the
// comparisons it sees, and would otherwise write the secret into a file of
// the export and read it back in a later run.)
//
// Also checked: the reply echoes the id; one result per executed op, in
// order, stopping at the first failure whose status the reply carries;
// error texts within max_error_bytes; READ lengths within the request and
// max_read, their payload offsets contiguous and their total that of the
// payload slices and within max_reply_payload; READDIR within max_entries;
// the reply envelope within the 16 MiB clients accept; the reply composed
// as a txbuf (server/compound/reply_composer.cc) parses back to the same
// message with the same payload, and its destructor runs exactly once.
//
// To keep the disk and the run bounded, inputs with more than 64 ops, a
// WRITE ending past 1 MiB, or a SETATTR size over 1 MiB are rejected
// (max_ops is 32, so compounds of 33..64 ops test the TOOBIG path). The
// export is rebuilt from scratch every EXECUTOR_FUZZ_RESET_EVERY runs
// (default below; 1 makes every run independent of the ones before), and
// whenever it grows past 4 MiB or 1000 entries.
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/memory_stats.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/txbuf.h"
#include "proto/frame.h"
#include "proto/txbuf.pb.h"
#include "server/compound/executor.h"
#include "server/compound/reply_composer.h"
#include "server/fs/export.h"
#include "server/fs/page_cache.h"

namespace {

using txbuf::server::CompoundOutput;
using txbuf::server::Executor;
using txbuf::server::Export;
using txbuf::server::HandleCache;
using txbuf::server::ServerLimits;

constexpr int kMaxInputOps = 64;
constexpr uint64_t kMaxFileBytes = 1 << 20;
constexpr uint64_t kMaxExportBytes = 4 << 20;
constexpr size_t kMaxExportEntries = 1000;
constexpr size_t kMaxReplyEnvelope = 16 << 20;  // docs/PROTOCOL.md
constexpr int kDefaultResetEvery = 256;

// True if `needle` occurs in `hay`. Not instrumented, see above.
__attribute__((no_sanitize("coverage"))) bool Contains(
    const std::vector<std::byte>& hay, const std::string& needle) {
  const auto* n = reinterpret_cast<const std::byte*>(needle.data());
  if (needle.empty() || hay.size() < needle.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && hay[i + j] == n[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// True if `ino` is one of `inos`. Not instrumented, see above.
__attribute__((no_sanitize("coverage"))) bool OneOf(
    uint64_t ino, const std::vector<uint64_t>& inos) {
  for (uint64_t i : inos) {
    if (i == ino) return true;
  }
  return false;
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "executor_fuzz: invariant violated: %s\n", what.c_str());
  std::abort();
}

#define CHECK_OR_FAIL(cond)   \
  do {                        \
    if (!(cond)) Fail(#cond); \
  } while (0)

void Must(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "executor_fuzz: setup: %s: %s\n", what.c_str(),
                 strerror(errno));
    std::abort();
  }
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  Must(fd >= 0 && read(fd, raw.data(), bytes) == static_cast<ssize_t>(bytes),
       "/dev/urandom");
  close(fd);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (char c : raw) {
    hex.push_back(kHex[(c >> 4) & 0xf]);
    hex.push_back(kHex[c & 0xf]);
  }
  return hex;
}

void WriteFileAt(const std::string& path, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  Must(fd >= 0, "create " + path);
  Must(write(fd, bytes.data(), bytes.size()) ==
           static_cast<ssize_t>(bytes.size()),
       "write " + path);
  close(fd);
}

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

// Removes `name` in `dirfd` with everything below it, restoring permissions
// the fuzzer may have taken away (so this works without root too).
void RemoveTree(int dirfd, const char* name) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    fchmodat(dirfd, name, 0700, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      DIR* d = fdopendir(fd);
      std::vector<std::string> names;
      while (dirent* e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
          names.push_back(e->d_name);
        }
      }
      for (const std::string& n : names) RemoveTree(fd, n.c_str());
      closedir(d);
    }
    Must(unlinkat(dirfd, name, AT_REMOVEDIR) == 0,
         std::string("rmdir ") + name);
  } else {
    Must(unlinkat(dirfd, name, 0) == 0, std::string("unlink ") + name);
  }
}

// Entries and bytes (allocated) below `path`, stopping past the limits.
void Usage(int dirfd, const char* name, size_t* entries, uint64_t* bytes) {
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  ++*entries;
  *bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  if (!S_ISDIR(st.st_mode) || *entries > kMaxExportEntries) return;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    Usage(fd, e->d_name, entries, bytes);
    if (*entries > kMaxExportEntries) break;
  }
  closedir(d);
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  Must(d != nullptr, "opendir " + dir);
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      names.insert(e->d_name);
    }
  }
  closedir(d);
  return names;
}

struct Fingerprint {
  struct stat st;
  bool operator==(const Fingerprint& o) const {
    return st.st_ino == o.st.st_ino && st.st_mode == o.st.st_mode &&
           st.st_size == o.st.st_size && st.st_nlink == o.st.st_nlink &&
           st.st_uid == o.st.st_uid && st.st_gid == o.st.st_gid &&
           st.st_mtim.tv_sec == o.st.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == o.st.st_mtim.tv_nsec &&
           st.st_ctim.tv_sec == o.st.st_ctim.tv_sec &&
           st.st_ctim.tv_nsec == o.st.st_ctim.tv_nsec;
  }
};

Fingerprint Lstat(const std::string& path) {
  Fingerprint f;
  if (lstat(path.c_str(), &f.st) != 0) Fail("lstat " + path + " failed");
  return f;
}

class Harness {
 public:
  Harness() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char* tmp = getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/txbuf-executor-fuzz-XXXXXX";
    Must(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
    parent_ = tmpl;
    export_ = parent_ + "/export";
    outside_ = parent_ + "/outside";
    Must(mkdir(outside_.c_str(), 0755) == 0, "mkdir outside");
    secret_ = "txbuf-fuzz-decoy:" + RandomHex(24);
    WriteFileAt(outside_ + "/secret", secret_ + "\n");
    if (const char* e = getenv("EXECUTOR_FUZZ_RESET_EVERY")) {
      reset_every_ = std::max(1, atoi(e));
    }
    Build();
    outside_fp_ = Lstat(outside_);
    secret_fp_ = Lstat(outside_ + "/secret");
    outside_inos_ = {Lstat(parent_).st.st_ino, outside_fp_.st.st_ino,
                     secret_fp_.st.st_ino};
  }

  ~Harness() {
    Teardown();
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    RemoveTree(fd, parent_.c_str() + 1);
    close(fd);
  }

  int Run(const uint8_t* data, size_t size);

 private:
  void Build();
  void Teardown();
  void MaybeReset();
  bool Acceptable(txbuf::rpc::Request& req);
  void CheckConfined(const txbuf::rpc::Reply& reply,
                     const std::vector<std::byte>& payload);
  void CheckReply(const txbuf::rpc::Request& req, CompoundOutput& out,
                  std::vector<std::byte>* payload);

  std::string parent_, export_, outside_;
  std::string secret_;  // the decoy's contents
  Fingerprint outside_fp_{}, secret_fp_{};
  std::vector<uint64_t> outside_inos_;
  int reset_every_ = kDefaultResetEvery;
  uint64_t runs_ = 0;
  ServerLimits limits_{.max_ops = 32};

  // Torn down and rebuilt with the export, in this order of construction.
  std::unique_ptr<txbuf::PagePool> pool_;
  std::unique_ptr<txbuf::PageCache> cache_;
  std::unique_ptr<Export> ex_;
  std::unique_ptr<Executor> exec_;
  std::unique_ptr<HandleCache> handles_;
  std::unique_ptr<txbuf::SlabAllocator> slabs_;
  std::unique_ptr<txbuf::MemoryStats> stats_;
  std::unique_ptr<txbuf::TxBufContext> ctx_;
  std::string handle_prefix_;  // magic + epoch of this export's handles
  txbuf::rpc::Request req_;
  txbuf::rpc::Reply reply_;
  txbuf::rpc::Reply parsed_;
};

void Harness::Build() {
  Must(mkdir(export_.c_str(), 0755) == 0, "mkdir export");
  WriteFileAt(export_ + "/a.txt", Pattern(10000, 'a'));
  WriteFileAt(export_ + "/empty", "");
  Must(mkdir((export_ + "/dir").c_str(), 0755) == 0, "mkdir dir");
  WriteFileAt(export_ + "/dir/b.txt", Pattern(5000, 'b'));
  Must(mkdir((export_ + "/dir/sub").c_str(), 0755) == 0, "mkdir sub");
  WriteFileAt(export_ + "/dir/sub/c.bin", Pattern(8292, 'c'));
  Must(symlink("dir/b.txt", (export_ + "/link_in").c_str()) == 0, "symlink");
  Must(symlink("dir", (export_ + "/link_dir").c_str()) == 0, "symlink");
  Must(symlink(outside_.c_str(), (export_ + "/link_out").c_str()) == 0,
       "symlink");
  Must(symlink("../outside/secret", (export_ + "/link_up").c_str()) == 0,
       "symlink");

  pool_ = std::make_unique<txbuf::PagePool>(64 << 20);
  cache_ = std::make_unique<txbuf::PageCache>(
      *pool_, txbuf::PageCacheOptions{.max_pages = 12000});
  absl::StatusOr<std::unique_ptr<Export>> ex =
      Export::Open(export_, {.read_only = false, .max_nodes = 512});
  if (!ex.ok()) Fail("Export::Open: " + std::string(ex.status().message()));
  ex_ = std::move(*ex);
  ex_->set_cache(cache_.get());
  txbuf::PageCache* cache = cache_.get();
  exec_ = std::make_unique<Executor>(
      *ex_, limits_, /*verifier=*/0x1234, [cache](txbuf::rpc::StatsResult* r) {
        txbuf::PageCacheStats s = cache->Stats();
        r->mutable_page_cache()->set_pages(s.pages);
        r->mutable_page_cache()->set_dirty_pages(s.dirty_pages);
      });
  handles_ = std::make_unique<HandleCache>();
  slabs_ = std::make_unique<txbuf::SlabAllocator>();
  stats_ = std::make_unique<txbuf::MemoryStats>();
  ctx_ = std::make_unique<txbuf::TxBufContext>(*slabs_, *pool_, *stats_);
  handle_prefix_ = ex_->HandleOf(*ex_->Root()).substr(0, 12);
}

void Harness::Teardown() {
  // References before what they refer to: nodes and handles hold page-cache
  // files; the cache must be the last holder of its files.
  ctx_.reset();
  stats_.reset();
  slabs_.reset();
  handles_.reset();
  exec_.reset();
  ex_.reset();
  cache_.reset();
  pool_.reset();
  int fd = open(parent_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  RemoveTree(fd, "export");
  close(fd);
}

void Harness::MaybeReset() {
  bool reset = runs_ > 0 && runs_ % reset_every_ == 0;
  if (!reset && runs_ % 16 == 0) {
    size_t entries = 0;
    uint64_t bytes = 0;
    int fd = open(parent_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    Usage(fd, "export", &entries, &bytes);
    close(fd);
    reset = entries > kMaxExportEntries || bytes > kMaxExportBytes ||
            ex_->nodes() > 400;
  }
  if (reset) {
    Teardown();
    Build();
  }
}

// Rejects inputs that could fill the disk; rewrites short handles.
bool Harness::Acceptable(txbuf::rpc::Request& req) {
  if (req.ops_size() > kMaxInputOps) return false;
  auto fix_handle = [this](std::string* fh) {
    if (fh->empty() || fh->size() > 8) return;
    uint64_t id = 0;
    std::memcpy(&id, fh->data(), fh->size());
    std::string h = handle_prefix_;
    h.append(reinterpret_cast<const char*>(&id), 8);
    *fh = std::move(h);
  };
  for (txbuf::rpc::Op& op : *req.mutable_ops()) {
    if (op.has_write()) {
      const txbuf::rpc::Write& w = op.write();
      if (w.offset() > kMaxFileBytes ||
          w.length() > kMaxFileBytes - w.offset()) {
        return false;
      }
    }
    if (op.has_setattr() && op.setattr().has_size() &&
        op.setattr().size() > kMaxFileBytes) {
      return false;
    }
    if (op.has_putfh()) fix_handle(op.mutable_putfh()->mutable_fh());
    if (op.has_rename()) fix_handle(op.mutable_rename()->mutable_to_dir());
  }
  return true;
}

void Harness::CheckReply(const txbuf::rpc::Request& req, CompoundOutput& out,
                         std::vector<std::byte>* payload) {
  const txbuf::rpc::Reply& reply = out.reply;
  CHECK_OR_FAIL(reply.id() == req.id());
  CHECK_OR_FAIL(reply.error().size() <= limits_.max_error_bytes);
  if (static_cast<uint32_t>(req.ops_size()) > limits_.max_ops) {
    CHECK_OR_FAIL(reply.status() == txbuf::rpc::STATUS_TOOBIG);
    CHECK_OR_FAIL(reply.results_size() == 0);
    CHECK_OR_FAIL(out.payload.empty());
    return;
  }
  CHECK_OR_FAIL(reply.results_size() <= req.ops_size());
  if (reply.status() == txbuf::rpc::STATUS_OK) {
    CHECK_OR_FAIL(reply.results_size() == req.ops_size());
  } else {
    CHECK_OR_FAIL(reply.results_size() > 0);
    CHECK_OR_FAIL(reply.results(reply.results_size() - 1).status() ==
                  reply.status());
  }
  uint64_t read_total = 0;
  for (int i = 0; i < reply.results_size(); ++i) {
    const txbuf::rpc::OpResult& res = reply.results(i);
    const txbuf::rpc::Op& op = req.ops(i);
    CHECK_OR_FAIL(res.error().size() <= limits_.max_error_bytes);
    bool last = i + 1 == reply.results_size();
    CHECK_OR_FAIL(last || res.status() == txbuf::rpc::STATUS_OK);
    if (res.status() != txbuf::rpc::STATUS_OK) {
      CHECK_OR_FAIL(res.result_case() == txbuf::rpc::OpResult::RESULT_NOT_SET);
      continue;
    }
    if (res.has_read()) {
      CHECK_OR_FAIL(op.has_read());
      CHECK_OR_FAIL(res.read().length() <= op.read().length());
      CHECK_OR_FAIL(res.read().length() <= limits_.max_read);
      CHECK_OR_FAIL(res.read().payload_offset() == read_total);
      read_total += res.read().length();
    }
    if (res.has_write()) {
      CHECK_OR_FAIL(op.has_write());
      CHECK_OR_FAIL(res.write().count() == op.write().length());
    }
    if (res.has_readdir()) {
      CHECK_OR_FAIL(op.has_readdir());
      uint32_t max = op.readdir().max_entries();
      if (max == 0) max = 1024;
      CHECK_OR_FAIL(res.readdir().entries_size() <= static_cast<int>(max));
    }
  }
  CHECK_OR_FAIL(read_total == out.payload_bytes);
  CHECK_OR_FAIL(out.payload_bytes <= limits_.max_reply_payload);
  uint64_t slices = 0;
  for (const txbuf::PageSlice& s : out.payload) {
    CHECK_OR_FAIL(s.page);
    CHECK_OR_FAIL(s.offset + uint64_t{s.len} <= txbuf::kPageSize);
    slices += s.len;
  }
  CHECK_OR_FAIL(slices == out.payload_bytes);
  size_t envelope = reply.ByteSizeLong();
  CHECK_OR_FAIL(envelope <= kMaxReplyEnvelope);

  // The reply as the server sends it: one txbuf, parsed back.
  payload->clear();
  for (const txbuf::PageSlice& s : out.payload) {
    absl::Span<const std::byte> b = s.bytes();
    payload->insert(payload->end(), b.begin(), b.end());
  }
  int destructor_runs = 0;
  {
    absl::StatusOr<txbuf::TxBuf> tx = txbuf::server::ComposeReply(
        *ctx_, out, [&destructor_runs](const txbuf::TxBufCompletion&) {
          ++destructor_runs;
        });
    if (!tx.ok()) {
      // Only a staging-page shortage may stop the composer.
      CHECK_OR_FAIL(tx.status().code() == absl::StatusCode::kResourceExhausted);
    } else {
      std::vector<std::byte> wire(tx->size());
      tx->CopyTo(absl::MakeSpan(wire));
      CHECK_OR_FAIL(wire.size() ==
                    txbuf::kFrameHeaderSize + envelope + payload->size());
      absl::StatusOr<txbuf::FrameHeader> h = txbuf::DecodeFrameHeader(
          absl::MakeConstSpan(wire).first(txbuf::kFrameHeaderSize),
          {.max_envelope = UINT32_MAX, .max_payload = UINT32_MAX});
      CHECK_OR_FAIL(h.ok());
      CHECK_OR_FAIL(h->type == txbuf::FrameType::kReply);
      CHECK_OR_FAIL(h->envelope_len == envelope);
      CHECK_OR_FAIL(h->payload_len == payload->size());
      CHECK_OR_FAIL(parsed_.ParseFromArray(
          wire.data() + txbuf::kFrameHeaderSize, static_cast<int>(envelope)));
      CHECK_OR_FAIL(parsed_.SerializeAsString() == reply.SerializeAsString());
      CHECK_OR_FAIL(
          payload->empty() ||
          std::memcmp(wire.data() + txbuf::kFrameHeaderSize + envelope,
                      payload->data(), payload->size()) == 0);
    }
  }
  CHECK_OR_FAIL(destructor_runs == 1);
  CHECK_OR_FAIL(stats_->txbufs_in_flight() == 0);
}

void Harness::CheckConfined(const txbuf::rpc::Reply& reply,
                            const std::vector<std::byte>& payload) {
  std::set<std::string> top = List(parent_);
  if (top != std::set<std::string>{"export", "outside"}) {
    std::string names;
    for (const std::string& n : top) names += " " + n;
    Fail("the export's parent holds:" + names);
  }
  if (List(outside_) != std::set<std::string>{"secret"}) {
    Fail("something was created or removed outside the export");
  }
  if (!(Lstat(outside_) == outside_fp_)) {
    Fail("the directory outside the export changed");
  }
  if (!(Lstat(outside_ + "/secret") == secret_fp_)) {
    Fail("the decoy file outside the export changed");
  }
  if (Contains(payload, secret_)) {
    Fail("a READ returned the decoy's contents from outside the export");
  }
  for (const txbuf::rpc::OpResult& res : reply.results()) {
    bool out = false;
    if (res.has_fh()) out |= OneOf(res.fh().attr().fileid(), outside_inos_);
    if (res.has_attr()) {
      out |= OneOf(res.attr().attr().fileid(), outside_inos_);
    }
    if (res.has_readdir()) {
      for (const txbuf::rpc::DirEntry& e : res.readdir().entries()) {
        out |= OneOf(e.fileid(), outside_inos_) ||
               OneOf(e.attr().fileid(), outside_inos_);
      }
    }
    if (out) Fail("a reply names a file outside the export");
  }
}

int Harness::Run(const uint8_t* data, size_t size) {
  if (size < 4) return -1;
  uint32_t env_len = 0;
  std::memcpy(&env_len, data, 4);
  size_t left = size - 4;
  size_t env = std::min<size_t>(env_len, left);
  if (!req_.ParseFromArray(data + 4, static_cast<int>(env))) return -1;
  if (!Acceptable(req_)) return -1;
  absl::Span<const std::byte> payload(
      reinterpret_cast<const std::byte*>(data + 4 + env), left - env);

  MaybeReset();
  ++runs_;
  std::vector<std::byte> read_bytes;
  {
    CompoundOutput out(reply_);
    exec_->Execute(req_, payload, &out, handles_.get());
    CheckReply(req_, out, &read_bytes);
  }
  CheckConfined(reply_, read_bytes);
  return 0;
}

Harness* harness = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness = new Harness();
  // libFuzzer leaves through exit(): remove the temporary export then.
  std::atexit([] {
    delete harness;
    harness = nullptr;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return harness->Run(data, size);
}
