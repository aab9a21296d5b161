#include "services/site/site_service.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "messages/codec/owned_tensor.h"
#include "services/core/keys.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/private_head.h"
#include "services/ml/study_spec.h"
#include "services/privacy/secagg_wire.h"

namespace fedrx::site {

std::uint64_t HeadSeed(std::uint64_t study_seed, const std::string& site_id) {
  return ml::PrivateHeadSeed(study_seed, site_id);
}

namespace {

// Rows of the trunk's embedding computed at a time, so the embedding of a
// large training set is never held whole.
constexpr std::size_t kEmbeddingChunkRows = 4096;

// The rows [begin, end) of `x`.
ml::SparseRows RowsOf(const ml::SparseRows& x, std::size_t begin, std::size_t end) {
  ml::SparseRows out;
  out.dim = x.dim;
  for (std::size_t i = begin; i < end; ++i) out.AddRow(x.row(i));
  return out;
}

// Per-unit sums and sums of squares of the trunk's last hidden layer over
// every row of `x` (zeros over no rows).
core::Result<ml::EmbeddingMoments> EmbeddingMomentsOf(const ml::NetSpec& net,
                                                      std::span<const float> params,
                                                      const ml::SparseRows& x, int threads) {
  const std::size_t dims = net.hidden.back();
  ml::EmbeddingMoments total{0, std::vector<double>(dims, 0.0), std::vector<double>(dims, 0.0)};
  for (std::size_t begin = 0; begin < x.rows(); begin += kEmbeddingChunkRows) {
    const std::size_t end = std::min(x.rows(), begin + kEmbeddingChunkRows);
    FEDRX_ASSIGN_OR_RETURN(ml::PredictionWithEmbedding out,
                           ml::PredictWithEmbedding(net, params, RowsOf(x, begin, end), threads));
    FEDRX_ASSIGN_OR_RETURN(ml::EmbeddingMoments part, ml::MomentsOf(out.embedding, dims));
    FEDRX_RETURN_IF_ERROR(ml::MergeMoments(total, part));
  }
  return total;
}

// A float64 tensor of `dims` values named `name`, read out of an evaluation
// task; InvalidArgument naming it otherwise.
core::Result<std::vector<double>> ReferenceTensor(const codec::Tensor& t, const char* name,
                                                  std::size_t dims) {
  const std::string where = std::string("EvaluateTask tensor ") + name;
  if (t.name != name) {
    return core::InvalidArgument("expected tensor " + std::string(name) + ", got '" + t.name + "'",
                                 where);
  }
  if (t.dtype != codec::DType::kFloat64 ||
      t.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(dims)} ||
      t.data.size() != dims * sizeof(double)) {
    return core::InvalidArgument("expected float64 of shape [" + std::to_string(dims) + "]", where);
  }
  std::vector<double> values(dims);
  std::memcpy(values.data(), t.data.data(), t.data.size());
  return values;
}

}  // namespace

ml::NetSpec SiteNetSpec(const codec::StudySpec& spec, std::size_t site_tasks) {
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  return spec.private_heads ? ml::WithHead(net, static_cast<std::uint32_t>(site_tasks)) : net;
}

SiteService::SiteService(SiteOptions options, LocalData data, core::Bus& bus,
                         core::Metrics& metrics, const core::Clock& clock)
    : options_(std::move(options)),
      data_(std::move(data)),
      bus_(bus),
      metrics_(metrics),
      clock_(clock) {}

SiteService::~SiteService() {
  if (training_.valid()) training_.wait();
}

core::Status SiteService::Start() {
  FEDRX_ASSIGN_OR_RETURN(gateway_,
                         bus_.Connect(options_.gateway_endpoint,
                                      [this](codec::Message&& m) { OnPush(std::move(m)); }));
  std::cerr << "site " << options_.site_id << ": " << data_.train.size() << " training, "
            << data_.valid.size() << " validation, " << data_.test.size() << " test rows; gateway "
            << options_.gateway_endpoint << "\n";
  Register();
  return core::Status::Ok();
}

core::Readiness SiteService::CheckReady() {
  if (draining_) return {false, "draining"};
  if (!registered_) return {false, "not registered with the gateway yet"};
  return {true, ""};
}

bool SiteService::HasUpdate(const std::string& study_id, std::uint32_t round) const {
  auto it = updates_.find(study_id);
  return it != updates_.end() && it->second.round == round;
}

void SiteService::Complain(const char* reason, const std::string& what) {
  metrics_.CountRejected(reason);
  std::cerr << "site " << options_.site_id << ": " << what << "\n";
}

bool SiteService::Approved(const std::string& study_id) const {
  return std::find(options_.approved_studies.begin(), options_.approved_studies.end(), study_id) !=
         options_.approved_studies.end();
}

