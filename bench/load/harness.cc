#include "bench/load/harness.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace txbuf::bench {

int SlotsForConnection(int concurrency, int connections, int index) {
  if (connections <= 0) return 0;
  return concurrency / connections +
         (index < concurrency % connections ? 1 : 0);
}

OffsetSource::OffsetSource(uint64_t size, uint64_t file_size, bool random)
    : size_(size), blocks_(size == 0 ? 0 : file_size / size), random_(random) {}

uint64_t OffsetSource::Next(std::mt19937_64& rng) {
  if (blocks_ == 0) return 0;
  uint64_t block;
  if (random_) {
    block = std::uniform_int_distribution<uint64_t>(0, blocks_ - 1)(rng);
  } else {
    block = cursor_.fetch_add(1, std::memory_order_relaxed) % blocks_;
  }
  return block * size_;
}

namespace {

std::mutex image_mu;
std::shared_ptr<const PatternImage>& CachedImage() {
  static auto* image = new std::shared_ptr<const PatternImage>();
  return *image;
}

}  // namespace

PatternSource::PatternSource(uint64_t seed, uint64_t file_size) : seed_(seed) {
  if (file_size == 0 || file_size > kMaxImageBytes) return;
  std::lock_guard<std::mutex> lock(image_mu);
  std::shared_ptr<const PatternImage>& cached = CachedImage();
  if (cached == nullptr || cached->seed() != seed ||
      cached->size() != file_size) {
    cached.reset();  // Free the old one before building the new one.
    cached = std::make_shared<const PatternImage>(seed, file_size);
  }
  image_ = cached;
}

const uint8_t* PatternSource::Data(uint64_t offset, size_t n,
                                   std::vector<uint8_t>& scratch) {
  if (image_ != nullptr && offset <= image_->size() &&
      n <= image_->size() - offset) {
    return image_->At(offset);
  }
  if (scratch.size() < n) scratch.resize(n);
  FillPattern(seed_, offset, absl::MakeSpan(scratch.data(), n));
  return scratch.data();
}

bool PatternSource::Check(uint64_t offset,
                          absl::Span<const uint8_t> data) const {
  if (image_ != nullptr) return image_->Check(offset, data);
  return CheckPattern(seed_, offset, data);
}

// Start barrier: every connection reports its setup, then the harness
// starts the clock (or aborts).
class StartGate {
 public:
  explicit StartGate(int n) : pending_(n) {}

  bool Report(const absl::Status& setup) {
    absl::MutexLock lock(&mu_);
    if (!setup.ok() && first_error_.ok()) first_error_ = setup;
    --pending_;
    auto go = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return started_ || aborted_;
    };
    mu_.Await(absl::Condition(&go));
    return started_;
  }

  // Harness side: waits for every report; returns the first setup error.
  absl::Status WaitAllReported() {
    absl::MutexLock lock(&mu_);
    auto done = [this]()
                    ABSL_SHARED_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    mu_.Await(absl::Condition(&done));
    return first_error_;
  }

  void Open(RunClock& clock, const Workload& w) {
    absl::MutexLock lock(&mu_);
    clock.start_ns = MonoNowNs();
    clock.measure_ns = clock.start_ns + static_cast<int64_t>(w.warmup_s * 1e9);
    clock.end_ns = clock.measure_ns + static_cast<int64_t>(w.duration_s * 1e9);
    started_ = true;
  }

  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
  }

 private:
  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

ConnContext::ConnContext(const Workload& w, const RunClock& clock,
                         StartGate& gate, int slots, OffsetSource& offsets,
                         PatternSource& pattern, uint64_t seed)
    : w_(w),
      clock_(clock),
      gate_(gate),
      slots_(slots),
      offsets_(offsets),
      pattern_(pattern),
      rng_(seed) {}

bool ConnContext::Start(const absl::Status& setup) {
  return gate_.Report(setup);
}

