#include "server/stats/metrics_exporter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace txbuf::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Text(const rpc::StatsResult& r) {
  return prometheus::TextSerializer().Serialize(MetricsExporter::Families(r));
}

TEST(MetricsExporterTest, OpsByKindAndStatus) {
  rpc::StatsResult r;
  rpc::OpCount* c = r.add_ops();
  c->set_op("read");
  c->set_status(rpc::STATUS_OK);
  c->set_count(7);
  c = r.add_ops();
  c->set_op("lookup");
  c->set_status(rpc::STATUS_NOENT);
  c->set_count(2);
  r.set_read_bytes(4096);
  r.set_auth_failures(3);
  const std::string t = Text(r);
  EXPECT_THAT(t, HasSubstr("# TYPE txbuf_ops_total counter"));
  EXPECT_THAT(t, HasSubstr("txbuf_ops_total{op=\"read\",status=\"OK\"} 7\n"));
  EXPECT_THAT(t,
              HasSubstr("txbuf_ops_total{op=\"lookup\",status=\"NOENT\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_read_bytes_total 4096\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_auth_failures_total 3\n"));
}

// STATS buckets (fine, in nanoseconds) become cumulative buckets in seconds
// at powers of two; the sum is mean * count.
TEST(MetricsExporterTest, LatencyBucketsAreCumulativeSeconds) {
  rpc::StatsResult r;
  auto bucket = [&](uint64_t lo, uint64_t hi, uint64_t n) {
    rpc::HistogramBucket* b = r.add_request_latency_buckets();
    b->set_lo(lo);
    b->set_hi(hi);
    b->set_count(n);
  };
  bucket(1000, 1008, 2);               // under 2^10 ns
  bucket(1 << 11, (1 << 11) + 64, 3);  // in [2^11, 2^12)
  bucket(uint64_t{1} << 40, (uint64_t{1} << 40) + (uint64_t{1} << 35),
         1);  // past the last bound
  r.mutable_request_latency()->set_count(6);
  r.mutable_request_latency()->set_mean(1e9);  // 1 s
  const std::string t = Text(r);
  EXPECT_THAT(t, HasSubstr("# TYPE txbuf_request_duration_seconds histogram"));
  EXPECT_THAT(t, HasSubstr("txbuf_request_duration_seconds_count 6\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_request_duration_seconds_sum 6\n"));
  EXPECT_THAT(
      t, HasSubstr("txbuf_request_duration_seconds_bucket{le=\"1.024e-06\"} "
                   "2\n"));
  EXPECT_THAT(
      t, HasSubstr("txbuf_request_duration_seconds_bucket{le=\"2.048e-06\"} "
                   "2\n"));
  EXPECT_THAT(
      t, HasSubstr("txbuf_request_duration_seconds_bucket{le=\"4.096e-06\"} "
                   "5\n"));
  EXPECT_THAT(
      t, HasSubstr("txbuf_request_duration_seconds_bucket{le=\"+Inf\"} 6\n"));
  EXPECT_THAT(t, Not(HasSubstr("le=\"+Inf\"} 6\ntxbuf_request_duration_"
                               "seconds_bucket{le=\"+Inf\"}")));
}

// The latency by op kind: one histogram family, labelled by op.
TEST(MetricsExporterTest, OpLatencyIsOneFamilyLabelledByOp) {
  rpc::StatsResult r;
  auto op = [&](const std::string& name, uint64_t lo, uint64_t n) {
    rpc::OpLatency* l = r.add_op_latency();
    l->set_op(name);
    l->mutable_latency()->set_count(n);
    l->mutable_latency()->set_mean(static_cast<double>(lo));
    rpc::HistogramBucket* b = l->add_buckets();
    b->set_lo(lo);
    b->set_hi(lo + 1);
    b->set_count(n);
  };
  op("read", 1000, 4);            // under 2^10 ns
  op("write", 1'000'000'000, 2);  // 1 s, in [2^29, 2^30) ns
  const std::string t = Text(r);
  EXPECT_THAT(t, HasSubstr("# TYPE txbuf_op_latency_seconds histogram"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_count{op=\"read\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_count{op=\"write\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_sum{op=\"write\"} 2\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_bucket{op=\"read\",le="
                           "\"1.024e-06\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_bucket{op=\"write\",le="
                           "\"0.536870912\"} 0\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_op_latency_seconds_bucket{op=\"write\",le="
                           "\"1.073741824\"} 2\n"));
}

TEST(MetricsExporterTest, EnginesAndCompletionsAreLabelled) {
  rpc::StatsResult r;
  rpc::EngineStats* e = r.add_engines();
  e->set_name("uring_zc");
  e->set_zc_notifications(5);
  e->set_zc_copied(4);
  r.set_zerocopy_completions(1);
  r.set_copied_completions(4);
  r.mutable_page_cache()->set_dirty_pages(9);
  const std::string t = Text(r);
  EXPECT_THAT(t, HasSubstr("txbuf_engine_zerocopy_notifications_total{engine="
                           "\"uring_zc\"} 5\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_engine_zerocopy_copied_total{engine="
                           "\"uring_zc\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_completions_total{kind=\"zerocopy\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_completions_total{kind=\"copied\"} 4\n"));
  EXPECT_THAT(t, HasSubstr("txbuf_page_cache_dirty_pages 9\n"));
}

// --engine auto's row repeats what the engine it chose sent: it is a family
// of its own, so that summing txbuf_engine_txbufs_total counts each once.
TEST(MetricsExporterTest, AutoIsNotSummedWithTheEngineItChose) {
  rpc::StatsResult r;
  rpc::EngineStats* chosen = r.add_engines();
  chosen->set_name("uring_zc");
  chosen->set_txbufs(7);
  rpc::EngineStats* automatic = r.add_engines();
  automatic->set_name("auto");
  automatic->set_txbufs(7);
  automatic->set_bytes(700);
  const std::string t = Text(r);
  EXPECT_THAT(t,
              HasSubstr("txbuf_engine_txbufs_total{engine=\"uring_zc\"} 7\n"));
  EXPECT_THAT(t, Not(HasSubstr("engine=\"auto\"")));
  EXPECT_THAT(t, HasSubstr("\ntxbuf_engine_auto_txbufs_total 7\n"));
  EXPECT_THAT(t, HasSubstr("\ntxbuf_engine_auto_bytes_total 700\n"));
}

TEST(MetricsExporterTest, ABadAddressIsAnError) {
  EXPECT_FALSE(MetricsExporter::Start("no-port", nullptr).ok());
  absl::StatusOr<std::unique_ptr<MetricsExporter>> a =
      MetricsExporter::Start("127.0.0.1:0", [](rpc::StatsResult*) {});
  ASSERT_TRUE(a.ok()) << a.status();
  // The same port again cannot be bound: an error, not an exception.
  absl::StatusOr<std::unique_ptr<MetricsExporter>> b =
      MetricsExporter::Start((*a)->address(), [](rpc::StatsResult*) {});
  EXPECT_FALSE(b.ok());
}

}  // namespace
}  // namespace txbuf::server
