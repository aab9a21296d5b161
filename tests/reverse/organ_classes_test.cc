// The organ-class table: exactly the 27 SIDER columns, each with SEND
// endpoints or an explicit "none", the canonical rows (hepatobiliary, renal,
// cardiac) carrying the endpoints toxicologists expect, and name/term lookup.
#include "services/reverse/organ_classes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>


namespace fedrx::reverse {
namespace {

// The first line of MoleculeNet's sider.csv (deepchem copy), verbatim (checked against the
// file when the table was written; the data itself is not vendored: CC BY-NC-SA).
constexpr const char* kSiderHeader =
    "smiles,Hepatobiliary disorders,Metabolism and nutrition disorders,Product issues,"
    "Eye disorders,Investigations,Musculoskeletal and connective tissue disorders,"
    "Gastrointestinal disorders,Social circumstances,Immune system disorders,"
    "Reproductive system and breast disorders,\"Neoplasms benign, malignant and unspecified "
    "(incl cysts and polyps)\",General disorders and administration site conditions,"
    "Endocrine disorders,Surgical and medical procedures,Vascular disorders,"
    "Blood and lymphatic system disorders,Skin and subcutaneous tissue disorders,"
    "\"Congenital, familial and genetic disorders\",Infections and infestations,"
    "\"Respiratory, thoracic and mediastinal disorders\",Psychiatric disorders,"
    "Renal and urinary disorders,\"Pregnancy, puerperium and perinatal conditions\","
    "Ear and labyrinth disorders,Cardiac disorders,Nervous system disorders,"
    "\"Injury, poisoning and procedural complications\"";

// Splits one CSV line, honouring double quotes.
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      out.emplace_back();
    } else if (ch != '\r' && ch != '\n') {
      out.back() += ch;
    }
  }
  return out;
}

std::vector<std::string> TableNames() {
  std::vector<std::string> names;
  for (const auto& row : OrganClassTable()) names.push_back(row.name);
  return names;
}

bool HasEndpoint(const OrganClass& row, const std::string& domain, const std::string& code) {
  return std::any_of(row.endpoints.begin(), row.endpoints.end(),
                     [&](const SendEndpoint& e) { return e.domain == domain && e.code == code; });
}

TEST(OrganClassTableTest, HasExactlyTheSiderColumnsInOrder) {
  std::vector<std::string> header = SplitCsv(kSiderHeader);
  ASSERT_EQ(header.front(), "smiles");
  header.erase(header.begin());
  ASSERT_EQ(header.size(), 27u);
  EXPECT_EQ(TableNames(), header);
}

TEST(OrganClassTableTest, EveryRowHasEndpointsOrAnExplicitNone) {
  const std::set<std::string> domains = {"LB", "MI", "OM", "MA", "EG", "VS",
                                         "CL", "BW", "FW", "IS", "TF"};
  for (const auto& row : OrganClassTable()) {
    SCOPED_TRACE(row.name);
    EXPECT_FALSE(row.rationale.empty());
    EXPECT_FALSE(row.reference.empty());
    if (row.endpoints.empty()) {
      EXPECT_FALSE(row.none_reason.empty());
      EXPECT_TRUE(row.assay_prefixes.empty());
    } else {
      EXPECT_TRUE(row.none_reason.empty());
    }
    for (const auto& e : row.endpoints) {
      EXPECT_TRUE(domains.count(e.domain)) << e.domain;
      EXPECT_FALSE(e.code.empty());
      EXPECT_FALSE(e.note.empty());
      if (e.domain == "LB" || e.domain == "EG" || e.domain == "VS") {
        // --TESTCD: at most 8 characters, upper-case letters and digits.
        EXPECT_LE(e.code.size(), 8u) << e.code;
        EXPECT_TRUE(std::all_of(e.code.begin(), e.code.end(), [](char ch) {
          return std::isupper(static_cast<unsigned char>(ch)) ||
                 std::isdigit(static_cast<unsigned char>(ch));
        })) << e.code;
      }
    }
  }
  const std::vector<std::string> none = {"Product issues", "Social circumstances",
                                         "Surgical and medical procedures",
                                         "Injury, poisoning and procedural complications"};
  for (const auto& name : none) {
    const OrganClass* row = FindOrganClass(name);
    ASSERT_NE(row, nullptr) << name;
    EXPECT_FALSE(row->has_preclinical_correlate()) << name;
  }
}

