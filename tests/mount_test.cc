// tests/mount_test.cc: `txbuf mount` end to end: a real txbufd on a
// temporary export, mounted with the real txbuf binary (FUSE), used through
// the kernel with plain system calls, std::filesystem, cp, tar and fio.
//
// Needs root and /dev/fuse (each test skips with the reason otherwise).
// Every mount is unmounted in every exit path: SIGTERM to the mount process
// (which unmounts), else a lazy unmount; the mount process also gets
// SIGTERM if the test process dies (PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server_process.h"

namespace txbuf::testing {
namespace {

namespace fs = std::filesystem;

std::string CliPath() { return TXBUF_CLI_PATH; }

// Whether `dir` is a txbuf FUSE mount now (/proc/self/mountinfo).
bool IsMounted(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 10 || f[4] != dir) continue;
    for (size_t i = 5; i + 1 < f.size(); ++i) {
      if (f[i] == "-") return f[i + 1] == "fuse.txbuf";
    }
  }
  return false;
}

// The last resort: a lazy unmount, by the kernel or by fusermount3.
void ForceUnmount(const std::string& dir) {
  if (!IsMounted(dir)) return;
  if (umount2(dir.c_str(), MNT_DETACH) != 0) {
    std::string cmd = absl::StrCat("fusermount3 -u -z '", dir, "' 2>/dev/null");
    (void)std::system(cmd.c_str());
  }
}

// Runs `cmd` with sh; its exit status (-1 if it did not exit).
int Sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool HaveCommand(const std::string& name) {
  return Sh(absl::StrCat("command -v ", name, " >/dev/null 2>&1")) == 0;
}

// The COMMITs `server` has run (`txbuf stats --json`'s ops), -1 if the
// stats could not be had. (It forks: a descriptor of a mounted file open in
// this process would be closed in the child, a FLUSH, which commits.)
long CommitsRun(const std::string& server) {
  const CommandResult r = RunCommand(
      absl::StrCat("'", CliPath(), "' --server ", server, " stats --json"));
  if (r.exit_code != 0) return -1;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("ops")) return -1;
  long commits = 0;
  for (const auto& op : j["ops"]) {
    if (op.value("op", "") == "commit") commits += op.value("count", 0L);
  }
  return commits;
}

// A `txbuf mount ... -f` process: started, waited for until mounted,
// stopped with SIGTERM.
class MountProcess {
 public:
  static std::unique_ptr<MountProcess> Start(
      const std::string& server, const std::string& dir,
      const std::vector<std::string>& extra = {},
      const std::vector<std::string>& global = {}) {
    std::vector<std::string> args = {CliPath()};
    args.insert(args.end(), global.begin(), global.end());
    for (const char* a : {"mount", server.c_str(), dir.c_str(), "-f"}) {
      args.push_back(a);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    auto m = std::unique_ptr<MountProcess>(new MountProcess(dir));
    // Its standard error goes to a file (echoed when it stops, err()).
    char err_path[] = "/tmp/txbuf-mount-stderr-XXXXXX";
    const int err_fd = mkstemp(err_path);
    if (err_fd >= 0) m->err_path_ = err_path;
    m->pid_ = fork();
    if (m->pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (err_fd >= 0) {
        dup2(err_fd, STDERR_FILENO);
        close(err_fd);
      }
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (err_fd >= 0) close(err_fd);
    bool exited = false;
    const bool up = WaitFor(
        [&] {
          int st;
          if (waitpid(m->pid_, &st, WNOHANG) == m->pid_) {
            exited = true;
            m->pid_ = -1;
            return true;
          }
          return IsMounted(dir);
        },
        absl::Seconds(60));
    EXPECT_TRUE(up && !exited)
        << "txbuf mount " << dir << (exited ? " exited" : " did not mount");
    if (!up || exited) return nullptr;
    return m;
  }

  ~MountProcess() {
    Stop();
    if (!err_path_.empty()) unlink(err_path_.c_str());
  }

  // SIGTERM (the process unmounts and exits 0); returns its exit status,
  // -1 if it had to be killed. The directory is unmounted in any case.
  int Stop() {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, SIGTERM);
    int st = 0;
    bool done = WaitFor([&] { return waitpid(pid_, &st, WNOHANG) == pid_; },
                        absl::Seconds(60));
    if (!done) {
      ADD_FAILURE() << "txbuf mount " << dir_ << " did not exit on SIGTERM";
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
    pid_ = -1;
    exit_status_ = done && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (IsMounted(dir_)) {
      ADD_FAILURE() << dir_ << " still mounted after the mount process exited";
      ForceUnmount(dir_);
    }
    if (!err_path_.empty()) {
      std::ifstream in(err_path_, std::ios::binary);
      std::stringstream all;
      all << in.rdbuf();
      err_ = all.str();
      std::fputs(err_.c_str(), stderr);  // as if it had written there
    }
    return exit_status_;
  }

  // What the process wrote to its standard error (once stopped).
  const std::string& err() const { return err_; }

 private:
  explicit MountProcess(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::string err_path_;
  std::string err_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Reads a whole file with read(2); "<errno N>" on failure.
std::string Slurp(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::StrCat("<errno ", errno, ">");
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// Writes `data` with open(flags)/write/close; 0 or the failing errno.
int Put(const std::string& path, const std::string& data,
        int flags = O_WRONLY | O_CREAT | O_TRUNC) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  if (write(fd, data.data(), data.size()) !=
      static_cast<ssize_t>(data.size())) {
    int e = errno;
    close(fd);
    return e;
  }
  return close(fd) == 0 ? 0 : errno;
}

// A deterministic pseudo-random byte stream (xorshift64*), by position.
void Fill(uint64_t seed, uint64_t pos, char* out, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = seed ^ ((pos + i) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x *= 0x2545F4914F6CDD1Dull;
    for (size_t b = 0; b < 8 && i + b < n; ++b) out[i + b] = char(x >> (8 * b));
  }
}

// FNV-1a 64 of a file read in 1 MiB read(2)s; 0 on error.
uint64_t Checksum(const std::string& path, uint64_t* size = nullptr) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<char> buf(1 << 20);
  uint64_t h = 1469598103934665603ull, total = 0;
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    }
    total += n;
  }
  close(fd);
  if (n < 0) return 0;
  if (size != nullptr) *size = total;
  return h;
}

uint64_t ChecksumOfPattern(uint64_t seed, uint64_t size) {
  std::vector<char> buf(1 << 20);
  uint64_t h = 1469598103934665603ull;
  for (uint64_t pos = 0; pos < size; pos += buf.size()) {
    const size_t n = std::min<uint64_t>(buf.size(), size - pos);
    Fill(seed, pos, buf.data(), n);
    for (size_t i = 0; i < n; ++i) {
      h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    }
  }
  return h;
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount (FUSE)";
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "no usable /dev/fuse";
    }
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start({"--export", export_.path()});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    mount_ = MountProcess::Start(server_->address(), mnt_.path());
    ASSERT_NE(mount_, nullptr);
  }

  void TearDown() override {
    // Unmount before any directory is removed.
    if (mount2_ != nullptr) {
      EXPECT_EQ(mount2_->Stop(), 0);
    }
    if (mount_ != nullptr) {
      EXPECT_EQ(mount_->Stop(), 0);
    }
    ForceUnmount(mnt2_.path());
    ForceUnmount(mnt_.path());
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop().exit_code, 0);
    }
  }

  // Stops the server (SIGKILL with `kill9`: nothing written back, no
  // goodbye) and starts a new one on the same port and export: a server
  // restart as the mount sees it (new handles, new write verifier).
  void RestartServer(bool kill9) {
    const uint16_t port = server_->port();
    if (kill9) kill(server_->pid(), SIGKILL);
    server_->Stop();
    server_.reset();
    absl::StatusOr<std::unique_ptr<ServerProcess>> s =
        ServerProcess::Start({"--export", export_.path(), "--listen",
                              absl::StrCat("127.0.0.1:", port)});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }

  // Mounts again with `extra` options (e.g. a shorter --timeout).
  void Remount(const std::vector<std::string>& extra) {
    ASSERT_EQ(mount_->Stop(), 0);
    mount_ = MountProcess::Start(server_->address(), mnt_.path(), extra);
    ASSERT_NE(mount_, nullptr);
  }

  std::string M(const std::string& rel) const { return mnt_.Join(rel); }
  std::string E(const std::string& rel) const { return export_.Join(rel); }

  TempDir export_, mnt_, mnt2_, local_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<MountProcess> mount_, mount2_;
};

