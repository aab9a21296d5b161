#include "services/security/audit_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::security {
namespace {

using core::StatusCode;
using ::testing::HasSubstr;

AuditRecord Record(int i) {
  AuditRecord r;
  r.actor = i % 3 == 0 ? "unauthenticated" : "site-" + std::to_string(i % 7);
  r.role = i % 3 == 0 ? "" : "site";
  r.action = i % 2 == 0 ? "SubmitUpdate" : "GetModel";
  r.decision = i % 3 == 0 ? Decision::kDenied : Decision::kAdmitted;
  r.reason = i % 3 == 0 ? "unknown public key" : "";
  r.message_id = "m-" + std::to_string(i);
  r.bytes = 1000 + static_cast<std::uint64_t>(i);
  if (i % 2 == 0) r.study = "study-1";
  return r;
}

class AuditLogTest : public ::testing::Test {
 protected:
  // Appends `n` records through `log` and returns their ids.
  std::vector<std::string> AppendMany(AuditLog& log, int n, int first = 0) {
    std::vector<std::string> ids;
    for (int i = first; i < first + n; ++i) {
      core::Result<std::string> id = log.Append(Record(i));
      EXPECT_TRUE(id.ok()) << id.status();
      if (id.ok()) ids.push_back(*id);
      clock_.Advance(std::chrono::milliseconds(3));
    }
    return ids;
  }
  std::vector<core::StreamEntry> Entries(const core::Key& stream = core::keys::AuditStream()) {
    core::Result<std::vector<core::StreamEntry>> all = store_.StreamRange(stream);
    EXPECT_TRUE(all.ok()) << all.status();
    return all.ok() ? *all : std::vector<core::StreamEntry>{};
  }

  core::testing::FakeStateStore store_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"test"};
  AuditLog log_{store_, clock_, metrics_};
};

TEST_F(AuditLogTest, AHundredRecordsVerifyWithCountHundred) {
  const std::vector<std::string> ids = AppendMany(log_, 100);
  core::Result<VerifyReport> report = log_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 100u);
  EXPECT_EQ(report->last_id, ids.back());
  EXPECT_EQ(report->last_hash, Entries().back().fields.at("hash"));
  // 34 of 0..99 are multiples of 3: denied.
  EXPECT_EQ(metrics_.Read("fedrx_test_audit_records_total", {{"decision", "denied"}}), 34);
  EXPECT_EQ(metrics_.Read("fedrx_test_audit_records_total", {{"decision", "admitted"}}), 66);
}

TEST_F(AuditLogTest, VerifyPagesThroughMoreEntriesThanOnePage) {
  AppendMany(log_, 2100);
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_).Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 2100u);
}

TEST_F(AuditLogTest, AnEmptyTrailVerifiesWithNoRecords) {
  core::Result<VerifyReport> report = log_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 0u);
  EXPECT_EQ(report->last_id, "");
}

TEST_F(AuditLogTest, EntriesChainAndCarryTheRecordButNoPayload) {
  AppendMany(log_, 3);
  const std::vector<core::StreamEntry> entries = Entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].fields.at("prev"), AuditLog::kGenesis);
  EXPECT_EQ(entries[1].fields.at("prev"), entries[0].fields.at("hash"));
  EXPECT_EQ(entries[2].fields.at("prev"), entries[1].fields.at("hash"));
  EXPECT_EQ(entries[0].fields, (core::FieldMap{{"prev", std::string(AuditLog::kGenesis)},
                                               {"at", std::to_string(clock_.WallMillis() - 9)},
                                               {"actor", "unauthenticated"},
                                               {"role", ""},
                                               {"action", "SubmitUpdate"},
                                               {"decision", "denied"},
                                               {"reason", "unknown public key"},
                                               {"message_id", "m-0"},
                                               {"bytes", "1000"},
                                               {"study", "study-1"},
                                               {"hash", entries[0].fields.at("hash")}}));
  EXPECT_FALSE(entries[1].fields.contains("study"));
}

TEST_F(AuditLogTest, DeletingAnEntryBreaksVerificationAtTheNextOne) {
  const std::vector<std::string> ids = AppendMany(log_, 10);
  ASSERT_TRUE(store_.StreamDelete(core::keys::AuditStream(), ids[4]));
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_).Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), ids[5]);
  EXPECT_THAT(report.status().message(), HasSubstr("missing predecessor"));
  EXPECT_THAT(report.status().message(), HasSubstr(ids[3]));
}