void SiteService::Register() {
  if (registering_) return;
  registering_ = true;
  codec::RegisterSite r{options_.site_id, options_.institution, data_.train.size(),
                        data_.train.tasks, options_.preparation_hash};
  core::Status s =
      bus_.Request(gateway_, core::MakeMessage(std::move(r)), options_.request_timeout,
                   [this](core::Result<codec::Message>&& reply) {
                     registering_ = false;
                     if (!reply.ok()) {
                       std::cerr << "site " << options_.site_id
                                 << ": registration failed: " << reply.status() << "\n";
                       return;
                     }
                     if (!registered_) std::cerr << "site " << options_.site_id << ": registered\n";
                     registered_ = true;
                     next_heartbeat_ = clock_.Now();  // tell the coordinator the approvals at once
                   });
  if (!s.ok()) registering_ = false;
}

core::Status SiteService::Tick() {
  if (training_.valid() &&
      training_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    FinishTraining();
  }
  const auto now = clock_.Now();
  if (now < next_heartbeat_) return core::Status::Ok();
  next_heartbeat_ = now + options_.heartbeat_interval;
  if (!registered_) {
    Register();
    return core::Status::Ok();
  }
  return bus_.Send(gateway_, core::MakeMessage(codec::Heartbeat{options_.approved_studies}));
}

void SiteService::OnPush(codec::Message&& m) {
  if (auto* task = std::get_if<codec::TrainTask>(&m.body)) {
    OnTrainTask(*task, m.tensors);
  } else if (auto* grant = std::get_if<codec::UploadGrant>(&m.body)) {
    OnUploadGrant(*grant);
  } else if (auto* eval = std::get_if<codec::EvaluateTask>(&m.body)) {
    OnEvaluateTask(*eval, m.tensors);
  } else if (auto* start = std::get_if<codec::SecAggStart>(&m.body)) {
    OnSecAggStart(*start);
  } else if (auto* roster = std::get_if<codec::SecAggRoster>(&m.body)) {
    OnSecAggRoster(*roster);
  } else if (auto* bundle = std::get_if<codec::SecAggBundle>(&m.body)) {
    OnSecAggBundle(*bundle);
  } else if (auto* unmask = std::get_if<codec::SecAggUnmaskRequest>(&m.body)) {
    OnSecAggUnmaskRequest(*unmask);
  } else if (auto* error = std::get_if<codec::Error>(&m.body)) {
    std::cerr << "site " << options_.site_id
              << ": the platform refused a message: " << core::FromErrorBody(*error) << "\n";
    if (error->where == "envelope.origin" && error->code == codec::ErrorCode::kFailedPrecondition) {
      registered_ = false;  // the gateway no longer knows this connection
    }
  } else {
    Complain("unexpected_push", std::string("ignored a ") + codec::BodyName(m.body));
  }
}

void SiteService::FetchSpec(const std::string& study_id) {
  if (!fetching_.insert(study_id).second) return;
  core::Status s = bus_.Request(
      gateway_, core::MakeMessage(codec::GetStudy{study_id}), options_.request_timeout,
      [this, study_id](core::Result<codec::Message>&& reply) {
        fetching_.erase(study_id);
        if (!reply.ok() || !std::holds_alternative<codec::StudyInfo>(reply->body)) {
          std::cerr << "site " << options_.site_id << ": cannot read study " << study_id << ": "
                    << (reply.ok() ? "unexpected reply" : reply.status().ToString()) << "\n";
          return;
        }
        specs_[study_id] = std::get<codec::StudyInfo>(reply->body).study;
        // Only the newest round that arrived meanwhile still matters: the
        // coordinator has moved past the older ones. One training at a time.
        std::optional<Task> newest;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if (it->task.study_id != study_id) {
            ++it;
            continue;
          }
          Task candidate = std::move(*it);
          it = waiting_.erase(it);
          if (newest && candidate.task.round <= newest->task.round) std::swap(*newest, candidate);
          if (newest) {
            Complain("superseded", "round " + std::to_string(newest->task.round) + " of " +
                                       study_id + " superseded by round " +
                                       std::to_string(candidate.task.round) +
                                       " before the study's settings arrived");
          }
          newest = std::move(candidate);
        }
        if (!newest) return;
        if (training_.valid()) {
          Complain("busy", "already training; ignored round " + std::to_string(newest->task.round) +
                               " of " + study_id);
          return;
        }
        StartTraining(std::move(*newest));
      });
  if (!s.ok()) fetching_.erase(study_id);
}

