#include "services/serving/model_server.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "services/core/keys.h"

namespace fedrx::serving {
namespace {

std::string FingerprintCacheKey(const ml::FingerprintOptions& fp) {
  return std::to_string(fp.radius) + "/" + std::to_string(fp.bits) + "/" +
         (fp.chirality ? "1" : "0");
}

}  // namespace

core::Result<ServedCalibration> MakeServedCalibration(const coordinator::VersionCalibration& c,
                                                      std::uint32_t version,
                                                      const std::vector<std::string>& tasks,
                                                      std::size_t embedding_dims) {
  if (c.version != version) {
    return core::Status(core::StatusCode::kDataLoss,
                        "calibration is for version " + std::to_string(c.version) +
                            ", not the served version " + std::to_string(version),
                        "calibration.version");
  }
  ServedCalibration out;
  out.version = c.version;
  out.samples = c.samples;
  out.tasks.resize(tasks.size());
  // The stored task names order the histograms; match them to the model's
  // outputs by name so that a reordering can never pair a task with another
  // task's statistics.
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    const auto it = std::find(c.tasks.begin(), c.tasks.end(), tasks[t]);
    if (it == c.tasks.end()) {
      out.notes.push_back("task '" + tasks[t] + "' has no calibration histogram");
      continue;
    }
    const std::size_t k = static_cast<std::size_t>(it - c.tasks.begin());
    if (k >= c.histograms.size()) {
      out.notes.push_back("task '" + tasks[t] + "' has no calibration histogram");
      continue;
    }
    core::Result<MondrianCalibration> m = MondrianCalibration::Create(
        c.histograms[k], "calibration.histograms[" + std::to_string(k) + "]");
    if (!m.ok()) {
      out.notes.push_back("task '" + tasks[t] + "': " + m.status().message());
      continue;
    }
    // With no calibration row of one class, that label could never be
    // excluded: say so rather than answer as if calibrated.
    if (m->negatives() == 0 || m->positives() == 0) {
      out.notes.push_back("task '" + tasks[t] + "' has " + std::to_string(m->negatives()) +
                          " negative and " + std::to_string(m->positives()) +
                          " positive calibration rows; both classes are needed");
      continue;
    }
    out.tasks[t] = std::move(m).value();
  }
  if (c.embedding.rows == 0) {
    out.notes.push_back("no embedding statistics: applicability domain not assessed");
  } else if (c.embedding.sum.size() != embedding_dims) {
    out.notes.push_back("embedding statistics have " + std::to_string(c.embedding.sum.size()) +
                        " units, the model's last hidden layer " + std::to_string(embedding_dims) +
                        ": applicability domain not assessed");
  } else if (core::Result<ml::EmbeddingReference> ref = ml::ReferenceFromMoments(c.embedding);
             !ref.ok()) {
    out.notes.push_back("embedding statistics unusable (" + ref.status().message() +
                        "): applicability domain not assessed");
  } else {
    out.reference = std::move(ref).value();
  }
  if (out.reference) {
    if (c.domain_histogram.empty()) {
      out.notes.push_back(
          "no domain-score histogram: domain scores given without a p-value or flag");
    } else if (core::Result<DomainCalibration> d =
                   DomainCalibration::Create(c.domain_histogram, "calibration.domain_histogram");
               !d.ok()) {
      out.notes.push_back("domain histogram unusable: " + d.status().message());
    } else {
      out.domain = std::move(d).value();
    }
  }
  return out;
}

