#include "server/stats/op_stats.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/descriptor.h"

namespace txbuf::server {
namespace {

// The Status enum's values in a dense order: their declaration order
// (STATUS_OK, 0, is first, as proto3 requires).
const google::protobuf::EnumDescriptor& StatusEnum() {
  return *rpc::Status_descriptor();
}

// The Op field's name of op kind `op` ("read", ...), or "none".
std::string OpName(int op) {
  const google::protobuf::FieldDescriptor* field =
      rpc::Op::descriptor()->FindFieldByNumber(op);
  return field != nullptr ? std::string(field->name()) : "none";
}

}  // namespace

void FillLatency(
    const LogHistogram& h, rpc::LatencySummary* l,
    google::protobuf::RepeatedPtrField<rpc::HistogramBucket>* buckets) {
  const HistogramSummary s = h.Summary();
  l->set_count(s.count);
  l->set_p50(s.p50);
  l->set_p90(s.p90);
  l->set_p99(s.p99);
  l->set_p999(s.p999);
  l->set_max(s.max);
  l->set_mean(s.mean);
  for (const LogHistogram::Bucket& b : h.Buckets()) {
    rpc::HistogramBucket* hb = buckets->Add();
    hb->set_lo(b.lo);
    hb->set_hi(b.hi);
    hb->set_count(b.count);
  }
}

int OpStats::ErrorSlot(rpc::Status status) {
  static const absl::flat_hash_map<int, int>* slots = [] {
    auto* m = new absl::flat_hash_map<int, int>;
    const google::protobuf::EnumDescriptor& e = StatusEnum();
    for (int i = 0; i < e.value_count() && i < kStatuses; ++i) {
      m->emplace(e.value(i)->number(), i);
    }
    return m;
  }();
  auto it = slots->find(status);
  return it == slots->end() ? -1 : it->second;
}

void OpStats::Fill(rpc::StatsResult* r) const {
  const google::protobuf::EnumDescriptor& statuses = StatusEnum();
  for (int op = 0; op < kOps; ++op) {
    for (int slot = 0; slot < kStatuses && slot < statuses.value_count();
         ++slot) {
      const uint64_t n =
          counts_[op * kStatuses + slot].load(std::memory_order_relaxed);
      if (n == 0) continue;
      rpc::OpCount* c = r->add_ops();
      c->set_op(OpName(op));
      c->set_status(static_cast<rpc::Status>(statuses.value(slot)->number()));
      c->set_count(n);
    }
  }
  for (int op = 0; op < kOps; ++op) {
    if (latency_[op].count() == 0) continue;
    rpc::OpLatency* l = r->add_op_latency();
    l->set_op(OpName(op));
    FillLatency(latency_[op], l->mutable_latency(), l->mutable_buckets());
  }
  r->set_read_bytes(read_bytes_.load(std::memory_order_relaxed));
  r->set_write_bytes(write_bytes_.load(std::memory_order_relaxed));
}

}  // namespace txbuf::server