TEST_F(AuditLogTest, DeletingTheFirstEntryIsDetected) {
  const std::vector<std::string> ids = AppendMany(log_, 4);
  ASSERT_TRUE(store_.StreamDelete(core::keys::AuditStream(), ids[0]));
  core::Result<VerifyReport> report = log_.Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), ids[1]);
  EXPECT_THAT(report.status().message(), HasSubstr("first entry"));
}

TEST_F(AuditLogTest, DeletingTheNewestEntryIsDetectedByTheLogThatWroteIt) {
  const std::vector<std::string> ids = AppendMany(log_, 4);
  ASSERT_TRUE(store_.StreamDelete(core::keys::AuditStream(), ids[3]));
  core::Result<VerifyReport> report = log_.Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), ids[3]);
  EXPECT_THAT(report.status().message(), HasSubstr("gone"));
}

TEST_F(AuditLogTest, AForgedEntryWithAWrongPrevIsDetected) {
  AppendMany(log_, 5);
  // A self-consistent entry (its hash matches its fields) that does not
  // chain on the real last entry.
  core::FieldMap forged = Entries().back().fields;
  forged.erase("hash");
  forged["prev"] = std::string(AuditLog::kGenesis);
  forged["actor"] = "site-evil";
  forged["decision"] = "admitted";
  forged["hash"] = *AuditLog::HashOf(forged);
  core::Result<std::string> forged_id = store_.StreamAppend(core::keys::AuditStream(), forged);
  ASSERT_TRUE(forged_id.ok());
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_).Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), *forged_id);
  EXPECT_THAT(report.status().message(), HasSubstr("missing predecessor"));
}

TEST_F(AuditLogTest, AForgedEntryWithTheRightPrevButABadHashIsDetected) {
  AppendMany(log_, 5);
  core::FieldMap forged = Entries().back().fields;
  forged["prev"] = forged.at("hash");
  forged["actor"] = "site-evil";  // the copied hash no longer matches
  core::Result<std::string> forged_id = store_.StreamAppend(core::keys::AuditStream(), forged);
  ASSERT_TRUE(forged_id.ok());
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_).Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), *forged_id);
  EXPECT_THAT(report.status().message(), HasSubstr("hash mismatch"));
}

TEST_F(AuditLogTest, ARewrittenCopyWithOneFieldChangedIsDetected) {
  AppendMany(log_, 6);
  // Streams cannot be edited in place: a rewrite copies the stream.
  const core::Key copy = core::TestKey("audit-copy");
  std::vector<std::string> copied_ids;
  for (core::StreamEntry entry : Entries()) {
    if (copied_ids.size() == 2) entry.fields["actor"] = "site-evil";
    copied_ids.push_back(*store_.StreamAppend(copy, entry.fields));
  }
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_, copy).Verify();
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(report.status().where(), copied_ids[2]);
  EXPECT_THAT(report.status().message(), HasSubstr("hash mismatch"));
}

TEST_F(AuditLogTest, AnUnexpectedFieldIsMalformed) {
  AppendMany(log_, 2);
  core::FieldMap extra = Entries().back().fields;
  extra["payload"] = "weights";
  core::Result<std::string> id = store_.StreamAppend(core::keys::AuditStream(), extra);
  ASSERT_TRUE(id.ok());
  core::Result<VerifyReport> report = AuditLog(store_, clock_, metrics_).Verify();
  EXPECT_EQ(report.status().where(), *id);
  EXPECT_THAT(report.status().message(), HasSubstr("malformed"));
}

TEST_F(AuditLogTest, ANewLogOnTheSameStoreContinuesTheChain) {
  AppendMany(log_, 3);
  const std::string last_hash = Entries().back().fields.at("hash");
  AuditLog restarted(store_, clock_, metrics_);
  const std::vector<std::string> ids = AppendMany(restarted, 2, 3);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(Entries()[3].fields.at("prev"), last_hash);
  core::Result<VerifyReport> report = restarted.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 5u);
}

