// The common data model every SEND (nonclinical) and SDTM (clinical) study is
// mapped into, so that downstream services ask one question of any study
// ("body-weight change by dose group in rat") without knowing its standard.
// Plain value types; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fedrx::ingest::cdm {

// The CDISC standard a study was delivered in.
enum class Standard : std::uint8_t { kUnknown, kSend, kSdtm };

// "SEND" / "SDTM" / "UNKNOWN"; bounded, usable as a metric label.
const char* StandardName(Standard standard);
// Inverse of StandardName; false for anything else.
bool ParseStandard(std::string_view name, Standard* out);

// One study: what TS (trial summary) says, with DM/EX as fallbacks.
struct Study {
  std::string id;  // STUDYID
  Standard standard = Standard::kUnknown;
  std::string title;       // TS STITLE (SEND) / TITLE (SDTM)
  std::string design;      // TS SDESIGN (e.g. PARALLEL)
  std::string study_type;  // TS SSTYP (SEND) / STYPE (SDTM)
  // Upper-case CDISC terms. SEND: TS SPECIES/STRAIN, else DM SPECIES/STRAIN when
  // all subjects agree. SDTM: "HUMAN" when neither TS nor DM says otherwise.
  std::string species;
  std::string strain;
  std::string route;  // TS ROUTE, else EX EXROUTE when all exposures agree
  // TS DOSDUR as given (ISO 8601 duration, e.g. "P13W") and in days (P13W -> 91).
  // Durations in months or years have no fixed day count: days stays empty.
  std::string planned_duration;
  std::optional<double> planned_duration_days;
  std::string sponsor;                     // TS SSPONSOR (SEND) / SPONSOR (SDTM)
  std::string treatment;                   // TS TRT
  std::string vehicle;                     // TS TRTV
  std::string sex_population;              // TS SEXPOP (M, F, BOTH)
  std::optional<double> planned_subjects;  // TS SPLANSUB / PLANSUB
  // Every TS parameter, code -> value (the first row's value when a code
  // repeats; TSVALNF, the null flavour, when TSVAL is empty).
  std::map<std::string, std::string> parameters;

  bool operator==(const Study&) const = default;
};

// A dose group: a SEND trial set (TX SETCD), or an SDTM arm (DM ARMCD).
// Subjects point to it by set_code.
struct DoseGroup {
  std::string set_code;  // TX/DM SETCD (SEND) or ARMCD (SDTM); unique in a study
  std::string arm_code;  // TX ARMCD / DM ARMCD
  std::string label;     // TX GRPLBL or SET; DM ARM
  // Dose level in `dose_unit` (normalised by units.h when unit_normalised),
  // from TX TRTDOS/TRTDOSU, else from EX when every subject of the group has
  // the same dose.
  std::optional<double> dose;
  std::string dose_unit;
  bool unit_normalised = false;
  // TX TCNTRL present, or a zero dose (SEND); ARM/ARMCD naming a placebo (SDTM).
  bool control = false;
  bool recovery = false;       // SEND: the set label says recovery
  bool toxicokinetic = false;  // SEND: TX TKDESC = TK
  // Every TX parameter of the set, code -> value.
  std::map<std::string, std::string> parameters;

  bool operator==(const DoseGroup&) const = default;
};

// One animal or one patient (DM).
struct Subject {
  std::string usubjid;
  std::string subject_id;       // SUBJID
  std::string sex;              // M, F, U, ...
  std::string species;          // DM SPECIES when per subject (else the study's)
  std::string strain;           // DM STRAIN when per subject
  std::string set_code;         // its DoseGroup; empty when not assigned (screen failure)
  std::string arm_code;         // DM ARMCD
  std::string arm;              // DM ARM
  std::string reference_start;  // DM RFSTDTC (ISO 8601 text)
  std::optional<double> age;    // DM AGE, in age_unit
  std::string age_unit;         // DM AGEU
  std::string age_text;         // DM AGETXT (SEND ranges such as "6-7")

  bool operator==(const Subject&) const = default;
};

// One administration record (EX).
struct Exposure {
  std::string usubjid;
  std::string treatment;  // EXTRT
  std::optional<double> dose;
  std::string unit;  // canonical when unit_normalised, else EXDOSU as given
  bool unit_normalised = false;
  std::string route;                // EXROUTE
  std::string frequency;            // EXDOSFRQ
  std::optional<double> start_day;  // EXSTDY
  std::optional<double> end_day;    // EXENDY