TEST(OrganClassTableTest, CanonicalRowsCarryTheExpectedSendEndpoints) {
  const OrganClass* liver = FindOrganClass("Hepatobiliary disorders");
  ASSERT_NE(liver, nullptr);
  for (const char* code : {"ALT", "AST", "ALP", "BILI", "GGT"}) {
    EXPECT_TRUE(HasEndpoint(*liver, "LB", code)) << code;
  }
  EXPECT_TRUE(HasEndpoint(*liver, "MI", "LIVER"));
  EXPECT_TRUE(HasEndpoint(*liver, "OM", "LIVER"));

  const OrganClass* kidney = FindOrganClass("Renal and urinary disorders");
  ASSERT_NE(kidney, nullptr);
  EXPECT_TRUE(HasEndpoint(*kidney, "LB", "UREAN"));
  EXPECT_TRUE(HasEndpoint(*kidney, "LB", "CREAT"));
  EXPECT_TRUE(HasEndpoint(*kidney, "MI", "KIDNEY"));
  EXPECT_TRUE(HasEndpoint(*kidney, "OM", "KIDNEY"));

  const OrganClass* heart = FindOrganClass("Cardiac disorders");
  ASSERT_NE(heart, nullptr);
  EXPECT_TRUE(HasEndpoint(*heart, "EG", "QTCBAG"));
  EXPECT_TRUE(HasEndpoint(*heart, "VS", "HR"));
  EXPECT_TRUE(HasEndpoint(*heart, "LB", "TROPONI"));
  EXPECT_TRUE(HasEndpoint(*heart, "MI", "HEART"));
}

TEST(OrganClassTableTest, AssayFamiliesMatchByPrefixOnly) {
  const OrganClass* liver = FindOrganClass("Hepatobiliary disorders");
  ASSERT_NE(liver, nullptr);
  EXPECT_TRUE(AssayBearsOn(*liver, "SR-MMP"));
  EXPECT_TRUE(AssayBearsOn(*liver, "APR_Hepat_Apoptosis_24hr_up"));
  EXPECT_FALSE(AssayBearsOn(*liver, "NR-AR"));
  const OrganClass* repro = FindOrganClass("Reproductive system and breast disorders");
  ASSERT_NE(repro, nullptr);
  EXPECT_TRUE(AssayBearsOn(*repro, "NR-AR-LBD"));
  EXPECT_TRUE(AssayBearsOn(*repro, "TOX21_AR_BLA_Agonist_ratio"));
  // TOX21_ARE (oxidative stress) is not the androgen receptor.
  EXPECT_FALSE(AssayBearsOn(*repro, "TOX21_ARE_BLA_agonist_ratio"));
  const OrganClass* heart = FindOrganClass("Cardiac disorders");
  ASSERT_NE(heart, nullptr);
  EXPECT_TRUE(AssayBearsOn(*heart, "NVS_IC_hKhERGCh"));
}

TEST(OrganClassTableTest, LooksUpNamesAndTermsIgnoringCase) {
  const OrganClass* row = FindOrganClass("  hepatobiliary DISORDERS ");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->name, "Hepatobiliary disorders");
  EXPECT_EQ(FindOrganClass("liver"), nullptr);
  EXPECT_EQ(FindOrganClass(""), nullptr);
  ASSERT_NE(OrganClassForTerm("Torsade de Pointes"), nullptr);
  EXPECT_EQ(OrganClassForTerm("Torsade de Pointes")->name, "Cardiac disorders");
  EXPECT_EQ(OrganClassForTerm("JAUNDICE")->name, "Hepatobiliary disorders");
  EXPECT_EQ(OrganClassForTerm("cardiac disorders")->name, "Cardiac disorders");
  EXPECT_EQ(OrganClassForTerm("Alanine aminotransferase increased")->name, "Investigations");
  EXPECT_EQ(OrganClassForTerm("feeling blue on mondays"), nullptr);
  for (const auto& s : AdverseEventSynonyms()) {
    EXPECT_NE(FindOrganClass(s.organ_class), nullptr) << s.term << " -> " << s.organ_class;
  }
}

}  // namespace
}  // namespace fedrx::reverse