TEST_F(MountTest, FilesThroughTheKernel) {
  // Create, write, read; on the server's disk after close (COMMIT).
  ASSERT_EQ(Put(M("f"), "hello", O_WRONLY | O_CREAT | O_EXCL), 0);
  EXPECT_EQ(Slurp(M("f")), "hello");
  EXPECT_EQ(ReadFileOrDie(E("f")), "hello");
  // Append.
  ASSERT_EQ(Put(M("f"), " world", O_WRONLY | O_APPEND), 0);
  EXPECT_EQ(Slurp(M("f")), "hello world");
  // Truncate down and up.
  ASSERT_EQ(truncate(M("f").c_str(), 5), 0);
  EXPECT_EQ(Slurp(M("f")), "hello");
  ASSERT_EQ(truncate(M("f").c_str(), 8), 0);
  EXPECT_EQ(Slurp(M("f")), std::string("hello\0\0\0", 8));
  EXPECT_EQ(fs::file_size(E("f")), 8u);
  // O_TRUNC on open.
  ASSERT_EQ(Put(M("f"), "new"), 0);
  EXPECT_EQ(Slurp(M("f")), "new");
  // Rename, over an existing target, across directories.
  ASSERT_EQ(rename(M("f").c_str(), M("g").c_str()), 0);
  EXPECT_EQ(Slurp(M("f")), absl::StrCat("<errno ", ENOENT, ">"));
  ASSERT_EQ(Put(M("h"), "other"), 0);
  ASSERT_EQ(rename(M("h").c_str(), M("g").c_str()), 0);
  EXPECT_EQ(Slurp(M("g")), "other");
  EXPECT_FALSE(fs::exists(M("h")));
  EXPECT_EQ(ReadFileOrDie(E("g")), "other");
  ASSERT_EQ(mkdir(M("d").c_str(), 0755), 0);
  ASSERT_EQ(rename(M("g").c_str(), M("d/g2").c_str()), 0);
  EXPECT_EQ(Slurp(M("d/g2")), "other");
  EXPECT_EQ(ReadFileOrDie(E("d/g2")), "other");
  // Errors, as errno.
  errno = 0;
  EXPECT_EQ(mkdir(M("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(Put(M("d/g2"), "x", O_WRONLY | O_CREAT | O_EXCL), EEXIST);
  EXPECT_EQ(Put(M("missing/x"), "x"), ENOENT);
  EXPECT_EQ(rmdir(M("d").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(unlink(M("d").c_str()), -1);
  EXPECT_EQ(errno, EISDIR);
  EXPECT_EQ(Put(M("d"), "x", O_WRONLY), EISDIR);
  EXPECT_EQ(rmdir(M("d/g2").c_str()), -1);
  EXPECT_EQ(errno, ENOTDIR);
  EXPECT_EQ(unlink(M("nothing").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(Put(M(std::string(256, 'n')), "x"), ENAMETOOLONG);
  ASSERT_EQ(mkdir(M("e").c_str(), 0755), 0);
  ASSERT_EQ(Put(M("e/x"), "x"), 0);
  ASSERT_EQ(mkdir(M("e2").c_str(), 0755), 0);
  EXPECT_EQ(rename(M("e2").c_str(), M("e").c_str()), -1);  // e not empty
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(link(M("e/x").c_str(), M("e/hard").c_str()), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  // Unlink, rmdir.
  ASSERT_EQ(unlink(M("e/x").c_str()), 0);
  ASSERT_EQ(rmdir(M("e").c_str()), 0);
  ASSERT_EQ(rmdir(M("e2").c_str()), 0);
  EXPECT_FALSE(fs::exists(E("e")));
  // chmod, utimens.
  ASSERT_EQ(chmod(M("d/g2").c_str(), 0600), 0);
  struct stat st;
  ASSERT_EQ(stat(M("d/g2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(stat(E("d/g2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const timespec times[2] = {{1500000000, 123456789}, {1600000000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, M("d/g2").c_str(), times, 0), 0);
  ASSERT_EQ(stat(M("d/g2").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  ASSERT_EQ(stat(E("d/g2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  // statfs: the export's file system.
  struct statvfs mv, ev;
  ASSERT_EQ(statvfs(mnt_.path().c_str(), &mv), 0);
  ASSERT_EQ(statvfs(export_.path().c_str(), &ev), 0);
  EXPECT_EQ(mv.f_blocks * mv.f_frsize, ev.f_blocks * ev.f_frsize);
  EXPECT_EQ(mv.f_files, ev.f_files);
  EXPECT_EQ(mv.f_namemax, 255u);
  // Symlinks: made through the mount and on the server's host, shown as
  // links (dangling, leaving the export, or to a file beside them).
  ASSERT_EQ(symlink("d/g2", M("to_g2").c_str()), 0);
  fs::create_symlink("../../outside/target", E("host_link"));
  fs::create_symlink("nowhere", E("dangling"));
  for (const char* name : {"to_g2", "host_link", "dangling"}) {
    ASSERT_EQ(lstat(M(name).c_str(), &st), 0) << name;
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << name;
  }
  EXPECT_EQ(fs::read_symlink(M("to_g2")), "d/g2");
  EXPECT_EQ(fs::read_symlink(E("to_g2")), "d/g2");
  EXPECT_EQ(fs::read_symlink(M("host_link")), "../../outside/target");
  EXPECT_EQ(Slurp(M("to_g2")), "other");  // followed by the kernel
  EXPECT_EQ(Slurp(M("dangling")), absl::StrCat("<errno ", ENOENT, ">"));
}

TEST_F(MountTest, ReadDirOf2000Entries) {
  ASSERT_EQ(mkdir(M("many").c_str(), 0755), 0);
  std::set<std::string> made;
  for (int i = 0; i < 2000; ++i) {
    std::string name = absl::StrCat("entry-", i, "-", std::string(i % 40, 'x'));
    ASSERT_EQ(Put(M("many/" + name), ""), 0) << name;
    made.insert(name);
  }
  std::set<std::string> listed, on_disk;
  size_t count = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(M("many"))) {
    listed.insert(e.path().filename().string());
    ++count;
  }
  for (const fs::directory_entry& e : fs::directory_iterator(E("many"))) {
    on_disk.insert(e.path().filename().string());
  }
  EXPECT_EQ(count, 2000u);  // each once
  EXPECT_EQ(listed, made);
  EXPECT_EQ(on_disk, made);
  // Removing them all through the mount (rm -r lists, then unlinks).
  ASSERT_EQ(Sh(absl::StrCat("rm -r '", M("many"), "'")), 0);
  EXPECT_FALSE(fs::exists(E("many")));
}

// READDIRPLUS (the kernel asks for it listing with attributes, `ls -l`):
// entries made on the server's host, listed through the mount with their
// sizes and types right, across more than one READDIR page; the kernel's
// lookups they count for are forgotten when it drops its caches, and the
// files are still there by name after.
TEST_F(MountTest, ListingWithAttributesReadDirPlus) {
  ASSERT_EQ(mkdir(E("plus").c_str(), 0755), 0);
  std::map<std::string, uint64_t> made;
  for (int i = 0; i < 1100; ++i) {
    const std::string name = absl::StrCat("f", i);
    ASSERT_EQ(Put(E("plus/" + name), std::string(i % 97, 'p')), 0);
    made[name] = i % 97;
  }
  ASSERT_EQ(mkdir(E("plus/sub").c_str(), 0755), 0);
  std::map<std::string, uint64_t> listed;
  bool saw_dir = false;
  for (const fs::directory_entry& e : fs::directory_iterator(M("plus"))) {
    const std::string name = e.path().filename().string();
    if (name == "sub") {
      saw_dir = e.is_directory();
      continue;
    }
    EXPECT_TRUE(e.is_regular_file()) << name;
    listed[name] = e.file_size();
  }
  EXPECT_TRUE(saw_dir);
  EXPECT_EQ(listed, made);
  // `ls -l` output carries each size too.
  EXPECT_EQ(Sh(absl::StrCat("ls -l '", M("plus"),
                            "' | grep -c ' f[0-9]' | grep -qx 1100")),
            0);
  // The kernel forgets what it cached (FORGET of the READDIRPLUS lookups);
  // names still resolve, contents intact.
  sync();
  if (FILE* f = fopen("/proc/sys/vm/drop_caches", "w"); f != nullptr) {
    fputs("2", f);
    fclose(f);
  }
  EXPECT_EQ(Slurp(M("plus/f96")), std::string(96, 'p'));
  EXPECT_EQ(fs::file_size(M("plus/f1000")), 1000u % 97);
}

// The large files' size: 256 MiB, the size (measured: +17 s over
// 64 MiB in the -O2 build on a loaded 2-core machine, 21 s in all); 64 MiB
// under ASan, where the byte-by-byte pattern and checksum loops are several
// times slower. TXBUF_MOUNT_TEST_LARGE_MIB=N overrides both.
uint64_t LargeFileSize() {
  const char* mib = std::getenv("TXBUF_MOUNT_TEST_LARGE_MIB");
  if (mib != nullptr && std::atoi(mib) > 0) {
    return static_cast<uint64_t>(std::atoi(mib)) << 20;
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 64ull << 20;
#else
  return 256ull << 20;
#endif
}

// `path` read with O_DIRECT in `chunk`-byte reads (each crosses FUSE as one
// READ, split into parallel pieces by the mount) equals the pattern of
// `seed` and is `size` bytes long.
void ExpectDirectReadsMatch(const std::string& path, uint64_t seed,
                            uint64_t size, size_t chunk) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": errno " << errno;
  void* mem = nullptr;
  ASSERT_EQ(posix_memalign(&mem, 4096, chunk), 0);
  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(mem),
                                                  &std::free);
  std::vector<char> want(chunk);
  uint64_t pos = 0;
  for (;;) {
    const ssize_t n = pread(fd, buf.get(), chunk, static_cast<off_t>(pos));
    ASSERT_GE(n, 0) << "errno " << errno;
    if (n == 0) break;
    Fill(seed, pos, want.data(), static_cast<size_t>(n));
    ASSERT_EQ(memcmp(buf.get(), want.data(), static_cast<size_t>(n)), 0)
        << path << ": differs in the " << n << " bytes at " << pos;
    pos += static_cast<uint64_t>(n);
  }
  close(fd);
  EXPECT_EQ(pos, size) << path;
}

TEST_F(MountTest, LargeFilesByteExact) {
  const uint64_t kSize = LargeFileSize();
  // Written through the mount: on the server's disk byte-exact.
  {
    int fd = open(M("big.w").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    std::vector<char> buf(1 << 20);
    for (uint64_t pos = 0; pos < kSize; pos += buf.size()) {
      Fill(1, pos, buf.data(), buf.size());
      ASSERT_EQ(pwrite(fd, buf.data(), buf.size(), pos),
                static_cast<ssize_t>(buf.size()));
    }
    ASSERT_EQ(fsync(fd), 0);
    ASSERT_EQ(close(fd), 0);
  }
  const uint64_t want_w = ChecksumOfPattern(1, kSize);
  uint64_t size = 0;
  EXPECT_EQ(Checksum(E("big.w"), &size), want_w);
  EXPECT_EQ(size, kSize);
  // Written on the server's host: read through the mount byte-exact.
  {
    std::ofstream out(E("big.r"), std::ios::binary);
    std::vector<char> buf(1 << 20);
    for (uint64_t pos = 0; pos < kSize; pos += buf.size()) {
      Fill(2, pos, buf.data(), buf.size());
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
    ASSERT_TRUE(out.good());
  }
  size = 0;
  EXPECT_EQ(Checksum(M("big.r"), &size), ChecksumOfPattern(2, kSize));
  EXPECT_EQ(size, kSize);
  EXPECT_EQ(Checksum(M("big.w")), want_w);
}

// Two counts from a line the mount writes when it exits: `format` (two
// %llu) matched from where its first word (up to the first %) is found.
std::optional<std::pair<unsigned long long, unsigned long long>> CountsOf(
    const std::string& err, const char* format) {
  const std::string_view f(format);
  const size_t at = err.find(f.substr(0, f.find('%')));
  unsigned long long a = 0, b = 0;
  if (at == std::string::npos ||
      std::sscanf(err.c_str() + at, format, &a, &b) != 2) {
    return std::nullopt;
  }
  return std::make_pair(a, b);
}

// The "small reads" line: READs answered from the client's loop thread,
// and those a worker did again.
struct SmallReads {
  unsigned long long by_loop = 0, again = 0;
};
std::optional<SmallReads> SmallReadsOf(const std::string& err) {
  auto c = CountsOf(err,
                    "small reads: %llu answered from the client's loop, %llu "
                    "done again by a worker");
  if (!c) return std::nullopt;
  return SmallReads{.by_loop = c->first, .again = c->second};
}
// Its large reads: sent in pieces, and whole.
struct LargeReads {
  unsigned long long pieces = 0, whole = 0;
};
std::optional<LargeReads> LargeReadsOf(const std::string& err) {
  auto c = CountsOf(err, "large reads: %llu in pieces, %llu whole");
  if (!c) return std::nullopt;
  return LargeReads{.pieces = c->first, .whole = c->second};
}
// The "writes" line: WRITEs whose data stayed in the buffer their request
// was read into, and those copied.
struct Writes {
  unsigned long long kept = 0, copied = 0;
};
std::optional<Writes> WritesOf(const std::string& err) {
  auto c =
      CountsOf(err, "writes: %llu kept in their request's buffer, %llu copied");
  if (!c) return std::nullopt;
  return Writes{.kept = c->first, .copied = c->second};
}

// `threads` threads each read `path` (made of Fill(seed)) whole with
// O_DIRECT pread()s of `chunk` bytes, `rounds` times, checking every byte;
// the first failure of each thread is returned ("" if none).
std::vector<std::string> ParallelDirectReads(const std::string& path,
                                             uint64_t seed, uint64_t size,
                                             size_t chunk, int threads,
                                             int rounds) {
  std::vector<std::string> failures(threads);
  std::vector<std::thread> readers;
  for (int t = 0; t < threads; ++t) {
    readers.emplace_back([&, t] {
      const int fd = open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
      if (fd < 0) {
        failures[t] = absl::StrCat("open: errno ", errno);
        return;
      }
      void* mem = nullptr;
      if (posix_memalign(&mem, 4096, chunk) != 0) std::abort();
      std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(mem),
                                                      &std::free);
      std::vector<char> want(chunk);
      for (int round = 0; round < rounds && failures[t].empty(); ++round) {
        // Each thread in its own order: start at a different offset.
        const uint64_t n_chunks = size / chunk;
        for (uint64_t i = 0; i < n_chunks; ++i) {
          const uint64_t pos = ((i + t * 7919) % n_chunks) * chunk;
          const ssize_t n =
              pread(fd, buf.get(), chunk, static_cast<off_t>(pos));
          if (n != static_cast<ssize_t>(chunk)) {
            failures[t] = absl::StrCat("pread at ", pos, ": ", n, " errno ",
                                       n < 0 ? errno : 0);
            break;
          }
          Fill(seed, pos, want.data(), chunk);
          if (memcmp(buf.get(), want.data(), chunk) != 0) {
            failures[t] = absl::StrCat("bytes differ at ", pos);
            break;
          }
        }
      }
      close(fd);
    });
  }
  for (std::thread& r : readers) r.join();
  return failures;
}

void WritePattern(const std::string& path, uint64_t seed, uint64_t size) {
  std::ofstream out(path, std::ios::binary);
  std::vector<char> buf(size);
  Fill(seed, 0, buf.data(), buf.size());
  out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  ASSERT_TRUE(out.good());
}

// 1 MiB O_DIRECT reads are sent as parallel pieces (--read-split, 256 KiB
// by default) over the connections (4 here) while few run at once,
// answered with the pieces gathered: byte-exact, also where the file ends
// inside the first, a middle or the last piece of a read. One reader: each
// READ goes in pieces. Eight readers at once on 2 connections: byte-exact
// too, whichever way each READ went (in pieces, or whole once the large
// READs at once fill the connections: client/mount/read_plan.h).
TEST_F(MountTest, DirectReadsInParallelPiecesByteExact) {
  ASSERT_EQ(mount_->Stop(), 0);
  mount_ = MountProcess::Start(server_->address(), mnt_.path(), {},
                               {"--connections", "4"});
  ASSERT_NE(mount_, nullptr);
  uint64_t reads = 0;
  for (uint64_t size :
       {uint64_t{4} << 20, (uint64_t{2} << 20) + 1000,
        (uint64_t{1} << 20) + (600 << 10) + 5, (uint64_t{3} << 20) - 7}) {
    SCOPED_TRACE(size);
    const std::string name = absl::StrCat("direct.", size);
    {
      std::ofstream out(E(name), std::ios::binary);
      std::vector<char> buf(size);
      Fill(3, 0, buf.data(), buf.size());
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
      ASSERT_TRUE(out.good());
    }
    ExpectDirectReadsMatch(M(name), 3, size, 1 << 20);
    ExpectDirectReadsMatch(M(name), 3, size, 768 << 10);
    // READs of at least 512 KiB (the last of each pass may be smaller).
    reads += size / (1 << 20) + size / (768 << 10);
  }
  ASSERT_EQ(mount_->Stop(), 0);
  std::optional<LargeReads> r = LargeReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  EXPECT_GE(r->pieces, reads);
  EXPECT_EQ(r->whole, 0u);

  mount_ = MountProcess::Start(server_->address(), mnt_.path(), {},
                               {"--connections", "2"});
  ASSERT_NE(mount_, nullptr);
  WritePattern(E("eight"), 4, uint64_t{8} << 20);
  for (const std::string& f :
       ParallelDirectReads(M("eight"), 4, uint64_t{8} << 20, 1 << 20, 8, 2)) {
    EXPECT_EQ(f, "");
  }
  ASSERT_EQ(mount_->Stop(), 0);
  r = LargeReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  EXPECT_EQ(r->pieces + r->whole, 8u * 2 * 8);
}

// READ data crosses the client library without a copy: 1 MiB O_DIRECT
// reads (in 256 KiB pieces) reach fuse_reply_iov as slices of the client's
// receive buffers. The mount reports its client's receive counters when it
// exits; none of these payloads was copied (README "Copies of a READ byte",
// copy (3) gone).
TEST_F(MountTest, LargeReadsAreNotCopiedByTheClientLibrary) {
  constexpr uint64_t kSize = uint64_t{8} << 20;
  {
    std::ofstream out(E("nocopy"), std::ios::binary);
    std::vector<char> buf(kSize);
    Fill(5, 0, buf.data(), buf.size());
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    ASSERT_TRUE(out.good());
  }
  ExpectDirectReadsMatch(M("nocopy"), 5, kSize, 1 << 20);
  ASSERT_EQ(mount_->Stop(), 0);
  unsigned long long in_place = 0, in_place_n = 0, copied = 0, copied_n = 0;
  const size_t at = mount_->err().find("reply payloads: ");
  ASSERT_NE(at, std::string::npos) << mount_->err();
  ASSERT_EQ(std::sscanf(mount_->err().c_str() + at,
                        "reply payloads: %llu bytes in place (%llu replies), "
                        "%llu bytes copied (%llu replies)",
                        &in_place, &in_place_n, &copied, &copied_n),
            4)
      << mount_->err();
  EXPECT_GE(in_place, kSize);
  EXPECT_EQ(copied, 0u) << copied_n << " payloads copied";
  mount_.reset();
}

// Small READs (up to --async-read-max, 128 KiB) leave no FUSE thread
// waiting: the client's loop thread answers the kernel. Many at once, of
// several sizes, are all answered byte-exact, each from the loop (none
// needed doing again); with --async-read-max 0 every READ waits as before,
// and is as exact.
TEST_F(MountTest, SmallReadsAreAnsweredFromTheClientLoopByteExact) {
  constexpr uint64_t kSize = uint64_t{1} << 20;
  WritePattern(E("small"), 21, kSize);
  for (size_t chunk : {size_t{4096}, size_t{64} << 10, size_t{128} << 10}) {
    SCOPED_TRACE(chunk);
    for (const std::string& f :
         ParallelDirectReads(M("small"), 21, kSize, chunk, 4, 2)) {
      EXPECT_EQ(f, "");
    }
  }
  ASSERT_EQ(mount_->Stop(), 0);
  std::optional<SmallReads> r = SmallReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  // 4 threads x 2 rounds x (256 + 16 + 8) chunks.
  EXPECT_GE(r->by_loop, 4u * 2 * (256 + 16 + 8));
  EXPECT_EQ(r->again, 0u);

  mount_ = MountProcess::Start(server_->address(), mnt_.path(),
                               {"--async-read-max", "0"});
  ASSERT_NE(mount_, nullptr);
  for (const std::string& f :
       ParallelDirectReads(M("small"), 21, kSize, 4096, 4, 1)) {
    EXPECT_EQ(f, "");
  }
  ASSERT_EQ(mount_->Stop(), 0);
  r = SmallReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  EXPECT_EQ(r->by_loop, 0u);
  EXPECT_EQ(r->again, 0u);
}

// `threads` threads reading `path` (made of Fill(seed), `size` bytes) in
// 4 KiB O_DIRECT pread()s, each from its own offset round and round, each
// byte checked, until Stop(); each thread's first failure ends it and is
// kept.
class DirectReaders {
 public:
  DirectReaders(const std::string& path, uint64_t seed, uint64_t size,
                int threads)
      : failures_(threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back(
          [this, path, seed, size, t] { Run(path, seed, size, t); });
    }
  }
  ~DirectReaders() { Stop(); }

  int reads() const { return reads_.load(); }
  // Ends the readers; their failures ("" for none).
  const std::vector<std::string>& Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return failures_;
  }

 private:
  void Run(const std::string& path, uint64_t seed, uint64_t size, int t) {
    const int fd = open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
      failures_[t] = absl::StrCat("open: errno ", errno);
      return;
    }
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, 4096) != 0) std::abort();
    std::vector<char> want(4096);
    for (uint64_t pos = t * 4096 * 61 % size; !stop_.load();
         pos = (pos + 4096) % size) {
      const ssize_t n = pread(fd, mem, 4096, static_cast<off_t>(pos));
      if (n != 4096) {
        failures_[t] = absl::StrCat("pread at ", pos, ": ", n, " errno ",
                                    n < 0 ? errno : 0);
        break;
      }
      Fill(seed, pos, want.data(), want.size());
      if (memcmp(mem, want.data(), want.size()) != 0) {
        failures_[t] = absl::StrCat("bytes differ at ", pos);
        break;
      }
      reads_.fetch_add(1);
    }
    std::free(mem);
    close(fd);
  }

  std::atomic<int> reads_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::string> failures_;  // [t] written by thread t only
  std::vector<std::thread> threads_;
};

// Small READs in flight when the server is killed (-9) and started again:
// a READ the loop thread cannot answer (connection lost, then a stale
// handle) is done again by a worker, which connects again and looks the
// file up again by path; no reader sees an error or a wrong byte.
TEST_F(MountTest, SmallReadsInFlightAcrossAServerRestartAreAnswered) {
  constexpr uint64_t kSize = uint64_t{1} << 20;
  WritePattern(E("across"), 22, kSize);
  DirectReaders readers(M("across"), 22, kSize, 4);
  // The restart with the readers under way; then reads go on after it.
  EXPECT_TRUE(
      WaitFor([&] { return readers.reads() >= 500; }, absl::Seconds(60)));
  RestartServer(/*kill9=*/true);
  const int at_restart = readers.reads();
  EXPECT_TRUE(WaitFor([&] { return readers.reads() >= at_restart + 2000; },
                      absl::Seconds(120)))
      << readers.reads() - at_restart << " reads after the restart";
  for (const std::string& f : readers.Stop()) EXPECT_EQ(f, "");
  ASSERT_EQ(mount_->Stop(), 0);
  std::optional<SmallReads> r = SmallReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  EXPECT_GT(r->by_loop, 0u);
}

// SIGTERM while small READs are in flight: the mount answers (or fails)
// each of them before it destroys the FUSE session, unmounts and exits 0;
// the readers end (their reads fail once it is gone), none hangs.
TEST_F(MountTest, SigtermWithSmallReadsInFlightUnmountsCleanly) {
  constexpr uint64_t kSize = uint64_t{1} << 20;
  WritePattern(E("busy"), 23, kSize);
  DirectReaders readers(M("busy"), 23, kSize, 8);
  ASSERT_TRUE(
      WaitFor([&] { return readers.reads() >= 2000; }, absl::Seconds(60)))
      << readers.reads() << " reads";
  EXPECT_EQ(mount_->Stop(), 0);
  readers.Stop();
  mount_.reset();
}

// --writeback-cache: write() only fills the kernel's page cache; the kernel
// sends the dirty pages later, merged. Data written in odd-sized pieces at
// odd offsets (partial pages the kernel must read, modify and write) is on
// the server byte-exact after fsync, and after close without fsync.
TEST_F(MountTest, WritebackCacheDataArrivesByteExact) {
  Remount({"--writeback-cache"});
  constexpr uint64_t kSize = (uint64_t{8} << 20) + 4321;
  std::vector<char> all(kSize);
  Fill(4, 0, all.data(), all.size());
  for (bool do_fsync : {true, false}) {
    SCOPED_TRACE(do_fsync ? "fsync, close" : "close");
    const std::string name = do_fsync ? "wb.fsync" : "wb.close";
    int fd =
        open(M(name).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    // Back to front in pieces of 4095..(4095 + 3 * 65537) bytes, so that
    // most pieces start and end inside a page.
    uint64_t end = kSize;
    for (uint64_t i = 0; end > 0; ++i) {
      const uint64_t len = std::min<uint64_t>(end, 4095 + (i % 4) * 65537);
      const uint64_t pos = end - len;
      ASSERT_EQ(pwrite(fd, all.data() + pos, len, static_cast<off_t>(pos)),
                static_cast<ssize_t>(len));
      end = pos;
    }
    if (do_fsync) {
      ASSERT_EQ(fsync(fd), 0);
      uint64_t size = 0;
      EXPECT_EQ(Checksum(E(name), &size), ChecksumOfPattern(4, kSize));
      EXPECT_EQ(size, kSize);
    }
    ASSERT_EQ(close(fd), 0);
    uint64_t size = 0;
    EXPECT_EQ(Checksum(E(name), &size), ChecksumOfPattern(4, kSize));
    EXPECT_EQ(size, kSize);
    // And read back through the mount.
    EXPECT_EQ(Checksum(M(name)), ChecksumOfPattern(4, kSize));
  }
}

// O_DIRECT writes to one file from two openers reach the mount at once (the
// OPEN reply's FOPEN_PARALLEL_DIRECT_WRITES; without it the kernel holds the
// file's lock across each write, one at a time). Seen from the kernel's side:
// with txbufd stopped, the first write's WRITE waits at the mount, and the
// second one's WRITE must still reach the mount, which the FUSE connection
// counts as a second request waiting (/sys/fs/fuse/connections/N/waiting).
// With --serial-direct-writes the count stays at 1 and this test fails.
// Twice: on a file that was there, and on one the first opener made with
// O_CREAT | O_DIRECT (its CREATE reply carries the flag too; before, it did
// not, and the created descriptor's writes held the file's lock).
TEST_F(MountTest, DirectWritesToOneFileReachTheMountInParallel) {
  // Long attribute and entry lifetimes: no GETATTR or LOOKUP joins the
  // WRITEs in the count.
  Remount({"--attr-timeout", "600", "--entry-timeout", "600"});
  constexpr size_t kPiece = 1 << 20;
  for (const bool created : {false, true}) {
    SCOPED_TRACE(created ? "made by CREATE" : "there before");
    const std::string name = created ? "parallel-created" : "parallel";
    if (!created) {
      std::vector<char> zeros(2 * kPiece, 0);
      std::ofstream out(E(name), std::ios::binary);
      out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
      ASSERT_TRUE(out.good());
    }
    struct stat st;
    ASSERT_EQ(stat(mnt_.path().c_str(), &st), 0);
    const std::string conn_dir = "/sys/fs/fuse/connections";
    const std::string waiting_path =
        absl::StrCat(conn_dir, "/", minor(st.st_dev), "/waiting");
    if (access(waiting_path.c_str(), R_OK) != 0) {
      // fusectl is not mounted here: mount it (root).
      mount("fusectl", conn_dir.c_str(), "fusectl", 0, nullptr);
    }
    if (access(waiting_path.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "no " << waiting_path << " (fusectl): cannot see the "
                   << "FUSE requests in flight";
    }
    auto waiting = [&] {
      std::ifstream in(waiting_path);
      int n = -1;
      in >> n;
      return n;
    };
    // Each opener's pieces: aligned, distinct content.
    void* mem[2] = {nullptr, nullptr};
    int fds[2] = {-1, -1};
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(posix_memalign(&mem[i], 4096, kPiece), 0);
      Fill(20 + i, 0, static_cast<char*>(mem[i]), kPiece);
      fds[i] =
          open(M(name).c_str(),
               O_RDWR | O_DIRECT | O_CLOEXEC | (i == 0 ? O_CREAT : 0), 0644);
      ASSERT_GE(fds[i], 0) << strerror(errno);
      // A first write each, with the server running (opens, attributes).
      ASSERT_EQ(pwrite(fds[i], mem[i], kPiece, static_cast<off_t>(i * kPiece)),
                static_cast<ssize_t>(kPiece));
    }
    ASSERT_TRUE(WaitFor([&] { return waiting() == 0; }, absl::Seconds(20)))
        << waiting() << " requests still waiting before the test";
    ASSERT_EQ(kill(server_->pid(), SIGSTOP), 0);
    std::atomic<ssize_t> wrote[2] = {-1, -1};
    std::vector<std::thread> writers;
    writers.emplace_back([&] { wrote[0] = pwrite(fds[0], mem[0], kPiece, 0); });
    const bool first_waits =
        WaitFor([&] { return waiting() >= 1; }, absl::Seconds(20));
    writers.emplace_back([&] {
      wrote[1] = pwrite(fds[1], mem[1], kPiece, static_cast<off_t>(kPiece));
    });
    const bool both_wait =
        first_waits &&
        WaitFor([&] { return waiting() >= 2; }, absl::Seconds(20));
    const int seen = waiting();
    ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
    for (std::thread& t : writers) t.join();
    EXPECT_TRUE(first_waits) << "the first WRITE never reached the mount";
    EXPECT_TRUE(both_wait) << "the second opener's WRITE did not reach the "
                           << "mount while the first waited (" << seen
                           << " request(s) waiting): writes are serialized";
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(wrote[i].load(), static_cast<ssize_t>(kPiece)) << i;
      EXPECT_EQ(close(fds[i]), 0);  // flush: COMMIT
    }
    // Each piece where its writer put it.
    std::ifstream in(E(name), std::ios::binary);
    std::vector<char> got(2 * kPiece);
    in.read(got.data(), static_cast<std::streamsize>(got.size()));
    ASSERT_EQ(in.gcount(), static_cast<std::streamsize>(got.size()));
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(std::memcmp(got.data() + i * kPiece, mem[i], kPiece), 0) << i;
      free(mem[i]);
    }
  }
}

// Past half of --max-uncommitted the mount has the file committed in the
// background while the writer goes on (before, it wrote on up to the whole
// limit and then waited for a COMMIT of all of it): 5 MiB written with an
// 8 MiB limit by a child that keeps the file open, and the server runs a
// COMMIT before the child closes it. (The writer is a child so that this
// process, which forks to read the server's stats, holds no descriptor of
// the file: a fork's close of one is a FLUSH, which commits.)
TEST_F(MountTest,
       WritesPastHalfTheUncommittedLimitAreCommittedInTheBackground) {
  Remount({"--max-uncommitted", "8"});
  ASSERT_EQ(CommitsRun(server_->address()), 0);
  constexpr size_t kSize = size_t{5} << 20;
  std::vector<char> all(kSize);
  Fill(30, 0, all.data(), all.size());
  const std::string path = M("bg");
  int wrote[2], go[2];
  ASSERT_EQ(pipe(wrote), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Writes 1 MiB at a time, reports, and closes when told.
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0;
    for (size_t at = 0; ok && at < kSize; at += 1 << 20) {
      ok = write(fd, all.data() + at, 1 << 20) == (1 << 20);
    }
    const char r = ok ? 'y' : 'n';
    char c = 0;
    if (write(wrote[1], &r, 1) != 1 || read(go[0], &c, 1) != 1) _exit(3);
    _exit(ok && close(fd) == 0 ? 0 : 2);
  }
  close(wrote[1]);
  close(go[0]);
  char r = 0;
  ASSERT_EQ(read(wrote[0], &r, 1), 1);
  EXPECT_EQ(r, 'y') << "the child's writes failed";
  long commits = 0;
  const bool committed = WaitFor(
      [&] {
        commits = CommitsRun(server_->address());
        return commits >= 1;
      },
      absl::Seconds(20));
  ASSERT_EQ(write(go[1], "c", 1), 1);
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  close(wrote[0]);
  close(go[1]);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_TRUE(committed) << "no COMMIT while the file was open and held "
                         << "over half the limit (" << commits << ")";
  uint64_t size = 0;
  EXPECT_EQ(Checksum(E("bg"), &size), ChecksumOfPattern(30, kSize));
  EXPECT_EQ(size, kSize);
}

TEST_F(MountTest, CpAndTarRoundTrips) {
  // A local tree: nested directories, files of many sizes, an empty
  // directory, a symlink.
  const std::string src = local_.Join("src");
  for (int d = 0; d < 4; ++d) {
    std::string dir = absl::StrCat(src, "/d", d, "/sub", d % 2);
    fs::create_directories(dir);
    for (int f = 0; f < 12; ++f) {
      std::string data((f * 37 + d * 1000) * (f % 3 == 0 ? 97 : 1), '\0');
      Fill(d * 100 + f, 0, data.data(), data.size());
      WriteFile(absl::StrCat(dir, "/file", f, ".bin"), data);
    }
  }
  fs::create_directories(src + "/empty");
  fs::create_symlink("d0/sub0/file1.bin", src + "/link");
  const std::string out = local_.Join("out");
  fs::create_directories(out);
  auto q = [](const std::string& p) { return absl::StrCat("'", p, "'"); };
  // cp -r in and out.
  ASSERT_EQ(Sh(absl::StrCat("cp -r ", q(src), " ", q(M("tree")))), 0);
  ASSERT_EQ(Sh(absl::StrCat("cp -r ", q(M("tree")), " ", q(out + "/tree"))), 0);
  EXPECT_EQ(Sh(absl::StrCat("diff -r --no-dereference ", q(src), " ",
                            q(out + "/tree"))),
            0);
  EXPECT_EQ(
      Sh(absl::StrCat("diff -r --no-dereference ", q(src), " ", q(E("tree")))),
      0);
  // tar c | tar x, into the mount and out of it.
  fs::create_directories(M("untar"));
  fs::create_directories(out + "/tar2");
  ASSERT_EQ(Sh(absl::StrCat("tar -C ", q(src), " -cf - . | tar -C ",
                            q(M("untar")), " -xf -")),
            0);
  ASSERT_EQ(Sh(absl::StrCat("tar -C ", q(M("untar")), " -cf - . | tar -C ",
                            q(out + "/tar2"), " -xf -")),
            0);
  EXPECT_EQ(Sh(absl::StrCat("diff -r --no-dereference ", q(src), " ",
                            q(out + "/tar2"))),
            0);
  // tar kept the modification times (whole seconds in its format) through
  // the mount: set with futimens before close, not moved by the write-back
  // of the file's data.
  for (const char* rel : {"d1/sub1/file3.bin", "d2/sub0/file0.bin"}) {
    struct stat a, b;
    ASSERT_EQ(stat((src + "/" + rel).c_str(), &a), 0);
    ASSERT_EQ(stat(M(absl::StrCat("untar/", rel)).c_str(), &b), 0);
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec) << rel;
    ASSERT_EQ(stat(E(absl::StrCat("untar/", rel)).c_str(), &b), 0);
    EXPECT_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec) << rel;
  }
}

TEST_F(MountTest, TwoMountsSeeEachOthersChangesAfterCloseOpen) {
  mount2_ = MountProcess::Start(server_->address(), mnt2_.path());
  ASSERT_NE(mount2_, nullptr);
  auto B = [&](const std::string& rel) { return mnt2_.Join(rel); };
  ASSERT_EQ(Put(M("shared"), "v1"), 0);
  EXPECT_EQ(Slurp(B("shared")), "v1");
  // Rewritten longer, then shorter, by A: B's next open sees it.
  ASSERT_EQ(Put(M("shared"), "version two, longer"), 0);
  EXPECT_EQ(Slurp(B("shared")), "version two, longer");
  ASSERT_EQ(Put(B("shared"), "+b", O_WRONLY | O_APPEND), 0);
  EXPECT_EQ(Slurp(M("shared")), "version two, longer+b");
  ASSERT_EQ(Put(M("shared"), "3"), 0);
  EXPECT_EQ(Slurp(B("shared")), "3");
  // Names: made by one, seen by the other; removed, gone.
  ASSERT_EQ(mkdir(M("dir").c_str(), 0755), 0);
  ASSERT_EQ(Put(M("dir/new.txt"), "new"), 0);
  EXPECT_EQ(Slurp(B("dir/new.txt")), "new");
  ASSERT_EQ(unlink(M("dir/new.txt").c_str()), 0);
  EXPECT_EQ(Slurp(B("dir/new.txt")), absl::StrCat("<errno ", ENOENT, ">"));
  // Replaced by a rename on A: B opens the new file.
  ASSERT_EQ(Put(M("dir/tmp"), "replacement"), 0);
  ASSERT_EQ(Put(M("dir/target"), "original"), 0);
  EXPECT_EQ(Slurp(B("dir/target")), "original");
  ASSERT_EQ(rename(M("dir/tmp").c_str(), M("dir/target").c_str()), 0);
  EXPECT_EQ(Slurp(B("dir/target")), "replacement");
}

TEST_F(MountTest, BackgroundMountUnmountsWithFusermount) {
  if (!HaveCommand("fusermount3")) GTEST_SKIP() << "no fusermount3 (fuse3)";
  ASSERT_EQ(Put(M("probe"), "seen"), 0);
  const std::string dir = mnt2_.path();
  // Without -f: returns once mounted, served by a child process.
  ASSERT_EQ(Sh(absl::StrCat("'", CliPath(), "' mount ", server_->address(),
                            " '", dir, "'")),
            0);
  EXPECT_TRUE(IsMounted(dir));
  EXPECT_EQ(Slurp(mnt2_.Join("probe")), "seen");
  EXPECT_EQ(Sh(absl::StrCat("fusermount3 -u '", dir, "'")), 0);
  EXPECT_TRUE(WaitFor([&] { return !IsMounted(dir); }, absl::Seconds(30)));
  ForceUnmount(dir);
  // A mount that cannot be made is an error on the command line, not a
  // silent child: a server nobody listens on.
  EXPECT_EQ(Sh(absl::StrCat("'", CliPath(), "' --timeout 5 mount 127.0.0.1:1 '",
                            dir, "' 2>/dev/null")),
            1);
  EXPECT_FALSE(IsMounted(dir));
}

// Set by the SIGIO a lease holder gets when someone opens its file.
std::atomic<bool> lease_broken{false};
void OnLeaseBreak(int) { lease_broken.store(true); }

// A DELAY from the server (here: another process holds a lease on the file,
// so txbufd cannot open it without waiting) is sent again by the mount until
// it clears, as NFS clients retry NFS4ERR_DELAY; a reader sees the bytes,
// not EAGAIN.
TEST_F(MountTest, DelayIsRetriedUntilItClears) {
  ASSERT_EQ(Put(E("leased"), "held by a lease"), 0);
  struct sigaction on_break {
  }, old{};
  on_break.sa_handler = OnLeaseBreak;
  sigemptyset(&on_break.sa_mask);
  ASSERT_EQ(sigaction(SIGIO, &on_break, &old), 0);
  lease_broken.store(false);
  // A write lease: any other open of the file waits for (or, with
  // O_NONBLOCK as txbufd opens, fails until) its release.
  int fd = open(E("leased").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fcntl(fd, F_SETLEASE, F_WRLCK), 0) << strerror(errno);
  std::string got;
  std::thread reader([&] { got = Slurp(M("leased")); });
  // The server's open broke the lease (SIGIO here); only then let it go,
  // so that the first READ surely got DELAY.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!lease_broken.load() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(lease_broken.load()) << "no open of the file within 60 s";
  EXPECT_EQ(fcntl(fd, F_SETLEASE, F_UNLCK), 0) << strerror(errno);
  close(fd);
  reader.join();
  sigaction(SIGIO, &old, nullptr);
  EXPECT_EQ(got, "held by a lease");
  // The READ that got DELAY was small: sent from the loop, answered by a
  // worker that retried it.
  ASSERT_EQ(mount_->Stop(), 0);
  std::optional<SmallReads> r = SmallReadsOf(mount_->err());
  ASSERT_TRUE(r.has_value()) << mount_->err();
  EXPECT_GE(r->again, 1u);
}

TEST_F(MountTest, ReadOnlyMount) {
  ASSERT_EQ(Put(M("f"), "data"), 0);
  mount2_ = MountProcess::Start(
      server_->address(), mnt2_.path(),
      {"--read-only", "--attr-timeout", "0", "--entry-timeout=0"});
  ASSERT_NE(mount2_, nullptr);
  EXPECT_EQ(Slurp(mnt2_.Join("f")), "data");
  EXPECT_EQ(Put(mnt2_.Join("f"), "x"), EROFS);
  EXPECT_EQ(Put(mnt2_.Join("g"), "x"), EROFS);
  EXPECT_EQ(mkdir(mnt2_.Join("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(MountTest, TokenFileAuthenticates) {
  ASSERT_EQ(Put(M("f"), "secret data"), 0);
  TempDir tok;
  WriteSecretFile(tok.Join("t"), "s3cret\n");
  absl::StatusOr<std::unique_ptr<ServerProcess>> s = ServerProcess::Start(
      {"--export", export_.path(), "--token-file", tok.Join("t")});
  ASSERT_TRUE(s.ok()) << s.status();
  // Without the token: an error on the command line, nothing mounted.
  EXPECT_EQ(
      Sh(absl::StrCat("'", CliPath(), "' --timeout 10 mount ", (*s)->address(),
                      " '", mnt2_.path(), "' 2>/dev/null")),
      1);
  EXPECT_FALSE(IsMounted(mnt2_.path()));
  mount2_ = MountProcess::Start((*s)->address(), mnt2_.path(),
                                {"--token-file", tok.Join("t")});
  ASSERT_NE(mount2_, nullptr);
  EXPECT_EQ(Slurp(mnt2_.Join("f")), "secret data");
  EXPECT_EQ(mount2_->Stop(), 0);
  mount2_.reset();
  EXPECT_EQ((*s)->Stop().exit_code, 0);
}

// A server that goes away and does not come back: the mount tries to
// connect again for its --timeout, then the operation fails with EIO
// (never a hang), and later ones too; the mount still unmounts cleanly on
// SIGTERM.
TEST_F(MountTest, ALostServerGivesEioAndTheMountStillUnmounts) {
  Remount({"--timeout", "2"});
  ASSERT_EQ(Put(M("f"), "data"), 0);
  struct stat st;
  ASSERT_EQ(stat(M("f").c_str(), &st), 0);
  kill(server_->pid(), SIGKILL);
  server_->Stop();
  server_.reset();
  // Bounded: the timeout (2 s), plus a generous margin for a busy machine.
  const absl::Time start = absl::Now();
  EXPECT_EQ(stat(M("never-looked-up").c_str(), &st), -1);
  EXPECT_TRUE(errno == EIO || errno == ETIMEDOUT) << errno;
  EXPECT_EQ(Slurp(M("f")).substr(0, 6), "<errno");
  EXPECT_EQ(Put(M("new"), "x"), EIO);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2 * 3 + 30));
}

// A write stream with the server killed (-9) and started again in the
// middle: the mount connects again, looks the file up again by path
// (the old handle is stale), writes again what the old server may have lost
// (its write verifier changed) and, after fsync and close, the file on the
// export's disk is exactly what was written.
TEST_F(MountTest, ServerRestartMidWriteStreamLosesNothingAfterFsync) {
  constexpr uint64_t kSize = 32 << 20, kChunk = 1 << 20, kSeed = 1313;
  // The writer is a child process: a descriptor of the file open in this
  // process would be closed by the fork + exec that starts the new server,
  // and that close (a FUSE FLUSH: COMMIT) would wait for the server being
  // started. The child reports each chunk written (a byte 'w' on the pipe),
  // then 'f' (fsync and close succeeded) or 'e' (failed; errno follows).
  int progress[2];
  ASSERT_EQ(pipe2(progress, O_CLOEXEC), 0);
  const std::string path = M("stream.bin");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(progress[0]);
    auto report = [&](char what, int err) {
      char msg[2] = {what, static_cast<char>(err)};
      (void)!write(progress[1], msg, what == 'e' ? 2 : 1);
    };
    const int fd =
        open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) report('e', errno), _exit(1);
    std::vector<char> buf(kChunk);
    for (uint64_t pos = 0; pos < kSize; pos += kChunk) {
      Fill(kSeed, pos, buf.data(), kChunk);
      if (pwrite(fd, buf.data(), kChunk, static_cast<off_t>(pos)) !=
          static_cast<ssize_t>(kChunk)) {
        report('e', errno), _exit(1);
      }
      report('w', 0);
    }
    if (fsync(fd) != 0 || close(fd) != 0) report('e', errno), _exit(1);
    report('f', 0);
    _exit(0);
  }
  close(progress[1]);
  // Reads the child's next report; 0 at end of pipe or after 120 s.
  auto next = [&]() -> char {
    pollfd p{progress[0], POLLIN, 0};
    char c = 0;
    if (poll(&p, 1, 120'000) != 1 || read(progress[0], &c, 1) != 1) return 0;
    return c;
  };
  uint64_t chunks = 0;
  char c = 0;
  bool restarted = false;
  while ((c = next()) == 'w') {
    // The restart, with a quarter of the stream written (not committed).
    if (++chunks == kSize / kChunk / 4) {
      RestartServer(/*kill9=*/true);
      restarted = true;
    }
  }
  int err = 0;
  if (c == 'e') err = static_cast<unsigned char>(next());
  close(progress[0]);
  int st = 0;
  if (c == 0) kill(child, SIGKILL);
  waitpid(child, &st, 0);
  EXPECT_TRUE(restarted);
  ASSERT_EQ(c, 'f') << "the writer failed after " << chunks << " chunks: errno "
                    << err;
  EXPECT_EQ(chunks, kSize / kChunk);
  uint64_t size = 0;
  EXPECT_EQ(Checksum(E("stream.bin"), &size), ChecksumOfPattern(kSeed, kSize));
  EXPECT_EQ(size, kSize);
  // The 1 MiB WRITEs (and so what was written again after the restart)
  // were kept in their requests' buffers, not copied. (The kernel may
  // split a write() in two when copying from the writer's pages faults,
  // rarely: a piece under half a buffer is copied.)
  ASSERT_EQ(mount_->Stop(), 0);
  std::optional<Writes> w = WritesOf(mount_->err());
  ASSERT_TRUE(w.has_value()) << mount_->err();
  EXPECT_GE(w->kept, kSize / kChunk / 2) << mount_->err();
  EXPECT_GE(w->kept + w->copied, kSize / kChunk) << mount_->err();
}

// Files looked up (and opened) before a server restart are found again by
// path after it: an open descriptor still reads, a cached name still
// stats, a directory still lists, a renamed file is found by its new name.
TEST_F(MountTest, HandlesFromBeforeARestartAreLookedUpAgainByPath) {
  fs::create_directories(M("d/e"));
  ASSERT_EQ(Put(M("d/e/f"), "deep data"), 0);
  ASSERT_EQ(Put(M("top"), "top data"), 0);
  ASSERT_EQ(Put(M("d/old"), "renamed data"), 0);
  fs::rename(M("d/old"), M("d/e/new"));
  const int fd = open(M("d/e/f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << errno;
  RestartServer(/*kill9=*/false);
  char buf[64] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), 0), 9) << errno;
  EXPECT_EQ(std::string(buf, 9), "deep data");
  close(fd);
  EXPECT_EQ(Slurp(M("top")), "top data");
  EXPECT_EQ(Slurp(M("d/e/new")), "renamed data");
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(M("d/e"))) {
    names.insert(e.path().filename());
  }
  EXPECT_EQ(names, (std::set<std::string>{"f", "new"}));
  ASSERT_EQ(Put(M("d/e/after"), "x"), 0);
  EXPECT_EQ(ReadFileOrDie(E("d/e/after")), "x");
}

// fio, the benchmark people trust, with its own data verification: a 1 MiB
// sequential write job (written, then read back and checked), and 4 KiB
// random reads (O_DIRECT, 16 in flight, so each goes to the server) of a
// file fio laid out with checksummed blocks. Bounded: 64 MiB and 16 MiB,
// reads for 3 s.
TEST_F(MountTest, FioVerifiesRandomReadsAndSequentialWrites) {
  if (!HaveCommand("fio")) GTEST_SKIP() << "no fio (Debian package fio)";
  const std::string json = local_.Join("fio.json");
  auto fio = [&](const std::string& args) -> nlohmann::json {
    std::string cmd =
        absl::StrCat("fio --directory='", mnt_.path(),
                     "' --output-format=json --output='", json, "' ", args);
    EXPECT_EQ(Sh(cmd), 0) << cmd << "\n" << ReadFileOrDie(json);
    nlohmann::json j = nlohmann::json::parse(ReadFileOrDie(json), nullptr,
                                             /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << ReadFileOrDie(json);
    return j;
  };
  auto check = [](const nlohmann::json& j, const char* dir) {
    ASSERT_TRUE(j.contains("jobs") && j["jobs"].is_array() &&
                !j["jobs"].empty())
        << j.dump();
    for (const nlohmann::json& job : j["jobs"]) {
      EXPECT_EQ(job.value("error", -1), 0) << job.dump();
      EXPECT_GT(job[dir].value("io_bytes", uint64_t{0}), 0u) << job.dump();
    }
  };
  const nlohmann::json w =
      fio("--name=seqwrite --filename=seq.bin --rw=write --bs=1M --size=64M "
          "--ioengine=psync --verify=crc32c --do_verify=1");
  check(w, "write");
  check(w, "read");  // the verification pass
  fio("--name=layout --filename=rand.bin --rw=write --bs=4k --size=16M "
      "--ioengine=psync --verify=crc32c --do_verify=0");
  const nlohmann::json r = fio(
      "--name=randread --filename=rand.bin --rw=randread --bs=4k --size=16M "
      "--ioengine=libaio --iodepth=16 --direct=1 --verify=crc32c "
      "--runtime=3 --time_based");
  check(r, "read");
}

}  // namespace
}  // namespace txbuf::testing
