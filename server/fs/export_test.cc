// export_test.cc: the exported tree's names, handles and confinement, on the
// Export alone (no sockets, no event loop). The end-to-end view of the same
// is in tests/server_confinement_test.cc and tests/server_ops_test.cc.

#include "server/fs/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/socket_util.h"
#include "gtest/gtest.h"
#include "server/fs/page_cache.h"

namespace txbuf::server {
namespace {

namespace fs = std::filesystem;

// A fresh directory holding `export/` (what is served) and `outside/`.
class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "export_test.XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    parent_ = tmpl;
    root_ = parent_ / "export";
    fs::create_directories(root_ / "dir" / "sub");
    fs::create_directories(parent_ / "outside");
    Write(root_ / "dir" / "a.txt", "alpha");
    Write(parent_ / "outside" / "secret", "secret");
  }
  void TearDown() override { fs::remove_all(parent_); }

  static void Write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
  }

  std::unique_ptr<Export> Open(ExportOptions o = {}) {
    absl::StatusOr<std::unique_ptr<Export>> ex = Export::Open(root_, o);
    EXPECT_TRUE(ex.ok()) << ex.status();
    return ex.ok() ? std::move(*ex) : nullptr;
  }

  // The export with a page cache of `pages` pages (cache_), as a server
  // has it. The export and every File must go before the fixture does.
  std::unique_ptr<Export> OpenCached(size_t pages) {
    pool_ = std::make_unique<PagePool>(pages * 4096);
    cache_ = std::make_unique<PageCache>(*pool_);
    std::unique_ptr<Export> ex = Open();
    if (ex != nullptr) ex->set_cache(cache_.get());
    return ex;
  }

  fs::path parent_;
  fs::path root_;
  std::unique_ptr<PagePool> pool_;
  std::unique_ptr<PageCache> cache_;
};

TEST_F(ExportTest, LookupAndHandlesRoundTrip) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> a = ex->Lookup(*ex->Root(), "dir/a.txt");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*a)->is_regular);
  std::string fh = ex->HandleOf(**a);
  absl::StatusOr<NodeRef> back = ex->FromHandle(fh);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->get(), a->get());
  uint64_t id = 0;
  ASSERT_TRUE(Export::ExportIdOfHandle(fh, &id));
  EXPECT_EQ(id, ex->export_id());
}

TEST_F(ExportTest, NamesThatLeaveTheDirectoryAreRefused) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> dir = ex->Lookup(*ex->Root(), "dir");
  ASSERT_TRUE(dir.ok());
  for (const char* path : {"..", "../outside/secret", "/etc/passwd",
                           "sub/../../..", "dir/../../outside"}) {
    absl::StatusOr<NodeRef> r = ex->Lookup(**dir, path);
    EXPECT_FALSE(r.ok()) << path;
    EXPECT_FALSE(r.status().message().empty()) << path;
  }
  // From the root too, where `..` would reach the parent.
  EXPECT_FALSE(ex->Lookup(*ex->Root(), "..").ok());
}

TEST_F(ExportTest, SymlinksOutOfTheExportAreNotFollowed) {
  fs::create_symlink(parent_ / "outside" / "secret", root_ / "abs_out");
  fs::create_symlink("../outside/secret", root_ / "rel_out");
  fs::create_symlink("../outside", root_ / "dir_out");
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  for (const char* path : {"abs_out", "rel_out", "dir_out/secret"}) {
    absl::StatusOr<NodeRef> r = ex->Lookup(*ex->Root(), path);
    if (r.ok()) {
      // A LOOKUP of the link itself names the link, never its target.
      EXPECT_FALSE((*r)->is_regular) << path;
      EXPECT_FALSE((*r)->is_dir) << path;
    }
  }
  EXPECT_FALSE(ex->Lookup(*ex->Root(), "dir_out/secret").ok());
}

