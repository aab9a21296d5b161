// StaticAuthenticator (the authorised clients file) and the public-key files
// of curve_keys.h (LoadCurvePublicKey, WriteCurvePublicKey).
#include "services/core/static_authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "services/core/curve_keys.h"
#include "tests/support/child_process.h"

namespace fedrx::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CurveKeyPair NewKeyPair() {
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : CurveKeyPair{};
}

class StaticAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    gateway_ = NewKeyPair();
    second_ = NewKeyPair();
  }

  std::string WriteFile(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  fedrx::testing::TempDir dir_;
  CurveKeyPair gateway_;
  CurveKeyPair second_;
};

TEST_F(StaticAuthenticatorTest, ListedKeysGetTheirIdAndRoleOthersAreDenied) {
  auto auth = StaticAuthenticator::Parse(
      "# platform services\n"
      "\n"
      "gateway-1 gateway " +
          gateway_.public_key +
          "\n"
          "\tops-console\tadmin   " +
          second_.public_key + "  \r\n",
      "clients");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->size(), 2u);

  Result<Identity> gw = (*auth)->Authenticate(gateway_.public_key);
  ASSERT_TRUE(gw.ok()) << gw.status();
  EXPECT_EQ(gw->id, "gateway-1");
  EXPECT_EQ(gw->role, "gateway");
  Result<Identity> ops = (*auth)->Authenticate(second_.public_key);
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ(ops->id, "ops-console");
  EXPECT_EQ(ops->role, "admin");

  Result<Identity> stranger = (*auth)->Authenticate(NewKeyPair().public_key);
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.status().code(), StatusCode::kPermissionDenied);
  // A secret key is not a public key that happens to be listed.
  EXPECT_FALSE((*auth)->Authenticate(gateway_.secret_key).ok());
  EXPECT_FALSE((*auth)->Authenticate("").ok());
}

TEST_F(StaticAuthenticatorTest, AnIdMayHoldSeveralKeysForRotation) {
  auto auth = StaticAuthenticator::Parse(
      "gw gateway " + gateway_.public_key + "\ngw gateway " + second_.public_key + "\n", "clients");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->Authenticate(gateway_.public_key)->id, "gw");
  EXPECT_EQ((*auth)->Authenticate(second_.public_key)->id, "gw");
}

TEST_F(StaticAuthenticatorTest, MalformedLinesAreRefusedNamingFileAndLine) {
  struct Case {
    std::string line;
    std::string expect;  // in the message
  };
  const std::string key = gateway_.public_key;
  const std::vector<Case> cases = {
      {"gw gateway", "found 2 field(s)"},
      {"gw gateway " + key + " extra", "found 4 field(s)"},
      {"gw/1 gateway " + key, "(client id)"},
      {"gw gate:way " + key, "(role)"},
      {"gw gateway " + key.substr(0, 39), "(public key)"},
      {"gw gateway " + key.substr(0, 39) + "\"", "not valid Z85"},
  };
  for (const Case& c : cases) {
    auto auth = StaticAuthenticator::Parse(
        "# header\nok gateway " + second_.public_key + "\n" + c.line + "\n", "clients.txt");
    ASSERT_FALSE(auth.ok()) << c.line;
    EXPECT_EQ(auth.status().code(), StatusCode::kInvalidArgument) << c.line;
    EXPECT_THAT(auth.status().ToString(), HasSubstr("clients.txt:3")) << auth.status();
    EXPECT_THAT(auth.status().ToString(), HasSubstr(c.expect)) << auth.status();
  }
}

TEST_F(StaticAuthenticatorTest, ABadKeyIsNeverQuotedInTheError) {
  // One character off a valid key: still 40 characters, not valid Z85.
  std::string bad = gateway_.public_key;
  bad[7] = '"';
  auto auth = StaticAuthenticator::Parse("gw gateway " + bad + "\n", "clients");
  ASSERT_FALSE(auth.ok());
  EXPECT_THAT(auth.status().ToString(), Not(HasSubstr(bad)));
}

TEST_F(StaticAuthenticatorTest, ADuplicateKeyNamesTheFirstLine) {
  auto auth = StaticAuthenticator::Parse(
      "a gateway " + gateway_.public_key + "\n#\nb admin " + gateway_.public_key + "\n", "clients");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(auth.status().ToString(), HasSubstr("clients:3"));
  EXPECT_THAT(auth.status().ToString(), HasSubstr("already listed on line 1"));
}

