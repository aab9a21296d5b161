// What the integration tests of the model-serving services (tox, clinical)
// share: the fingerprint the sites prepare with, the calibration sites compute
// and the coordinator sums, and a local forward pass to compare the services'
// answers with. Header-only; pure functions.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "services/coordinator/study_store.h"
#include "services/ml/chem.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"

namespace fedrx::integration {

// ECFP radius 2 folded to 1024 bits, as the tests' studies declare.
inline ml::FingerprintOptions Fingerprint() {
  ml::FingerprintOptions fp;
  fp.radius = 2;
  fp.bits = 1024;
  return fp;
}

// What the sites compute on their rows for model `version`, summed as the
// coordinator would: the validation histograms, the training embedding's
// moments and the validation rows' domain histogram (100 bins).
inline coordinator::VersionCalibration CalibrationOf(std::uint32_t version, const ml::NetSpec& net,
                                                     const std::vector<float>& weights,
                                                     const ml::Dataset& train,
                                                     const ml::Dataset& valid) {
  coordinator::VersionCalibration c;
  c.version = version;
  c.samples = valid.size();
  c.tasks = valid.tasks;
  auto v = ml::PredictWithEmbedding(net, weights, valid.x);
  auto t = ml::PredictWithEmbedding(net, weights, train.x);
  EXPECT_TRUE(v.ok() && t.ok());
  c.histograms = *ml::Histograms(valid, v->probabilities);
  c.embedding = *ml::MomentsOf(t->embedding, net.hidden.back());
  auto ref = ml::ReferenceFromMoments(c.embedding);
  EXPECT_TRUE(ref.ok());
  c.domain_histogram = *ml::DomainHistogram(v->embedding, *ref, 100);
  return c;
}

// ml::Predict of `weights` on `smiles` prepared as the sites prepare them:
// row-major, one row of task probabilities per structure.
inline std::vector<float> LocalPredict(const ml::NetSpec& net, const std::vector<float>& weights,
                                       const std::vector<std::string>& smiles) {
  ml::SparseRows x;
  x.dim = net.input_dim;
  for (const std::string& s : smiles) {
    auto m = ml::PrepareMolecule(s, Fingerprint());
    EXPECT_TRUE(m.ok()) << s;
    x.AddRow(m->bits);
  }
  auto p = ml::Predict(net, weights, x);
  EXPECT_TRUE(p.ok());
  return *p;
}

}  // namespace fedrx::integration