TEST_F(AuditLogTest, QueuedRecordsChainAndAreWrittenInOneFlush) {
  AppendMany(log_, 2);
  for (int i = 2; i < 12; ++i) ASSERT_TRUE(log_.Enqueue(Record(i)).ok());
  EXPECT_EQ(log_.queued(), 10u);
  EXPECT_EQ(Entries().size(), 2u);  // nothing written before Flush
  ASSERT_TRUE(log_.Flush().ok());
  EXPECT_EQ(log_.queued(), 0u);
  const auto entries = Entries();
  ASSERT_EQ(entries.size(), 12u);
  EXPECT_EQ(entries[2].fields.at("prev"), entries[1].fields.at("hash"));
  EXPECT_EQ(entries[11].fields.at("message_id"), "m-11");
  auto report = AuditLog(store_, clock_, metrics_).Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 12u);
}

TEST_F(AuditLogTest, AFailedFlushLosesOnlyTheQueuedRecordsCountedAndTheChainGoesOn) {
  AppendMany(log_, 2);
  ASSERT_TRUE(log_.Enqueue(Record(2)).ok());
  ASSERT_TRUE(log_.Enqueue(Record(3)).ok());
  store_.SetDown(true);
  EXPECT_EQ(log_.Flush().code(), StatusCode::kUnavailable);
  store_.SetDown(false);
  EXPECT_EQ(metrics_.Read("fedrx_test_audit_records_lost_total"), 2);
  EXPECT_EQ(log_.queued(), 0u);
  AppendMany(log_, 2, 4);
  auto report = log_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 4u);
}

TEST_F(AuditLogTest, AStoreOutageFailsTheAppendAndTheChainStaysWhole) {
  AppendMany(log_, 2);
  store_.SetDown(true);
  EXPECT_EQ(log_.Append(Record(2)).status().code(), StatusCode::kUnavailable);
  store_.SetDown(false);
  EXPECT_EQ(metrics_.Read("fedrx_test_errors_total", {{"component", "audit"}, {"reason", "store"}}),
            1);
  AppendMany(log_, 2, 3);
  core::Result<VerifyReport> report = log_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 4u);
}

TEST_F(AuditLogTest, BadRecordsAreRefusedNamingTheFieldAndWriteNothing) {
  AuditRecord r = Record(1);
  r.actor = "";
  EXPECT_EQ(log_.Append(r).status().where(), "actor");
  r = Record(1);
  r.action = "";
  EXPECT_EQ(log_.Append(r).status().where(), "action");
  r = Record(1);
  r.reason = std::string(1025, 'x');
  EXPECT_EQ(log_.Append(r).status().code(), StatusCode::kInvalidArgument);
  r = Record(1);
  r.study = "";
  EXPECT_EQ(log_.Append(r).status().where(), "study");
  EXPECT_EQ(store_.KeyCount(), 0u);
}

TEST_F(AuditLogTest, AppendRefusesToChainOnABrokenNewestEntry) {
  ASSERT_TRUE(store_.StreamAppend(core::keys::AuditStream(), {{"hash", "not hex"}}).ok());
  core::Result<std::string> id = log_.Append(Record(1));
  EXPECT_EQ(id.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Entries().size(), 1u);
}

TEST_F(AuditLogTest, TheEncodingIsLengthPrefixedSoBytesCannotShiftBetweenFields) {
  core::FieldMap a = {{"prev", std::string(AuditLog::kGenesis)},
                      {"at", "1"},
                      {"actor", "ab"},
                      {"role", "c"},
                      {"action", "x"},
                      {"decision", "denied"},
                      {"reason", ""},
                      {"message_id", ""},
                      {"bytes", "0"}};
  core::FieldMap b = a;
  b["actor"] = "a";
  b["role"] = "bc";
  core::FieldMap with_empty_study = a;
  with_empty_study["study"] = "";
  EXPECT_NE(*AuditLog::HashOf(a), *AuditLog::HashOf(b));
  EXPECT_NE(*AuditLog::HashOf(a), *AuditLog::HashOf(with_empty_study));
  EXPECT_EQ(AuditLog::HashOf(a)->size(), 64u);
  EXPECT_EQ(*AuditLog::HashOf(a), *AuditLog::HashOf(core::FieldMap(a)));
  a.erase("reason");
  EXPECT_EQ(AuditLog::HashOf(a).status().code(), StatusCode::kInvalidArgument);
}

// --- Keyed chain (HMAC-SHA-256) -----------------------------------------------

const std::string kKey(32, '\x5a');

