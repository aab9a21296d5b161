// `coverage`: how often the tox service's conformal prediction sets hold the
// true label on a held-out test set, per class, computed the way the service
// computes them (serving/conformal.h) from the calibration the coordinator
// stored for the model version (StudyStore::LoadCalibration), and how many
// test structures the applicability-domain check would flag.
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "services/coordinator/study_store.h"
#include "services/core/redis_state_store.h"
#include "services/lab/coverage.h"
#include "services/lab/lab_common.h"
#include "services/ml/domain.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/serving/calibrated.h"
#include "services/serving/conformal.h"

namespace fedrx::lab {
namespace {

std::string CountJson(const ClassCoverage& c) {
  return "{\"rows\": " + std::to_string(c.rows) + ", \"covered\": " + std::to_string(c.covered) +
         ", \"coverage\": " + JsonNumber(c.coverage()) + "}";
}

core::Result<std::vector<double>> ConfidenceLevels(const Flags& f) {
  std::vector<double> levels;
  for (const auto& item : CommaList(f.count("confidence") != 0 ? f.at("confidence") : "0.8,0.9")) {
    char* end = nullptr;
    const double c = std::strtod(item.c_str(), &end);
    if (end != item.c_str() + item.size()) {
      return core::InvalidArgument("'" + item + "' is not a number", "--confidence");
    }
    FEDRX_RETURN_IF_ERROR(serving::ValidateConfidence(c, "--confidence"));
    levels.push_back(c);
  }
  if (levels.empty()) return core::InvalidArgument("no confidence level", "--confidence");
  return levels;
}

core::Result<core::RedisOptions> RedisAddress(const std::string& address) {
  const auto colon = address.rfind(':');
  core::RedisOptions o;
  if (colon == std::string::npos || colon == 0) {
    return core::InvalidArgument("expected HOST:PORT, got '" + address + "'", "--redis");
  }
  o.host = address.substr(0, colon);
  char* end = nullptr;
  const long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    return core::InvalidArgument("bad port in '" + address + "'", "--redis");
  }
  o.port = static_cast<int>(port);
  return o;
}

}  // namespace

core::Result<std::vector<CoverageLevel>> ConformalCoverage(
    const ml::Dataset& test, std::span<const float> probabilities,
    const std::vector<ml::ScoreHistogram>& histograms, const std::vector<double>& confidences) {
  const std::size_t n_tasks = test.num_tasks();
  if (histograms.size() != n_tasks) {
    return core::InvalidArgument("one calibration histogram per task expected, got " +
                                     std::to_string(histograms.size()) + " for " +
                                     std::to_string(n_tasks) + " tasks",
                                 "calibration.histograms");
  }
  if (probabilities.size() != test.size() * n_tasks) {
    return core::InvalidArgument("probabilities are not rows x tasks", "probabilities");
  }
  std::vector<serving::MondrianCalibration> tasks;
  for (std::size_t t = 0; t < n_tasks; ++t) {
    FEDRX_ASSIGN_OR_RETURN(serving::MondrianCalibration m,
                           serving::MondrianCalibration::Create(
                               histograms[t], "calibration.histograms[" + std::to_string(t) + "]"));
    tasks.push_back(std::move(m));
  }
  std::vector<CoverageLevel> levels;
  for (double c : confidences) {
    FEDRX_RETURN_IF_ERROR(serving::ValidateConfidence(c, "confidence"));
    CoverageLevel l;
    l.confidence = c;
    l.negative.resize(n_tasks);
    l.positive.resize(n_tasks);
    levels.push_back(std::move(l));
  }
  for (std::size_t r = 0; r < test.size(); ++r) {
    for (std::size_t t = 0; t < n_tasks; ++t) {
      const std::int8_t y = test.label(r, t);
      if (y == ml::kMissing) continue;
      FEDRX_ASSIGN_OR_RETURN(serving::LabelPValues p,
                             tasks[t].PValues(probabilities[r * n_tasks + t]));
      for (CoverageLevel& l : levels) {
        const std::string set(serving::PredictionSet(p, l.confidence));
        ++l.sets[set];
        const bool covered = set == "both" || (y == 1 ? set == "positive" : set == "negative");
        for (ClassCoverage* c : {y == 1 ? &l.positive[t] : &l.negative[t],
                                 y == 1 ? &l.all_positive : &l.all_negative}) {
          ++c->rows;
          c->covered += covered ? 1 : 0;
        }
      }
    }
  }
  return levels;
}

