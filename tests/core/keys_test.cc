#include "services/core/keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace fedrx::core {
namespace {

using ::testing::HasSubstr;

TEST(KeysTest, BuildersSpellTheDocumentedKeys) {
  ASSERT_TRUE(keys::Site("site-01").ok());
  EXPECT_EQ(keys::Site("site-01")->str(), "fedrx:site:site-01");
  EXPECT_EQ(keys::SiteIndex().str(), "fedrx:sites");
  EXPECT_EQ(keys::Study("S_1.a")->str(), "fedrx:study:S_1.a");
  EXPECT_EQ(keys::StudyIndex().str(), "fedrx:studies");
  EXPECT_EQ(keys::Round("s1", 0)->str(), "fedrx:study:s1:round:0");
  EXPECT_EQ(keys::Round("s1", 4294967295u)->str(), "fedrx:study:s1:round:4294967295");
  EXPECT_EQ(keys::ModelCalibration("s1", 3)->str(), "fedrx:study:s1:model-calibration:3");
  EXPECT_EQ(keys::ServiceHeartbeat("coordinator")->str(), "fedrx:heartbeat:coordinator");
  EXPECT_EQ(TestKey("x:y").str(), "fedrx:test:x:y");
}

TEST(KeysTest, EmptyIdIsRejectedNamingTheField) {
  Result<Key> key = keys::Site("");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(key.status().message(), "id is empty");
  EXPECT_EQ(key.status().where(), "site_id");
}

TEST(KeysTest, IdsOfSixtyFourBytesPassAndLongerOnesAreRejected) {
  EXPECT_TRUE(keys::Study(std::string(64, 'a')).ok());
  Result<Key> key = keys::Study(std::string(65, 'a'));
  EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(key.status().message(), "id is 65 bytes, at most 64 allowed");
  EXPECT_EQ(key.status().where(), "study_id");
}

// A ':' would let an id reach into another key's namespace, e.g. a study
// named "s1:round:3" aliasing round 3 of study s1.
TEST(KeysTest, ColonCannotForgeAnotherKey) {
  Result<Key> forged = keys::Study("s1:round:3");
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(forged.status().message(), "id has a character outside [A-Za-z0-9._-] at offset 2");
  EXPECT_EQ(keys::Round("s1:round", 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(keys::Site("a:b").status().where(), "site_id");
  EXPECT_EQ(keys::ServiceHeartbeat("x:").status().where(), "service");
}

TEST(KeysTest, EveryCharacterOutsideTheAlphabetIsRejectedAtItsOffset) {
  const std::string bad[] = {
      " ", "*", "/", "\\", "?", "[", "{", "\n", std::string("\0", 1), "\xc3\xa9", "\x7f"};
  for (const std::string& c : bad) {
    Result<Key> key = keys::Site("ok" + c);
    EXPECT_EQ(key.status().code(), StatusCode::kInvalidArgument) << "char code " << int(c[0]);
    EXPECT_THAT(key.status().message(), HasSubstr("at offset 2")) << "char code " << int(c[0]);
  }
  EXPECT_TRUE(keys::Site("AZaz09._-").ok());
}

TEST(KeysTest, ValidateIdNamesTheCallersField) {
  Status status = ValidateId("a b", "RegisterSite.site_id");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.where(), "RegisterSite.site_id");
  EXPECT_EQ(status.ToString(),
            "invalid_argument: id has a character outside [A-Za-z0-9._-] at offset 1 (at "
            "RegisterSite.site_id)");
  EXPECT_TRUE(ValidateId("site-7", "RegisterSite.site_id").ok());
}

TEST(KeysTest, DistinctIdsGiveDistinctKeysAcrossKinds) {
  EXPECT_FALSE(*keys::Site("a") == *keys::Study("a"));
  EXPECT_FALSE(*keys::Study("a") == *keys::Round("a", 0));
  EXPECT_FALSE(*keys::Round("a", 1) == *keys::Round("a", 10));
  EXPECT_TRUE(*keys::Site("a") == *keys::Site("a"));
}

TEST(KeysTest, InstitutionKeysAreSpelledAndValidated) {
  EXPECT_EQ(keys::Institution("inst-a")->str(), "fedrx:institution:inst-a");
  EXPECT_EQ(keys::InstitutionIndex().str(), "fedrx:institutions");
  EXPECT_EQ(keys::AuditStream().str(), "fedrx:audit");
  EXPECT_EQ(keys::Institution("a:b").status().where(), "institution_id");
  // A Z85 key may contain ':'; it is fixed-length at the end of its own prefix.
  const std::string z85 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  ASSERT_TRUE(keys::InstitutionByKey(z85).ok()) << keys::InstitutionByKey(z85).status();
  EXPECT_EQ(keys::InstitutionByKey(z85)->str(), "fedrx:institution-key:" + z85);
  EXPECT_EQ(keys::InstitutionByKey(z85.substr(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(keys::InstitutionByKey(std::string(40, ' ')).status().where(), "public_key");
  EXPECT_EQ(keys::InstitutionByKey(z85 + "x").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::core