const LocalData* SiteService::DataFor(const std::string& study_id) {
  auto spec = specs_.find(study_id);
  if (spec == specs_.end()) return nullptr;
  auto it = aligned_.find(study_id);
  if (it == aligned_.end()) {
    std::vector<std::string> tasks = spec->second.tasks;
    if (spec->second.private_heads) {
      // This site's own tasks: all of them, or those of the study's panel it
      // holds (in the study's order).
      std::vector<std::string> own;
      for (const std::string& t : data_.train.tasks) {
        if (tasks.empty() || std::find(tasks.begin(), tasks.end(), t) != tasks.end()) {
          own.push_back(t);
        }
      }
      if (!tasks.empty()) {
        std::vector<std::string> ordered;
        for (const std::string& t : tasks) {
          if (std::find(own.begin(), own.end(), t) != own.end()) ordered.push_back(t);
        }
        own = std::move(ordered);
      }
      tasks = std::move(own);
    }
    it =
        aligned_
            .emplace(study_id, LocalData{data_.train.WithTasks(tasks), data_.valid.WithTasks(tasks),
                                         data_.test.WithTasks(tasks)})
            .first;
  }
  return &it->second;
}

void SiteService::OnTrainTask(codec::TrainTask task, std::vector<codec::Tensor>& tensors) {
  if (draining_) return;
  if (!Approved(task.study_id)) {
    Complain("not_approved", "refused a training task for study " + task.study_id +
                                 ", which this institution has not approved");
    return;
  }
  if (HasUpdate(task.study_id, task.round) &&
      updates_[task.study_id].base_version == task.model_version) {
    SendReady(updates_[task.study_id]);  // the coordinator repeated the round; the update stands
    return;
  }
  if (training_.valid()) {
    Complain("busy", "already training; ignored round " + std::to_string(task.round) + " of " +
                         task.study_id);
    return;
  }
  if (tensors.size() != 1 || tensors[0].dtype != codec::DType::kFloat32) {
    Complain("bad_task", "training task without one float32 weights tensor");
    return;
  }
  auto view = tensors[0].data.As<float>();
  if (options_.synthetic_step != 0) {
    auto global = std::make_shared<const std::vector<float>>(view.begin(), view.end());
    auto weights = std::make_shared<std::vector<float>>(*global);
    for (float& w : *weights) w += options_.synthetic_step;
    Update& u = updates_[task.study_id];
    u = Update{task.study_id, task.round, task.model_version, 1, 0, std::move(weights)};
    u.global = std::move(global);  // a secure-aggregation round masks the delta
    ++rounds_trained_;
    SendReady(u);
    return;
  }
  Task t{task, std::vector<float>(view.begin(), view.end())};
  if (specs_.count(task.study_id) == 0) {
    waiting_.push_back(std::move(t));
    FetchSpec(task.study_id);
    return;
  }
  StartTraining(std::move(t));
}

std::string SiteService::HeadPath(const std::string& study_id) const {
  if (options_.state_dir.empty() || !core::ValidateId(study_id, "study_id").ok()) return "";
  return (std::filesystem::path(options_.state_dir) / (study_id + ".head")).string();
}

std::vector<float>* SiteService::HeadFor(const codec::StudySpec& spec, const ml::NetSpec& net) {
  std::vector<float>& head = heads_[spec.study_id];
  const std::size_t size = ml::HeadParameterCount(net);
  if (head.size() != size) {
    // A restarted site carries on with the head it had trained.
    const std::string path = HeadPath(spec.study_id);
    const LocalData* data = DataFor(spec.study_id);
    if (!path.empty() && data != nullptr) {
      // None yet, or one that does not fit (then the site starts a new head).
      core::Result<std::vector<float>> stored = ml::ReadHeadFile(path, data->train.tasks, size);
      if (stored.ok()) {
        head = std::move(*stored);
      } else if (stored.status().code() != core::StatusCode::kNotFound) {
        std::cerr << "site " << options_.site_id
                  << ": not resuming the private head: " << stored.status() << "\n";
      }
    }
    if (head.size() == size) {
      std::cerr << "site " << options_.site_id << ": resumed the private head of study "
                << spec.study_id << " from " << path << "\n";
    } else {
      head = ml::InitHead(net, HeadSeed(spec.seed, options_.site_id));
    }
  }
  return &head;
}