void ConnContext::Complete(int64_t start_ns, int64_t end_ns, uint64_t bytes,
                           bool ok, bool verified) {
  if (!ok) {
    ++errors_;
    return;
  }
  if (!verified) ++verify_failures_;
  if (!Counts(end_ns)) return;
  ++ops_;
  bytes_ += bytes;
  latency_.Record(
      static_cast<uint64_t>(std::max<int64_t>(0, end_ns - start_ns)));
}

void ConnContext::MergeInto(RunResult& r) const {
  r.ops += ops_;
  r.bytes += bytes_;
  r.errors += errors_;
  r.verify_failures += verify_failures_;
  r.latency_ns.Merge(latency_);
}

absl::StatusOr<double> ProcessCpuUs(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string stat = ss.str();
  // Fields after the command (which may hold spaces) start after the last
  // ')': field 3 (state) first; utime and stime are fields 14 and 15.
  size_t close = stat.rfind(')');
  if (!in || close == std::string::npos) {
    return absl::NotFoundError(
        absl::StrCat("cannot read /proc/", pid, "/stat"));
  }
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return absl::DataLossError(absl::StrCat("bad /proc/", pid, "/stat"));
  }
  static const double kUsPerTick =
      1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) * kUsPerTick;
}

double SelfCpuUs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

absl::StatusOr<RunResult> RunHarness(
    const Workload& w, pid_t server_pid,
    const std::function<void(int index, ConnContext& ctx)>& loop) {
  if (absl::Status s = ValidateWorkload(w); !s.ok()) return s;
  // Meta touches no file data: one block, and no pattern image for it.
  const bool meta = w.kind == WorkloadKind::kMeta;
  OffsetSource offsets(meta ? 1 : w.size, meta ? 1 : w.file_size, w.random);
  PatternSource pattern(w.seed, meta ? 1 : w.file_size);
  RunClock clock;
  StartGate gate(w.connections);

  std::vector<std::unique_ptr<ConnContext>> contexts;
  std::seed_seq seq{static_cast<uint64_t>(MonoNowNs()), w.seed};
  std::vector<uint64_t> seeds(static_cast<size_t>(w.connections));
  seq.generate(seeds.begin(), seeds.end());
  for (int i = 0; i < w.connections; ++i) {
    contexts.push_back(std::make_unique<ConnContext>(
        w, clock, gate, SlotsForConnection(w.concurrency, w.connections, i),
        offsets, pattern, seeds[static_cast<size_t>(i)]));
  }
  std::vector<std::thread> threads;
  threads.reserve(contexts.size());
  for (int i = 0; i < w.connections; ++i) {
    threads.emplace_back(
        [&loop, &contexts, i] { loop(i, *contexts[static_cast<size_t>(i)]); });
  }
  absl::Status setup = gate.WaitAllReported();
  if (!setup.ok()) {
    gate.Abort();
    for (std::thread& t : threads) t.join();
    return setup;
  }
  gate.Open(clock, w);

  RunResult r;
  SleepUntilMonoNs(clock.measure_ns);
  double cpu0 = SelfCpuUs();
  absl::StatusOr<double> server0 =
      server_pid > 0 ? ProcessCpuUs(server_pid) : absl::StatusOr<double>(-1.0);
  SleepUntilMonoNs(clock.end_ns);
  double cpu1 = SelfCpuUs();
  absl::StatusOr<double> server1 =
      server_pid > 0 ? ProcessCpuUs(server_pid) : absl::StatusOr<double>(-1.0);
  for (std::thread& t : threads) t.join();

  for (const auto& c : contexts) c->MergeInto(r);
  r.client_cpu_us = cpu1 - cpu0;
  r.elapsed_s = static_cast<double>(clock.end_ns - clock.measure_ns) / 1e9;
  if (server_pid > 0 && server0.ok() && server1.ok()) {
    r.server_cpu_us = *server1 - *server0;
  }
  return r;
}

}  // namespace txbuf::bench
