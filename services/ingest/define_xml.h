// CDISC Define-XML 2.0 / 2.1 (the study's metadata: datasets, variables,
// codelists) parsed into plain values. Stateless and reentrant; the result is a
// value type, thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ingest {

// One ItemRef of an ItemGroupDef, resolved to its ItemDef's name.
struct DefineVariable {
  std::string item_oid;
  std::string name;        // the ItemDef's Name
  int order = 0;           // OrderNumber; 0 when absent
  int key_sequence = 0;    // KeySequence; 0 when the variable is not a key
  bool mandatory = false;  // Mandatory="Yes"
};

// One ItemGroupDef: a dataset.
struct DefineDataset {
  std::string oid;
  std::string name;                       // Name, e.g. "DM"
  std::string domain;                     // Domain; may be empty (e.g. SUPP-- in some files)
  std::string class_name;                 // def:Class (2.0 attribute, 2.1 element), e.g. "FINDINGS"
  std::string structure;                  // def:Structure
  std::string purpose;                    // Purpose, e.g. "Tabulation"
  std::string label;                      // Description/TranslatedText
  std::vector<DefineVariable> variables;  // in document order
  // Names of the key variables, ordered by KeySequence.
  std::vector<std::string> keys;
  int line = 0;  // line of the ItemGroupDef in the file
};

// One ItemDef: a variable (shared by the datasets that reference its OID).
struct DefineItem {
  std::string oid;
  std::string name;
  std::string data_type;     // DataType as written: text, integer, float, date, datetime, ...
  int length = 0;            // Length; 0 when absent (dates, times)
  std::string codelist_oid;  // CodeListRef/@CodeListOID; empty when none
  std::string label;
  int line = 0;
};

struct DefineCodeListTerm {
  std::string coded_value;
  std::string decode;  // Decode/TranslatedText for a CodeListItem; empty for EnumeratedItem
};

struct DefineCodeList {
  std::string oid;
  std::string name;
  std::string data_type;
  std::vector<DefineCodeListTerm> terms;  // EnumeratedItems and CodeListItems, in order
  // True when the list refers to an external dictionary (MedDRA, ...) instead of terms.
  bool external = false;
  int line = 0;
};

struct DefineXml {
  std::string source;          // the file (or name) it was parsed from
  std::string define_version;  // def:DefineVersion, e.g. "2.0.0"
  std::string study_oid;       // Study/@OID
  std::string study_name;      // GlobalVariables/StudyName
  std::string protocol_name;   // GlobalVariables/ProtocolName
  std::string standard_name;   // MetaDataVersion/@def:StandardName (2.0), e.g. "SEND-IG"
  std::string standard_version;
  std::vector<DefineDataset> datasets;              // in document order
  std::map<std::string, DefineItem> items;          // by OID
  std::map<std::string, DefineCodeList> codelists;  // by OID

  // The dataset whose Name equals `name` (case-insensitive), or nullptr.
  const DefineDataset* FindDataset(std::string_view name) const;
  // The ItemDef of `variable` of `dataset`, or nullptr.
  const DefineItem* FindItem(const DefineDataset& dataset, std::string_view variable) const;
};

// Limits applied to a define.xml, which is input from outside.
struct DefineXmlOptions {
  std::uint64_t max_bytes = std::uint64_t{64} << 20;
};

// Parses a Define-XML document held in `xml`; `source` names it in errors.
// Errors (kInvalidArgument, `where` is "source:line" and the element):
//   malformed XML; no ODM/Study/MetaDataVersion; an ItemGroupDef, ItemDef,
//   ItemRef, CodeList or term without a required attribute; a non-integer
//   Length/KeySequence/OrderNumber; an ItemRef or CodeListRef naming an OID
//   that is not defined; two definitions with one OID.
core::Result<DefineXml> ParseDefineXml(std::string_view xml, const std::string& source,
                                       const DefineXmlOptions& options = {});

// Reads and parses the file at `path`. Blocks on file I/O. Errors: kNotFound
// when it cannot be opened, kResourceExhausted above options.max_bytes, and
// those of ParseDefineXml.
core::Result<DefineXml> ReadDefineXml(const std::string& path,
                                      const DefineXmlOptions& options = {});

}  // namespace fedrx::ingest