TEST_F(ExportTest, LookupWithNoFollowNamesTheLinkItself) {
  fs::create_symlink("dir/a.txt", root_ / "to_a");
  fs::create_symlink("missing", root_ / "dangling");
  fs::create_symlink("../outside/secret", root_ / "rel_out");
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  // Followed by default: the target.
  absl::StatusOr<NodeRef> followed = ex->Lookup(*ex->Root(), "to_a");
  ASSERT_TRUE(followed.ok()) << followed.status();
  EXPECT_TRUE((*followed)->is_regular);
  // Not followed: the link, whatever its target (dangling, outside).
  for (const char* name : {"to_a", "dangling", "rel_out"}) {
    absl::StatusOr<NodeRef> link =
        ex->Lookup(*ex->Root(), name, /*no_follow=*/true);
    ASSERT_TRUE(link.ok()) << name << ": " << link.status();
    absl::StatusOr<struct stat> st = ex->Stat(**link);
    ASSERT_TRUE(st.ok()) << name << ": " << st.status();
    EXPECT_TRUE(S_ISLNK(st->st_mode)) << name;
    EXPECT_NE(ex->HandleOf(**link), ex->HandleOf(**followed)) << name;
  }
  // The link to a directory outside is no way out: used as a directory
  // (LOOKUP, READDIR, CREATE, MKDIR under it) it is not one.
  fs::create_symlink("../outside", root_ / "dir_out");
  absl::StatusOr<NodeRef> out =
      ex->Lookup(*ex->Root(), "dir_out", /*no_follow=*/true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(ex->Lookup(**out, "secret").ok());
  EXPECT_FALSE(ex->Lookup(**out, "secret", /*no_follow=*/true).ok());
  EXPECT_FALSE(
      ex->ReadDir(**out, 0, 10, false, [](DirEntry&) { return true; }).ok());
  EXPECT_FALSE(ex->Create(**out, "planted", 0644, false).ok());
  EXPECT_FALSE(ex->Mkdir(**out, "planted", 0755).ok());
  EXPECT_FALSE(fs::exists(parent_ / "outside" / "planted"));
  // A regular file or directory is the same either way.
  absl::StatusOr<NodeRef> dir =
      ex->Lookup(*ex->Root(), "dir", /*no_follow=*/true);
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE((*dir)->is_dir);
}

TEST_F(ExportTest, GarbageHandlesAreBadAndRemovedFilesStale) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  for (const std::string& junk :
       {std::string(), std::string("x"), std::string(64, '\xff')}) {
    absl::StatusOr<NodeRef> r = ex->FromHandle(junk);
    EXPECT_EQ(FsErrorKindOf(r.status()), FsErrorKind::kBadHandle) << r.status();
  }
  absl::StatusOr<NodeRef> dir = ex->Lookup(*ex->Root(), "dir");
  ASSERT_TRUE(dir.ok());
  absl::StatusOr<NodeRef> a = ex->Lookup(**dir, "a.txt");
  ASSERT_TRUE(a.ok());
  std::string fh = ex->HandleOf(**a);
  a->reset();
  ASSERT_TRUE(ex->Remove(**dir, "a.txt").ok());
  EXPECT_EQ(FsErrorKindOf(ex->FromHandle(fh).status()), FsErrorKind::kStale);
  EXPECT_EQ(ErrnoOf(ex->Lookup(**dir, "a.txt").status()), ENOENT);
}

TEST_F(ExportTest, ADirectoryMovedOutOfTheExportIsStale) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> sub = ex->Lookup(*ex->Root(), "dir/sub");
  ASSERT_TRUE(sub.ok());
  std::string fh = ex->HandleOf(**sub);
  // On the server host, behind txbufd's back.
  fs::rename(root_ / "dir" / "sub", parent_ / "outside" / "sub");
  absl::StatusOr<NodeRef> r = ex->FromHandle(fh);
  if (r.ok()) {
    // The handle may still resolve to the node; using it as a directory
    // must not reach outside.
    EXPECT_FALSE(ex->Lookup(**r, "x").ok());
    EXPECT_TRUE(IsStale(ex->Stat(**r).status()));
  } else {
    EXPECT_TRUE(IsStale(r.status())) << r.status();
  }
}