core::Status CoverageCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string model_path, Need(f, "model"));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  FEDRX_ASSIGN_OR_RETURN(std::string redis, Need(f, "redis"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(std::vector<double> levels_wanted, ConfidenceLevels(f));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);

  FEDRX_ASSIGN_OR_RETURN(core::RedisOptions redis_options, RedisAddress(redis));
  FEDRX_ASSIGN_OR_RETURN(auto state, core::RedisStateStore::Connect(redis_options, nullptr));
  coordinator::StudyStore store(*state);
  FEDRX_ASSIGN_OR_RETURN(coordinator::StudyRecord record, store.Load(spec.study_id));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t version,
                         CountFlag(f, "version", record.model_version, 0, record.model_version));
  FEDRX_ASSIGN_OR_RETURN(auto stored,
                         store.LoadCalibration(spec.study_id, static_cast<std::uint32_t>(version)));
  if (!stored.has_value()) {
    return core::NotFound(
        "no calibration stored for " + spec.study_id + " version " + std::to_string(version),
        "--redis");
  }
  const coordinator::VersionCalibration& cal = *stored;
  if (cal.tasks != spec.tasks) {
    return core::InvalidArgument("the stored calibration's tasks differ from the study file's",
                                 study_path);
  }

  FEDRX_ASSIGN_OR_RETURN(ml::Dataset raw, Load(test_path, static_cast<int>(spec.fingerprint_radius),
                                               net.input_dim, out));
  const ml::Dataset test = raw.WithTasks(spec.tasks);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights,
                         ReadWeights(model_path, ml::ParameterCount(net)));
  FEDRX_ASSIGN_OR_RETURN(ml::PredictionWithEmbedding pred,
                         ml::PredictWithEmbedding(net, weights, test.x, 2));

  FEDRX_ASSIGN_OR_RETURN(
      std::vector<CoverageLevel> levels,
      ConformalCoverage(test, pred.probabilities, cal.histograms, levels_wanted));
  const std::size_t n_tasks = spec.tasks.size();

  // The applicability-domain flag on the test structures, as the service sets it.
  std::ostringstream domain;
  if (cal.embedding.rows > 0 && !cal.domain_histogram.empty()) {
    FEDRX_ASSIGN_OR_RETURN(ml::EmbeddingReference ref, ml::ReferenceFromMoments(cal.embedding));
    FEDRX_ASSIGN_OR_RETURN(
        serving::DomainCalibration dc,
        serving::DomainCalibration::Create(cal.domain_histogram, "calibration.domain_histogram"));
    const std::size_t dims = net.hidden.back();
    std::uint64_t out_of_domain = 0;
    for (std::size_t r = 0; r < test.size(); ++r) {
      const double u =
          ml::DomainScore(std::span<const float>(pred.embedding).subspan(r * dims, dims), ref);
      FEDRX_ASSIGN_OR_RETURN(double p, dc.PValue(u));
      if (p < serving::kOutOfDomainPValue) ++out_of_domain;
    }
    domain << "{\"rows\": " << test.size() << ", \"out_of_domain\": " << out_of_domain
           << ", \"share\": "
           << JsonNumber(test.size() ? static_cast<double>(out_of_domain) / test.size() : NAN)
           << ", \"threshold_p\": " << JsonNumber(serving::kOutOfDomainPValue)
           << ", \"calibration_rows\": " << dc.rows() << "}";
    out << "applicability domain: " << out_of_domain << " of " << test.size()
        << " test structures out of domain (p < " << serving::kOutOfDomainPValue << ")\n";
  } else {
    domain << "null";
  }

  out << "conformal coverage on " << test.size() << " test rows, " << spec.study_id << " version "
      << version << ", " << cal.samples << " calibration rows\n";
  out << std::left << std::setw(12) << "confidence" << std::setw(10) << "class" << std::right
      << std::setw(8) << "rows" << std::setw(10) << "coverage\n";
  for (const CoverageLevel& l : levels) {
    for (const auto& [name, c] :
         {std::pair{"negative", l.all_negative}, std::pair{"positive", l.all_positive}}) {
      out << std::left << std::setw(12) << l.confidence << std::setw(10) << name << std::right
          << std::setw(8) << c.rows << std::setw(10) << std::fixed << std::setprecision(4)
          << c.coverage() << std::defaultfloat << "\n";
    }
  }

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\"study\": \"" << spec.study_id << "\", \"version\": " << version
       << ", \"calibration_samples\": " << cal.samples << ", \"test_rows\": " << test.size()
       << ",\n \"method\": \"Mondrian inductive conformal prediction (serving/conformal.h) on the "
          "calibration the coordinator stored\",\n \"levels\": [";
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const CoverageLevel& l = levels[i];
    json << (i ? ",\n  " : "\n  ") << "{\"confidence\": " << JsonNumber(l.confidence)
         << ", \"overall\": {\"negative\": " << CountJson(l.all_negative)
         << ", \"positive\": " << CountJson(l.all_positive) << "}, \"sets\": {";
    bool first = true;
    for (const auto& [set, n] : l.sets) {
      json << (first ? "" : ", ") << "\"" << set << "\": " << n;
      first = false;
    }
    json << "},\n   \"tasks\": {";
    for (std::size_t t = 0; t < n_tasks; ++t) {
      json << (t ? ", " : "") << "\"" << spec.tasks[t]
           << "\": {\"negative\": " << CountJson(l.negative[t])
           << ", \"positive\": " << CountJson(l.positive[t]) << "}";
    }
    json << "}}";
  }
  json << "],\n \"domain\": " << domain.str() << "}\n";
  json.flush();
  if (!json) return core::Unavailable("cannot write the coverage", json_path);
  out << "coverage written to " << json_path << "\n";
  return core::Status::Ok();
}

}  // namespace fedrx::lab