TEST_F(AuditLogTest, AKeyedTrailVerifiesOnlyWithItsKey) {
  ASSERT_TRUE(log_.SetKey(kKey).ok());
  AppendMany(log_, 5);
  for (const auto& entry : Entries()) EXPECT_EQ(entry.fields.at("mac"), "hmac-sha256");
  AuditLog keyed(store_, clock_, metrics_);
  ASSERT_TRUE(keyed.SetKey(kKey).ok());
  auto report = keyed.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 5u);

  auto without = AuditLog(store_, clock_, metrics_).Verify();
  EXPECT_EQ(without.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(without.status().message(), HasSubstr("needs the audit key"));

  AuditLog wrong(store_, clock_, metrics_);
  ASSERT_TRUE(wrong.SetKey(std::string(32, '\x01')).ok());
  auto mismatch = wrong.Verify();
  EXPECT_EQ(mismatch.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(mismatch.status().where(), Entries().front().id);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("hash mismatch"));
}

TEST_F(AuditLogTest, ARecomputedChainWithoutTheKeyIsDetected) {
  ASSERT_TRUE(log_.SetKey(kKey).ok());
  AppendMany(log_, 4);
  // Someone with Redis access but not the key rewrites entry 2 and rebuilds
  // the chain from there with the unkeyed hash (dropping `mac`), or with a
  // guessed key (keeping it).
  for (bool keep_mac : {false, true}) {
    const core::Key copy = core::TestKey(keep_mac ? "forged-mac" : "forged-plain");
    const std::string guessed(32, '\x02');
    std::string prev(AuditLog::kGenesis);
    std::vector<std::string> ids;
    for (core::StreamEntry entry : Entries()) {
      if (ids.size() >= 2) {
        if (ids.size() == 2) entry.fields["actor"] = "site-evil";
        entry.fields["prev"] = prev;
        entry.fields.erase("hash");
        entry.fields.erase("mac");
        entry.fields["hash"] = *AuditLog::HashOf(entry.fields, keep_mac ? &guessed : nullptr);
        if (keep_mac) entry.fields["mac"] = "hmac-sha256";
      }
      prev = entry.fields.at("hash");
      ids.push_back(*store_.StreamAppend(copy, entry.fields));
    }
    AuditLog verifier(store_, clock_, metrics_, copy);
    ASSERT_TRUE(verifier.SetKey(kKey).ok());
    auto report = verifier.Verify();
    EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(report.status().where(), ids[2]);
    EXPECT_THAT(report.status().message(),
                HasSubstr(keep_mac ? "hash mismatch" : "unkeyed entry in a keyed audit trail"));
  }
}

TEST_F(AuditLogTest, AnUnkeyedWriterCannotExtendAKeyedTrail) {
  ASSERT_TRUE(log_.SetKey(kKey).ok());
  AppendMany(log_, 2);
  AuditLog unkeyed(store_, clock_, metrics_);
  auto refused = unkeyed.Append(Record(5));
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("needs the audit key"));
  EXPECT_EQ(Entries().size(), 2u);
}

TEST_F(AuditLogTest, AShortKeyIsRefused) {
  auto s = log_.SetKey("short");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("at least 32 bytes"));
}

TEST(AuditKeyFileTest, AWrittenKeyLoadsBackAndBadFilesAreRefusedNamingTheFile) {
  char dir_template[] = "/tmp/fedrx-audit-key-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/audit.key";
  ASSERT_TRUE(WriteNewAuditKey(path).ok());
  auto key = LoadAuditKey(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->size(), 32u);
  const std::string second = dir + "/second.key";
  ASSERT_TRUE(WriteNewAuditKey(second).ok());
  EXPECT_NE(*LoadAuditKey(second), *key);

  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(LoadAuditKey(path).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(LoadAuditKey(path).status().where(), path);

  const std::string bad = dir + "/bad.key";
  { std::ofstream(bad) << "zz" << std::string(62, '0') << "\n"; }
  ASSERT_EQ(::chmod(bad.c_str(), 0600), 0);
  EXPECT_THAT(LoadAuditKey(bad).status().message(), HasSubstr("not hex"));
  const std::string shorter = dir + "/short.key";
  { std::ofstream(shorter) << "abcd\n"; }
  ASSERT_EQ(::chmod(shorter.c_str(), 0600), 0);
  EXPECT_THAT(LoadAuditKey(shorter).status().message(), HasSubstr("at least 64 hex digits"));
  EXPECT_EQ(LoadAuditKey(dir + "/none.key").status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedrx::security