TEST_F(ExportTest, AReadOnlyExportRefusesEveryChange) {
  std::unique_ptr<Export> ex = Open({.read_only = true});
  ASSERT_NE(ex, nullptr);
  Node& root = *ex->Root();
  EXPECT_EQ(FsErrorKindOf(ex->Create(root, "new", 0644, true).status()),
            FsErrorKind::kReadOnly);
  EXPECT_EQ(FsErrorKindOf(ex->Mkdir(root, "newdir", 0755).status()),
            FsErrorKind::kReadOnly);
  EXPECT_EQ(FsErrorKindOf(ex->Symlink(root, "l", "dir").status()),
            FsErrorKind::kReadOnly);
  absl::StatusOr<NodeRef> dir = ex->Lookup(root, "dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(FsErrorKindOf(ex->Remove(**dir, "a.txt")), FsErrorKind::kReadOnly);
  EXPECT_EQ(FsErrorKindOf(ex->Rmdir(**dir, "sub")), FsErrorKind::kReadOnly);
  EXPECT_EQ(FsErrorKindOf(ex->Rename(**dir, "a.txt", root, "b.txt")),
            FsErrorKind::kReadOnly);
  EXPECT_TRUE(fs::exists(root_ / "dir" / "a.txt"));
  EXPECT_FALSE(fs::exists(root_ / "new"));
}

TEST_F(ExportTest, CreateExclusiveTwiceIsExist) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  Node& root = *ex->Root();
  ASSERT_TRUE(ex->Create(root, "f", 0644, true).ok());
  EXPECT_EQ(ErrnoOf(ex->Create(root, "f", 0644, true).status()), EEXIST);
  EXPECT_TRUE(ex->Create(root, "f", 0644, false).ok());  // unchecked
  for (const char* bad : {"", ".", "..", "a/b"}) {
    EXPECT_FALSE(ex->Create(root, bad, 0644, true).ok()) << bad;
  }
}

TEST_F(ExportTest, ReadDirPagesThroughEveryEntryOnce) {
  for (int i = 0; i < 25; ++i) {
    Write(root_ / "dir" / "sub" / absl::StrCat("f", i), "x");
  }
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> sub = ex->Lookup(*ex->Root(), "dir/sub");
  ASSERT_TRUE(sub.ok());
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (int pages = 0; pages < 100; ++pages) {
    std::vector<DirEntry> page;
    absl::StatusOr<bool> eof =
        ex->ReadDir(**sub, cookie, 4, false, [&page](DirEntry& e) {
          page.push_back(std::move(e));
          return true;
        });
    ASSERT_TRUE(eof.ok()) << eof.status();
    EXPECT_LE(page.size(), 4u);
    for (const DirEntry& e : page) {
      EXPECT_TRUE(seen.insert(e.name).second) << "twice: " << e.name;
      cookie = e.cookie;
    }
    if (*eof) break;
  }
  seen.erase(".");
  seen.erase("..");
  EXPECT_EQ(seen.size(), 25u);
}

// Descriptors this process holds of removed files ("... (deleted)").
int DeletedFdsOfThisProcess() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    fs::path target = fs::read_symlink(e.path(), ec);
    if (!ec && target.string().ends_with(" (deleted)")) ++n;
  }
  return n;
}

// CREATE and REMOVE of the same names racing on several threads: a REMOVE
// that unlinked a newer file of the name than the one it looked at forgot
// the wrong node, and the newer file's node kept a descriptor of a removed
// file (its space never came back). Whatever the interleaving, once the
// races are over no node may hold a removed file.
TEST_F(ExportTest, CreateRemoveRacesLeaveNoRemovedFileHeld) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  ASSERT_EQ(DeletedFdsOfThisProcess(), 0);
  NodeRef root = ex->Root();
  std::vector<std::thread> racers;
  for (int t = 0; t < 4; ++t) {
    racers.emplace_back([&ex, root, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string name = absl::StrCat("race-", (i + t) % 2);
        absl::StatusOr<NodeRef> made = ex->Create(*root, name, 0644, false);
        (void)ex->Remove(*root, name);  // any outcome: another may win
      }
    });
  }
  for (std::thread& t : racers) t.join();
  EXPECT_EQ(DeletedFdsOfThisProcess(), 0);
}

