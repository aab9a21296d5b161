#include "services/security/institution_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "services/core/keys.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::security {
namespace {

using core::StatusCode;
using ::testing::HasSubstr;
using ::testing::Not;

class InstitutionRegistryTest : public ::testing::Test {
 protected:
  Enrolment MustEnrol(const std::string& id, Role role = Role::kSite) {
    core::Result<Enrolment> enrolment = registry_.Enrol(id, "Institution " + id, role);
    EXPECT_TRUE(enrolment.ok()) << enrolment.status();
    return enrolment.ok() ? *enrolment : Enrolment{};
  }

  core::testing::FakeStateStore store_;
  core::testing::FakeClock clock_;
  InstitutionRegistry registry_{store_, clock_};
};

TEST_F(InstitutionRegistryTest, EnrolReturnsAZ85KeyPairAndStoresAnActiveRecord) {
  const Enrolment e = MustEnrol("inst-a", Role::kScientist);
  EXPECT_TRUE(core::CheckCurveKeyPair(e.key_pair, "enrolment").ok());
  EXPECT_NE(e.key_pair.public_key, e.key_pair.secret_key);
  EXPECT_EQ(e.institution.public_key, e.key_pair.public_key);

  core::Result<Institution> got = registry_.Get("inst-a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "Institution inst-a");
  EXPECT_EQ(got->role, Role::kScientist);
  EXPECT_EQ(got->status, InstitutionStatus::kActive);
  EXPECT_EQ(got->public_key, e.key_pair.public_key);
  EXPECT_EQ(got->enrolled_at_ms, clock_.WallMillis());
}

TEST_F(InstitutionRegistryTest, TheSecretKeyIsStoredNowhere) {
  const Enrolment a = MustEnrol("inst-a");
  const Enrolment b = MustEnrol("inst-b", Role::kAdmin);
  ASSERT_TRUE(registry_.Suspend("inst-a").ok());
  const std::vector<std::string> everything = store_.AllStrings();
  ASSERT_FALSE(everything.empty());
  for (const std::string& s : everything) {
    EXPECT_THAT(s, Not(HasSubstr(a.key_pair.secret_key)));
    EXPECT_THAT(s, Not(HasSubstr(b.key_pair.secret_key)));
  }
  // ... while the public key is there (the scan sees what Enrol wrote).
  EXPECT_NE(std::find(everything.begin(), everything.end(), a.key_pair.public_key),
            everything.end());
}

TEST_F(InstitutionRegistryTest, EachEnrolmentGetsItsOwnKeyPair) {
  const Enrolment a = MustEnrol("inst-a");
  const Enrolment b = MustEnrol("inst-b");
  EXPECT_NE(a.key_pair.public_key, b.key_pair.public_key);
  EXPECT_NE(a.key_pair.secret_key, b.key_pair.secret_key);
}

TEST_F(InstitutionRegistryTest, ADuplicateIdIsRefusedAndTheFirstKeyStays) {
  const Enrolment first = MustEnrol("inst-a");
  core::Result<Enrolment> again = registry_.Enrol("inst-a", "Someone else", Role::kAdmin);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().where(), "id");
  core::Result<Institution> got = registry_.Get("inst-a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->public_key, first.key_pair.public_key);
  EXPECT_EQ(got->role, Role::kSite);
  // Revoked institutions keep their id too.
  ASSERT_TRUE(registry_.Revoke("inst-a").ok());
  EXPECT_EQ(registry_.Enrol("inst-a", "Again", Role::kSite).status().code(),
            StatusCode::kAlreadyExists);
}

TEST_F(InstitutionRegistryTest, BadInputIsRefusedNamingTheFieldAndWritesNothing) {
  EXPECT_EQ(registry_.Enrol("a:b", "Name", Role::kSite).status().where(), "id");
  EXPECT_EQ(registry_.Enrol("", "Name", Role::kSite).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Enrol("ok", "", Role::kSite).status().where(), "name");
  EXPECT_EQ(registry_.Enrol("ok", std::string(129, 'n'), Role::kSite).status().where(), "name");
  EXPECT_EQ(registry_.Enrol("ok", "bad\nname", Role::kSite).status().where(), "name");
  EXPECT_EQ(store_.KeyCount(), 0u);
  EXPECT_EQ(ParseRole("root", "--role").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRole("scientist", "--role").value(), Role::kScientist);
}

TEST_F(InstitutionRegistryTest, AFailedBatchLeavesNoPartialEnrolment) {
  // The index holding the wrong type makes the batch's SetAdd fail, after its
  // HashSet: the hash must not be written either.
  ASSERT_TRUE(store_.Set(core::keys::InstitutionIndex(), "not a set").ok());
  core::Result<Enrolment> enrolment = registry_.Enrol("inst-a", "A", Role::kSite);
  EXPECT_EQ(enrolment.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_.KeyCount(), 1u);
  EXPECT_EQ(registry_.Get("inst-a").status().code(), StatusCode::kNotFound);
}

TEST_F(InstitutionRegistryTest, StoreErrorsArePassedOn) {
  store_.SetDown(true);
  EXPECT_EQ(registry_.Enrol("inst-a", "A", Role::kSite).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(registry_.List().status().code(), StatusCode::kUnavailable);
  store_.SetDown(false);
  EXPECT_EQ(store_.KeyCount(), 0u);
}

TEST_F(InstitutionRegistryTest, LookupByPublicKeyFindsTheInstitution) {
  MustEnrol("inst-a");
  const Enrolment b = MustEnrol("inst-b", Role::kAdmin);
  core::Result<Institution> found = registry_.Lookup(b.key_pair.public_key);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, "inst-b");
  EXPECT_EQ(found->role, Role::kAdmin);
  EXPECT_EQ(found->status, InstitutionStatus::kActive);
}

TEST_F(InstitutionRegistryTest, LookupOfAnUnknownKeyIsNotFoundAndOfABadKeyInvalidArgument) {
  MustEnrol("inst-a");
  core::Result<core::CurveKeyPair> stranger = core::GenerateCurveKeyPair();
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(registry_.Lookup(stranger->public_key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_.Lookup("short").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Lookup(std::string(40, ' ')).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(registry_.Lookup(std::string(40, ' ')).status().where(), "public_key");
}

TEST_F(InstitutionRegistryTest, SuspendAndReactivateAreSeenByLookup) {
  const Enrolment a = MustEnrol("inst-a");
  clock_.Advance(std::chrono::seconds(5));
  core::Result<Institution> suspended = registry_.Suspend("inst-a");
  ASSERT_TRUE(suspended.ok()) << suspended.status();
  EXPECT_EQ(suspended->status, InstitutionStatus::kSuspended);
  EXPECT_EQ(suspended->updated_at_ms, clock_.WallMillis());
  EXPECT_EQ(registry_.Lookup(a.key_pair.public_key)->status, InstitutionStatus::kSuspended);
  // Repeating is a no-op.
  EXPECT_EQ(registry_.Suspend("inst-a")->status, InstitutionStatus::kSuspended);
  ASSERT_TRUE(registry_.Reactivate("inst-a").ok());
  EXPECT_EQ(registry_.Lookup(a.key_pair.public_key)->status, InstitutionStatus::kActive);
}

TEST_F(InstitutionRegistryTest, RevokedIsFinalAndTheKeyIsStillRecognisedAsRevoked) {
  const Enrolment a = MustEnrol("inst-a");
  ASSERT_TRUE(registry_.Suspend("inst-a").ok());
  ASSERT_EQ(registry_.Revoke("inst-a")->status, InstitutionStatus::kRevoked);
  core::Result<Institution> reactivated = registry_.Reactivate("inst-a");
  EXPECT_EQ(reactivated.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(reactivated.status().message(), HasSubstr("final"));
  EXPECT_EQ(registry_.Suspend("inst-a").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry_.Revoke("inst-a")->status, InstitutionStatus::kRevoked);
  core::Result<Institution> looked_up = registry_.Lookup(a.key_pair.public_key);
  ASSERT_TRUE(looked_up.ok()) << looked_up.status();
  EXPECT_EQ(looked_up->id, "inst-a");
  EXPECT_EQ(looked_up->status, InstitutionStatus::kRevoked);
}

TEST_F(InstitutionRegistryTest, StatusChangesOfAnUnknownIdAreNotFound) {
  EXPECT_EQ(registry_.Suspend("ghost").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_.Reactivate("ghost").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_.Revoke("ghost").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.KeyCount(), 0u);
}

TEST_F(InstitutionRegistryTest, ListReturnsEveryInstitutionByIdWithItsStatus) {
  MustEnrol("zeta");
  MustEnrol("alpha", Role::kAdmin);
  MustEnrol("mid", Role::kScientist);
  ASSERT_TRUE(registry_.Revoke("mid").ok());
  core::Result<std::vector<Institution>> all = registry_.List();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "alpha");
  EXPECT_EQ((*all)[0].role, Role::kAdmin);
  EXPECT_EQ((*all)[1].id, "mid");
  EXPECT_EQ((*all)[1].status, InstitutionStatus::kRevoked);
  EXPECT_EQ((*all)[2].id, "zeta");
  EXPECT_EQ((*all)[2].status, InstitutionStatus::kActive);
}

TEST_F(InstitutionRegistryTest, ASupersededKeyIsNotAcceptedForTheInstitution) {
  // Two racing enrolments of one id: the later hash wins, and the loser's
  // key mapping, still present, must not admit its holder as the institution.
  const Enrolment a = MustEnrol("inst-a");
  core::Result<core::CurveKeyPair> other = core::GenerateCurveKeyPair();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(
      store_.HashSet(*core::keys::Institution("inst-a"), {{"public_key", other->public_key}}).ok());
  ASSERT_TRUE(store_.Set(*core::keys::InstitutionByKey(other->public_key), "inst-a").ok());
  EXPECT_EQ(registry_.Lookup(a.key_pair.public_key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry_.Lookup(other->public_key)->id, "inst-a");
}

}  // namespace
}  // namespace fedrx::security