core::Result<PredictionBatch> PredictWith(std::shared_ptr<const ServedModel> model,
                                          const std::vector<std::string>& smiles,
                                          const PredictOptions& options, std::size_t max_batch,
                                          int threads) {
  if (!model) return core::FailedPrecondition("no model", "model");
  if (smiles.empty()) return core::InvalidArgument("no structures", "smiles");
  if (smiles.size() > max_batch) {
    return core::InvalidArgument(std::to_string(smiles.size()) + " structures; at most " +
                                     std::to_string(max_batch) + " per request",
                                 "smiles");
  }
  PredictionBatch batch;
  batch.version = model->version;
  batch.results.resize(smiles.size());
  // Featurisation (RDKit) costs more than the forward pass: spread it over
  // the threads; structure i always lands in slot i.
  std::vector<std::vector<std::uint32_t>> bits(smiles.size());
  auto featurize = [&](std::size_t first) {
    const std::size_t step = static_cast<std::size_t>(std::max(threads, 1));
    for (std::size_t i = first; i < smiles.size(); i += step) {
      core::Result<Features> f =
          model->featurizer.Featurize(smiles[i], "smiles[" + std::to_string(i) + "]");
      if (!f.ok()) {
        batch.results[i].status = f.status();
        continue;
      }
      batch.results[i].canonical_smiles = std::move(f->canonical_smiles);
      bits[i] = std::move(f->bits);
    }
  };
  const std::size_t workers =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), smiles.size());
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(featurize, w);
  featurize(0);
  for (std::thread& t : pool) t.join();
  ml::SparseRows x;
  x.dim = model->net.input_dim;
  std::vector<std::size_t> valid;  // input position of each row of x
  for (std::size_t i = 0; i < smiles.size(); ++i) {
    if (!batch.results[i].status.ok()) continue;
    x.AddRow(bits[i]);
    valid.push_back(i);
  }
  if (!valid.empty()) {
    const std::size_t tasks = model->net.num_tasks;
    ml::PredictionWithEmbedding out;
    if (options.embeddings) {
      FEDRX_ASSIGN_OR_RETURN(out, ml::PredictWithEmbedding(model->net, model->weights, x, threads));
    } else {
      FEDRX_ASSIGN_OR_RETURN(out.probabilities,
                             ml::Predict(model->net, model->weights, x, threads));
    }
    const std::vector<float>& probs = out.probabilities;
    for (std::size_t r = 0; r < valid.size(); ++r) {
      batch.results[valid[r]].probabilities.assign(probs.begin() + r * tasks,
                                                   probs.begin() + (r + 1) * tasks);
    }
    if (options.embeddings) {
      const std::size_t width = model->net.hidden.back();
      const std::vector<float>& emb = out.embedding;
      for (std::size_t r = 0; r < valid.size(); ++r) {
        batch.results[valid[r]].embedding.assign(emb.begin() + r * width,
                                                 emb.begin() + (r + 1) * width);
      }
    }
  }
  batch.model = std::move(model);
  return batch;
}

core::Result<std::unique_ptr<ModelServer>> ModelServer::Create(ServingOptions options,
                                                               ModelRegistry& registry,
                                                               core::Metrics& metrics) {
  if (options.studies.empty()) {
    return core::InvalidArgument("no studies to serve", "ServingOptions.studies");
  }
  for (std::size_t i = 0; i < options.studies.size(); ++i) {
    FEDRX_RETURN_IF_ERROR(
        core::ValidateId(options.studies[i], "ServingOptions.studies[" + std::to_string(i) + "]"));
  }
  if (options.max_heavy_atoms < 1) {
    return core::InvalidArgument("must be at least 1", "ServingOptions.max_heavy_atoms");
  }
  if (options.max_batch < 1) {
    return core::InvalidArgument("must be at least 1", "ServingOptions.max_batch");
  }
  if (options.folds < 1 || options.folds > 100) {
    return core::InvalidArgument("must be in [1, 100]", "ServingOptions.folds");
  }
  ingest::ConsortiumKey key;
  if (!options.key_file.empty()) {
    FEDRX_ASSIGN_OR_RETURN(key, ingest::ConsortiumKey::FromFile(options.key_file));
  }
  return std::unique_ptr<ModelServer>(
      new ModelServer(std::move(options), std::move(key), registry, metrics));
}

