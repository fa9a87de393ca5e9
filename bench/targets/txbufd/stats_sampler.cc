#include "bench/targets/txbufd/stats_sampler.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "bench/targets/txbufd/server_stats.h"
#include "common/clock.h"

namespace txbuf::bench {

absl::StatusOr<std::unique_ptr<StatsSampler>> StatsSampler::Connect(
    const std::string& host, uint16_t port, absl::Duration period,
    std::optional<std::string> token) {
  client::ClientOptions o;
  o.host = host;
  o.port = port;
  o.token = std::move(token);
  o.connections = 1;
  o.request_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Connect(std::move(o));
  if (!c.ok()) return c.status();
  return std::unique_ptr<StatsSampler>(new StatsSampler(*std::move(c), period));
}

StatsSampler::~StatsSampler() {
  if (thread_.joinable()) thread_.join();
}

void StatsSampler::Begin(int64_t start_ns, int64_t end_ns) {
  {
    absl::MutexLock l(&mu_);
    if (std::exchange(begun_, true)) return;
  }
  thread_ = std::thread([this, start_ns, end_ns] { Loop(start_ns, end_ns); });
}

void StatsSampler::Loop(int64_t start_ns, int64_t end_ns) {
  SleepUntilMonoNs(start_ns);
  absl::StatusOr<rpc::StatsResult> s = client_->Stats();
  if (!s.ok()) {
    status_ = s.status();
    return;
  }
  before_ = *std::move(s);
  samples_.push_back({0, before_.pinned_bytes()});
  // A zero period: no samples in between (the two snapshots only).
  const int64_t period_ns =
      period_ == absl::ZeroDuration()
          ? end_ns - start_ns
          : std::max<int64_t>(absl::ToInt64Nanoseconds(period_), 1000000);
  for (int64_t next = start_ns + period_ns; next < end_ns; next += period_ns) {
    SleepUntilMonoNs(next);
    absl::StatusOr<rpc::StatsResult> r = client_->Stats();
    if (!r.ok()) {
      status_ = r.status();
      return;
    }
    samples_.push_back(
        {static_cast<double>(MonoNowNs() - start_ns) / 1e9, r->pinned_bytes()});
  }
  SleepUntilMonoNs(end_ns);
  s = client_->Stats();
  if (!s.ok()) {
    status_ = s.status();
    return;
  }
  after_ = *std::move(s);
  samples_.push_back({static_cast<double>(MonoNowNs() - start_ns) / 1e9,
                      after_.pinned_bytes()});
}

absl::StatusOr<ServerMemory> StatsSampler::Finish() {
  {
    absl::MutexLock l(&mu_);
    if (!begun_) {
      return absl::FailedPreconditionError("the measured interval never began");
    }
  }
  if (thread_.joinable()) thread_.join();
  if (!status_.ok()) return status_;
  return ServerMemoryDelta(before_, after_, std::move(samples_));
}

}  // namespace txbuf::bench
