// Ingests one SEND (nonclinical) or SDTM (clinical) study folder into a site's
// DatasetStore as a new version: read -> conformance checks -> common data
// model -> commit. Stateless and reentrant; blocks on file I/O. Concurrent
// ingests into one store are serialised by the store's LOCK.
//
// Policy (what fails, what is only recorded):
//   * fatal, no version is written and the store's CURRENT version (and every
//     earlier one) stays exactly as it was:
//       - the folder cannot be read (not a directory, no .xpt/.json dataset,
//         a reader error such as a truncated .xpt): the reader's error;
//       - the study has no DM dataset: kFailedPrecondition;
//       - the study maps to zero subjects: kFailedPrecondition;
//       - the store cannot be opened or the version cannot be written;
//       - with StudyIngestOptions::refuse_on_errors, any conformance finding
//         of severity error: kFailedPrecondition.
//   * recorded, not fatal: conformance findings of any severity (without
//     refuse_on_errors), mapping issues and unmapped rows (cdm.h). They are in
//     the version's conformance.json and descriptor.json, and in the result.
//
// A version holds:
//   cdm/              the study in the common data model (cdm_io.h, fedrx-cdm/1)
//   conformance.json  the conformance report (conformance::ReportJson)
//   descriptor.json   what a site may publish about the study: kind
//                     "fedrx-study/1", study id, standard, species, route,
//                     duration, counts, conformance counts, the CDM schema hash
//                     and the source files' SHA-256; never rows or subject ids.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ingest/cdm.h"
#include "services/ingest/conformance.h"
#include "services/ingest/dataset_store.h"
#include "services/ingest/study_folder.h"

namespace fedrx::ingest {

inline constexpr const char* kStudyDescriptorKind = "fedrx-study/1";
inline constexpr const char* kStudyCdmDir = "cdm";
inline constexpr const char* kStudyConformanceFile = "conformance.json";
inline constexpr const char* kStudyDescriptorFile = "descriptor.json";

// One step of an ingest, for a progress display. Never carries values.
struct StudyIngestProgress {
  enum class Stage { kRead, kChecked, kMapped, kCommitted };
  Stage stage = Stage::kRead;
  std::string domain;     // kRead / kMapped: the domain; empty otherwise
  std::size_t rows = 0;   // kRead: rows read; kMapped: rows mapped
  std::size_t done = 0;   // domains done in this stage
  std::size_t total = 0;  // domains in this stage
};

struct StudyIngestOptions {
  StudyFolderOptions folder;
  conformance::CheckOptions check;
  // Refuse (kFailedPrecondition, no version written) when the conformance
  // checks find any error.
  bool refuse_on_errors = false;
  // When not empty, the conformance report (ReportJson) is also written to this
  // file once the checks ran, even when the ingest is then refused; a failure to
  // write it fails the ingest (kUnavailable) before anything is committed.
  std::string report_path;
  // Called on the calling thread after each domain is read and mapped, after
  // the checks and after the commit. May be empty.
  std::function<void(const StudyIngestProgress&)> progress;
};

// A source file as descriptor.json lists it.
struct StudySourceFile {
  std::string name;  // file name inside the folder
  std::uint64_t bytes = 0;
  std::string sha256;  // hex
};

// The counts descriptor.json holds (besides study-level facts).
struct StudyCounts {
  std::size_t subjects = 0;
  std::size_t dose_groups = 0;
  std::size_t exposures = 0;
  std::map<std::string, std::size_t> findings;  // per domain
  std::size_t adverse_events = 0;
  std::map<std::string, std::size_t> unmapped_rows;  // per source domain, only > 0
  std::size_t mapping_issues = 0;                    // stored and dropped
};

struct StudyIngestResult {
  StoreVersion version;
  std::string folder;
  std::vector<std::string> files_read;
  bool define_used = false;  // define.xml parsed and checked against
  conformance::ConformanceReport report;
  cdm::StudyData data;
  StudyCounts counts;
  std::string schema_hash;  // hex SHA-256 of the CDM files' names and header lines
  std::vector<StudySourceFile> sources;
  std::string descriptor_json;  // as written to descriptor.json
};

// Counts of `data` as descriptor.json records them.
StudyCounts CountStudy(const cdm::StudyData& data);

// Ingests the study folder at `folder` into the store at `store_root` (created
// when missing). Errors as the policy above says; each names what was wrong and
// where (the folder, the file, or the store).
core::Result<StudyIngestResult> IngestStudy(const std::string& folder, const std::string& store_root,
                                            const StudyIngestOptions& options = {});

}  // namespace fedrx::ingest
