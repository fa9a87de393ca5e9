// settings_test.cc: the reloadable settings: what Store puts in effect and
// what it returns, a token replaced alone, and readers on other threads while
// a reload stores.

#include "server/settings.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace txbuf::server {
namespace {

ReloadableSettings Some() {
  return ReloadableSettings{
      .token = "s3cret",
      .conn_budget = 64ull << 20,
      .budget = 1ull << 30,
      .budget_deadline = absl::Seconds(10),
      .dirty_expire = absl::Seconds(30),
      .writeback_interval = absl::Seconds(5),
  };
}

TEST(ServerSettingsTest, StartsWithTheInitialValues) {
  ServerSettings s(Some());
  EXPECT_EQ(s.token(), "s3cret");
  EXPECT_EQ(s.conn_budget(), 64ull << 20);
  EXPECT_EQ(s.budget(), 1ull << 30);
  EXPECT_EQ(s.budget_deadline(), absl::Seconds(10));
  EXPECT_EQ(s.dirty_expire(), absl::Seconds(30));
  EXPECT_EQ(s.writeback_interval(), absl::Seconds(5));
  const ReloadableSettings now = s.Load();
  EXPECT_EQ(now.token, "s3cret");
  EXPECT_EQ(now.conn_budget, 64ull << 20);
  EXPECT_EQ(now.writeback_interval, absl::Seconds(5));
}

TEST(ServerSettingsTest, StoreReturnsWhatItReplaced) {
  ServerSettings s(Some());
  ReloadableSettings next = Some();
  next.token = std::nullopt;
  next.conn_budget = 2ull << 20;
  next.budget_deadline = absl::Milliseconds(1500);
  const ReloadableSettings old = s.Store(next);
  EXPECT_EQ(old.token, "s3cret");
  EXPECT_EQ(old.conn_budget, 64ull << 20);
  EXPECT_EQ(old.budget_deadline, absl::Seconds(10));
  EXPECT_EQ(s.token(), std::nullopt);
  EXPECT_EQ(s.conn_budget(), 2ull << 20);
  EXPECT_EQ(s.budget(), 1ull << 30);
  EXPECT_EQ(s.budget_deadline(), absl::Milliseconds(1500));
}

TEST(ServerSettingsTest, SetTokenChangesOnlyTheToken) {
  ServerSettings s(Some());
  s.set_token("other");
  EXPECT_EQ(s.token(), "other");
  EXPECT_EQ(s.conn_budget(), 64ull << 20);
}

TEST(ServerSettingsTest, ReadersSeeOneOfTheStoredValues) {
  ServerSettings s(Some());
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      const uint64_t b = s.conn_budget();
      EXPECT_TRUE(b == 64ull << 20 || b == 1ull << 20) << b;
      const std::optional<std::string> t = s.token();
      EXPECT_TRUE(t == "s3cret" || t == "x") << t.value_or("(none)");
    }
  });
  ReloadableSettings a = Some(), b = Some();
  b.conn_budget = 1ull << 20;
  b.token = "x";
  for (int i = 0; i < 1000; ++i) s.Store(i % 2 == 0 ? b : a);
  stop.store(true);
  reader.join();
}

}  // namespace
}  // namespace txbuf::server
