// `fedrx --gateway ...`: the administration commands as admin.fbs messages to
// a scripted gateway on the in-memory bus (what is sent, how each reply is
// checked and shown), the bus options of a CURVE connection, and
// `fedrx keys public`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/cli.h"
#include "services/core/curve_keys.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "tests/cli/scripted_gateway.h"
#include "tests/support/child_process.h"

namespace fedrx::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using testing::kGateway;

core::CurveKeyPair NewKeyPair() {
  core::Result<core::CurveKeyPair> pair = core::GenerateCurveKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status();
  return pair.ok() ? *pair : core::CurveKeyPair{};
}

codec::InstitutionInfo Info(const std::string& id, const std::string& role,
                            const std::string& status, const std::string& key) {
  return codec::InstitutionInfo{id, "Name of " + id, role, status, key, 1764000000000, 0};
}

// A gateway that records every request and answers with `answer`.
class CliGatewayTest : public testing::ScriptedGatewayTest {
 protected:
  CliGatewayTest() { key_file_ = "admin.key"; }
};

TEST_F(CliGatewayTest, EnrolSendsTheRequestAndWritesTheReturnedKeyPair0600) {
  const core::CurveKeyPair pair = NewKeyPair();
  answer = [&](const codec::Body& body) -> core::Result<codec::Body> {
    const auto& e = std::get<codec::EnrolInstitution>(body);
    return codec::Body(
        codec::InstitutionEnrolled{Info(e.id, e.role, "active", pair.public_key), pair.secret_key});
  };
  const std::string key_out = Path("hospital-b.key");
  ASSERT_EQ(Run({"institutions", "enrol", "--id", "hospital-b", "--name", "Hospital B", "--role",
                 "site", "--key-out", key_out}),
            0)
      << err_.str();

  ASSERT_EQ(requests_.size(), 1u);
  const auto& sent = std::get<codec::EnrolInstitution>(requests_[0]);
  EXPECT_EQ(sent.id, "hospital-b");
  EXPECT_EQ(sent.name, "Hospital B");
  EXPECT_EQ(sent.role, "site");

  struct stat st {};
  ASSERT_EQ(::stat(key_out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  core::Result<core::CurveKeyPair> written = core::LoadCurveKeyPair(key_out);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->public_key, pair.public_key);
  EXPECT_EQ(written->secret_key, pair.secret_key);
  EXPECT_THAT(out_.str(), HasSubstr("hospital-b enrolled as site; public key " + pair.public_key));
  EXPECT_THAT(out_.str() + err_.str(), Not(HasSubstr(pair.secret_key)));
}

TEST_F(CliGatewayTest, EnrolRefusesAnExistingKeyFileBeforeAsking) {
  const std::string key_out = Path("exists.key");
  std::ofstream(key_out) << "keep me\n";
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "a", "--name", "A", "--role", "site", "--key-out",
                 key_out}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("refusing to overwrite"));
  EXPECT_TRUE(requests_.empty());
  std::ifstream kept(key_out);
  std::string line;
  std::getline(kept, line);
  EXPECT_EQ(line, "keep me");
}

TEST_F(CliGatewayTest, EnrolRefusesBadFlagsBeforeAsking) {
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "a b", "--name", "A", "--role", "site",
                 "--key-out", Path("a.key")}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("--id"));
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "a", "--name", "A", "--role", "root", "--key-out",
                 Path("a.key")}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("--role"));
  EXPECT_TRUE(requests_.empty());
}

TEST_F(CliGatewayTest, EnrolRefusesAReplyWhoseKeysDoNotBelongTogether) {
  const core::CurveKeyPair pair = NewKeyPair();
  const core::CurveKeyPair other = NewKeyPair();
  answer = [&](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(
        codec::InstitutionEnrolled{Info("a", "site", "active", other.public_key), pair.secret_key});
  };
  const std::string key_out = Path("a.key");
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "a", "--name", "A", "--role", "site", "--key-out",
                 key_out}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("does not belong"));
  EXPECT_THAT(err_.str(), HasSubstr("revoke it"));
  EXPECT_THAT(err_.str(), Not(HasSubstr(pair.secret_key)));
  struct stat st {};
  EXPECT_NE(::stat(key_out.c_str(), &st), 0);
}

