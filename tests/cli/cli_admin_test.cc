// The `fedrx institutions` and `fedrx audit` commands on the in-memory store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/cli.h"
#include "services/core/curve_keys.h"
#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CliAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fedrx-cli-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Path(const std::string& name) {
    files_.push_back(dir_ + "/" + name);
    return files_.back();
  }
  int Run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return RunAdminCommand(args, store_, clock_, metrics_, out_, err_);
  }

  std::string dir_;
  std::vector<std::string> files_;
  core::testing::FakeStateStore store_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"cli"};
  std::ostringstream out_, err_;
};

TEST_F(CliAdminTest, EnrolWritesAPrivateKeyFileAndNeverPrintsTheSecret) {
  const std::string key_file = Path("inst-a.key");
  ASSERT_EQ(Run({"institutions", "enrol", "--id", "inst-a", "--name", "Institute A", "--role",
                 "site", "--key-out", key_file}),
            0)
      << err_.str();
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  core::Result<core::CurveKeyPair> pair = core::LoadCurveKeyPair(key_file);
  ASSERT_TRUE(pair.ok()) << pair.status();
  ASSERT_TRUE(core::CheckCurveKeyPair(*pair, "key file").ok());
  const std::string public_key = pair->public_key;
  const std::string secret_key = pair->secret_key;
  ASSERT_EQ(public_key.size(), 40u);
  ASSERT_EQ(secret_key.size(), 40u);
  EXPECT_THAT(out_.str(), HasSubstr(public_key));
  EXPECT_THAT(out_.str() + err_.str(), Not(HasSubstr(secret_key)));
  for (const std::string& s : store_.AllStrings()) EXPECT_THAT(s, Not(HasSubstr(secret_key)));

  security::InstitutionRegistry registry(store_, clock_);
  core::Result<security::Institution> found = registry.Lookup(public_key);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, "inst-a");
}

TEST_F(CliAdminTest, EnrolRefusesAnExistingKeyFileBeforeEnrolling) {
  const std::string key_file = Path("exists.key");
  std::ofstream(key_file) << "keep me\n";
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "inst-a", "--name", "A", "--role", "site",
                 "--key-out", key_file}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("refusing to overwrite"));
  security::InstitutionRegistry registry(store_, clock_);
  EXPECT_EQ(registry.Get("inst-a").status().code(), core::StatusCode::kNotFound);
}

TEST_F(CliAdminTest, BadRoleIsAUsageErrorNamingTheFlag) {
  EXPECT_EQ(Run({"institutions", "enrol", "--id", "inst-a", "--name", "A", "--role", "root",
                 "--key-out", Path("x.key")}),
            1);
  EXPECT_THAT(err_.str(), HasSubstr("--role"));
  EXPECT_EQ(store_.KeyCount(), 0u);
}

TEST_F(CliAdminTest, StatusChangesShowInTheListAndEveryActionIsAudited) {
  ASSERT_EQ(Run({"institutions", "enrol", "--id", "inst-a", "--name", "A", "--role", "scientist",
                 "--key-out", Path("a.key")}),
            0)
      << err_.str();
  ASSERT_EQ(Run({"institutions", "suspend", "inst-a"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("inst-a is suspended"));
  ASSERT_EQ(Run({"institutions", "revoke", "inst-a"}), 0) << err_.str();
  EXPECT_EQ(Run({"institutions", "reactivate", "inst-a"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("final"));
  ASSERT_EQ(Run({"institutions", "list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("revoked"));
  EXPECT_THAT(out_.str(), HasSubstr("1 institution(s)"));

  ASSERT_EQ(Run({"audit", "verify"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("intact: 4 record(s)"));
  EXPECT_EQ(metrics_.Read("fedrx_cli_audit_records_total", {{"decision", "admitted"}}), 3);
  EXPECT_EQ(metrics_.Read("fedrx_cli_audit_records_total", {{"decision", "denied"}}), 1);
}

TEST_F(CliAdminTest, AuditVerifyFailsNamingTheBrokenEntry) {
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_EQ(Run({"institutions", "enrol", "--id", id, "--name", id, "--role", "site", "--key-out",
                   Path(std::string(id) + ".key")}),
              0)
        << err_.str();
  }
  core::Result<std::vector<core::StreamEntry>> entries =
      store_.StreamRange(core::keys::AuditStream());
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  ASSERT_TRUE(store_.StreamDelete(core::keys::AuditStream(), (*entries)[1].id));
  EXPECT_EQ(Run({"audit", "verify"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("data_loss"));
  EXPECT_THAT(err_.str(), HasSubstr((*entries)[2].id));
}

TEST_F(CliAdminTest, AKeyedTrailNeedsTheAuditKeyToBeExtendedOrVerified) {
  const std::string audit_key = Path("audit.key");
  ASSERT_TRUE(security::WriteNewAuditKey(audit_key).ok());
  ASSERT_EQ(Run({"institutions", "enrol", "--id", "ops", "--name", "Ops", "--role", "admin",
                 "--key-out", Path("ops.key"), "--audit-key-file", audit_key}),
            0)
      << err_.str();
  EXPECT_EQ(Run({"audit", "verify", "--audit-key-file", audit_key}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("audit trail intact: 1 record(s)"));

  EXPECT_EQ(Run({"audit", "verify"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("needs the audit key"));
  // Without the key the change is made but cannot be recorded: the command fails.
  EXPECT_EQ(Run({"institutions", "suspend", "ops"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("needs the audit key"));
  EXPECT_EQ(Run({"audit", "verify", "--audit-key-file", audit_key}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("audit trail intact: 1 record(s)"));

  EXPECT_EQ(Run({"audit", "verify", "--audit-key-file", Path("missing.key")}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("--audit-key-file"));
}

TEST_F(CliAdminTest, AdminCommandsAreRecognised) {
  EXPECT_TRUE(IsAdminCommand({"institutions", "list"}));
  EXPECT_TRUE(IsAdminCommand({"--redis", "h:1", "audit", "verify"}));
  EXPECT_FALSE(IsAdminCommand({"sites", "list"}));
  EXPECT_EQ(Run({"institutions", "frobnicate"}), 2);
}

}  // namespace
}  // namespace fedrx::cli
