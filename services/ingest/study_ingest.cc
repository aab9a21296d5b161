#include "services/ingest/study_ingest.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "services/ingest/cdm_io.h"
#include "services/ingest/cdm_map.h"

namespace fedrx::ingest {
namespace {

namespace fs = std::filesystem;

std::string Hex(const unsigned char* bytes, std::size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

// Streams the file: a study's datasets can be large.
core::Result<StudySourceFile> HashFile(const std::string& dir, const std::string& name) {
  const std::string path = (fs::path(dir) / name).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Unavailable("cannot open a source file to hash it", path);
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  StudySourceFile file;
  file.name = name;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buf.data()),
                              static_cast<unsigned long long>(got));
    file.bytes += static_cast<std::uint64_t>(got);
  }
  if (in.bad()) return core::Unavailable("cannot read a source file to hash it", path);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  file.sha256 = Hex(digest, sizeof digest);
  return file;
}

// SHA-256 over the CDM files' names and header lines (in name order): equal
// for two versions whose files have the same columns, whatever their rows.
core::Result<std::string> CdmSchemaHash(const std::string& cdm_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cdm_dir, ec)) {
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  }
  if (ec) return core::Unavailable("cannot list the written CDM files: " + ec.message(), cdm_dir);
  std::sort(names.begin(), names.end());
  std::string text = std::string(cdm::kCdmFormat) + "\n";
  for (const std::string& name : names) {
    std::ifstream in(fs::path(cdm_dir) / name, std::ios::binary);
    std::string header;
    if (!in || !std::getline(in, header)) {
      return core::Unavailable("cannot read the header of a written CDM file", cdm_dir + "/" + name);
    }
    text += name + "\n" + header + "\n";
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return Hex(digest, sizeof digest);
}