TEST_F(CliGatewayTest, EnrolRefusesAReplyForAnotherInstitution) {
  const core::CurveKeyPair pair = NewKeyPair();
  answer = [&](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(codec::InstitutionEnrolled{
        Info("someone-else", "site", "active", pair.public_key), pair.secret_key});
  };
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "a", "--name", "A", "--role", "site", "--key-out",
                 Path("a.key")}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("InstitutionEnrolled.institution.id"));
}

TEST_F(CliGatewayTest, TheGatewaysRefusalIsReportedWithWhatAndWhere) {
  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return core::Status(core::StatusCode::kPermissionDenied,
                        "role 'scientist' may not send ListInstitutions", "identity.role");
  };
  EXPECT_EQ(Run({"institutions", "list"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("permission_denied"));
  EXPECT_THAT(err_.str(), HasSubstr("may not send ListInstitutions"));
  EXPECT_THAT(err_.str(), HasSubstr("identity.role"));
}

TEST_F(CliGatewayTest, ListShowsEveryInstitution) {
  const std::string key_a = NewKeyPair().public_key;
  answer = [&](const codec::Body& body) -> core::Result<codec::Body> {
    EXPECT_TRUE(std::holds_alternative<codec::ListInstitutions>(body));
    return codec::Body(codec::InstitutionList{
        {Info("admin-1", "admin", "active", key_a), Info("cro-c", "site", "suspended", key_a)}});
  };
  ASSERT_EQ(Run({"institutions", "list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("admin-1"));
  EXPECT_THAT(out_.str(), HasSubstr("suspended"));
  EXPECT_THAT(out_.str(), HasSubstr(key_a));
  EXPECT_THAT(out_.str(), HasSubstr("2 institution(s)"));
}

// The study report of a DP study ends with the privacy spent: the epsilon
// the coordinator's accountant charged up to the last closed round.
TEST_F(CliGatewayTest, StudyShowReportsTheEpsilonSpentByADpStudy) {
  codec::StudyInfo info;
  info.study.study_id = "dp-1";
  info.study.rounds = 5;
  info.study.dp_clip_norm = 0.5f;
  info.study.dp_noise_multiplier = 1.25f;
  info.study.dp_delta = 1e-5;
  info.study.dp_epsilon_budget = 8;
  info.state = codec::StudyState::kRunning;
  info.current_round = 3;
  info.model_version = 2;
  for (std::uint32_t r = 1; r <= 3; ++r) {
    codec::RoundSummary round;
    round.round = r;
    round.state = r < 3 ? codec::RoundState::kClosed : codec::RoundState::kTraining;
    if (r < 3) round.metrics = {{"valid_mean_roc_auc", 0.6}, {"privacy_epsilon", 1.5 * r}};
    info.rounds.push_back(round);
  }
  answer = [&](const codec::Body& body) -> core::Result<codec::Body> {
    EXPECT_TRUE(std::holds_alternative<codec::GetStudy>(body));
    return codec::Body(info);
  };
  ASSERT_EQ(Run({"study", "show", "dp-1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("privacy: epsilon 3 spent at delta 1e-05 up to round 2, "
                                    "budget 8 (clip norm 0.5, noise multiplier 1.25)"));

  // A study without DP has no privacy line.
  info.study.dp_clip_norm = 0;
  info.study.dp_noise_multiplier = 0;
  ASSERT_EQ(Run({"study", "show", "dp-1"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), Not(HasSubstr("privacy:")));
}

TEST_F(CliGatewayTest, StatusVerbsSendTheStatusAndShowTheUpdatedRecord) {
  answer = [](const codec::Body& body) -> core::Result<codec::Body> {
    const auto& set = std::get<codec::SetInstitutionStatus>(body);
    return codec::Body(codec::InstitutionList{{Info(set.id, "site", set.status, "")}});
  };
  const std::vector<std::pair<std::string, std::string>> verbs = {
      {"suspend", "suspended"}, {"reactivate", "active"}, {"revoke", "revoked"}};
  for (const auto& [verb, status] : verbs) {
    ASSERT_EQ(Run({"institutions", verb, "cro-c"}), 0) << err_.str();
    const auto& sent = std::get<codec::SetInstitutionStatus>(requests_.back());
    EXPECT_EQ(sent.id, "cro-c");
    EXPECT_EQ(sent.status, status);
    EXPECT_THAT(out_.str(), HasSubstr("institution cro-c is " + status));
  }
}

TEST_F(CliGatewayTest, AStatusReplyForAnotherRecordIsAnError) {
  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(codec::InstitutionList{{Info("other", "site", "suspended", "")}});
  };
  EXPECT_EQ(Run({"institutions", "suspend", "cro-c"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("InstitutionList.institutions"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("is suspended")));
}

TEST_F(CliGatewayTest, AuditVerifyShowsAnIntactTrailAndFailsOnABrokenOne) {
  answer = [](const codec::Body& body) -> core::Result<codec::Body> {
    EXPECT_TRUE(std::holds_alternative<codec::VerifyAudit>(body));
    return codec::Body(codec::AuditReport{true, 12, "1764000000000-3", "ab12", ""});
  };
  ASSERT_EQ(Run({"audit", "verify"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("intact: 12 record(s), last 1764000000000-3 hash ab12"));

  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(codec::AuditReport{false, 4, "", "", "hash mismatch at 1764000000000-5"});
  };
  EXPECT_EQ(Run({"audit", "verify"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("data_loss"));
  EXPECT_THAT(err_.str(), HasSubstr("hash mismatch at 1764000000000-5"));
}

TEST_F(CliGatewayTest, AnUnexpectedReplyTypeIsAnError) {
  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(codec::Ack{"hi"});
  };
  EXPECT_EQ(Run({"audit", "verify"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("unexpected reply Ack"));
}

TEST_F(CliGatewayTest, HealthNamesTheServiceThatAnswered) {
  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return codec::Body(
        codec::HealthStatus{"gateway", false, "0.1.0", 3.0, "coordinator not answering"});
  };
  EXPECT_EQ(Run({"health"}), 1);
  EXPECT_THAT(out_.str(), HasSubstr("gateway 0.1.0: NOT READY (coordinator not answering)"));
  EXPECT_THAT(err_.str(), HasSubstr("gateway is not ready"));
}

class CliBusOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    own_ = NewKeyPair();
    server_ = NewKeyPair();
    key_file_ = dir_.path() + "/admin.key";
    server_file_ = dir_.path() + "/gateway.pub";
    ASSERT_TRUE(core::WriteCurveKeyPair(key_file_, own_).ok());
    ASSERT_TRUE(core::WriteCurvePublicKey(server_file_, server_.public_key).ok());
  }

  fedrx::testing::TempDir dir_;
  core::CurveKeyPair own_, server_;
  std::string key_file_, server_file_;
};

TEST_F(CliBusOptionsTest, GatewayModeIsACurveClientWithTheGivenKeys) {
  auto options = CliBusOptions({"--gateway", "tcp://127.0.0.1:5560", "--key-file", key_file_,
                                "--server-key-file", server_file_, "institutions", "list"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->curve_public_key, own_.public_key);
  EXPECT_EQ(options->curve_secret_key, own_.secret_key);
  EXPECT_EQ(options->curve_server_key, server_.public_key);
  // Through the gateway, administration goes over the bus, not to Redis.
  EXPECT_FALSE(IsAdminCommand({"--gateway", "tcp://127.0.0.1:5560", "--key-file", key_file_,
                               "--server-key-file", server_file_, "institutions", "list"}));
  EXPECT_TRUE(IsAdminCommand({"institutions", "list"}));
}

TEST_F(CliBusOptionsTest, TheGatewaysKeyPairFileServesAsItsPublicKeyFile) {
  const std::string gateway_key = dir_.path() + "/gateway.key";
  ASSERT_TRUE(core::WriteCurveKeyPair(gateway_key, server_).ok());
  auto options = CliBusOptions({"--gateway", "tcp://127.0.0.1:5560", "--key-file", key_file_,
                                "--server-key-file", gateway_key, "health"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->curve_server_key, server_.public_key);
}

TEST_F(CliBusOptionsTest, WithoutGatewayThereAreNoKeys) {
  auto options = CliBusOptions({"--coordinator", "tcp://127.0.0.1:5570", "health"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->curve_public_key.empty());
  EXPECT_TRUE(options->curve_server_key.empty());
}

TEST_F(CliBusOptionsTest, IncompleteOrConflictingFlagsAreRefusedNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string where;
  };
  const std::vector<Case> cases = {
      {{"--gateway", "tcp://g:1", "--server-key-file", server_file_, "health"}, "--key-file"},
      {{"--gateway", "tcp://g:1", "--key-file", key_file_, "health"}, "--server-key-file"},
      {{"--coordinator", "tcp://c:1", "--gateway", "tcp://g:1", "--key-file", key_file_,
        "--server-key-file", server_file_, "health"},
       "--gateway"},
      {{"--key-file", key_file_, "health"}, "--key-file"},
  };
  for (const Case& c : cases) {
    auto options = CliBusOptions(c.args);
    ASSERT_FALSE(options.ok()) << c.where;
    EXPECT_EQ(options.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(options.status().where(), c.where) << options.status();
  }
}

TEST_F(CliBusOptionsTest, BadKeyFilesAreRefusedNamingTheFile) {
  ASSERT_EQ(::chmod(key_file_.c_str(), 0644), 0);
  auto exposed = CliBusOptions({"--gateway", "tcp://g:1", "--key-file", key_file_,
                                "--server-key-file", server_file_, "health"});
  ASSERT_FALSE(exposed.ok());
  EXPECT_EQ(exposed.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(exposed.status().where(), key_file_);

  ASSERT_EQ(::chmod(key_file_.c_str(), 0600), 0);
  const std::string missing = dir_.path() + "/none.pub";
  auto no_server = CliBusOptions(
      {"--gateway", "tcp://g:1", "--key-file", key_file_, "--server-key-file", missing, "health"});
  ASSERT_FALSE(no_server.ok());
  EXPECT_EQ(no_server.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(no_server.status().where(), missing);
}

TEST_F(CliBusOptionsTest, KeysPublicPrintsOrWritesThePublicKey) {
  core::testing::FakeNetwork network;
  core::testing::FakeClock clock;
  core::Metrics metrics{"test"};
  core::testing::FakeBus bus{network, core::BusOptions{"cli"}, metrics, clock};
  std::ostringstream out, err;
  ASSERT_EQ(RunCommand({"keys", "public", key_file_}, bus, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), own_.public_key + "\n");

  const std::string pub = dir_.path() + "/admin.pub";
  ASSERT_EQ(RunCommand({"keys", "public", key_file_, "--out", pub}, bus, out, err), 0) << err.str();
  core::Result<std::string> read = core::LoadCurvePublicKey(pub);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, own_.public_key);
  std::ifstream text(pub);
  std::string all((std::istreambuf_iterator<char>(text)), std::istreambuf_iterator<char>());
  EXPECT_THAT(all, Not(HasSubstr(own_.secret_key)));

  std::ostringstream err2;
  EXPECT_EQ(RunCommand({"keys", "public", dir_.path() + "/absent.key"}, bus, out, err2), 1);
  EXPECT_THAT(err2.str(), HasSubstr("absent.key"));
}

}  // namespace
}  // namespace fedrx::cli
