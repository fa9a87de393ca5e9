// A hostile mix beside well-behaved clients (issue 9; RELIABILITY.md, "A
// hostile mix in the suite"): slow readers, header-only frames, special
// files, create/remove storms, a FILE_SYNC streamer, idle connections and a
// lookup/listing storm, each alone and then all at once, against one txbufd
// run under a small descriptor limit. Well-behaved clients keep reading data
// files and writing, committing and reading back private files throughout;
// every one of their replies must arrive, correct, within a stated latency
// bound, while the server's RSS and descriptors stay bounded and its pinned
// bytes come back to 0 after each phase (and at exit: the fixture's
// TearDown).
//
// The run is one sequence of phases, each a fixed time of well-behaved load:
//   baseline           no attack
//   one per attack     that attack alone
//   mix                every attack at once
//   after              no attack again
// Between phases the attackers are stopped and the test waits (for the
// condition, bounded) until the server holds no pinned bytes and no
// descriptor of a removed file. It prints one table: per phase the
// well-behaved requests and their latency, RSS, descriptors and pinned bytes
// before / during (max) / after, and the server's attack counters.
//
// Bounded: every loop is bounded in count and in time, every wait for a
// reply has a timeout, and only 127.0.0.1 is used. About 30 s in all.
// HOSTILE_TRACE=1 in the environment prints every 100 ms sample.
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_fixture.h"

namespace txbuf::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The server's descriptor limit (soft and hard). With --threads 2 it keeps
// 48 for itself and allows (512 - 48) / 4 = 116 connections.
constexpr unsigned long kNofile = 512;
std::vector<std::string> ServerFlags() {
  return {
      "--threads=2",                   // two event loops
      "--cache-size=128M",             // the page pool
      "--conn-budget=8M",              // pinned bytes per connection
      "--budget=64M",                  // held bytes, whole server
      "--budget-deadline=3",           // over budget this long: closed
      "--frame-timeout=3",             // a frame stops arriving: closed
      "--max-pending-connections=16",  // 8 per event loop
  };
}

constexpr int kDataFiles = 8;
constexpr size_t kDataSize = 8 << 20;  // 8 x 8 MiB: the global budget
constexpr int kManyFiles = 2000;       // more than the descriptor limit
constexpr int kWellBehaved = 4;
constexpr size_t kPrivateSize = 1 << 20;
constexpr size_t kMaxWbRead = 256 << 10;
constexpr size_t kMaxWbWrite = 64 << 10;

constexpr auto kBaselineTime = std::chrono::milliseconds(3000);
constexpr auto kSoloTime = std::chrono::milliseconds(1500);
constexpr auto kMixTime = std::chrono::milliseconds(7000);
constexpr auto kAfterTime = std::chrono::milliseconds(2000);

// A reply that takes longer than this is a missing reply (a failure).
constexpr int kReplyTimeoutMs = 20000;
// DELAY ("out of a resource for now; retry") is a legitimate answer under
// memory pressure: a well-behaved client retries it, paced, this many times.
constexpr int kMaxDelayRetries = 100;
constexpr auto kDelayPause = std::chrono::milliseconds(10);

// The p99 latency of well-behaved requests, in every phase. Unloaded, a
// request takes about a millisecond; under the mix, COMMITs wait for fsync
// on a disk that other engineers' builds (and the streamer's FILE_SYNC
// writes) keep busy, on 2 shared cores. 2 s is far above what a starving
// server would still meet only by luck (a stalled loop or a budget-paused
// well-behaved connection costs the 3 s budget deadline or the 20 s reply
// timeout) and leaves a wide margin for a busy CI machine.
constexpr double kP99BoundSeconds = 2.0;
// RSS, during and after any phase, over its value after the baseline phase.
// Page memory is bounded by --cache-size (128 MiB: cached, pinned and
// staging pages all come from that pool, and the baseline has touched part
// of it), receive buffers follow bytes received (the header-only frames
// send almost nothing), and the rest (connections, protobufs, slabs, up to
// ~60 connections' recv chunks of at most 256 KiB) is tens of MiB. So 256
// MiB is the whole pool again plus twice the rest: what only a leak or an
// allocation that follows headers instead of bytes would exceed.
constexpr long kRssSlackKib = 256 << 10;
// Request frame buffers, all connections together. Each grows with the bytes
// actually received, up to the frame in progress: the well-behaved writes
// and the streamer's are at most 64 KiB, recv chunks at most 256 KiB, for
// at most ~60 connections at once. Buffers sized by the header-only frames'
// headers would be 24 x 65 MiB.
constexpr uint64_t kMaxReceiveBuffers = uint64_t{32} << 20;

