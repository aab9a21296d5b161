// What fedrx-lab's commands share: flag parsing and checking, loading the
// demo's CSVs and study files, raw weight files, and the JSON pieces the
// comparison is written from. Each command is a function of its flags and
// the output stream, defined in the file that owns it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/ml/dataset.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"

namespace fedrx::lab {

// --name value pairs, by name (without the dashes).
using Flags = std::map<std::string, std::string>;

// The value of --name; kInvalidArgument naming the flag when absent or empty.
core::Result<std::string> Need(const Flags& f, const std::string& name);
// A numeric flag in [lo, hi], or `fallback` when absent.
core::Result<double> NumberFlag(const Flags& f, const std::string& name, double fallback, double lo,
                                double hi);
// A whole-number flag in [lo, hi], or `fallback` when absent.
core::Result<std::uint64_t> CountFlag(const Flags& f, const std::string& name,
                                      std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi);
// "a,b,,c" -> {a, b, c}.
std::vector<std::string> CommaList(const std::string& s);

// A CSV dataset featurised with Morgan fingerprints (radius, bits), or, when
// `path` is a directory, a dataset store's current version (fedrx ingest),
// which must have been prepared with that radius and width; prints how many
// rows loaded and were skipped.
core::Result<ml::Dataset> Load(const std::string& path, int radius, std::uint32_t bits,
                               std::ostream& out);
// The institutions of `prepare` and `clinical-prepare`: --sites A,B,C with
// --shares 0.5,0.3,0.2 (as many, each finite and >= 0, not all 0) and --seed
// (7 by default).
struct SiteShares {
  std::vector<std::string> sites;
  std::vector<double> shares;
  std::uint64_t seed = 7;
};
core::Result<SiteShares> ParseSiteShares(const Flags& f);

// The demo's site files from one dataset: an 80/10/10 scaffold split of
// `all`, the train and the valid rows each dealt to the sites by scaffold
// (ml::PartitionByScaffold, seeds `seed` and `seed + 1`); writes
// DIR/<site>.csv (split column train/valid), DIR/pooled.csv (all train and
// valid rows) and DIR/test.csv (split test), and prints the row counts. No
// scaffold is in two files of {sites, test}. Blocks on the files.
core::Status WriteSiteShares(ml::Dataset all, const SiteShares& shares, const std::string& dir,
                             std::ostream& out);

// A study file, as the coordinator reads it.
core::Result<codec::StudySpec> LoadStudy(const std::string& path);

// Raw float32 weights; kInvalidArgument unless exactly `expected` floats.
core::Result<std::vector<float>> ReadWeights(const std::string& path, std::size_t expected);
// Per-task metrics of the weights in `weights_path` on `test`.
core::Result<std::vector<ml::TaskMetrics>> EvaluateWeights(const ml::NetSpec& net,
                                                           const std::string& weights_path,
                                                           const ml::Dataset& test);
double MeanPrAuc(const std::vector<ml::TaskMetrics>& m);

// A JSON number; null for NaN and infinities.
std::string JsonNumber(double v);
// {"mean_roc_auc": ..., "tasks": {...}} without the closing brace, so that
// callers can add fields.
void WriteMetricsJson(std::ostream& json, const std::vector<ml::TaskMetrics>& m);
// A file holding one JSON object (as the lab's commands write them), trimmed,
// to embed in another document; kInvalidArgument if it is not one object.
core::Result<std::string> ReadJsonObject(const std::string& path);

// ---- commands (each in its own file) ----------------------------------------------------

// `secagg` (lab_secagg.cc): secure aggregation in the demo.
core::Status SecureAggregationCommand(const Flags& f, std::ostream& out);
// `heads-prepare` and `heads-compare` (lab_heads.cc): the private-heads study's
// institutions' data, and each site's federated trunk + private head against
// its data alone.
core::Status HeadsPrepareCommand(const Flags& f, std::ostream& out);
core::Status HeadsCompareCommand(const Flags& f, std::ostream& out);
// `clinical-prepare` and `clinical-evaluate` (lab_clinical.cc): the clinical
// sites' ClinTox shares with the Tox21 labels of the same compounds, and the
// phase-success adjustment scored on the held-out ClinTox compounds.
core::Status ClinicalPrepareCommand(const Flags& f, std::ostream& out);
core::Status ClinicalEvaluateCommand(const Flags& f, std::ostream& out);
// The quality table's and the ToxCast panel's pieces (lab_quality.cc):
// `prepare`'s panel rule (--min-labelled, --min-positives,
// --max-positive-rate: `all` restricted to the columns that pass, printed),
// `export` (a store's or CSV's fingerprints and labels as CSV, for the
// scikit-learn baseline) and `coverage` (conformal coverage on a test set
// from the calibration the coordinator stored).
core::Result<ml::Dataset> ApplyPanelRule(const Flags& f, const ml::Dataset& all, std::ostream& out);
core::Status ExportCommand(const Flags& f, std::ostream& out);
core::Status CoverageCommand(const Flags& f, std::ostream& out);

}  // namespace fedrx::lab
