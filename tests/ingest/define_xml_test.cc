#include "services/ingest/define_xml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "services/ingest/study_folder.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::DataDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::WriteBytes;

std::string PointCrossDefine() {
  return DataDir("send_pointcross_pc201708_define") + "/define.xml";
}

TEST(IngestDefineXmlTest, ReadsPointCrossStudyDatasetsItemsAndCodelists) {
  const auto define = ReadDefineXml(PointCrossDefine());
  ASSERT_TRUE(define.ok()) << define.status();
  EXPECT_EQ(define->study_oid, "PC201708");
  EXPECT_EQ(define->study_name, "PC201708");
  EXPECT_EQ(define->protocol_name, "PC201708");
  EXPECT_EQ(define->define_version, "2.0.0");
  EXPECT_EQ(define->standard_name, "SEND-IG");
  EXPECT_EQ(define->standard_version, "3.0");
  EXPECT_EQ(define->datasets.size(), 28u);
  EXPECT_EQ(define->items.size(), 312u);
  EXPECT_EQ(define->codelists.size(), 49u);
  std::size_t refs = 0;
  for (const DefineDataset& d : define->datasets) refs += d.variables.size();
  EXPECT_EQ(refs, 362u);  // grep -c "<ItemRef" define.xml

  const DefineDataset* dm = define->FindDataset("dm");
  ASSERT_NE(dm, nullptr);
  EXPECT_EQ(dm->name, "DM");
  EXPECT_EQ(dm->domain, "DM");
  EXPECT_EQ(dm->class_name, "Special Purpose");
  EXPECT_EQ(dm->structure, "One record per subject");
  EXPECT_EQ(dm->label, "Demographics");
  EXPECT_EQ(dm->line, 91);
  EXPECT_THAT(dm->keys, ElementsAre("STUDYID", "USUBJID"));
  EXPECT_EQ(dm->variables.size(), 12u);
  EXPECT_EQ(dm->variables[2].name, "USUBJID");
  EXPECT_EQ(dm->variables[2].order, 3);
  EXPECT_EQ(dm->variables[2].key_sequence, 2);
  EXPECT_TRUE(dm->variables[2].mandatory);

  const DefineDataset* bw = define->FindDataset("BW");
  ASSERT_NE(bw, nullptr);
  EXPECT_EQ(bw->class_name, "Findings");
  EXPECT_THAT(bw->keys, ElementsAre("STUDYID", "USUBJID", "BWTESTCD", "BWDTC"));
  const DefineItem* testcd = define->FindItem(*bw, "BWTESTCD");
  ASSERT_NE(testcd, nullptr);
  EXPECT_EQ(testcd->oid, "IT.BW.BWTESTCD");
  EXPECT_EQ(testcd->data_type, "text");
  EXPECT_EQ(testcd->length, 6);
  EXPECT_EQ(testcd->label, "Test Short Name");
  EXPECT_EQ(testcd->line, 1149);
  ASSERT_EQ(testcd->codelist_oid, "CL.BWTESTCD.7642");
  const DefineCodeList& codes = define->codelists.at(testcd->codelist_oid);
  EXPECT_EQ(codes.name, "Body Weight Test Code");
  ASSERT_EQ(codes.terms.size(), 2u);
  EXPECT_EQ(codes.terms[0].coded_value, "BW");
  EXPECT_EQ(codes.terms[1].coded_value, "TERMBW");
  EXPECT_FALSE(codes.external);

  const DefineItem* rfstdtc = define->FindItem(*dm, "RFSTDTC");
  ASSERT_NE(rfstdtc, nullptr);
  EXPECT_EQ(rfstdtc->data_type, "datetime");
  EXPECT_EQ(rfstdtc->length, 0);  // no Length attribute
  EXPECT_EQ(define->FindItem(*dm, "BWTESTCD"), nullptr);
  EXPECT_EQ(define->FindDataset("LBCH"), nullptr);
}