ModelServer::ModelServer(ServingOptions options, ingest::ConsortiumKey key, ModelRegistry& registry,
                         core::Metrics& metrics)
    : options_(std::move(options)), key_(std::move(key)), registry_(registry) {
  for (const std::string& study : options_.studies) {
    Slot& slot = slots_[study];
    const core::Labels labels = {{"study", study}};
    slot.version =
        metrics.Gauge("model_version", "Model version in use per study (-1: none)", labels);
    slot.version.Set(-1);
    slot.switches =
        metrics.Counter("model_switches_total", "Switches to a newer model version", labels);
    slot.failures = metrics.Counter("model_load_failures_total",
                                    "Refreshes that could not load a study's model", labels);
    slot.calibrated = metrics.Gauge(
        "model_calibrated", "1 when the model version in use carries its calibration", labels);
    slot.calibration_failures =
        metrics.Counter("calibration_load_failures_total",
                        "Refreshes that found a served version's calibration unreadable", labels);
    slot.last_error = core::Unavailable("no model loaded yet for study '" + study + "'", study);
  }
}

core::Result<std::string> ModelServer::PreparationHashFor(const ml::FingerprintOptions& fp) {
  const std::string cache_key = FingerprintCacheKey(fp);
  if (auto it = hash_cache_.find(cache_key); it != hash_cache_.end()) return it->second;
  ingest::PrepOptions prep;
  prep.fingerprint = fp;
  prep.folds = options_.folds;
  FEDRX_ASSIGN_OR_RETURN(std::string reference, ingest::ReferenceSetHash(prep, key_));
  std::string hash = ingest::IngestPreparationHash(prep, key_, reference);
  hash_cache_[cache_key] = hash;
  return hash;
}

core::Result<std::shared_ptr<ServedModel>> ModelServer::Build(StoredModel stored) {
  ml::FingerprintOptions fp;
  fp.radius = static_cast<int>(stored.spec.fingerprint_radius);
  fp.bits = stored.net.input_dim;
  if (stored.spec.fingerprint_radius > static_cast<std::uint32_t>(ml::kMaxFingerprintRadius)) {
    FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(stored.study));
    return core::Status(
        core::StatusCode::kDataLoss,
        "stored spec has fingerprint radius " + std::to_string(stored.spec.fingerprint_radius),
        key.str());
  }
  FEDRX_ASSIGN_OR_RETURN(std::string hash, PreparationHashFor(fp));
  const std::string& wanted = stored.spec.preparation_hash;
  // A site reports its store's ingest hash; a site training from a plain CSV
  // reports ml::PreparationHash alone. Either names the same features.
  if (!wanted.empty() && wanted != hash && wanted != ml::PreparationHash(fp, key_.Fingerprint())) {
    return core::FailedPrecondition(
        "study '" + stored.study + "' was prepared as \"" + wanted +
            "\" but this server prepares structures as \"" + hash +
            "\" (check the consortium key file, fingerprint options and software versions); "
            "refusing to serve it",
        "ServingOptions.key_file");
  }
  auto model = std::make_shared<ServedModel>(ServedModel{
      .study = std::move(stored.study),
      .version = stored.version,
      .spec = std::move(stored.spec),
      .net = std::move(stored.net),
      .weights = std::move(stored.weights),
      .featurizer = Featurizer(fp, key_, options_.max_heavy_atoms),
      .preparation_hash = std::move(hash),
      .calibration = nullptr,
      .uncalibrated_reason = {},
  });
  return model;
}

bool ModelServer::WantsCalibration(const ServedModel& model) {
  // A calibration stored without its domain stage may be completed later.
  return !model.calibration || (model.calibration->reference && !model.calibration->domain);
}

core::Status ModelServer::AttachCalibration(ServedModel& out) {
  core::Result<std::optional<coordinator::VersionCalibration>> stored =
      registry_.Calibration(out.study, out.version);
  if (!stored.ok()) {
    out.uncalibrated_reason = "the calibration of model version " + std::to_string(out.version) +
                              " could not be read: " + stored.status().message();
    return stored.status();
  }
  if (!stored->has_value()) {
    out.uncalibrated_reason =
        "no calibration is stored for model version " + std::to_string(out.version) + " yet";
    return core::Status::Ok();
  }
  core::Result<ServedCalibration> c =
      MakeServedCalibration(**stored, out.version, out.spec.tasks, out.net.hidden.back());
  if (!c.ok()) {
    out.uncalibrated_reason = "the calibration of model version " + std::to_string(out.version) +
                              " does not fit it: " + c.status().message();
    return c.status();
  }
  out.calibration = std::make_shared<const ServedCalibration>(std::move(c).value());
  out.uncalibrated_reason.clear();
  return core::Status::Ok();
}

