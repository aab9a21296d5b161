// The audit chain and the institution registry against a real redis-server,
// with tampering done the way an intruder would: XDEL on the live stream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/testing/fake_clock.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"
#include "tests/support/redis_server.h"

namespace fedrx::security {
namespace {

using ::testing::HasSubstr;

class SecurityRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = fedrx::testing::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    core::RedisOptions options;
    options.host = server_->host();
    options.port = server_->port();
    auto store = core::RedisStateStore::Connect(options, nullptr);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  std::unique_ptr<fedrx::testing::RedisServer> server_;
  std::unique_ptr<core::RedisStateStore> store_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"test"};
};

TEST_F(SecurityRedisTest, TheAuditChainVerifiesAndAnXdelBreaksItAtTheNextEntry) {
  std::vector<std::string> ids;
  {
    AuditLog log(*store_, clock_, metrics_);
    for (int i = 0; i < 20; ++i) {
      AuditRecord r;
      r.actor = "site-" + std::to_string(i % 4);
      r.role = "site";
      r.action = "SubmitUpdate";
      r.decision = Decision::kAdmitted;
      r.message_id = "m-" + std::to_string(i);
      r.bytes = 4096;
      r.study = "s1";
      core::Result<std::string> id = log.Append(r);
      ASSERT_TRUE(id.ok()) << id.status();
      ids.push_back(*id);
    }
  }
  // A fresh log, as `fedrx audit verify` would run.
  AuditLog verifier(*store_, clock_, metrics_);
  core::Result<VerifyReport> report = verifier.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 20u);

  core::Result<std::string> deleted =
      server_->Command({"XDEL", core::keys::AuditStream().str(), ids[7]});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, "1");
  report = verifier.Verify();
  EXPECT_EQ(report.status().code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), ids[8]);
  EXPECT_THAT(report.status().message(), HasSubstr("missing predecessor"));
}

TEST_F(SecurityRedisTest, EnrolmentAndLookupWorkOnRedis) {
  InstitutionRegistry registry(*store_, clock_);
  core::Result<Enrolment> e = registry.Enrol("inst-a", "Institute A", Role::kSite);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(registry.Enrol("inst-a", "Again", Role::kSite).status().code(),
            core::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.Revoke("inst-a").ok());
  core::Result<Institution> found = registry.Lookup(e->key_pair.public_key);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, "inst-a");
  EXPECT_EQ(found->status, InstitutionStatus::kRevoked);
  core::Result<std::vector<Institution>> all = registry.List();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "Institute A");
}

}  // namespace
}  // namespace fedrx::security