// A small Define-XML 2.1 document: def:Class as an element, def:Standards,
// CodeListItems with decodes, an external dictionary.
constexpr const char* kDefine21 = R"(<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:def="http://www.cdisc.org/ns/def/v2.1">
  <Study OID="S.X1">
    <GlobalVariables><StudyName>X1</StudyName><StudyDescription>d</StudyDescription><ProtocolName>P-X1</ProtocolName></GlobalVariables>
    <MetaDataVersion OID="MDV.1" Name="m" def:DefineVersion="2.1.0">
      <def:Standards>
        <def:Standard OID="STD.1" Name="SDTMIG" Type="IG" Version="3.3"/>
        <def:Standard OID="STD.2" Name="CDISC/NCI" Type="CT" Version="2021-12-17"/>
      </def:Standards>
      <ItemGroupDef OID="IG.AE" Name="AE" Domain="AE" Repeating="Yes" Purpose="Tabulation" def:Structure="One record per adverse event per subject">
        <Description><TranslatedText xml:lang="en">Adverse Events</TranslatedText></Description>
        <ItemRef ItemOID="IT.AE.AESEQ" OrderNumber="2" KeySequence="2" Mandatory="Yes"/>
        <ItemRef ItemOID="IT.USUBJID" OrderNumber="1" KeySequence="1" Mandatory="Yes"/>
        <ItemRef ItemOID="IT.AE.AESEV" OrderNumber="3" Mandatory="No"/>
        <ItemRef ItemOID="IT.AE.AEDECOD" OrderNumber="4" Mandatory="Yes"/>
        <def:Class Name="EVENTS"/>
      </ItemGroupDef>
      <ItemDef OID="IT.USUBJID" Name="USUBJID" DataType="text" Length="20"/>
      <ItemDef OID="IT.AE.AESEQ" Name="AESEQ" DataType="integer" Length="8"/>
      <ItemDef OID="IT.AE.AESEV" Name="AESEV" DataType="text" Length="8">
        <CodeListRef CodeListOID="CL.AESEV"/>
      </ItemDef>
      <ItemDef OID="IT.AE.AEDECOD" Name="AEDECOD" DataType="text" Length="200">
        <CodeListRef CodeListOID="CL.MEDDRA"/>
      </ItemDef>
      <CodeList OID="CL.AESEV" Name="Severity" DataType="text">
        <CodeListItem CodedValue="MILD"><Decode><TranslatedText>Mild</TranslatedText></Decode></CodeListItem>
        <CodeListItem CodedValue="SEVERE"><Decode><TranslatedText>Severe</TranslatedText></Decode></CodeListItem>
      </CodeList>
      <CodeList OID="CL.MEDDRA" Name="MedDRA" DataType="text">
        <ExternalCodeList Dictionary="MEDDRA" Version="24.0"/>
      </CodeList>
    </MetaDataVersion>
  </Study>
</ODM>
)";

TEST(IngestDefineXmlTest, ReadsDefine21ClassElementStandardsAndDecodes) {
  const auto define = ParseDefineXml(kDefine21, "crafted.xml");
  ASSERT_TRUE(define.ok()) << define.status();
  EXPECT_EQ(define->study_oid, "S.X1");
  EXPECT_EQ(define->protocol_name, "P-X1");
  EXPECT_EQ(define->define_version, "2.1.0");
  EXPECT_EQ(define->standard_name, "SDTMIG");
  EXPECT_EQ(define->standard_version, "3.3");
  ASSERT_EQ(define->datasets.size(), 1u);
  const DefineDataset& ae = define->datasets[0];
  EXPECT_EQ(ae.class_name, "EVENTS");
  EXPECT_EQ(ae.line, 10);
  EXPECT_THAT(ae.keys, ElementsAre("USUBJID", "AESEQ"));
  const DefineCodeList& sev = define->codelists.at("CL.AESEV");
  ASSERT_EQ(sev.terms.size(), 2u);
  EXPECT_EQ(sev.terms[1].coded_value, "SEVERE");
  EXPECT_EQ(sev.terms[1].decode, "Severe");
  EXPECT_TRUE(define->codelists.at("CL.MEDDRA").external);
  EXPECT_EQ(define->FindItem(ae, "AESEQ")->data_type, "integer");
}

