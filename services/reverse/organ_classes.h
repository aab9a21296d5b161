// The organ-class table of reverse translation: for each of the 27 SIDER
// side-effect columns (MedDRA system organ classes), the SEND domains and
// endpoints to study in vivo and the Tox21/ToxCast assay families that bear on
// it, with the rationale. Constant data; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fedrx::reverse {

// One in-vivo endpoint in SEND terms. `domain` is the SEND domain ("LB", "MI",
// "OM", "MA", "EG", "VS", "CL", "BW", "FW", "IS", "TF"); `code` is the
// controlled-terminology value that selects it within the domain: the test
// code for LB/EG/VS/BW/FW/IS (LBTESTCD "ALT", EGTESTCD "QTCBAG", VSTESTCD "HR"),
// the specimen for MI/OM/MA/TF (MISPEC "LIVER", "GLAND, THYROID"), and for CL
// the test code ("CS" clinical signs, "OP" ophthalmology).
struct SendEndpoint {
  std::string domain;
  std::string code;
  std::string note;  // what it shows, e.g. "hepatocellular injury"
};

struct OrganClass {
  // Exactly the SIDER column header as MoleculeNet's sider.csv spells it.
  std::string name;
  // Empty when the class has no well-established preclinical correlate;
  // `none_reason` then says why.
  std::vector<SendEndpoint> endpoints;
  // Assay-name prefixes of the Tox21 panel ("SR-MMP") and ToxCast end-points
  // ("TOX21_MMP", "APR_Hepat") whose biology bears on the class. May be empty.
  std::vector<std::string> assay_prefixes;
  std::string rationale;  // short phrase
  std::string reference;  // guideline or paper behind the mapping
  std::string none_reason;

  bool has_preclinical_correlate() const { return !endpoints.empty(); }
};

// The 27 rows, in the order of sider.csv's columns.
const std::vector<OrganClass>& OrganClassTable();

// The row whose name equals `name` ignoring case and surrounding spaces;
// nullptr if none.
const OrganClass* FindOrganClass(std::string_view name);

// The organ class an adverse-event term belongs to: an exact class name
// (ignoring case), or one of the synonym table's terms (MedDRA preferred
// terms mapped to their primary system organ class, e.g. "torsade de pointes"
// -> "Cardiac disorders"); nullptr if the term is unknown.
const OrganClass* OrganClassForTerm(std::string_view term);

// The synonym table used by OrganClassForTerm: (term, organ class name) pairs.
struct AdverseEventSynonym {
  std::string term;
  std::string organ_class;
};
const std::vector<AdverseEventSynonym>& AdverseEventSynonyms();

// True if `assay` (a Tox21 or ToxCast label name) starts with one of the
// class's assay prefixes.
bool AssayBearsOn(const OrganClass& organ_class, std::string_view assay);

}  // namespace fedrx::reverse