void SiteService::StartTraining(Task t) {
  const codec::StudySpec& spec = specs_.at(t.task.study_id);
  if (!spec.statistic.empty() || !spec.statistic_rows.empty()) return StartCounting(std::move(t));
  const LocalData* data = DataFor(spec.study_id);
  const ml::NetSpec net = SiteNetSpec(spec, data->train.num_tasks());
  if (net.input_dim != options_.fingerprint_bits) {
    Complain("bad_task", "study " + spec.study_id + " expects " + std::to_string(net.input_dim) +
                             "-bit inputs, this site prepares " +
                             std::to_string(options_.fingerprint_bits));
    return;
  }
  // With private heads the task carries the trunk; the head is this site's.
  std::vector<float> head;
  if (spec.private_heads) {
    if (net.num_tasks == 0) {
      Complain("bad_task", "study " + spec.study_id +
                               " has private heads but this site holds "
                               "none of its tasks");
      return;
    }
    if (t.weights.size() != ml::TrunkParameterCount(net)) {
      Complain("bad_task", "study " + spec.study_id + " sent " + std::to_string(t.weights.size()) +
                               " trunk parameters, its trunk has " +
                               std::to_string(ml::TrunkParameterCount(net)));
      return;
    }
    head = *HeadFor(spec, net);
  }
  std::shared_ptr<ml::Trainer>& trainer = trainers_[spec.study_id];
  if (!trainer || trainer->options().epochs != t.task.local_epochs ||
      trainer->options().batch_size != t.task.batch_size ||
      trainer->options().learning_rate != t.task.learning_rate ||
      trainer->options().proximal_mu != spec.proximal_mu) {
    ml::TrainOptions o;
    o.epochs = t.task.local_epochs;
    o.batch_size = t.task.batch_size;
    o.learning_rate = t.task.learning_rate;
    o.proximal_mu = spec.proximal_mu;  // FedProx; 0 is plain local training
    o.threads = options_.train_threads;
    o.keep_optimizer_state = true;
    trainer = std::make_shared<ml::Trainer>(o);
  }
  trainer->set_seed(t.task.seed);
  // The update leaves clipped (and noised, with DP): see PrivacyOptions.
  const privacy::DpSiteOptions dp = PrivacyOptions(spec);
  if (dp.clip_norm > 0 && !noise_) {
    auto noise = privacy::GaussianNoise::Create();
    if (!noise.ok()) {
      Complain("no_noise", "cannot seed the DP noise sampler (" + noise.status().message() +
                               "); not training round " + std::to_string(t.task.round));
      return;
    }
    noise_ = std::make_shared<privacy::GaussianNoise>(std::move(*noise));
  }
  std::cerr << "site " << options_.site_id << ": training round " << t.task.round << " of "
            << spec.study_id << " on " << data->train.size() << " rows\n";
  const bool secure = spec.secure_aggregation;
  training_ = std::async(
      std::launch::async,
      [net, trainer, data, dp, secure, noise = noise_, t = std::move(t),
       head = std::move(head)]() mutable -> core::Result<Update> {
        // The global model, kept only when the update is clipped against it or
        // masked as a delta from it.
        std::vector<float> global;
        if (dp.clip_norm > 0 || secure) global = t.weights;
        bool clipped = false;
        ml::TrainStats stats;
        if (head.empty()) {
          FEDRX_ASSIGN_OR_RETURN(stats, trainer->Train(net, data->train, t.weights));
        } else {
          // Private head: trunk and head train together as one network
          // ([trunk][head]); then only the trunk goes on, and the head stays.
          FEDRX_ASSIGN_OR_RETURN(std::vector<float> full, ml::JoinTrunkHead(net, t.weights, head));
          FEDRX_ASSIGN_OR_RETURN(stats, trainer->Train(net, data->train, full));
          FEDRX_RETURN_IF_ERROR(ml::SplitTrunk(net, full, t.weights, head));
        }
        if (dp.clip_norm > 0) {
          // Only the worker thread uses the sampler, one training at a time.
          FEDRX_ASSIGN_OR_RETURN(privacy::DpSiteReport report,
                                 privacy::PrivatizeUpdate(t.weights, global, dp, *noise));
          clipped = report.clipped;
        }
        Update u;
        u.study_id = t.task.study_id;
        u.round = t.task.round;
        u.base_version = t.task.model_version;
        u.samples = data->train.size();
        u.loss = stats.epoch_loss.empty() ? 0 : stats.epoch_loss.back();
        u.weights = std::make_shared<const std::vector<float>>(std::move(t.weights));
        u.clipped = clipped;
        if (secure) u.global = std::make_shared<const std::vector<float>>(std::move(global));
        u.head = std::move(head);
        return u;
      });
}

privacy::DpSiteOptions SiteService::PrivacyOptions(const codec::StudySpec& spec) {
  privacy::DpSiteOptions dp;
  // DP-FedAvg clips to dp_clip_norm; norm bounding clips to norm_bound here
  // too, so that it also holds when the coordinator only sees a masked sum.
  double clip = spec.dp_clip_norm;
  if (spec.strategy == "norm_bound" && spec.norm_bound > 0) {
    clip = clip > 0 ? std::min<double>(clip, spec.norm_bound) : spec.norm_bound;
  }
  dp.clip_norm = clip;
  // The noise is scaled to the DP clip norm, which the accountant assumes.
  dp.noise_multiplier =
      spec.dp_clip_norm > 0 ? spec.dp_noise_multiplier * spec.dp_clip_norm / clip : 0.0;
  // With secure aggregation the sites share the noise: each adds 1/t of the
  // variance, t the fewest updates a round can be unmasked with.
  dp.noise_shares = 1;
  if (spec.secure_aggregation) {
    dp.noise_shares = spec.secagg_threshold > 0 ? spec.secagg_threshold : spec.min_sites;
    if (dp.noise_shares == 0) dp.noise_shares = 1;
  }
  return dp;
}