TEST(IngestDefineXmlTest, MalformedXmlNamesFileAndLine) {
  const auto define =
      ParseDefineXml("<ODM>\n<Study OID=\"S\">\n<MetaDataVersion>\n</Study>\n</ODM>", "bad.xml");
  ASSERT_FALSE(define.ok());
  EXPECT_EQ(define.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(define.status().message(), HasSubstr("malformed XML"));
  EXPECT_EQ(define.status().where(), "bad.xml:4");

  const auto empty = ParseDefineXml("", "empty.xml");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().where(), HasSubstr("empty.xml"));
}

TEST(IngestDefineXmlTest, MissingStructureIsAnError) {
  const auto not_odm = ParseDefineXml("<Define/>", "a.xml");
  ASSERT_FALSE(not_odm.ok());
  EXPECT_THAT(not_odm.status().message(), HasSubstr("root element is not ODM"));

  const auto no_study = ParseDefineXml("<ODM/>", "b.xml");
  ASSERT_FALSE(no_study.ok());
  EXPECT_THAT(no_study.status().message(), HasSubstr("no Study"));
  EXPECT_EQ(no_study.status().where(), "b.xml:1 <ODM>");

  const auto no_mdv = ParseDefineXml("<ODM><Study OID=\"S\"/></ODM>", "c.xml");
  ASSERT_FALSE(no_mdv.ok());
  EXPECT_THAT(no_mdv.status().message(), HasSubstr("no MetaDataVersion"));
}

std::string WithMetadata(const std::string& body) {
  return "<ODM xmlns:def=\"http://www.cdisc.org/ns/def/v2.0\">\n<Study OID=\"S\">\n"
         "<MetaDataVersion OID=\"M\">\n" +
         body + "</MetaDataVersion>\n</Study>\n</ODM>\n";
}

TEST(IngestDefineXmlTest, MissingAttributesNameTheElementAndLine) {
  const auto no_type =
      ParseDefineXml(WithMetadata("<ItemDef OID=\"IT.A\" Name=\"A\" Length=\"8\"/>\n"
                                  "<ItemDef OID=\"IT.B\" Name=\"B\"/>\n"),
                     "d.xml");
  ASSERT_FALSE(no_type.ok());
  EXPECT_EQ(no_type.status().message(), "ItemDef has no DataType attribute");
  EXPECT_EQ(no_type.status().where(), "d.xml:4 <ItemDef>");

  const auto bad_length = ParseDefineXml(
      WithMetadata("<ItemDef OID=\"IT.A\" Name=\"A\" DataType=\"text\" Length=\"eight\"/>\n"),
      "e.xml");
  ASSERT_FALSE(bad_length.ok());
  EXPECT_EQ(bad_length.status().message(), "Length is not a non-negative integer");
  EXPECT_EQ(bad_length.status().where(), "e.xml:4 <ItemDef>");

  const auto no_name = ParseDefineXml(WithMetadata("<ItemGroupDef OID=\"IG.X\"/>\n"), "f.xml");
  ASSERT_FALSE(no_name.ok());
  EXPECT_EQ(no_name.status().message(), "ItemGroupDef has no Name attribute");

  const auto no_coded_value = ParseDefineXml(
      WithMetadata("<CodeList OID=\"CL\" Name=\"n\" DataType=\"text\">\n"
                   "<EnumeratedItem CodedValue=\"A\"/>\n<EnumeratedItem/>\n</CodeList>\n"),
      "g.xml");
  ASSERT_FALSE(no_coded_value.ok());
  EXPECT_EQ(no_coded_value.status().message(), "EnumeratedItem has no CodedValue attribute");
  EXPECT_EQ(no_coded_value.status().where(), "g.xml:6 <EnumeratedItem>");
}