core::Status ModelServer::Refresh() {
  std::lock_guard refresh_lock(refresh_mu_);
  core::Status first_error;
  std::size_t errors = 0;
  for (const std::string& study : options_.studies) {
    std::shared_ptr<const ServedModel> current;
    {
      std::lock_guard lock(mu_);
      current = slots_.at(study).model;
    }
    core::Status status;
    core::Result<ModelRegistry::Head> head = registry_.Latest(study);
    if (!head.ok()) {
      status = head.status();
    } else if (!current || head->version > current->version) {
      core::Result<StoredModel> stored = registry_.LoadLatest(study);
      core::Result<std::shared_ptr<ServedModel>> built =
          stored.ok() ? Build(std::move(stored).value())
                      : core::Result<std::shared_ptr<ServedModel>>(stored.status());
      if (built.ok()) {
        // A model whose calibration cannot be read is still served,
        // uncalibrated and saying so; the error is counted and returned, and
        // the next Refresh reads the calibration again.
        const core::Status attached = AttachCalibration(**built);
        std::lock_guard lock(mu_);
        Slot& slot = slots_.at(study);
        if (!attached.ok()) {
          slot.calibration_failures.Inc();
          if (errors++ == 0) first_error = attached;
        }
        // Predictions already holding the old snapshot keep it alive.
        if (slot.model) slot.switches.Inc();
        slot.model = std::move(built).value();
        slot.last_error = core::Status::Ok();
        slot.version.Set(slot.model->version);
        slot.calibrated.Set(slot.model->calibration ? 1 : 0);
      } else {
        status = built.status();
      }
    } else if (WantsCalibration(*current)) {
      // Same version, calibration stored after it was first served: a new
      // snapshot carries it; predictions on the old one finish as they began.
      auto next = std::make_shared<ServedModel>(*current);
      const core::Status attached = AttachCalibration(*next);
      const bool changed =
          next->calibration != current->calibration &&
          (!current->calibration || (next->calibration && next->calibration->domain));
      std::lock_guard lock(mu_);
      Slot& slot = slots_.at(study);
      if (!attached.ok()) {
        slot.calibration_failures.Inc();
        if (errors++ == 0) first_error = attached;
      } else if (changed && slot.model == current) {
        slot.model = std::move(next);
        slot.calibrated.Set(1);
      }
    }
    if (!status.ok()) {
      std::lock_guard lock(mu_);
      Slot& slot = slots_.at(study);
      slot.failures.Inc();
      slot.last_error = status;
      if (errors++ == 0) first_error = status;
    }
  }
  if (errors > 1) {
    return core::Status(
        first_error.code(),
        first_error.message() + " (and " + std::to_string(errors - 1) + " other refresh errors)",
        first_error.where());
  }
  return first_error;
}

core::Result<std::shared_ptr<const ServedModel>> ModelServer::Current(
    const std::string& study) const {
  std::lock_guard lock(mu_);
  auto it = slots_.find(study);
  if (it == slots_.end()) return core::NotFound("study '" + study + "' is not served", "study");
  if (!it->second.model) {
    const core::Status& e = it->second.last_error;
    return core::Unavailable("study '" + study + "' has no model to serve: " + e.message(),
                             e.where());
  }
  return it->second.model;
}

core::Result<PredictionBatch> ModelServer::Predict(const std::string& study,
                                                   const std::vector<std::string>& smiles,
                                                   const PredictOptions& options) const {
  FEDRX_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> model, Current(study));
  return PredictWith(std::move(model), smiles, options, options_.max_batch, options_.threads);
}

}  // namespace fedrx::serving