void SiteService::FinishTraining() {
  core::Result<Update> result = training_.get();
  if (!result.ok()) {
    metrics_.CountError("trainer", "train");
    std::cerr << "site " << options_.site_id << ": training failed: " << result.status() << "\n";
    return;
  }
  Update& u = updates_[result->study_id];
  u = std::move(*result);
  if (!u.head.empty()) {
    // The trained private head stays here, out of the update that may leave.
    const std::string path = HeadPath(u.study_id);
    const LocalData* data = DataFor(u.study_id);
    if (!path.empty() && data != nullptr) {
      if (core::Status s = ml::SaveHeadFile(path, data->train.tasks, u.head, "site.state_dir");
          !s.ok()) {
        metrics_.CountError("head_store", "save");
        std::cerr << "site " << options_.site_id << ": private head kept in memory only: " << s
                  << "\n";
      }
    }
    heads_[u.study_id] = std::move(u.head);
    u.head.clear();
  }
  ++rounds_trained_;
  metrics_.Counter("rounds_trained_total", "Rounds this site trained").Inc();
  if (u.clipped) {
    metrics_.Counter("updates_clipped_total", "Updates scaled back to the study's clip norm").Inc();
  }
  std::cerr << "site " << options_.site_id << ": round " << u.round << " of " << u.study_id
            << " trained, loss " << u.loss << "\n";
  SendReady(u);
}

void SiteService::SendReady(const Update& u) {
  codec::UpdateReady ready{
      u.study_id, u.round, u.base_version, u.samples, {{"train_loss", u.loss}}};
  if (core::Status s = bus_.Send(gateway_, core::MakeMessage(std::move(ready))); !s.ok()) {
    std::cerr << "site " << options_.site_id << ": cannot report ready: " << s << "\n";
  }
}

void SiteService::OnUploadGrant(const codec::UploadGrant& grant) {
  if (!HasUpdate(grant.study_id, grant.round)) {
    Complain("stray_grant", "upload grant for round " + std::to_string(grant.round) + " of " +
                                grant.study_id + " but no such update here");
    return;
  }
  if (auto spec = specs_.find(grant.study_id);
      spec != specs_.end() && spec->second.secure_aggregation) {
    Complain("secagg_only", "refused an upload grant for study " + grant.study_id +
                                ", whose updates leave only masked (secure aggregation)");
    return;
  }
  const Update& u = updates_.at(grant.study_id);
  codec::ModelUpdate update{u.study_id,     u.round,   options_.site_id,
                            u.base_version, u.samples, {{"train_loss", u.loss}}};
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"weights",
                                  codec::DType::kFloat32,
                                  {static_cast<std::int64_t>(u.weights->size())},
                                  codec::Blob::FromShared(u.weights)});
  const std::uint32_t round = u.round;
  core::Status s =
      bus_.Request(gateway_, core::MakeMessage(std::move(update), std::move(tensors)),
                   options_.request_timeout, [this, round](core::Result<codec::Message>&& reply) {
                     if (!reply.ok()) {
                       std::cerr << "site " << options_.site_id << ": update for round " << round
                                 << " refused: " << reply.status() << "\n";
                     }
                   });
  if (!s.ok()) std::cerr << "site " << options_.site_id << ": cannot send update: " << s << "\n";
}