  bool operator==(const Exposure&) const = default;
};

// One result of a findings-class domain (LB, BW, OM, MI, MA, CL, VS, EG, ...).
struct Finding {
  std::string domain;  // "BW", "LB", ...
  std::string usubjid;
  std::string test_code;  // --TESTCD
  std::string test_name;  // --TEST
  std::string category;   // --CAT
  std::string specimen;   // LBSPEC, OMSPEC, MISPEC, ...; VSLOC for VS
  // --STRESN in `unit` (canonical when unit_normalised; else --STRESU as given).
  std::optional<double> value;
  std::string unit;
  bool unit_normalised = false;
  std::string text;                 // --STRESC (else --ORRES): the result as text
  std::string severity;             // --SEV (MI, MA, CL)
  std::optional<double> study_day;  // --DY
  std::optional<double> visit_day;  // VISITDY, else --NOMDY (SEND)
  std::string visit;                // VISIT, else --NOMLBL (SEND)
  bool baseline = false;            // --BLFL = Y
  std::optional<double> seq;        // --SEQ

  bool operator==(const Finding&) const = default;
};

// One clinical adverse event (SDTM AE).
struct AdverseEvent {
  std::string usubjid;
  std::optional<double> seq;        // AESEQ
  std::string term;                 // AETERM, as reported
  std::string decoded_term;         // AEDECOD (MedDRA preferred term)
  std::string body_system;          // AEBODSYS
  std::string soc;                  // AESOC (MedDRA system organ class)
  std::string severity;             // AESEV (MILD, MODERATE, SEVERE)
  std::string toxicity_grade;       // AETOXGR
  std::optional<bool> serious;      // AESER Y/N; empty when not given
  std::string relationship;         // AEREL
  std::string outcome;              // AEOUT
  std::optional<double> start_day;  // AESTDY
  std::optional<double> end_day;    // AEENDY

  bool operator==(const AdverseEvent&) const = default;
};

// What the mapping could not take as it was.
enum class IssueKind : std::uint8_t {
  kRowUnmapped,       // the row is not in the model (why says why)
  kDomainUnmapped,    // a whole domain is not mapped; its rows are counted
  kUnitUnnormalised,  // the row is mapped, its value kept in its original unit
  kValueInvalid,      // the row is mapped, one field was unusable and left empty
};
// "row_unmapped", "domain_unmapped", "unit_unnormalised", "value_invalid".
const char* IssueKindName(IssueKind kind);
bool ParseIssueKind(std::string_view name, IssueKind* out);

struct MappingIssue {
  IssueKind kind = IssueKind::kRowUnmapped;
  std::string domain;
  std::int64_t row = -1;  // 0-based row in the source table; -1: the whole domain
  std::string variable;   // e.g. "LBSTRESU"; empty when the whole row is concerned
  std::string why;        // never contains a patient-derived value

  bool operator==(const MappingIssue&) const = default;
};

// Per source domain: every row is either mapped or unmapped, so
// rows == mapped + unmapped always.
struct DomainTally {
  std::string domain;
  std::size_t rows = 0;
  std::size_t mapped = 0;
  std::size_t unmapped = 0;
  std::size_t unnormalised = 0;    // mapped rows whose unit was not normalised
  std::size_t issues_dropped = 0;  // issues counted but not stored (over the cap)

  bool operator==(const DomainTally&) const = default;
};

// A whole study in the common model, with the report of its mapping.
struct StudyData {
  Study study;
  std::vector<DoseGroup> dose_groups;
  std::vector<Subject> subjects;
  std::vector<Exposure> exposures;
  std::vector<Finding> findings;
  std::vector<AdverseEvent> adverse_events;
  std::vector<MappingIssue> issues;
  std::vector<DomainTally> tallies;  // one per source domain, in name order

  const DoseGroup* FindDoseGroup(std::string_view set_code) const;
  const Subject* FindSubject(std::string_view usubjid) const;
  const DomainTally* FindTally(std::string_view domain) const;

  bool operator==(const StudyData&) const = default;
};

// True for a body-weight measurement whatever the standard: SEND BW/BW, or
// SDTM VS/WEIGHT. (SEND TERMBW, the fasted terminal weight, is not one.)
bool IsBodyWeight(const Finding& finding);

}  // namespace fedrx::ingest::cdm