// The same with RENAME over the names (a rename that replaces a file
// forgets the replaced one's node) and RMDIR/MKDIR of them.
TEST_F(ExportTest, RenameAndRmdirRacesLeaveNoRemovedFileHeld) {
  std::unique_ptr<Export> ex = Open();
  ASSERT_NE(ex, nullptr);
  ASSERT_EQ(DeletedFdsOfThisProcess(), 0);
  NodeRef root = ex->Root();
  std::vector<std::thread> racers;
  for (int t = 0; t < 4; ++t) {
    racers.emplace_back([&ex, root, t] {
      const std::string mine = absl::StrCat("tmp-", t);
      for (int i = 0; i < 2000; ++i) {
        const std::string name = absl::StrCat("race-", i % 2);
        if (t % 2 == 0) {
          (void)ex->Create(*root, mine, 0644, false);
          (void)ex->Rename(*root, mine, *root, name);
          (void)ex->Remove(*root, name);
        } else {
          (void)ex->Mkdir(*root, name, 0755);
          (void)ex->Rmdir(*root, name);
          (void)ex->Create(*root, name, 0644, false);
        }
      }
    });
  }
  for (std::thread& t : racers) t.join();
  for (const char* n : {"race-0", "race-1", "tmp-0", "tmp-2"}) {
    (void)ex->Remove(*root, n);
    (void)ex->Rmdir(*root, n);
  }
  EXPECT_EQ(DeletedFdsOfThisProcess(), 0);
}

// Writers that all find the node's read-only File each reopen the file
// read-write. The first to do it caches its read-write File; the others
// must use that one, not drop it to cache their own: each drop told every
// holder of the dropped File to get it again, and under load a WRITE or a
// READ ran out of retries ("the file was released from the cache").
// Whatever the interleaving, a File() for writing gives a File that writes.
TEST_F(ExportTest, ConcurrentUpgradesToReadWriteNeverDropEachOthersFile) {
  std::unique_ptr<Export> ex = OpenCached(256);
  ASSERT_NE(ex, nullptr);
  NodeRef root = ex->Root();
  std::atomic<int> released{0};
  std::atomic<int> failed{0};
  std::string first_problem;
  absl::Mutex problem_mu;
  for (int round = 0; round < 300; ++round) {
    const std::string name = absl::StrCat("f", round % 4);
    absl::StatusOr<NodeRef> n = ex->Create(*root, name, 0644, false);
    if (!n.ok()) n = ex->Lookup(*root, name);
    ASSERT_TRUE(n.ok()) << n.status();
    // Read first: the node caches a read-only File.
    absl::StatusOr<std::shared_ptr<PageCache::File>> ro =
        ex->File(**n, /*write=*/false);
    ASSERT_TRUE(ro.ok()) << ro.status();
    ASSERT_FALSE((*ro)->writable());
    ro->reset();
    std::vector<std::thread> writers;
    std::atomic<int> ready{0};
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, node = *n, t] {
        ready++;  // all four start at once
        while (ready.load() < 4) std::this_thread::yield();
        absl::StatusOr<std::shared_ptr<PageCache::File>> f =
            ex->File(*node, /*write=*/true);
        const std::vector<std::byte> data(8, std::byte('a' + t));
        absl::Status s = f.ok() ? (*f)->Write(static_cast<uint64_t>(t) * 8,
                                              data, Stability::kUnstable)
                                : f.status();
        if (s.ok()) return;
        (IsFileReleased(s) ? released : failed)++;
        absl::MutexLock l(&problem_mu);
        if (first_problem.empty()) first_problem = s.ToString();
      });
    }
    for (std::thread& t : writers) t.join();
    ASSERT_EQ(released.load(), 0) << "round " << round << ": " << first_problem;
    ASSERT_EQ(failed.load(), 0) << "round " << round << ": " << first_problem;
    // One File per file: the node's is the one the cache holds (two would
    // be two caches of the same pages, each blind to the other's writes).
    absl::StatusOr<std::shared_ptr<PageCache::File>> rw =
        ex->File(**n, /*write=*/true);
    ASSERT_TRUE(rw.ok()) << rw.status();
    absl::StatusOr<std::shared_ptr<PageCache::File>> cached = cache_->GetFile(
        (*rw)->key(),
        []() -> absl::StatusOr<int> { return absl::NotFoundError("none"); });
    ASSERT_TRUE(cached.ok()) << "round " << round << ": " << cached.status();
    ASSERT_EQ(cached->get(), rw->get()) << "round " << round;
    // Written back, then dropped, so the next round starts from a clean
    // read-only File again.
    ASSERT_TRUE(cache_->SyncAll().ok());
    ASSERT_EQ(cache_->ReleaseIfClean(**rw), PageCache::Release::kReleased);
    ex->DropReleased(**n, *rw);
  }
}