nlohmann::ordered_json OptionalNumber(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

std::string DescriptorJson(const StudyIngestResult& r) {
  const cdm::Study& study = r.data.study;
  nlohmann::ordered_json out;
  out["kind"] = kStudyDescriptorKind;
  out["cdm_format"] = cdm::kCdmFormat;
  out["study_id"] = study.id;
  out["standard"] = cdm::StandardName(study.standard);
  out["species"] = study.species;
  out["strain"] = study.strain;
  out["route"] = study.route;
  out["planned_duration"] = study.planned_duration;
  out["duration_days"] = OptionalNumber(study.planned_duration_days);
  // The study design: dose levels and group sizes, no subject.
  auto& groups = out["dose_groups"] = nlohmann::ordered_json::array();
  for (const cdm::DoseGroup& g : r.data.dose_groups) {
    const auto n = std::count_if(r.data.subjects.begin(), r.data.subjects.end(),
                                 [&](const cdm::Subject& s) { return s.set_code == g.set_code; });
    groups.push_back({{"set_code", g.set_code},
                      {"label", g.label},
                      {"dose", OptionalNumber(g.dose)},
                      {"dose_unit", g.dose_unit},
                      {"control", g.control},
                      {"recovery", g.recovery},
                      {"toxicokinetic", g.toxicokinetic},
                      {"subjects", n}});
  }
  const StudyCounts& c = r.counts;
  auto& counts = out["counts"];
  counts["subjects"] = c.subjects;
  counts["dose_groups"] = c.dose_groups;
  counts["exposures"] = c.exposures;
  counts["findings"] = nlohmann::ordered_json::object();
  for (const auto& [domain, n] : c.findings) counts["findings"][domain] = n;
  counts["adverse_events"] = c.adverse_events;
  counts["unmapped_rows"] = nlohmann::ordered_json::object();
  for (const auto& [domain, n] : c.unmapped_rows) counts["unmapped_rows"][domain] = n;
  counts["mapping_issues"] = c.mapping_issues;
  auto& conf = out["conformance"];
  conf["standard"] = conformance::StandardName(r.report.standard);
  conf["define_checked"] = r.report.define_checked;
  conf["error"] = r.report.errors;
  conf["warning"] = r.report.warnings;
  conf["notice"] = r.report.notices;
  conf["by_rule"] = nlohmann::ordered_json::object();
  for (const auto& [rule, n] : r.report.counts_by_rule) conf["by_rule"][rule] = n;
  out["schema_hash"] = r.schema_hash;
  auto& sources = out["sources"] = nlohmann::ordered_json::array();
  for (const StudySourceFile& f : r.sources) {
    sources.push_back({{"file", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  }
  // TS text (title, sponsor) is not copied here; species/route are CDISC terms.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void Report(const StudyIngestOptions& options, const StudyIngestProgress& p) {
  if (options.progress) options.progress(p);
}

}  // namespace

StudyCounts CountStudy(const cdm::StudyData& data) {
  StudyCounts c;
  c.subjects = data.subjects.size();
  c.dose_groups = data.dose_groups.size();
  c.exposures = data.exposures.size();
  for (const cdm::Finding& f : data.findings) ++c.findings[f.domain];
  c.adverse_events = data.adverse_events.size();
  for (const cdm::DomainTally& t : data.tallies) {
    if (t.unmapped > 0) c.unmapped_rows[t.domain] = t.unmapped;
    c.mapping_issues += t.issues_dropped;
  }
  c.mapping_issues += data.issues.size();
  return c;
}

core::Result<StudyIngestResult> IngestStudy(const std::string& folder, const std::string& store_root,
                                            const StudyIngestOptions& options) {
  // Open the store first: a bad store path fails before any reading.
  FEDRX_ASSIGN_OR_RETURN(DatasetStore store, DatasetStore::Open(store_root, true));

  auto read = ReadStudyFolder(folder, options.folder);
  if (!read.ok()) return read.status().WithContext("cannot read the study folder");
  StudyFolder study = std::move(*read);
  {
    std::size_t done = 0;
    for (const auto& [name, table] : study.domains) {
      Report(options, {StudyIngestProgress::Stage::kRead, name, table.num_rows, ++done,
                       study.domains.size()});
    }
  }
  if (study.domains.count("DM") == 0) {
    return core::FailedPrecondition(
        "the study has no DM (demographics) dataset, so it has no subjects; nothing was written",
        folder);
  }

  StudyIngestResult result;
  result.folder = folder;
  result.files_read = study.files_read;
  result.define_used = study.define.has_value();
  result.report = conformance::CheckStudy(study, options.check);
  Report(options, {StudyIngestProgress::Stage::kChecked, "", 0, 1, 1});
  const std::string report_json = conformance::ReportJson(result.report);
  if (!options.report_path.empty()) {
    std::ofstream out(options.report_path, std::ios::binary | std::ios::trunc);
    out << report_json << "\n";
    out.close();
    if (!out) return core::Unavailable("cannot write the conformance report", options.report_path);
  }
  if (options.refuse_on_errors && result.report.errors > 0) {
    return core::FailedPrecondition(std::to_string(result.report.errors) +
                                        " conformance errors and refuse_on_errors is set; nothing "
                                        "was written",
                                    folder);
  }

  auto mapped = cdm::MapStudy(study);
  if (!mapped.ok()) return mapped.status().WithContext("cannot map the study to the common data model");
  result.data = std::move(*mapped);
  {
    std::size_t done = 0;
    for (const cdm::DomainTally& t : result.data.tallies) {
      Report(options, {StudyIngestProgress::Stage::kMapped, t.domain, t.mapped, ++done,
                       result.data.tallies.size()});
    }
  }
  if (result.data.subjects.empty()) {
    return core::FailedPrecondition("DM holds no subject; nothing was written", folder + "/DM");
  }
  result.counts = CountStudy(result.data);

  // Hash the sources before the commit; a file changed since it was read would
  // show here only as a hash differing from the study's own records.
  std::vector<std::string> sources = study.files_read;
  if (study.has_define_xml) sources.push_back(fs::path(study.define_xml).filename().string());
  for (const std::string& name : sources) {
    FEDRX_ASSIGN_OR_RETURN(StudySourceFile file, HashFile(folder, name));
    result.sources.push_back(std::move(file));
  }

  FEDRX_ASSIGN_OR_RETURN(result.version, store.Commit([&](const std::string& dir) -> core::Status {
    const std::string cdm_dir = (fs::path(dir) / kStudyCdmDir).string();
    if (core::Status s = cdm::WriteCdm(cdm_dir, result.data); !s.ok()) return s;
    auto hash = CdmSchemaHash(cdm_dir);
    if (!hash.ok()) return hash.status();
    result.schema_hash = *hash;
    if (core::Status s = WriteFileSynced((fs::path(dir) / kStudyConformanceFile).string(),
                                         report_json + "\n");
        !s.ok()) {
      return s;
    }
    result.descriptor_json = DescriptorJson(result);
    return WriteFileSynced((fs::path(dir) / kStudyDescriptorFile).string(), result.descriptor_json);
  }));
  Report(options, {StudyIngestProgress::Stage::kCommitted, "", 0, 1, 1});
  return result;
}

}  // namespace fedrx::ingest