TEST_F(StaticAuthenticatorTest, AFileNamingNobodyIsRefused) {
  auto auth = StaticAuthenticator::Parse("# nobody yet\n\n", "clients");
  ASSERT_FALSE(auth.ok());
  EXPECT_EQ(auth.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(auth.status().ToString(), HasSubstr("no authorised client"));
}

TEST_F(StaticAuthenticatorTest, LoadReadsTheFileAndRefusesMissingOrWorldWritableOnes) {
  const std::string path = WriteFile("clients", "gw gateway " + gateway_.public_key + "\n");
  auto auth = StaticAuthenticator::Load(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->Authenticate(gateway_.public_key)->role, "gateway");

  auto missing = StaticAuthenticator::Load(dir_.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().ToString(), HasSubstr(dir_.path() + "/nope"));

  const std::string open = WriteFile("open", "gw gateway " + gateway_.public_key + "\n", 0666);
  auto writable = StaticAuthenticator::Load(open);
  ASSERT_FALSE(writable.ok());
  EXPECT_EQ(writable.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(writable.status().ToString(), HasSubstr("chmod o-w"));

  auto directory = StaticAuthenticator::Load(dir_.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), StatusCode::kInvalidArgument);

  const std::string bad = WriteFile("bad", "\n\ngw gateway short\n");
  auto parsed = StaticAuthenticator::Load(bad);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().ToString(), HasSubstr(bad + ":3"));
}

class CurvePublicKeyFileTest : public StaticAuthenticatorTest {};

TEST_F(CurvePublicKeyFileTest, WrittenPublicKeyLoadsBackAndIsWorldReadable) {
  const std::string path = dir_.path() + "/server.pub";
  ASSERT_TRUE(WriteCurvePublicKey(path, gateway_.public_key).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644);
  Result<std::string> key = LoadCurvePublicKey(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, gateway_.public_key);
  // Not a key pair: the pair loader refuses it.
  EXPECT_FALSE(LoadCurveKeyPair(path).ok());
}

TEST_F(CurvePublicKeyFileTest, AKeyPairFileGivesItsPublicKeyUnderThePairRules) {
  const std::string path = dir_.path() + "/server.key";
  ASSERT_TRUE(WriteCurveKeyPair(path, gateway_).ok());
  Result<std::string> key = LoadCurvePublicKey(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, gateway_.public_key);

  // A pair file readable by others is refused even when only its public half is wanted.
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  Result<std::string> exposed = LoadCurvePublicKey(path);
  ASSERT_FALSE(exposed.ok());
  EXPECT_EQ(exposed.status().code(), StatusCode::kPermissionDenied);

  // And a pair whose halves do not belong together.
  const std::string mixed = WriteFile(
      "mixed.key", "public = " + second_.public_key + "\nsecret = " + gateway_.secret_key + "\n",
      0600);
  Result<std::string> foreign = LoadCurvePublicKey(mixed);
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(foreign.status().ToString(), HasSubstr("does not belong"));
}

TEST_F(CurvePublicKeyFileTest, BadPublicKeyFilesAreRefusedNamingFileAndLine) {
  const std::string empty = WriteFile("empty.pub", "# nothing\n");
  Result<std::string> none = LoadCurvePublicKey(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().ToString(), HasSubstr("no `public = ...` line"));

  const std::string shorter = WriteFile("short.pub", "\npublic = abc\n");
  Result<std::string> bad = LoadCurvePublicKey(shorter);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().ToString(), HasSubstr(shorter + ":2"));

  const std::string bare = WriteFile("bare.pub", gateway_.public_key + "\n");
  Result<std::string> unnamed = LoadCurvePublicKey(bare);
  ASSERT_FALSE(unnamed.ok());
  EXPECT_THAT(unnamed.status().ToString(), HasSubstr(bare + ":1"));

  Result<std::string> missing = LoadCurvePublicKey(dir_.path() + "/absent.pub");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  EXPECT_EQ(WriteCurvePublicKey(dir_.path() + "/x.pub", "not a key").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::core
