// client/mount/read_plan_test.cc: how the mount sends a READ.
#include "client/mount/read_plan.h"

#include "gtest/gtest.h"

namespace txbuf::client::mount {
namespace {

constexpr size_t kKiB = 1024;

ReadPlanInputs Defaults(size_t size, int connections, int at_once) {
  return {.size = size,
          .async_read_max = 128 * kKiB,
          .read_split = 256 * kKiB,
          .connections = connections,
          .large_reads_at_once = at_once};
}

TEST(ReadPlanTest, SmallReadsAreAnsweredFromTheLoop) {
  EXPECT_EQ(PlanRead(Defaults(4 * kKiB, 4, 1)), ReadPlan::kFromLoop);
  EXPECT_EQ(PlanRead(Defaults(128 * kKiB, 1, 1)), ReadPlan::kFromLoop);
  EXPECT_EQ(PlanRead(Defaults(128 * kKiB + 1, 4, 1)), ReadPlan::kWhole);
  ReadPlanInputs none = Defaults(4 * kKiB, 4, 1);
  none.async_read_max = 0;
  EXPECT_EQ(PlanRead(none), ReadPlan::kWhole);
  none.size = 0;
  EXPECT_EQ(PlanRead(none), ReadPlan::kWhole);
}

TEST(ReadPlanTest, LargeReadsGoInPiecesWhileFewRunAtOnce) {
  // 1 MiB with 4 connections: pieces for 1 to 3 at once, whole from 4.
  for (int at_once = 1; at_once <= 3; ++at_once) {
    EXPECT_EQ(PlanRead(Defaults(1024 * kKiB, 4, at_once)), ReadPlan::kPieces)
        << at_once;
  }
  EXPECT_EQ(PlanRead(Defaults(1024 * kKiB, 4, 4)), ReadPlan::kWhole);
  EXPECT_EQ(PlanRead(Defaults(1024 * kKiB, 4, 8)), ReadPlan::kWhole);
  // Twice the piece at least.
  EXPECT_EQ(PlanRead(Defaults(512 * kKiB, 4, 1)), ReadPlan::kPieces);
  EXPECT_EQ(PlanRead(Defaults(512 * kKiB - 1, 4, 1)), ReadPlan::kWhole);
  // One connection: nothing to spread over.
  EXPECT_EQ(PlanRead(Defaults(1024 * kKiB, 1, 1)), ReadPlan::kWhole);
  // --read-split 0: never.
  ReadPlanInputs whole = Defaults(1024 * kKiB, 4, 1);
  whole.read_split = 0;
  EXPECT_EQ(PlanRead(whole), ReadPlan::kWhole);
}

}  // namespace
}  // namespace txbuf::client::mount