void SiteService::OnEvaluateTask(const codec::EvaluateTask& task,
                                 std::vector<codec::Tensor>& tensors) {
  if (!Approved(task.study_id) || specs_.count(task.study_id) == 0) {
    Complain("not_approved", "refused to evaluate for study " + task.study_id);
    return;
  }
  const codec::StudySpec& spec = specs_.at(task.study_id);
  // Stage 1 (the applicability domain) brings the reference after the
  // weights; private-heads studies run stage 0 alone.
  if (task.stage > 1 || (task.stage == 1 && spec.private_heads)) {
    Complain("bad_task", "refused evaluation stage " + std::to_string(task.stage) + " for study " +
                             task.study_id);
    return;
  }
  const std::size_t expected_tensors = task.stage == 1 ? 3 : 1;
  if (tensors.size() != expected_tensors || tensors[0].dtype != codec::DType::kFloat32) {
    Complain("bad_task", "evaluation task (stage " + std::to_string(task.stage) + ") without " +
                             std::to_string(expected_tensors) +
                             " tensor(s), the first float32 weights");
    return;
  }
  const LocalData* data = DataFor(task.study_id);
  const ml::Dataset& rows = task.split == "test" ? data->test : data->valid;
  if (task.stage == 1) {
    EvaluateDomain(task, rows, tensors);
    return;
  }
  const ml::NetSpec net = SiteNetSpec(spec, data->valid.num_tasks());
  const std::size_t tasks = net.num_tasks;
  const std::size_t bins = task.bins;
  // With private heads: the federated trunk under this site's own head, on
  // this site's own tasks (named in the result).
  std::vector<float> full;
  std::span<const float> params = tensors[0].data.As<float>();
  if (spec.private_heads) {
    if (tasks == 0) {
      Complain("bad_task", "no tasks of this site's own to evaluate for study " + task.study_id);
      return;
    }
    auto joined = ml::JoinTrunkHead(net, params, *HeadFor(spec, net));
    if (!joined.ok()) {
      Complain("bad_task", "cannot evaluate: " + joined.status().ToString());
      return;
    }
    full = std::move(*joined);
    params = full;
  }
  std::vector<std::uint64_t> counts(tasks * 2 * bins, 0);
  if (rows.size() > 0) {
    auto probs = ml::Predict(net, params, rows.x, options_.train_threads);
    if (!probs.ok()) {
      Complain("bad_task", "cannot evaluate: " + probs.status().ToString());
      return;
    }
    auto h = ml::Histograms(rows, *probs, bins);
    if (!h.ok()) {
      Complain("bad_task", "cannot evaluate: " + h.status().ToString());
      return;
    }
    for (std::size_t t = 0; t < tasks; ++t) {
      std::copy((*h)[t].neg.begin(), (*h)[t].neg.end(), counts.begin() + (t * 2) * bins);
      std::copy((*h)[t].pos.begin(), (*h)[t].pos.end(), counts.begin() + (t * 2 + 1) * bins);
    }
  }
  std::vector<codec::Tensor> out;
  out.push_back(codec::OwnedTensor(
      "histograms", codec::DType::kUInt64,
      {static_cast<std::int64_t>(tasks), 2, static_cast<std::int64_t>(bins)}, std::move(counts)));
  codec::EvaluationResult result{task.study_id, task.round, task.model_version, task.split,
                                 rows.size()};
  if (spec.private_heads) {
    result.tasks = rows.tasks;
  } else {
    // Calibration: where this site's training rows lie in the trunk's
    // embedding, as per-unit sums (never the embeddings themselves).
    auto moments = EmbeddingMomentsOf(net, params, data->train.x, options_.train_threads);
    if (!moments.ok()) {
      Complain("bad_task", "cannot evaluate: " + moments.status().ToString());
      return;
    }
    const auto dims = static_cast<std::int64_t>(moments->sum.size());
    std::vector<double> both = std::move(moments->sum);
    both.insert(both.end(), moments->sum_squares.begin(), moments->sum_squares.end());
    out.push_back(codec::OwnedTensor("embedding_moments", codec::DType::kFloat64, {2, dims},
                                     std::move(both)));
    result.embedding_rows = moments->rows;
  }
  metrics_.Counter("evaluations_total", "Federated evaluations answered").Inc();
  if (core::Status s = bus_.Send(gateway_, core::MakeMessage(std::move(result), std::move(out)));
      !s.ok()) {
    std::cerr << "site " << options_.site_id << ": cannot send evaluation: " << s << "\n";
  }
}

void SiteService::EvaluateDomain(const codec::EvaluateTask& task, const ml::Dataset& rows,
                                 std::vector<codec::Tensor>& tensors) {
  const ml::NetSpec net = SiteNetSpec(specs_.at(task.study_id), rows.num_tasks());
  const std::size_t dims = net.hidden.back();
  const std::size_t bins = task.bins;
  auto mean = ReferenceTensor(tensors[1], "embedding_mean", dims);
  auto scale = ReferenceTensor(tensors[2], "embedding_scale", dims);
  for (const core::Status& s : {mean.status(), scale.status()}) {
    if (!s.ok()) {
      Complain("bad_task", "refused the domain stage: " + s.ToString());
      return;
    }
  }
  const ml::EmbeddingReference ref{std::move(*mean), std::move(*scale)};
  if (core::Status s = ml::ValidateReference(ref, dims, "EvaluateTask.embedding_reference");
      !s.ok()) {
    Complain("bad_task", "refused the domain stage: " + s.ToString());
    return;
  }
  if (bins == 0 || bins > ml::kMaxHistogramBins) {
    Complain("bad_task", "refused the domain stage: bins " + std::to_string(bins) +
                             " is outside 1.." + std::to_string(ml::kMaxHistogramBins));
    return;
  }
  const std::span<const float> params = tensors[0].data.As<float>();
  std::vector<std::uint64_t> counts(bins, 0);
  for (std::size_t begin = 0; begin < rows.size(); begin += kEmbeddingChunkRows) {
    const std::size_t end = std::min(rows.size(), begin + kEmbeddingChunkRows);
    auto out =
        ml::PredictWithEmbedding(net, params, RowsOf(rows.x, begin, end), options_.train_threads);
    if (!out.ok()) {
      Complain("bad_task", "cannot evaluate the domain: " + out.status().ToString());
      return;
    }
    auto h = ml::DomainHistogram(out->embedding, ref, bins);
    if (!h.ok()) {
      Complain("bad_task", "cannot evaluate the domain: " + h.status().ToString());
      return;
    }
    for (std::size_t b = 0; b < bins; ++b) counts[b] += (*h)[b];
  }
  std::vector<codec::Tensor> out;
  out.push_back(codec::OwnedTensor("domain_histogram", codec::DType::kUInt64,
                                   {static_cast<std::int64_t>(bins)}, std::move(counts)));
  codec::EvaluationResult result{task.study_id, task.round, task.model_version, task.split,
                                 rows.size()};
  result.stage = 1;
  metrics_.Counter("evaluations_total", "Federated evaluations answered").Inc();
  if (core::Status s = bus_.Send(gateway_, core::MakeMessage(std::move(result), std::move(out)));
      !s.ok()) {
    std::cerr << "site " << options_.site_id << ": cannot send evaluation: " << s << "\n";
  }
}