TEST(IngestDefineXmlTest, DanglingReferencesAndDuplicateOidsAreErrors) {
  const auto dangling_ref = ParseDefineXml(
      WithMetadata("<ItemGroupDef OID=\"IG.DM\" Name=\"DM\">\n<ItemRef ItemOID=\"IT.NOPE\"/>\n"
                   "</ItemGroupDef>\n"),
      "h.xml");
  ASSERT_FALSE(dangling_ref.ok());
  EXPECT_THAT(dangling_ref.status().message(), HasSubstr("undefined ItemDef IT.NOPE"));
  EXPECT_EQ(dangling_ref.status().where(), "h.xml:5 <ItemRef>");

  const auto dangling_codelist =
      ParseDefineXml(WithMetadata("<ItemDef OID=\"IT.A\" Name=\"A\" DataType=\"text\">\n"
                                  "<CodeListRef CodeListOID=\"CL.NOPE\"/>\n</ItemDef>\n"),
                     "i.xml");
  ASSERT_FALSE(dangling_codelist.ok());
  EXPECT_THAT(dangling_codelist.status().message(), HasSubstr("undefined CodeList CL.NOPE"));
  EXPECT_EQ(dangling_codelist.status().where(), "i.xml:4 <ItemDef>");

  const auto duplicate =
      ParseDefineXml(WithMetadata("<ItemDef OID=\"IT.A\" Name=\"A\" DataType=\"text\"/>\n"
                                  "<ItemDef OID=\"IT.A\" Name=\"B\" DataType=\"text\"/>\n"),
                     "j.xml");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().message(), "two ItemDefs have OID IT.A");
  EXPECT_EQ(duplicate.status().where(), "j.xml:5 <ItemDef>");
}

TEST(IngestDefineXmlTest, FileErrorsAndSizeLimit) {
  ScratchDir dir;
  EXPECT_EQ(ReadDefineXml(dir.File("absent.xml")).status().code(), core::StatusCode::kNotFound);
  DefineXmlOptions small;
  small.max_bytes = 1000;
  const auto big = ReadDefineXml(PointCrossDefine(), small);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseDefineXml(kDefine21, "x", small).status().code(),
            core::StatusCode::kResourceExhausted);
}

TEST(IngestDefineXmlTest, StudyFolderParsesItsDefineOrKeepsTheError) {
  ScratchDir good;
  const std::string send = DataDir("send_pointcross_pc201708");
  std::filesystem::copy_file(send + "/dm.xpt", good.File("dm.xpt"));
  std::filesystem::copy_file(PointCrossDefine(), good.File("define.xml"));
  const auto study = ReadStudyFolder(good.path().string());
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_TRUE(study->has_define_xml);
  ASSERT_TRUE(study->define.has_value());
  EXPECT_EQ(study->define->study_oid, "PC201708");
  EXPECT_TRUE(study->define_error.empty());

  ScratchDir bad;
  std::filesystem::copy_file(send + "/dm.xpt", bad.File("dm.xpt"));
  WriteBytes(bad.File("define.xml"), "<ODM>\n<Study>");
  const auto bad_study = ReadStudyFolder(bad.path().string());
  ASSERT_TRUE(bad_study.ok()) << bad_study.status();  // the datasets still load
  EXPECT_TRUE(bad_study->has_define_xml);
  EXPECT_FALSE(bad_study->define.has_value());
  EXPECT_THAT(bad_study->define_error, HasSubstr("malformed XML"));
  EXPECT_THAT(bad_study->define_error, HasSubstr("define.xml:2"));
}

}  // namespace
}  // namespace fedrx::ingest