// Waits up to `seconds` for `cond`, polling every 20 ms.
template <typename Cond>
bool WaitFor(Cond cond, int seconds = 20) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (!cond()) {
    if (Clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// "" if `got` is `want`; else where they differ, and whether `got` is the
// bytes from before the last write (`old`).
std::string DescribeMismatch(const std::string& got, const std::string& want,
                             const std::string& old, size_t off) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  size_t same_as_old = 0;
  for (size_t j = 0; j < got.size() && j < old.size(); ++j) {
    same_as_old += got[j] == old[j] && got[j] != want[j];
  }
  size_t differ = 0;
  for (size_t j = 0; j < got.size() && j < want.size(); ++j) {
    differ += got[j] != want[j];
  }
  return absl::StrFormat(
      "wrong bytes at %zu+%zu: got %zu bytes, %zu differ, first at +%zu; %zu "
      "of the wrong ones are the bytes from before the write",
      off, want.size(), got.size(), differ, i, same_as_old);
}

std::string Header(uint32_t env_len, uint32_t pay_len) {
  std::string h(kFrameHeaderSize, '\0');
  EncodeFrameHeader({FrameType::kRequest, 0, env_len, pay_len},
                    reinterpret_cast<std::byte*>(h.data()));
  return h;
}

// Whether the server has closed `c` (reset, or end of stream), waiting up
// to `timeout_ms`. Reads nothing.
bool ClosedByServer(const RawClient& c, int timeout_ms = 0) {
  pollfd p{c.fd(), POLLRDHUP, 0};
  return poll(&p, 1, timeout_ms) > 0 &&
         (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// The descriptors of removed files `pid` holds: target, open flags, inode.
std::string DeletedDescriptors(pid_t pid) {
  std::string out;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char target[4096];
    ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target));
    if (n <= 0) continue;
    absl::string_view t(target, static_cast<size_t>(n));
    if (!absl::EndsWith(t, " (deleted)")) continue;
    std::ifstream info(absl::StrCat("/proc/", pid, "/fdinfo/", e->d_name));
    std::string line, flags, ino;
    while (std::getline(info, line)) {
      if (absl::StartsWith(line, "flags:")) flags = line.substr(6);
      if (absl::StartsWith(line, "ino:")) ino = line.substr(4);
    }
    absl::StrAppend(&out, "\n  fd ", e->d_name, " ", t, " flags", flags, " ino",
                    ino);
  }
  closedir(d);
  return out;
}

// Errors seen by a thread: counted, the first few kept for the report.
class Errors {
 public:
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    if (++count_ <= 8) first_.push_back(what);
  }
  uint64_t count() const {
    std::lock_guard<std::mutex> l(mu_);
    return count_;
  }
  std::string Text() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const std::string& e : first_) absl::StrAppend(&s, "\n  ", e);
    return s;
  }

 private:
  mutable std::mutex mu_;
  uint64_t count_ = 0;
  std::vector<std::string> first_;
};

// Latencies of well-behaved requests in one phase (all clients).
struct LoadResult {
  std::mutex mu;
  std::vector<double> latencies;  // seconds, one per request
  std::atomic<uint64_t> retries{0};
  Errors errors;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size()));
  return v[std::min(i, v.size() - 1)];
}

// What an attack did in one phase.
struct AttackStats {
  std::atomic<uint64_t> ops{0};          // requests or frames sent
  std::atomic<uint64_t> connections{0};  // opened
  std::atomic<uint64_t> closed{0};       // closed by the server
  Errors unexpected;                     // a wrong reply, or none
};

struct Snapshot {
  long rss_kib = 0;
  long fds = 0;
  long deleted_fds = 0;
  rpc::StatsResult stats;
};

struct PhaseReport {
  std::string name;
  double seconds = 0;
  std::vector<double> latencies;
  uint64_t retries = 0;
  uint64_t failures = 0;
  std::string failure_text;
  Snapshot before, after;
  long rss_max = 0, fds_max = 0;
  uint64_t pinned_max = 0, held_max = 0, rcvbuf_max = 0;
  bool recovered = false;
  double recovery_seconds = 0;
  uint64_t attack_ops = 0, attack_conns = 0, attack_closed = 0;
  uint64_t attack_unexpected = 0;
  std::string attack_text;
  uint64_t monitor_errors = 0;
  std::string deleted_text;  // the descriptors of removed files still held
};

class HostileMixTest : public ServerTest {
 protected:
  // A well-behaved client: its own connection and private file.
  struct WellBehaved {
    RawClient conn;
    std::string private_fh;
    std::string shadow;  // what its private file holds
    uint64_t next_id = 1;
    std::mt19937_64 rng;
    // Set at its first wrong or missing reply (the test fails): it stops,
    // since what its file holds is then unknown.
    bool broken = false;
  };
  struct Attack {
    std::string name;
    int threads;
    // Runs on its own thread: setup (connections that must be established
    // before the idle flood starts), then `ready`, then the attack until
    // `stop` or its own bounds.
    std::function<void(int, AttackStats&, std::latch& ready,
                       const std::atomic<bool>& stop)>
        run;
  };

