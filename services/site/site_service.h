// SiteService: an institution's agent. It keeps the institution's dataset on
// its own machine, connects out to the platform's gateway, registers a
// descriptor (sample count, task names, preparation hash; never rows), sends
// heartbeats naming the studies its institution approved, trains the global
// model locally when asked (on a worker thread, so the site keeps answering),
// hands its update over when granted (or, in a study with secure
// aggregation, masks its model delta with a SecAggClient and follows the
// coordinator through the four SecAgg stages: it then never sends the update
// itself, and masks each round's update at most once), and evaluates models
// on its local validation rows, sending back only score histograms (and, for
// calibration, per-unit embedding sums of its training rows and a histogram
// of its validation rows' applicability-domain scores). In a
// private-heads study the global model is the trunk: the site keeps a head
// for its own tasks (initialised once from the study seed and its id, held
// in memory and, with SiteOptions::state_dir, on local disk), trains trunk and head together,
// sends only the trunk (or its delta), and evaluates with its own head.
// Runs on the runner's thread; not thread-safe.
#pragma once

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/ml/dataset.h"
#include "services/ml/model.h"
#include "services/ml/trainer.h"
#include "services/privacy/dp_mechanism.h"
#include "services/privacy/secagg_client.h"

namespace fedrx::site {

struct SiteOptions {
  std::string site_id;
  std::string institution;
  std::string gateway_endpoint = "tcp://127.0.0.1:5560";
  // Studies the institution approved; tasks for any other study are refused.
  std::vector<std::string> approved_studies;
  // Reported to the coordinator so mismatched preparation is visible.
  std::string preparation_hash;
  std::uint32_t fingerprint_bits = 2048;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds request_timeout{10000};
  int train_threads = 2;
  // Private heads are kept here (one file per study, `<study>.head`) so a
  // restarted site carries on with its own head; empty keeps them in memory
  // only (a restart then starts a new head).
  std::string state_dir;
  // Benchmark mode: no data; "training" adds this constant to every weight,
  // so a study measures the framework's own cost. 0 trains for real.
  float synthetic_step = 0;
};

// The site's local data, already featurised: training rows and, for
// federated evaluation, validation and test rows.
struct LocalData {
  ml::Dataset train;
  ml::Dataset valid;
  ml::Dataset test;
};

// The seed of a site's private head in a study.
std::uint64_t HeadSeed(std::uint64_t study_seed, const std::string& site_id);
// The network a site trains for `spec`: the study's, or with private heads
// the trunk with a head of `site_tasks` outputs.
ml::NetSpec SiteNetSpec(const codec::StudySpec& spec, std::size_t site_tasks);

class SiteService final : public core::Service {
 public:
  SiteService(SiteOptions options, LocalData data, core::Bus& bus, core::Metrics& metrics,
              const core::Clock& clock);
  ~SiteService() override;

  core::Status Start() override;
  core::Status Tick() override;
  core::Readiness CheckReady() override;
  void BeginDrain() override { draining_ = true; }
  bool Drained() override { return !training_.valid(); }

  // Blocks until local training under way (if any) has finished; the next
  // Tick() reports it. For shutdown and tests.
  void WaitForTraining() {
    if (training_.valid()) training_.wait();
  }

  bool registered() const { return registered_; }
  // This site's private head of a study (empty before it has one). For tests.
  std::vector<float> head(const std::string& study_id) const {
    auto it = heads_.find(study_id);
    return it == heads_.end() ? std::vector<float>() : it->second;
  }
  std::size_t rounds_trained() const { return rounds_trained_; }

 private:
  struct Task {
    codec::TrainTask task;
    std::vector<float> weights;
  };
  struct Update {
    std::string study_id;
    std::uint32_t round = 0;
    std::uint32_t base_version = 0;
    std::uint64_t samples = 0;
    double loss = 0;
    std::shared_ptr<const std::vector<float>> weights;
    bool clipped = false;  // its delta was scaled back to the clip norm
    // The model it was trained from; kept in secure-aggregation studies,
    // whose sites mask the delta weights - global.
    std::shared_ptr<const std::vector<float>> global;
    // Private heads: the trained head, handed from the training thread to
    // heads_ in FinishTraining (never part of what leaves).
    std::vector<float> head;
  };
  // One study's secure-aggregation round in progress.
  struct SecAggRound {
    std::uint32_t round = 0;
    std::optional<privacy::SecAggClient> client;
    double weight = 1;
  };