// A client that writes and then sets the modification time (cp -p, tar x,
// rsync -t, a mount's utimensat) must keep that time: SETATTR writes the
// file's dirty cached pages back first. Before, the later write-back (at
// COMMIT, eviction or the age limit) was a write to the file and moved the
// time again, with no WRITE in between.
TEST_F(ExportTest, SetTimesOnAFileWithDirtyPagesSticksAfterWriteBack) {
  std::unique_ptr<Export> ex = OpenCached(64);
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> n = ex->Create(*ex->Root(), "stamped", 0644, false);
  ASSERT_TRUE(n.ok()) << n.status();
  for (int round = 0; round < 2; ++round) {  // a new file, then an old one
    absl::StatusOr<std::shared_ptr<PageCache::File>> f =
        ex->File(**n, /*write=*/true);
    ASSERT_TRUE(f.ok()) << f.status();
    const std::vector<std::byte> data(3 * 4096 + 100, std::byte('x'));
    ASSERT_TRUE((*f)->Write(round * 4096, data, Stability::kUnstable).ok());
    SetAttrArgs times;
    times.mtime_ns = int64_t{1'000'000'000} * (1'600'000'000 + round) + 250;
    times.atime_ns = int64_t{1'000'000'000} * 1'500'000'000;
    ASSERT_TRUE(ex->SetAttr(**n, times).ok());
    // What the client sees at once, and what the disk keeps after every
    // dirty page is written back and synced.
    absl::StatusOr<FileAttr> a = ex->GetAttr(**n);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->mtime_ns, *times.mtime_ns) << "round " << round;
    ASSERT_TRUE((*f)->Commit().ok());
    ASSERT_TRUE(cache_->SyncAll().ok());
    struct stat st {};
    ASSERT_EQ(stat((root_ / "stamped").c_str(), &st), 0);
    EXPECT_EQ(st.st_mtim.tv_sec, 1'600'000'000 + round) << "round " << round;
    EXPECT_EQ(st.st_mtim.tv_nsec, 250) << "round " << round;
    EXPECT_EQ(st.st_atim.tv_sec, 1'500'000'000) << "round " << round;
    EXPECT_EQ(st.st_size, round * 4096 + 3 * 4096 + 100);
    // The data is there too.
    std::ifstream in(root_ / "stamped", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    EXPECT_EQ(all.substr(round * 4096), std::string(data.size(), 'x'));
  }
}

// The modification a client made is its WRITE: GETATTR reports the WRITE's
// time while the pages are dirty (not the disk's older mtime), and the
// write-back puts that time on the file instead of its own.
TEST_F(ExportTest, ModificationTimeIsTheWritesNotTheWriteBacks) {
  std::unique_ptr<Export> ex = OpenCached(64);
  ASSERT_NE(ex, nullptr);
  absl::StatusOr<NodeRef> n = ex->Create(*ex->Root(), "timed", 0644, false);
  ASSERT_TRUE(n.ok()) << n.status();
  const std::string path = (root_ / "timed").string();
  for (int round = 0; round < 2; ++round) {  // a new file, then an old one
    SetAttrArgs old_times;  // long ago, so that the disk's time is older
    old_times.mtime_ns = int64_t{1'000'000'000} * 1'500'000'000;
    old_times.atime_ns = old_times.mtime_ns;
    ASSERT_TRUE(ex->SetAttr(**n, old_times).ok());
    absl::StatusOr<std::shared_ptr<PageCache::File>> f =
        ex->File(**n, /*write=*/true);
    ASSERT_TRUE(f.ok()) << f.status();
    const int64_t before = RealNowNs();
    const std::vector<std::byte> data(2 * 4096 + 10, std::byte('w'));
    ASSERT_TRUE((*f)->Write(round * 4096, data, Stability::kUnstable).ok());
    const int64_t after = RealNowNs();
    absl::StatusOr<FileAttr> a = ex->GetAttr(**n);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_GE(a->mtime_ns, before) << "round " << round;
    EXPECT_LE(a->mtime_ns, after) << "round " << round;
    EXPECT_GE(a->ctime_ns, a->mtime_ns);
    ASSERT_TRUE((*f)->Commit().ok());
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
              a->mtime_ns)
        << "round " << round;
    EXPECT_EQ(st.st_atim.tv_sec, 1'500'000'000) << "round " << round;
    absl::StatusOr<FileAttr> b = ex->GetAttr(**n);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->mtime_ns, a->mtime_ns) << "round " << round;
  }
}

}  // namespace
}  // namespace txbuf::server