// ---- secure aggregation -------------------------------------------------------------

void SiteService::SendToPlatform(codec::Message message, const char* what) {
  if (core::Status s = bus_.Send(gateway_, std::move(message)); !s.ok()) {
    std::cerr << "site " << options_.site_id << ": cannot send " << what << ": " << s << "\n";
  }
}

void SiteService::SecAggDrop(const std::string& study_id, const std::string& why) {
  secagg_.erase(study_id);
  metrics_.Counter("secagg_dropped_total", "Secure-aggregation rounds this site left").Inc();
  Complain("secagg", "left the secure aggregation of study " + study_id + ": " + why);
}

SiteService::SecAggRound* SiteService::SecAggFor(const std::string& study_id, std::uint32_t round,
                                                 const char* body) {
  auto it = secagg_.find(study_id);
  if (it == secagg_.end() || it->second.round != round || !it->second.client) {
    Complain("stray_secagg", std::string("ignored a ") + body + " for round " +
                                 std::to_string(round) + " of " + study_id +
                                 ", which this site is not aggregating");
    return nullptr;
  }
  return &it->second;
}

void SiteService::OnSecAggStart(const codec::SecAggStart& m) {
  if (draining_) return;
  if (!Approved(m.study_id)) {
    Complain("not_approved", "refused secure aggregation for study " + m.study_id +
                                 ", which this institution has not approved");
    return;
  }
  const auto spec = specs_.find(m.study_id);
  if (spec != specs_.end() && !spec->second.secure_aggregation) {
    Complain("bad_task",
             "refused secure aggregation for study " + m.study_id + ", which does not ask for it");
    return;
  }
  if (!HasUpdate(m.study_id, m.round) || updates_.at(m.study_id).base_version != m.base_version ||
      !updates_.at(m.study_id).global) {
    Complain("bad_task", "secure aggregation of round " + std::to_string(m.round) + " of " +
                             m.study_id + " but no update of that round and base here");
    return;
  }
  if (auto done = masked_round_.find(m.study_id);
      done != masked_round_.end() && done->second >= m.round) {
    Complain("secagg_repeat", "refused to mask round " + std::to_string(m.round) + " of " +
                                  m.study_id + " again (its masked input already left)");
    return;
  }
  auto params = privacy::ParamsFromWire(m.params);
  if (!params.ok()) {
    Complain("bad_task", "secure-aggregation parameters refused: " + params.status().ToString());
    return;
  }
  const Update& u = updates_.at(m.study_id);
  if (params->dimension != u.weights->size()) {
    Complain("bad_task", "secure aggregation over " + std::to_string(params->dimension) +
                             " parameters, the model has " + std::to_string(u.weights->size()));
    return;
  }
  if (spec != specs_.end() && params->neighbours != spec->second.secagg_neighbours) {
    // The graph decides whose masks hide this site's update: a coordinator
    // may not thin it (or change it) behind the study's back.
    Complain("bad_task", "secure aggregation with " + std::to_string(params->neighbours) +
                             " neighbours per site, the study asks for " +
                             std::to_string(spec->second.secagg_neighbours) + " (0: every pair)");
    return;
  }
  if (spec != specs_.end()) {
    // Each site adds 1/noise_shares of the DP noise variance: a sum of fewer
    // than noise_shares updates would carry less noise than the accountant
    // charges, so the threshold must not be below it.
    const privacy::DpSiteOptions dp = PrivacyOptions(spec->second);
    if (dp.noise_multiplier > 0 && params->threshold < dp.noise_shares) {
      Complain("bad_task", "secure-aggregation threshold " + std::to_string(params->threshold) +
                               " is below the " + std::to_string(dp.noise_shares) +
                               " sites the DP noise is shared among");
      return;
    }
  }
  auto client = privacy::SecAggClient::Create(*params, m.participant);
  if (!client.ok()) {
    Complain("bad_task", "cannot take part in secure aggregation: " + client.status().ToString());
    return;
  }
  auto keys = client->AdvertiseKeys();
  if (!keys.ok()) {
    Complain("secagg", "cannot advertise keys: " + keys.status().ToString());
    return;
  }
  SecAggRound& r = secagg_[m.study_id];
  r = SecAggRound{};
  r.round = m.round;
  r.client.emplace(std::move(*client));
  // Sample-weighted FedAvg through the sum: samples / cap in [0, 1]; with
  // DP (cap 0) every site weighs 1.
  r.weight =
      m.weight_cap == 0
          ? 1.0
          : std::min(1.0, static_cast<double>(u.samples) / static_cast<double>(m.weight_cap));
  if (spec != specs_.end() && !spec->second.statistic.empty()) {
    // Counts are summed: weight 1, and a fixed point that would clip one of
    // them (the coordinator's clip is the largest count declared) is refused
    // rather than sending a wrong count.
    r.weight = 1.0;
    const double largest =
        u.weights->empty() ? 0.0 : *std::max_element(u.weights->begin(), u.weights->end());
    if (largest > params->encoding.clip) {
      secagg_.erase(m.study_id);
      Complain("bad_task", "secure aggregation of study " + m.study_id + " clips counts at " +
                               std::to_string(params->encoding.clip) +
                               ", below this site's largest count");
      return;
    }
  }
  SendToPlatform(core::MakeMessage(codec::SecAggKeys{m.study_id, m.round, privacy::ToWire(*keys)}),
                 "secure-aggregation keys");
}

