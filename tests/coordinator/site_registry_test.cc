// SiteRegistry: registrations are validated, stored atomically, idempotent,
// listed in id order, and a store outage refuses cleanly without losing what
// was stored before.
#include "services/coordinator/site_registry.h"

#include <gtest/gtest.h>

#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using core::StatusCode;

class SiteRegistryTest : public ::testing::Test {
 protected:
  codec::RegisterSite Site(std::string id, std::string institution = "Hospital A") {
    return codec::RegisterSite{std::move(id), std::move(institution), 1200, {"NR-AR", "SR-p53"},
                               "hash-1"};
  }

  core::testing::FakeStateStore store_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"coordinator"};
  SiteRegistry registry_{store_, clock_, metrics_};
};

TEST_F(SiteRegistryTest, FirstRegistrationIsStoredAndListed) {
  auto done = registry_.Register(Site("site-a"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->first_registration);
  EXPECT_EQ(done->registered_at_ms, clock_.WallMillis());

  auto list = registry_.List();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->sites.size(), 1u);
  const auto& s = list->sites[0];
  EXPECT_EQ(s.site_id, "site-a");
  EXPECT_EQ(s.institution, "Hospital A");
  EXPECT_EQ(s.num_samples, 1200u);
  EXPECT_EQ(s.tasks, (std::vector<std::string>{"NR-AR", "SR-p53"}));
  EXPECT_EQ(s.schema_hash, "hash-1");
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_site_registrations_total", {{"kind", "new"}}), 1);
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_sites_registered"), 1);
}

TEST_F(SiteRegistryTest, ReRegistrationRefreshesButKeepsFirstTime) {
  ASSERT_TRUE(registry_.Register(Site("site-a")).ok());
  const auto first_time = clock_.WallMillis();
  clock_.Advance(std::chrono::minutes(5));
  auto again = registry_.Register(Site("site-a", "Hospital A (renamed)"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->first_registration);
  EXPECT_EQ(again->registered_at_ms, first_time);

  auto list = registry_.List();
  ASSERT_EQ(list->sites.size(), 1u);
  EXPECT_EQ(list->sites[0].institution, "Hospital A (renamed)");
  EXPECT_EQ(list->sites[0].registered_at_ms, first_time);
  EXPECT_EQ(list->sites[0].last_seen_ms, clock_.WallMillis());
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_site_registrations_total", {{"kind", "refresh"}}), 1);
}

TEST_F(SiteRegistryTest, ListIsOrderedById) {
  for (const char* id : {"site-c", "site-a", "site-b"}) ASSERT_TRUE(registry_.Register(Site(id)).ok());
  auto list = registry_.List();
  ASSERT_EQ(list->sites.size(), 3u);
  EXPECT_EQ(list->sites[0].site_id, "site-a");
  EXPECT_EQ(list->sites[1].site_id, "site-b");
  EXPECT_EQ(list->sites[2].site_id, "site-c");
}

TEST_F(SiteRegistryTest, InvalidSiteIdIsRefusedWithField) {
  auto bad = registry_.Register(Site("site:a"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().where(), "RegisterSite.site_id");
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_site_registrations_refused_total"), 1);
  EXPECT_TRUE(registry_.List()->sites.empty());
}

TEST_F(SiteRegistryTest, EmptyInstitutionIsRefused) {
  auto bad = registry_.Register(Site("site-a", ""));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().where(), "RegisterSite.institution");
}

TEST_F(SiteRegistryTest, TaskWithNewlineIsRefusedWithItsIndex) {
  auto r = Site("site-a");
  r.tasks = {"ok", "bad\nname"};
  auto bad = registry_.Register(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().where(), "RegisterSite.tasks[1]");
}

TEST_F(SiteRegistryTest, TooManyTasksAreRefused) {
  SiteLimits limits;
  limits.max_tasks = 2;
  SiteRegistry small(store_, clock_, metrics_, limits);
  auto r = Site("site-a");
  r.tasks = {"a", "b", "c"};
  auto bad = small.Register(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().where(), "RegisterSite.tasks");
}

TEST_F(SiteRegistryTest, StoreOutageRefusesAndKeepsEarlierSites) {
  ASSERT_TRUE(registry_.Register(Site("site-a")).ok());
  store_.SetDown(true);
  auto refused = registry_.Register(Site("site-b"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(registry_.List().status().code(), StatusCode::kUnavailable);
  store_.SetDown(false);
  auto list = registry_.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->sites.size(), 1u);
  EXPECT_EQ(list->sites[0].site_id, "site-a");
}

TEST_F(SiteRegistryTest, TouchUpdatesLastSeenOfKnownSitesOnly) {
  ASSERT_TRUE(registry_.Register(Site("site-a")).ok());
  clock_.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(registry_.Touch("site-a").ok());
  EXPECT_EQ(registry_.List()->sites[0].last_seen_ms, clock_.WallMillis());
  EXPECT_EQ(registry_.Touch("site-zz").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedrx::coordinator