  void OnPush(codec::Message&& message);
  void OnTrainTask(codec::TrainTask task, std::vector<codec::Tensor>& tensors);
  void OnUploadGrant(const codec::UploadGrant& grant);
  void OnEvaluateTask(const codec::EvaluateTask& task, std::vector<codec::Tensor>& tensors);
  // Stage 1 of an evaluation: the histogram of the DomainScore of `rows`
  // against the reference that follows the weights in `tensors`.
  void EvaluateDomain(const codec::EvaluateTask& task, const ml::Dataset& rows,
                      std::vector<codec::Tensor>& tensors);
  void OnSecAggStart(const codec::SecAggStart& start);
  void OnSecAggRoster(const codec::SecAggRoster& roster);
  void OnSecAggBundle(const codec::SecAggBundle& bundle);
  void OnSecAggUnmaskRequest(const codec::SecAggUnmaskRequest& request);
  // The study's round in progress, or null (complaining) for a stray message.
  SecAggRound* SecAggFor(const std::string& study_id, std::uint32_t round, const char* body);
  // Ends this site's part in a study's secure-aggregation round.
  void SecAggDrop(const std::string& study_id, const std::string& why);
  void SendToPlatform(codec::Message message, const char* what);
  void Register();
  void FetchSpec(const std::string& study_id);
  void StartTraining(Task task);
  // A statistics study's task (site_counts.cc): counts the label pairs on
  // the training thread; the counts are the update.
  void StartCounting(Task task);
  // The site's head for a private-heads study of network `net`, initialised
  // on first use (or when the site's task count changed).
  std::vector<float>* HeadFor(const codec::StudySpec& spec, const ml::NetSpec& net);
  // Where a study's head is stored; empty without a state_dir.
  std::string HeadPath(const std::string& study_id) const;
  void FinishTraining();
  void SendReady(const Update& update);
  // The local data with the study's task columns, in the study's order.
  const LocalData* DataFor(const std::string& study_id);
  bool Approved(const std::string& study_id) const;
  bool HasUpdate(const std::string& study_id, std::uint32_t round) const;
  void Complain(const char* reason, const std::string& what);
  // How an update of `spec` is clipped and noised before it leaves.
  static privacy::DpSiteOptions PrivacyOptions(const codec::StudySpec& spec);

  SiteOptions options_;
  LocalData data_;
  core::Bus& bus_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  core::ChannelId gateway_ = -1;
  bool registered_ = false;
  bool registering_ = false;
  bool draining_ = false;
  std::chrono::steady_clock::time_point next_heartbeat_{};

  std::map<std::string, codec::StudySpec> specs_;
  std::map<std::string, LocalData> aligned_;
  std::set<std::string> fetching_;
  // Tasks that wait for their study's spec.
  std::vector<Task> waiting_;
  // One trainer per study, so a site's optimizer state (Adam's moments)
  // carries from round to round, as a stateful client's does.
  std::map<std::string, std::shared_ptr<ml::Trainer>> trainers_;
  // The DP noise sampler, seeded from the OS on first use; used by the
  // training thread only.
  std::shared_ptr<privacy::GaussianNoise> noise_;
  std::future<core::Result<Update>> training_;
  // The latest update of each study, kept until the next round's arrives.
  std::map<std::string, Update> updates_;
  // Private heads, by study: this site's own head, never sent.
  std::map<std::string, std::vector<float>> heads_;
  std::size_t rounds_trained_ = 0;
  // Secure aggregation, by study: the round in progress, and the latest
  // round whose masked input left (never masked twice: two sums over
  // different survivor sets would reveal the difference).
  std::map<std::string, SecAggRound> secagg_;
  std::map<std::string, std::uint32_t> masked_round_;
};

}  // namespace fedrx::site