void SiteService::OnSecAggRoster(const codec::SecAggRoster& m) {
  SecAggRound* r = SecAggFor(m.study_id, m.round, "SecAggRoster");
  if (r == nullptr) return;
  auto roster = privacy::FromWire(m);
  if (!roster.ok()) return SecAggDrop(m.study_id, roster.status().ToString());
  auto shares = r->client->ShareKeys(*roster);
  if (!shares.ok()) return SecAggDrop(m.study_id, shares.status().ToString());
  codec::SecAggShares out = privacy::ToWire(*shares);
  out.study_id = m.study_id;
  out.round = m.round;
  SendToPlatform(core::MakeMessage(std::move(out)), "secure-aggregation shares");
}

void SiteService::OnSecAggBundle(const codec::SecAggBundle& m) {
  SecAggRound* r = SecAggFor(m.study_id, m.round, "SecAggBundle");
  if (r == nullptr) return;
  auto bundle = privacy::FromWire(m);
  if (!bundle.ok()) return SecAggDrop(m.study_id, bundle.status().ToString());
  if (!HasUpdate(m.study_id, m.round)) return SecAggDrop(m.study_id, "the update is gone");
  const Update& u = updates_.at(m.study_id);
  // The delta from the round's global model (already clipped and noised
  // with DP): small numbers, so the fixed point's clip never bites in practice.
  std::vector<float> delta(u.weights->size());
  for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = (*u.weights)[i] - (*u.global)[i];
  auto masked = r->client->MaskInput(*bundle, delta, r->weight);
  delta.clear();
  if (!masked.ok()) return SecAggDrop(m.study_id, masked.status().ToString());
  masked_round_[m.study_id] = std::max(masked_round_[m.study_id], m.round);
  if (r->client->clipped_coordinates() > 0) {
    metrics_
        .Counter("secagg_clipped_coordinates_total",
                 "Update coordinates the secure-aggregation fixed point clipped")
        .Inc(static_cast<double>(r->client->clipped_coordinates()));
  }
  const auto words = static_cast<std::int64_t>(masked->masked.size());
  std::vector<codec::Tensor> tensors;
  tensors.push_back(
      codec::OwnedTensor("masked", codec::DType::kUInt32, {words}, std::move(masked->masked)));
  SendToPlatform(core::MakeMessage(codec::SecAggMaskedInput{m.study_id, m.round, masked->id},
                                   std::move(tensors)),
                 "masked input");
}

void SiteService::OnSecAggUnmaskRequest(const codec::SecAggUnmaskRequest& m) {
  SecAggRound* r = SecAggFor(m.study_id, m.round, "SecAggUnmaskRequest");
  if (r == nullptr) return;
  auto response = r->client->Unmask(privacy::FromWire(m));
  if (!response.ok()) return SecAggDrop(m.study_id, response.status().ToString());
  codec::SecAggUnmaskResponse out = privacy::ToWire(*response);
  out.study_id = m.study_id;
  out.round = m.round;
  secagg_.erase(m.study_id);  // the client wiped its secrets
  metrics_.Counter("secagg_rounds_total", "Secure-aggregation rounds this site completed").Inc();
  SendToPlatform(core::MakeMessage(std::move(out)), "unmasking shares");
}

}  // namespace fedrx::site
