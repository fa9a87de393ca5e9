// client/mount/read_plan.cc: see read_plan.h.
#include "client/mount/read_plan.h"

namespace txbuf::client::mount {

ReadPlan PlanRead(const ReadPlanInputs& in) {
  if (in.async_read_max != 0 && in.size <= in.async_read_max) {
    return ReadPlan::kFromLoop;
  }
  if (IsLargeRead(in.size, in.read_split) && in.connections >= 2 &&
      in.large_reads_at_once < in.connections) {
    return ReadPlan::kPieces;
  }
  return ReadPlan::kWhole;
}

}  // namespace txbuf::client::mount