  void MakeExport() {
    for (int i = 0; i < kDataFiles; ++i) {
      std::mt19937_64 rng(1000 + i);
      data_.push_back(RandomBytes(rng, kDataSize));
      checksums_.push_back(Fnv1a(data_.back()));
      WriteFile(dir_.Join(absl::StrCat("data/d", i, ".bin")), data_.back());
    }
    for (int i = 0; i < kManyFiles; ++i) {
      WriteFile(dir_.Join(absl::StrCat("many/f", i)),
                absl::StrCat("content-", i));
    }
    for (int k = 0; k < kWellBehaved; ++k) {
      std::mt19937_64 rng(2000 + k);
      WriteFile(dir_.Join(absl::StrCat("wb/c", k, ".bin")),
                RandomBytes(rng, kPrivateSize));
    }
    ASSERT_EQ(mkfifo(dir_.Join("fifo").c_str(), 0666), 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string path = dir_.Join("sock");
    ASSERT_LT(path.size(), sizeof(a.sun_path));
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
    ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    close(s);
  }

  // Sends `r` on `c` and reads its reply (ids must match), at most
  // `timeout_ms`.
  static absl::StatusOr<RawReply> Exchange(RawClient& c, const rpc::Request& r,
                                           const std::string& payload = "",
                                           int timeout_ms = kReplyTimeoutMs) {
    if (absl::Status s = c.SendRequest(r, payload); !s.ok()) return s;
    absl::StatusOr<RawReply> rep = c.ReadReply(timeout_ms);
    if (rep.ok() && rep->reply.id() != r.id()) {
      return absl::InternalError(
          absl::StrCat("reply id ", rep->reply.id(), " to request ", r.id()));
    }
    return rep;
  }

  // A connection that has sent a request and had its reply (so it is no
  // longer pending and no idle flood can push it out), or an error. Until
  // its first request is served a connection is pending, and an idle flood
  // running at the same time (the mix phase) may push it out as the oldest
  // pending one, by design (server/worker.cc: OnAccept): it then connects
  // again, as any client would, a bounded number of times.
  absl::StatusOr<RawClient> Established() {
    absl::Status last;
    for (int attempt = 0; attempt < 20; ++attempt) {
      absl::StatusOr<RawClient> c =
          RawClient::Connect(server_->host(), server_->port());
      if (!c.ok()) {
        last = c.status();
      } else {
        rpc::Request r = MakeRequest(1);
        r.add_ops()->mutable_statfs();
        absl::StatusOr<RawReply> rep = Exchange(*c, r);
        if (rep.ok() && rep->reply.status() != rpc::STATUS_OK) {
          return absl::InternalError(rep->reply.error());
        }
        if (rep.ok()) return c;
        last = rep.status();
      }
      // Only a connection closed by the server is retried.
      if (!absl::IsUnavailable(last)) return last;
    }
    return last;
  }

  // An attacker thread's connection (Established()), counted in `a`; it
  // tells `ready` either way. nullopt (recorded as unexpected) on failure.
  std::optional<RawClient> AttackerConnection(AttackStats& a,
                                              std::latch& ready) {
    absl::StatusOr<RawClient> c = Established();
    ready.count_down();
    if (!c.ok()) {
      a.unexpected.Add(absl::StrCat("connect: ", c.status().ToString()));
      return std::nullopt;
    }
    a.connections.fetch_add(1);
    return std::move(*c);
  }

  // ---- Well-behaved load ---------------------------------------------------

  // One request of a well-behaved client, retried on DELAY; `check` returns
  // "" for a correct reply. Records the latency (first send to the correct
  // reply) and returns true, or records the error and returns false.
  bool WellBehavedCall(WellBehaved& w, rpc::Request r,
                       const std::string& payload,
                       const std::function<std::string(const RawReply&)>& check,
                       LoadResult& out, const char* what) {
    const auto t0 = Clock::now();
    for (int attempt = 0;; ++attempt) {
      r.set_id(w.next_id++);
      absl::StatusOr<RawReply> rep = Exchange(w.conn, r, payload);
      if (!rep.ok()) {
        out.errors.Add(
            absl::StrCat(what, ": no reply: ", rep.status().ToString()));
        return false;
      }
      if (rep->reply.status() == rpc::STATUS_DELAY &&
          attempt < kMaxDelayRetries) {
        out.retries.fetch_add(1);
        std::this_thread::sleep_for(kDelayPause);  // pacing the retry
        continue;
      }
      const double latency = Seconds(Clock::now() - t0);
      std::string bad = rep->reply.status() == rpc::STATUS_OK
                            ? check(*rep)
                            : absl::StrCat("status ", rep->reply.status(), ": ",
                                           rep->reply.error());
      if (!bad.empty()) {
        out.errors.Add(absl::StrCat(what, ": ", bad));
        return false;
      }
      std::lock_guard<std::mutex> l(out.mu);
      out.latencies.push_back(latency);
      return true;
    }
  }

  // The loop of one well-behaved client until `end` (bounded in count too).
  void RunWellBehaved(WellBehaved& w, Clock::time_point end, LoadResult& out) {
    for (int i = 0; i < 100000 && !w.broken && Clock::now() < end; ++i) {
      w.broken = !RunWellBehavedRound(w, out);
    }
  }

  // LOOKUP + GETATTR + READ of a data file; UNSTABLE WRITE + COMMIT of the
  // private file, and READ back. False at the first failure.
  bool RunWellBehavedRound(WellBehaved& w, LoadResult& out) {
    // LOOKUP + GETATTR + READ of a data file at a random offset.
    const int file = static_cast<int>(w.rng() % kDataFiles);
    const size_t off = w.rng() % kDataSize;
    const size_t len = 1 + w.rng() % kMaxWbRead;
    rpc::Request r = MakeRequest(0);
    AddPutRoot(r);
    AddLookup(r, absl::StrCat("data/d", file, ".bin"));
    r.add_ops()->mutable_getattr();
    rpc::Read* rd = r.add_ops()->mutable_read();
    rd->set_offset(off);
    rd->set_length(static_cast<uint32_t>(len));
    const std::string& want = data_[file];
    auto check_read = [&](const RawReply& rep) -> std::string {
      if (rep.reply.results_size() != 4) return "wrong number of results";
      if (rep.reply.results(2).attr().attr().size() != kDataSize) {
        return "wrong size";
      }
      const size_t n = std::min(len, kDataSize - off);
      if (rep.ReadData(3) != want.substr(off, n)) {
        return absl::StrCat("wrong bytes at ", off, "+", len);
      }
      if (rep.reply.results(3).read().eof() != (off + n == kDataSize)) {
        return "wrong eof";
      }
      return "";
    };
    if (!WellBehavedCall(w, r, "", check_read, out, "READ data")) {
      return false;
    }

    // UNSTABLE WRITE + COMMIT of its private file...
    const size_t woff = w.rng() % (kPrivateSize - kMaxWbWrite);
    const size_t wlen = 1 + w.rng() % kMaxWbWrite;
    const std::string bytes = RandomBytes(w.rng, wlen);
    r = MakeRequest(0);
    r.add_ops()->mutable_putfh()->set_fh(w.private_fh);
    rpc::Write* wr = r.add_ops()->mutable_write();
    wr->set_offset(woff);
    wr->set_length(static_cast<uint32_t>(wlen));
    wr->set_stable(rpc::STABILITY_UNSTABLE);
    r.add_ops()->mutable_commit();
    auto check_write = [&](const RawReply& rep) -> std::string {
      if (rep.reply.results_size() != 3) return "wrong number of results";
      const rpc::WriteResult& res = rep.reply.results(1).write();
      if (res.count() != wlen) return "short write";
      if (rep.reply.results(2).commit().verifier() != res.verifier()) {
        return "verifier changed";
      }
      return "";
    };
    if (!WellBehavedCall(w, r, bytes, check_write, out, "WRITE+COMMIT")) {
      return false;
    }
    const std::string old_bytes = w.shadow.substr(woff, wlen);
    w.shadow.replace(woff, wlen, bytes);

    // ... and READ it back.
    r = MakeRequest(0);
    r.add_ops()->mutable_putfh()->set_fh(w.private_fh);
    rd = r.add_ops()->mutable_read();
    rd->set_offset(woff);
    rd->set_length(static_cast<uint32_t>(wlen));
    auto check_back = [&](const RawReply& rep) -> std::string {
      if (rep.reply.results_size() != 2) return "wrong number of results";
      return DescribeMismatch(rep.ReadData(1), w.shadow.substr(woff, wlen),
                              old_bytes, woff);
    };
    return WellBehavedCall(w, r, "", check_back, out, "READ back");
  }

  void ConnectWellBehaved() {
    for (int k = 0; k < kWellBehaved; ++k) {
      absl::StatusOr<RawClient> c = Established();
      ASSERT_TRUE(c.ok()) << c.status();
      auto w = std::make_unique<WellBehaved>(
          WellBehaved{std::move(*c), "", "", 100, std::mt19937_64(3000 + k)});
      const std::string path = absl::StrCat("wb/c", k, ".bin");
      w->private_fh = HandleOf(w->conn, path);
      ASSERT_FALSE(w->private_fh.empty()) << path;
      w->shadow = ReadFileOrDie(dir_.Join(path));
      wb_.push_back(std::move(w));
    }
  }

  // ---- Monitoring ----------------------------------------------------------

  rpc::StatsResult MonitorStats(bool* ok = nullptr) {
    rpc::Request r = MakeRequest(++monitor_id_);
    r.add_ops()->mutable_stats();
    absl::StatusOr<RawReply> rep = Exchange(*monitor_, r);
    const bool good = rep.ok() && rep->reply.results_size() == 1 &&
                      rep->reply.status() == rpc::STATUS_OK;
    if (ok != nullptr) *ok = good;
    return good ? rep->reply.results(0).stats() : rpc::StatsResult();
  }

  Snapshot Snap() {
    Snapshot s;
    s.stats = MonitorStats();
    s.rss_kib = server_->RssKib();
    s.fds = server_->OpenFds();
    s.deleted_fds = server_->DeletedFds();
    return s;
  }

  // ---- Attacks -------------------------------------------------------------

  std::vector<Attack> Attacks();

  // Runs the well-behaved load for `duration` beside `attacks`, then stops
  // them and waits for the server to recover.
  PhaseReport RunPhase(const std::string& name, Clock::duration duration,
                       const std::vector<const Attack*>& attacks) {
    PhaseReport rep;
    rep.name = name;
    rep.before = Snap();
    int threads = 0;
    for (const Attack* a : attacks) threads += a->threads;
    std::atomic<bool> stop{false};
    std::latch ready(threads + 1);
    std::vector<std::unique_ptr<AttackStats>> stats;
    std::vector<std::thread> attackers;
    for (const Attack* a : attacks) {
      stats.push_back(std::make_unique<AttackStats>());
      AttackStats* st = stats.back().get();
      for (int t = 0; t < a->threads; ++t) {
        attackers.emplace_back(
            [a, t, st, &ready, &stop] { a->run(t, *st, ready, stop); });
      }
    }
    ready.arrive_and_wait();  // every attacker set up and started

    // Samples RSS, descriptors and the server's pinned and held bytes.
    std::atomic<bool> stop_monitor{false};
    std::thread monitor([&] {
      for (int i = 0; i < 1000 && !stop_monitor.load(); ++i) {
        bool ok = false;
        rpc::StatsResult st = MonitorStats(&ok);
        if (!ok) ++rep.monitor_errors;
        rep.pinned_max = std::max(rep.pinned_max, st.pinned_bytes());
        rep.held_max = std::max(rep.held_max, st.held_bytes());
        rep.rcvbuf_max = std::max(rep.rcvbuf_max, st.receive_buffer_bytes());
        rep.rss_max = std::max(rep.rss_max, server_->RssKib());
        rep.fds_max = std::max(rep.fds_max, server_->OpenFds());
        if (getenv("HOSTILE_TRACE") != nullptr) {
          std::printf("  %s: pinned %" PRIu64 " held %" PRIu64 " conns %" PRIu64
                      " waits %" PRIu64 " closes %" PRIu64 " deleted %ld\n",
                      name.c_str(), st.pinned_bytes() >> 10,
                      st.held_bytes() >> 10, st.connections(),
                      st.budget_waits(), st.budget_closes(),
                      server_->DeletedFds());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });

    LoadResult load;
    const auto start = Clock::now();
    const auto end = start + duration;
    std::vector<std::thread> clients;
    for (auto& w : wb_) {
      if (w->broken) continue;
      clients.emplace_back(
          [this, &w, end, &load] { RunWellBehaved(*w, end, load); });
    }
    for (std::thread& t : clients) t.join();
    rep.seconds = Seconds(Clock::now() - start);
    stop = true;
    for (std::thread& t : attackers) t.join();
    stop_monitor = true;
    monitor.join();

    rep.latencies = std::move(load.latencies);
    rep.retries = load.retries.load();
    rep.failures = load.errors.count();
    rep.failure_text = load.errors.Text();
    for (size_t i = 0; i < stats.size(); ++i) {
      const AttackStats& st = *stats[i];
      rep.attack_ops += st.ops.load();
      rep.attack_conns += st.connections.load();
      rep.attack_closed += st.closed.load();
      rep.attack_unexpected += st.unexpected.count();
      if (st.unexpected.count() > 0) {
        absl::StrAppend(&rep.attack_text, "\n ", attacks[i]->name, ":",
                        st.unexpected.Text());
      }
    }

    // Recovery: the attackers' connections are closed; wait until nothing
    // is pinned and no descriptor of a removed file is held.
    const auto r0 = Clock::now();
    rep.recovered = WaitFor(
        [&] {
          return MonitorStats().pinned_bytes() == 0 &&
                 server_->DeletedFds() == 0;
        },
        10);
    rep.recovery_seconds = Seconds(Clock::now() - r0);
    rep.after = Snap();
    if (!rep.recovered) rep.deleted_text = DeletedDescriptors(server_->pid());
    return rep;
  }

  void PrintTable(const std::vector<PhaseReport>& phases) {
    std::printf(
        "\nHostile mix: %d well-behaved clients; txbufd %s, RLIMIT_NOFILE "
        "%lu\nlatency: ms per well-behaved request (first send to correct "
        "reply); b/d/a: before / max during / after recovery\n",
        kWellBehaved, absl::StrJoin(ServerFlags(), " ").c_str(), kNofile);
    std::printf(
        "%-10s %5s %4s %6s %6s %6s | %-17s | %-11s | %-18s %6s %6s | %4s %4s "
        "%4s %4s %5s | %-14s %5s\n",
        "phase", "reqs", "retr", "p50", "p99", "max", "RSS MiB b/d/a",
        "fds b/d/a", "pinned KiB b/d/a", "held", "rcvbuf", "bcls", "ftmo",
        "pcls", "refu", "jobs", "attack ops/c/x", "recov");
    for (const PhaseReport& p : phases) {
      auto delta = [&](uint64_t (rpc::StatsResult::*f)() const) {
        return (p.after.stats.*f)() - (p.before.stats.*f)();
      };
      std::printf(
          "%-10s %5zu %4" PRIu64
          " %6.1f %6.1f %6.1f | %5.0f/%5.0f/%5.0f | %3ld/%3ld/%3ld | "
          "%4" PRIu64 "/%5" PRIu64 "/%4" PRIu64 " %6" PRIu64 " %6" PRIu64
          " | %4" PRIu64 " %4" PRIu64 " %4" PRIu64 " %4" PRIu64 " %5" PRIu64
          " | %6" PRIu64 "/%3" PRIu64 "/%3" PRIu64 " %5.2f\n",
          p.name.c_str(), p.latencies.size(), p.retries,
          1e3 * Percentile(p.latencies, 0.50),
          1e3 * Percentile(p.latencies, 0.99),
          1e3 * Percentile(p.latencies, 1.0), p.before.rss_kib / 1024.0,
          p.rss_max / 1024.0, p.after.rss_kib / 1024.0, p.before.fds, p.fds_max,
          p.after.fds, p.before.stats.pinned_bytes() >> 10, p.pinned_max >> 10,
          p.after.stats.pinned_bytes() >> 10, p.held_max >> 10,
          p.rcvbuf_max >> 10, delta(&rpc::StatsResult::budget_closes),
          delta(&rpc::StatsResult::frame_timeouts),
          delta(&rpc::StatsResult::pending_closes),
          delta(&rpc::StatsResult::connections_refused),
          delta(&rpc::StatsResult::blocking_jobs), p.attack_ops, p.attack_conns,
          p.attack_closed, p.recovery_seconds);
    }
    std::printf(
        "held, rcvbuf: max held bytes and request buffers (KiB) during; "
        "bcls/ftmo/pcls/refu/jobs: budget_closes, "
        "frame_timeouts, pending_closes, connections_refused, blocking_jobs "
        "in the phase; attack ops/c/x: requests or frames sent, connections "
        "opened, connections the server closed; recov: seconds until pinned "
        "0 and no deleted descriptor\n\n");
    std::fflush(stdout);
  }

  std::vector<std::string> data_;
  std::vector<uint64_t> checksums_;
  std::vector<std::unique_ptr<WellBehaved>> wb_;
  std::optional<RawClient> monitor_;
  uint64_t monitor_id_ = 1;
};

std::vector<HostileMixTest::Attack> HostileMixTest::Attacks() {
  const std::string host = server_->host();
  const uint16_t port = server_->port();
  std::vector<Attack> v;

  // (a) Slow readers: a 4 KiB receive buffer, 16 x 1 MiB READs pipelined
  // and never read, each of the 8 readers on its own data file (64 MiB of
  // distinct pages in all: the global budget). 16, not 8: on loopback the
  // kernel takes about 2.5 MiB of each connection's replies into its socket
  // buffers (the txbufs of those are done), so 8 MiB of READs would stay
  // under the 8 MiB connection budget. Over their budget for 3 s, they are
  // closed; they come back.
  v.push_back(
      {"slow-read", 8,
       [host, port](int t, AttackStats& a, std::latch& ready,
                    const std::atomic<bool>& stop) {
         ready.count_down();
         for (int round = 0; round < 20 && !stop.load(); ++round) {
           absl::StatusOr<RawClient> c = RawClient::Connect(host, port, 4096);
           if (!c.ok()) {  // pushed out while pending: allowed
             std::this_thread::sleep_for(std::chrono::milliseconds(50));
             continue;
           }
           a.connections.fetch_add(1);
           bool sent = true;
           for (int k = 0; k < 16 && sent; ++k) {
             rpc::Request r = MakeRequest(k + 1);
             AddPutRoot(r);
             AddLookup(r, absl::StrCat("data/d", t % kDataFiles, ".bin"));
             rpc::Read* rd = r.add_ops()->mutable_read();
             rd->set_offset(static_cast<uint64_t>(k % 8) << 20);
             rd->set_length(1 << 20);
             sent = c->SendRequest(r).ok();
             if (sent) a.ops.fetch_add(1);
           }
           for (int i = 0; i < 300 && !stop.load(); ++i) {
             if (ClosedByServer(*c, 50)) {
               a.closed.fetch_add(1);
               break;
             }
           }
         }
       }});

  // (b) Header-only frames: a 1 MiB envelope and a 64 MiB payload
  // announced, 100 bytes sent. Half right after Hello (still pending), half
  // after a first request (established: only the frame timeout ends them).
  v.push_back({"hdr-only", 1,
               [this, host, port](int, AttackStats& a, std::latch& ready,
                                  const std::atomic<bool>& stop) {
                 ready.count_down();
                 std::deque<RawClient> held;
                 for (int i = 0; i < 150 && !stop.load(); ++i) {
                   for (auto it = held.begin(); it != held.end();) {
                     if (ClosedByServer(*it)) {
                       a.closed.fetch_add(1);
                       it = held.erase(it);
                     } else {
                       ++it;
                     }
                   }
                   if (held.size() < 24) {
                     absl::StatusOr<RawClient> c =
                         i % 2 == 0 ? RawClient::Connect(host, port)
                                    : Established();
                     if (c.ok()) {
                       a.connections.fetch_add(1);
                       if (c->SendBytes(Header(1 << 20, 64 << 20) +
                                        std::string(100, 'h'))
                               .ok()) {
                         a.ops.fetch_add(1);
                       }
                       held.push_back(std::move(*c));
                     }
                   }
                   std::this_thread::sleep_for(std::chrono::milliseconds(40));
                 }
               }});

  // (c) CREATE, READ, WRITE and SETATTR of a FIFO and a socket (INVAL or
  // EXIST, at once), and GETATTR (fine: it opens nothing).
  v.push_back(
      {"special", 1,
       [this](int, AttackStats& a, std::latch& ready,
              const std::atomic<bool>& stop) {
         std::optional<RawClient> c = AttackerConnection(a, ready);
         if (!c.has_value()) return;
         uint64_t id = 10;
         auto expect = [&](rpc::Request r, const std::string& payload,
                           rpc::Status want, const char* what) {
           r.set_id(++id);
           absl::StatusOr<RawReply> rep = Exchange(*c, r, payload);
           a.ops.fetch_add(1);
           if (!rep.ok()) {
             a.unexpected.Add(
                 absl::StrCat(what, ": ", rep.status().ToString()));
             return false;
           }
           if (rep->reply.status() != want) {
             a.unexpected.Add(absl::StrCat(what, ": status ",
                                           rep->reply.status(), " ",
                                           rep->reply.error()));
           }
           return true;
         };
         for (int i = 0; i < 3000 && !stop.load(); ++i) {
           const std::string name = i % 2 == 0 ? "fifo" : "sock";
           rpc::Request r = MakeRequest(0);
           AddPutRoot(r);
           rpc::Create* cr = r.add_ops()->mutable_create();
           cr->set_name(name);
           cr->set_exclusive(i % 4 < 2);
           if (!expect(r, "", i % 4 < 2 ? rpc::STATUS_EXIST : rpc::STATUS_INVAL,
                       "CREATE")) {
             return;
           }
           r = MakeRequest(0);
           AddPutRoot(r);
           AddLookup(r, name);
           r.add_ops()->mutable_read()->set_length(4096);
           if (!expect(r, "", rpc::STATUS_INVAL, "READ")) return;
           r = MakeRequest(0);
           AddPutRoot(r);
           AddLookup(r, name);
           rpc::Write* w = r.add_ops()->mutable_write();
           w->set_length(3);
           w->set_stable(i % 2 == 0 ? rpc::STABILITY_FILE_SYNC
                                    : rpc::STABILITY_UNSTABLE);
           if (!expect(r, "abc", rpc::STATUS_INVAL, "WRITE")) return;
           r = MakeRequest(0);
           AddPutRoot(r);
           AddLookup(r, name);
           r.add_ops()->mutable_setattr()->set_size(0);
           if (!expect(r, "", rpc::STATUS_INVAL, "SETATTR")) return;
           r = MakeRequest(0);
           AddPutRoot(r);
           AddLookup(r, name);
           r.add_ops()->mutable_getattr();
           if (!expect(r, "", rpc::STATUS_OK, "GETATTR")) return;
         }
       }});

  // (d) CREATE + WRITE + REMOVE storms: threads 0 and 1 on names of their
  // own (every compound must succeed), threads 2 and 3 racing on the same
  // few names (a REMOVE may find nothing, a WRITE may find its file
  // removed, a CREATE may race: NOENT, STALE or DELAY are answers too).
  v.push_back({"storm", 4,
               [this](int t, AttackStats& a, std::latch& ready,
                      const std::atomic<bool>& stop) {
                 std::optional<RawClient> c = AttackerConnection(a, ready);
                 if (!c.has_value()) return;
                 const bool racing = t >= 2;
                 const std::string block(4096, static_cast<char>('0' + t));
                 for (int i = 0; i < 5000 && !stop.load(); ++i) {
                   const std::string name =
                       racing ? absl::StrCat("race-", i % 3)
                              : absl::StrCat("storm-", t, "-", i % 4);
                   rpc::Request r = MakeRequest(i + 1);
                   AddPutRoot(r);
                   r.add_ops()->mutable_create()->set_name(name);
                   if (i % 2 == 1)
                     r.add_ops()->mutable_write()->set_length(4096);
                   AddPutRoot(r);
                   r.add_ops()->mutable_remove()->set_name(name);
                   absl::StatusOr<RawReply> rep =
                       Exchange(*c, r, i % 2 == 1 ? block : "");
                   a.ops.fetch_add(1);
                   if (!rep.ok()) {
                     a.unexpected.Add(
                         absl::StrCat(name, ": ", rep.status().ToString()));
                     return;
                   }
                   const rpc::Status s = rep->reply.status();
                   const bool fine = s == rpc::STATUS_OK ||
                                     (racing && (s == rpc::STATUS_NOENT ||
                                                 s == rpc::STATUS_STALE ||
                                                 s == rpc::STATUS_DELAY));
                   if (!fine) {
                     a.unexpected.Add(absl::StrCat(
                         name, ": op ", rep->reply.results_size() - 1,
                         " status ", s, " ", rep->reply.error()));
                   }
                 }
               }});

  // (e) A FILE_SYNC streamer: 48 KiB writes, 8 in flight.
  v.push_back({"file-sync", 1,
               [this](int, AttackStats& a, std::latch& ready,
                      const std::atomic<bool>& stop) {
                 absl::StatusOr<RawClient> c = Established();
                 std::string fh;
                 if (c.ok()) {
                   rpc::Request r = MakeRequest(2);
                   AddPutRoot(r);
                   r.add_ops()->mutable_create()->set_name("stream.bin");
                   absl::StatusOr<RawReply> rep = Exchange(*c, r);
                   if (rep.ok() && rep->reply.status() == rpc::STATUS_OK) {
                     fh = rep->reply.results(1).fh().fh();
                   }
                 }
                 ready.count_down();
                 if (fh.empty()) {
                   a.unexpected.Add("cannot create stream.bin");
                   return;
                 }
                 a.connections.fetch_add(1);
                 constexpr uint32_t kChunk = 48 << 10;
                 const std::string data(kChunk, 's');
                 std::deque<uint64_t> in_flight;
                 auto reap = [&] {
                   absl::StatusOr<RawReply> rep = c->ReadReply(kReplyTimeoutMs);
                   if (!rep.ok()) {
                     a.unexpected.Add(
                         absl::StrCat("no reply: ", rep.status().ToString()));
                     return false;
                   }
                   const uint64_t want = in_flight.front();
                   in_flight.pop_front();
                   if (rep->reply.id() != want ||
                       rep->reply.status() != rpc::STATUS_OK ||
                       rep->reply.results(1).write().count() != kChunk ||
                       rep->reply.results(1).write().committed() !=
                           rpc::STABILITY_FILE_SYNC) {
                     a.unexpected.Add(absl::StrCat(
                         "reply ", rep->reply.id(), " to ", want, ": status ",
                         rep->reply.status(), " ", rep->reply.error()));
                   }
                   return true;
                 };
                 for (int i = 0; i < 4000 && !stop.load(); ++i) {
                   rpc::Request w = MakeRequest(1000 + i);
                   w.add_ops()->mutable_putfh()->set_fh(fh);
                   rpc::Write* wr = w.add_ops()->mutable_write();
                   wr->set_offset(uint64_t{kChunk} * (i % 64));
                   wr->set_length(kChunk);
                   wr->set_stable(rpc::STABILITY_FILE_SYNC);
                   if (!c->SendRequest(w, data).ok()) {
                     a.unexpected.Add("send failed");
                     return;
                   }
                   a.ops.fetch_add(1);
                   in_flight.push_back(w.id());
                   if (in_flight.size() == 8 && !reap()) return;
                 }
                 while (!in_flight.empty()) {
                   if (!reap()) return;
                 }
               }});

  // (f) Idle connections that never send, far beyond
  // --max-pending-connections (16): the oldest are closed to make room.
  v.push_back({"idle", 1,
               [host, port](int, AttackStats& a, std::latch& ready,
                            const std::atomic<bool>& stop) {
                 // After every other attacker is set up (their connections
                 // are established, so the flood cannot push them out).
                 ready.arrive_and_wait();
                 std::vector<RawClient> held;
                 for (int i = 0; i < 400 && !stop.load(); ++i) {
                   if (held.size() < 150) {
                     absl::StatusOr<RawClient> c =
                         RawClient::Connect(host, port);
                     if (c.ok()) {
                       a.connections.fetch_add(1);
                       held.push_back(std::move(*c));
                     }
                   }
                   std::this_thread::sleep_for(std::chrono::milliseconds(40));
                 }
                 for (const RawClient& c : held) {
                   if (ClosedByServer(c)) a.closed.fetch_add(1);
                 }
               }});

  // (g) A LOOKUP storm over the directory of many files (more than the
  // descriptor limit), and READDIR with attributes of it, page by page.
  v.push_back(
      {"lookups", 2,
       [this](int t, AttackStats& a, std::latch& ready,
              const std::atomic<bool>& stop) {
         std::optional<RawClient> c = AttackerConnection(a, ready);
         if (!c.has_value()) return;
         std::mt19937_64 rng(4000 + t);
         uint64_t cookie = 0;
         size_t seen = 0;
         for (int i = 0; i < 20000 && !stop.load(); ++i) {
           rpc::Request r = MakeRequest(i + 1);
           AddPutRoot(r);
           if (t == 0) {
             const int f = static_cast<int>(rng() % kManyFiles);
             AddLookup(r, absl::StrCat("many/f", f));
             r.add_ops()->mutable_getattr();
             r.add_ops()->mutable_read()->set_length(64);
             absl::StatusOr<RawReply> rep = Exchange(*c, r);
             a.ops.fetch_add(1);
             if (!rep.ok()) {
               a.unexpected.Add(
                   absl::StrCat("LOOKUP: ", rep.status().ToString()));
               return;
             }
             if (rep->reply.status() != rpc::STATUS_OK ||
                 rep->ReadData(3) != absl::StrCat("content-", f)) {
               a.unexpected.Add(absl::StrCat("LOOKUP f", f, ": status ",
                                             rep->reply.status(), " ",
                                             rep->reply.error()));
             }
             continue;
           }
           AddLookup(r, "many");
           rpc::ReadDir* rd = r.add_ops()->mutable_readdir();
           rd->set_cookie(cookie);
           rd->set_with_attrs(true);
           absl::StatusOr<RawReply> rep = Exchange(*c, r);
           a.ops.fetch_add(1);
           if (!rep.ok()) {
             a.unexpected.Add(
                 absl::StrCat("READDIR: ", rep.status().ToString()));
             return;
           }
           if (rep->reply.status() != rpc::STATUS_OK) {
             a.unexpected.Add(absl::StrCat("READDIR: status ",
                                           rep->reply.status(), " ",
                                           rep->reply.error()));
             continue;
           }
           const rpc::ReadDirResult& res = rep->reply.results(2).readdir();
           for (const rpc::DirEntry& e : res.entries()) {
             if (e.fh().empty()) a.unexpected.Add("entry without a handle");
             cookie = e.cookie();
           }
           seen += static_cast<size_t>(res.entries_size());
           if (res.eof()) {
             if (seen != kManyFiles) {
               a.unexpected.Add(absl::StrCat("listing had ", seen, " entries"));
             }
             cookie = 0;
             seen = 0;
           }
         }
       }});
  return v;
}

TEST_F(HostileMixTest, WellBehavedClientsAreServedThroughTheMix) {
  const auto t_start = Clock::now();
  ASSERT_NO_FATAL_FAILURE(MakeExport());
  StartServer(ServerFlags(), {.nofile = kNofile});
  absl::StatusOr<RawClient> m = Established();
  ASSERT_TRUE(m.ok()) << m.status();
  monitor_.emplace(std::move(*m));
  ASSERT_NO_FATAL_FAILURE(ConnectWellBehaved());
  ASSERT_EQ(wb_.size(), static_cast<size_t>(kWellBehaved));

  const std::vector<Attack> attacks = Attacks();
  std::vector<const Attack*> all;
  for (const Attack& a : attacks) all.push_back(&a);
  std::vector<PhaseReport> phases;
  phases.push_back(RunPhase("baseline", kBaselineTime, {}));
  for (const Attack& a : attacks) {
    phases.push_back(RunPhase(a.name, kSoloTime, {&a}));
  }
  phases.push_back(RunPhase("mix", kMixTime, all));
  phases.push_back(RunPhase("after", kAfterTime, {}));
  // (The table is printed after the checks: their messages come first, where
  // a log cut to its head still shows them.)

  const long rss_baseline = phases[0].after.rss_kib;
  for (const PhaseReport& p : phases) {
    SCOPED_TRACE(p.name);
    // Every well-behaved reply arrived, correct.
    EXPECT_EQ(p.failures, 0u) << p.failure_text;
    EXPECT_GT(p.latencies.size(), 20u) << "the well-behaved load barely ran";
    EXPECT_LT(Percentile(p.latencies, 0.99), kP99BoundSeconds);
    // The attackers' own valid requests were answered as documented.
    EXPECT_EQ(p.attack_unexpected, 0u) << p.attack_text;
    EXPECT_EQ(p.monitor_errors, 0u);
    EXPECT_LT(p.rcvbuf_max, kMaxReceiveBuffers);
    // Memory and descriptors stayed bounded and came back.
    EXPECT_LE(p.rss_max, rss_baseline + kRssSlackKib);
    EXPECT_LE(p.after.rss_kib, rss_baseline + kRssSlackKib);
    EXPECT_GT(p.fds_max, 0);
    EXPECT_LT(p.fds_max, static_cast<long>(kNofile));
    EXPECT_LT(p.after.fds, static_cast<long>(kNofile));
    EXPECT_TRUE(p.recovered)
        << "pinned " << p.after.stats.pinned_bytes() << " bytes, "
        << p.after.deleted_fds
        << " descriptors of removed files:" << p.deleted_text;
    EXPECT_EQ(p.after.stats.pinned_bytes(), 0u);
    EXPECT_EQ(p.after.deleted_fds, 0);
    // No attack sends a frame that does not parse (the header-only frames
    // are well-formed): a malformed one is a stream the server read wrong,
    // e.g. one whose bytes another connection's receive took.
    EXPECT_EQ(p.after.stats.malformed(), p.before.stats.malformed());
  }
  // The attacks happened (the counters they exist to move did move).
  const PhaseReport& mix = phases[phases.size() - 2];
  auto delta = [&](uint64_t (rpc::StatsResult::*f)() const) {
    return (mix.after.stats.*f)() - (mix.before.stats.*f)();
  };
  EXPECT_GE(delta(&rpc::StatsResult::budget_closes), 1u);
  EXPECT_GE(delta(&rpc::StatsResult::frame_timeouts), 1u);
  EXPECT_GE(delta(&rpc::StatsResult::pending_closes), 1u);
  EXPECT_GT(mix.held_max, uint64_t{32} << 20);

  // Nothing on disk is other than what the clients were told: the data
  // files are untouched, each private file holds what was committed, the
  // storm left no file behind.
  for (int i = 0; i < kDataFiles; ++i) {
    EXPECT_EQ(
        Fnv1a(ReadFileOrDie(dir_.Join(absl::StrCat("data/d", i, ".bin")))),
        checksums_[i])
        << "data file " << i;
  }
  for (int k = 0; k < kWellBehaved; ++k) {
    EXPECT_TRUE(ReadFileOrDie(dir_.Join(absl::StrCat("wb/c", k, ".bin"))) ==
                wb_[k]->shadow)
        << "private file " << k << " differs from what was committed";
  }
  for (int t = 0; t < 2; ++t) {
    for (int k = 0; k < 4; ++k) {
      struct stat st;
      const std::string name = absl::StrCat("storm-", t, "-", k);
      EXPECT_NE(lstat(dir_.Join(name).c_str(), &st), 0) << name << " left";
    }
  }
  ExpectStillServing();
  PrintTable(phases);
  std::printf("hostile mix: %.1f s in all\n", Seconds(Clock::now() - t_start));
}

}  // namespace
}  // namespace txbuf::testing
