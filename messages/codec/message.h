// Plain C++ types for every fedrx message. Only messages/codec converts these
// to and from the FlatBuffers wire form; everything else uses these types.
// Value types; not shared across threads without external locking.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "messages/codec/blob.h"

namespace fedrx::codec {

// The schema version this build writes and the newest it accepts.
inline constexpr std::uint16_t kSchemaVersion = 1;

// Mirrors wire::ErrorCode and core::StatusCode.
enum class ErrorCode : std::uint16_t {
  kUnknown = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kPermissionDenied = 4,
  kUnauthenticated = 5,
  kResourceExhausted = 6,
  kFailedPrecondition = 7,
  kUnavailable = 8,
  kDeadlineExceeded = 9,
  kInternal = 10,
  kDataLoss = 11,
  kUnimplemented = 12,
};

struct Error {
  ErrorCode code = ErrorCode::kUnknown;
  std::string message;
  std::string where;
};

struct Ack {
  std::string detail;
};

struct HealthCheck {};

struct HealthStatus {
  std::string service;
  bool ready = false;
  std::string version;
  double uptime_s = 0;
  std::string detail;
};

struct RegisterSite {
  std::string site_id;
  std::string institution;
  std::uint64_t num_samples = 0;
  std::vector<std::string> tasks;
  std::string schema_hash;
};

struct SiteRegistered {
  std::string site_id;
  std::int64_t registered_at_ms = 0;
  bool first_registration = false;
};

struct ListSites {};

struct SiteInfo {
  std::string site_id;
  std::string institution;
  std::uint64_t num_samples = 0;
  std::vector<std::string> tasks;
  std::string schema_hash;
  std::int64_t registered_at_ms = 0;
  std::int64_t last_seen_ms = 0;
};

struct SiteList {
  std::vector<SiteInfo> sites;
};

struct ModelSpec {
  std::uint32_t input_dim = 0;
  std::vector<std::uint32_t> hidden;
  std::uint32_t num_tasks = 0;
  float dropout = 0;
};

struct StudySpec {
  std::string study_id;
  std::string name;
  std::vector<std::string> tasks;
  ModelSpec model;
  std::uint32_t rounds = 0;
  std::uint32_t min_sites = 0;
  std::uint32_t local_epochs = 0;
  float learning_rate = 0;
  std::uint64_t seed = 0;
  std::string strategy;
  std::uint32_t round_deadline_ms = 0;
  std::uint32_t batch_size = 0;
  std::vector<std::string> sites;
  std::uint32_t fingerprint_radius = 0;
  std::uint32_t evaluate_every = 1;
  // Federation options (federation.fbs documents each).
  std::string server_optimizer;
  float server_learning_rate = 1.0f;
  float proximal_mu = 0;
  float trim_fraction = 0;
  std::uint32_t krum_byzantine = 0;
  float norm_bound = 0;
  float dp_clip_norm = 0;
  float dp_noise_multiplier = 0;
  double dp_delta = 1e-5;
  double dp_epsilon_budget = 0;
  bool secure_aggregation = false;
  std::uint32_t secagg_threshold = 0;
  std::uint32_t krum_selected = 0;
  float server_beta1 = 0.9f;
  float server_beta2 = 0.99f;
  float server_tau = 0.001f;
  bool private_heads = false;
  std::uint32_t secagg_neighbours = 0;
  std::string preparation_hash;
  // "" trains a model; "pair_counts" sums 2x2 label-pair counts (federation.fbs).
  std::string statistic;
  std::vector<std::string> statistic_rows;
};

struct CreateStudy {
  StudySpec study;
};

struct StudyCreated {
  std::string study_id;
};

enum class RoundState : std::int8_t {
  kPending = 0,
  kTraining = 1,
  kAggregating = 2,
  kClosed = 3,
  kFailed = 4,
  kEvaluating = 5,
};

struct RoundStatus {
  std::string study_id;
  std::uint32_t round = 0;
  RoundState state = RoundState::kPending;
  std::uint32_t sites_selected = 0;
  std::uint32_t updates_received = 0;
  std::int64_t deadline_ms = 0;
};

struct TrainTask {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t model_version = 0;
  std::uint32_t local_epochs = 0;
  std::uint32_t batch_size = 0;
  float learning_rate = 0;
  std::uint64_t seed = 0;
  std::int64_t deadline_ms = 0;
};

struct Metric {
  std::string name;
  double value = 0;
};

struct ModelUpdate {
  std::string study_id;
  std::uint32_t round = 0;
  std::string site_id;
  std::uint32_t base_version = 0;
  std::uint64_t num_samples = 0;
  std::vector<Metric> metrics;
};

struct ModelVersion {
  std::string study_id;
  std::uint32_t version = 0;
  std::uint32_t round = 0;
  std::int64_t created_at_ms = 0;
  std::vector<Metric> metrics;
};

struct Heartbeat {
  std::vector<std::string> approved_studies;
};

struct UpdateReady {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t base_version = 0;
  std::uint64_t num_samples = 0;
  std::vector<Metric> metrics;
};

struct UploadGrant {
  std::string study_id;
  std::uint32_t round = 0;
};

struct EvaluateTask {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t model_version = 0;
  std::string split;
  std::uint32_t bins = 0;
  // 0: score histograms + training-row embedding moments; 1: domain
  // histogram for the reference tensors sent after the weights.
  std::uint32_t stage = 0;
};

struct EvaluationResult {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t model_version = 0;
  std::string split;
  std::uint64_t num_samples = 0;
  std::vector<std::string> tasks;
  // The EvaluateTask.stage answered.
  std::uint32_t stage = 0;
  // Stage 0: training rows behind the "embedding_moments" tensor.
  std::uint64_t embedding_rows = 0;
};

struct GetStudy {
  std::string study_id;
};

enum class StudyState : std::int8_t {
  kCreated = 0,
  kRunning = 1,
  kCompleted = 2,
  kFailed = 3,
};

struct RoundSummary {
  std::uint32_t round = 0;
  RoundState state = RoundState::kPending;
  std::uint32_t sites_selected = 0;
  std::uint32_t updates_received = 0;
  std::uint64_t samples = 0;
  std::vector<Metric> metrics;
  std::int64_t started_at_ms = 0;
  std::int64_t closed_at_ms = 0;
};

struct StudyInfo {
  StudySpec study;
  StudyState state = StudyState::kCreated;
  std::uint32_t current_round = 0;
  std::uint32_t model_version = 0;
  std::vector<RoundSummary> rounds;
  std::string detail;
};

struct GetModel {
  std::string study_id;
  std::uint32_t version = 0;
  bool latest = false;
};

// --- Administration (admin.fbs) ---------------------------------------------

struct EnrolInstitution {
  std::string id;
  std::string name;
  std::string role;
};

struct InstitutionInfo {
  std::string id;
  std::string name;
  std::string role;
  std::string status;
  std::string public_key;
  std::int64_t enrolled_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct InstitutionEnrolled {
  InstitutionInfo institution;
  std::string secret_key;  // a secret: never log it
};

struct ListInstitutions {};

struct InstitutionList {
  std::vector<InstitutionInfo> institutions;
};

struct SetInstitutionStatus {
  std::string id;
  std::string status;
};

struct VerifyAudit {};

struct AuditReport {
  bool intact = false;
  std::uint64_t records = 0;
  std::string last_id;
  std::string last_hash;
  std::string problem;
};

// --- Secure aggregation in a round (secagg.fbs documents each field) ---------

struct SecAggParams {
  std::uint64_t round_tag = 0;
  std::uint64_t dimension = 0;
  std::uint32_t threshold = 0;
  std::uint32_t max_sites = 0;
  double clip = 8.0;
  std::int32_t scale_bits = 16;
  std::uint32_t neighbours = 0;
};

struct SecAggKeyAdvertisement {
  std::uint32_t id = 0;
  std::vector<std::uint8_t> encryption_key;
  std::vector<std::uint8_t> mask_key;
};

struct SecAggEncryptedShare {
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::vector<std::uint8_t> ciphertext;
};

struct SecAggRevealedShare {
  std::uint32_t owner = 0;
  std::uint32_t holder = 0;
  std::vector<std::uint64_t> y;
};

struct SecAggStart {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t base_version = 0;
  std::uint32_t participant = 0;
  SecAggParams params;
  std::uint64_t weight_cap = 0;
};

struct SecAggRoster {
  std::string study_id;
  std::uint32_t round = 0;
  std::vector<SecAggKeyAdvertisement> sites;
  std::vector<std::uint8_t> graph_seed;
};

struct SecAggBundle {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t to = 0;
  std::vector<SecAggEncryptedShare> shares;
};

struct SecAggUnmaskRequest {
  std::string study_id;
  std::uint32_t round = 0;
  std::vector<std::uint32_t> survivors;
};

struct SecAggKeys {
  std::string study_id;
  std::uint32_t round = 0;
  SecAggKeyAdvertisement keys;
};

struct SecAggShares {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t id = 0;
  std::vector<std::uint8_t> self_seed_commitment;
  std::vector<SecAggEncryptedShare> shares;
};

// The masked vector follows as one uint32 tensor frame.
struct SecAggMaskedInput {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t id = 0;
};

struct SecAggUnmaskResponse {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t id = 0;
  std::vector<SecAggRevealedShare> self_seed_shares;
  std::vector<SecAggRevealedShare> mask_key_shares;
  std::vector<std::uint32_t> failed_shares;
};

// --- Shared by the domain services: quantities and an answer's working ------
// (translational.fbs documents each field.)

struct Quantity {
  std::string name;
  double value = 0;
  std::string unit;
};

struct WorkStep {
  std::string label;
  std::string formula;
  std::vector<Quantity> inputs;
  Quantity result;
  std::string reference;
};

struct Working {
  std::string method;
  std::string guidance;
  std::vector<WorkStep> steps;
  std::vector<std::string> notes;
};

// --- translational: dose translation and pharmacokinetics --------------------

struct SpeciesNoael {
  std::string species;
  double noael_mg_per_kg = 0;
  double body_weight_kg = 0;
  std::string source;
};

struct TranslateDose {
  std::vector<SpeciesNoael> noaels;
  std::string method = "bsa";
  double exponent = 0.67;
  std::string species;
  std::string species_reason;
  double safety_factor = 10;
  std::string safety_factor_reason;
  double human_weight_kg = 60;
};

struct SpeciesHed {
  std::string species;
  double noael_mg_per_kg = 0;
  double body_weight_kg = 0;
  double km = 0;
  double conversion_factor = 0;
  double hed_mg_per_kg = 0;
  std::string source;
};

struct DoseTranslation {
  std::vector<SpeciesHed> heds;
  std::string chosen_species;
  std::string species_reason;
  double hed_mg_per_kg = 0;
  double safety_factor = 0;
  std::string safety_factor_reason;
  double mrsd_mg_per_kg = 0;
  double human_weight_kg = 0;
  double mrsd_mg = 0;
  Working working;
};

struct PkModel {
  std::string kind;
  double cl_l_per_h = 0;
  double v_l = 0;
  double ka_per_h = 0;
  double bioavailability = 1;
  double q_l_per_h = 0;
  double v2_l = 0;
};

struct SimulatePk {
  PkModel model;
  double dose_mg = 0;
  double tau_h = 0;
  std::int32_t doses = 1;
  std::vector<double> times_h;
  double noael_auc_mg_h_per_l = 0;
  double noael_cmax_mg_per_l = 0;
};

struct PkProfile {
  std::vector<double> times_h;
  std::vector<double> conc_mg_per_l;
  std::vector<Quantity> metrics;
  Working working;
};

struct FitPk {
  std::vector<double> times_h;
  std::vector<double> conc_mg_per_l;
  double dose_mg = 0;
  std::vector<Quantity> start;
};

struct Estimate {
  std::string name;
  double value = 0;
  double std_error = 0;
  std::string unit;
};

struct PkFit {
  std::vector<Estimate> estimates;
  double residual_se = 0;
  std::int32_t df = 0;
  std::int32_t iterations = 0;
  std::vector<double> fitted;
  Working working;
};

// --- trial: sample size, dose escalation, virtual trials ---------------------

struct ComputeSampleSize {
  std::string test;
  std::string solve_for = "n";
  std::int32_t sides = 2;
  double alpha = 0.05;
  double power = 0.8;
  double n = 0;
  double delta = 0;
  double sd = 1;
  double p0 = 0;
  double p1 = 0;
  double p2 = 0;
  double hazard_ratio = 0;
  double allocation = 0.5;
  double accrual_time = 0;
  double follow_up = 0;
  double median_control = 0;
  std::string simon_design = "optimal";
};

struct SampleSizeResult {
  std::string test;
  double n = 0;
  std::int64_t n_per_group = 0;
  std::int64_t n_total = 0;
  double power = 0;
  double events = 0;
  double event_probability = 0;
  std::int32_t simon_r1 = 0;
  std::int32_t simon_n1 = 0;
  std::int32_t simon_r = 0;
  std::int32_t simon_n = 0;
  double simon_en0 = 0;
  double simon_pet0 = 0;
  double achieved_alpha = 0;
  Working working;
};

struct EscalationDesign {
  std::string design;
  double target = 0.3;
  std::int32_t cohort_size = 3;
  std::int32_t max_patients = 30;
  std::int32_t start_dose = 1;
  std::vector<double> skeleton;
  double prior_sd = 1.16;
  double overdose_probability = 0.25;
  double elimination_cutoff = 0.95;
  bool extra_safe = false;
  double phi1 = 0;
  double phi2 = 0;
  std::int32_t stop_at_n = 0;
};

struct SimulateEscalation {
  EscalationDesign design;
  std::vector<double> true_tox;
  std::int32_t trials = 1000;
  std::uint64_t seed = 1;
};

struct BoundaryRow {
  std::int32_t n = 0;
  std::int32_t escalate_at_most = -1;
  std::int32_t deescalate_at_least = -1;
  std::int32_t eliminate_at_least = -1;
};

struct OperatingCharacteristics {
  std::string design;
  std::int32_t trials = 0;
  std::uint64_t seed = 0;
  std::vector<double> selection_pct;
  std::vector<double> patients_mean;
  std::vector<double> dlt_mean;
  double early_stop_pct = 0;
  double correct_selection_pct = 0;
  double patients_total_mean = 0;
  double dlt_total_mean = 0;
  double lambda_e = 0;
  double lambda_d = 0;
  std::vector<BoundaryRow> boundaries;
  Working working;
};

struct RunVirtualTrial {
  PkModel model;
  double bsv_cv = 0.3;
  std::vector<double> dose_mg;
  double start_dose_mg = 0;
  double tox_auc50 = 0;
  double tox_hill = 2;
  double response_auc50 = 0;
  double response_hill = 1;
  double response_emax = 1;
  EscalationDesign design;
  std::int32_t trials = 1000;
  std::int32_t population = 2000;
  std::uint64_t seed = 1;
};

struct VirtualTrialResult {
  std::vector<double> dose_mg;
  std::vector<double> auc_median;
  std::vector<double> auc_p05;
  std::vector<double> auc_p95;
  std::vector<double> p_dlt;
  std::vector<double> p_response;
  OperatingCharacteristics oc;
  Working working;
};

// --- ML domain services (tox, clinical, reverse) ------------------------------
// (prediction.fbs documents each field.)

// The model an answer came from, so that every number can be traced.
struct ModelProvenance {
  std::string study_id;
  std::uint32_t model_version = 0;
  std::string preparation_hash;  // the preparation the service featurised with
  // The sites' calibration rows behind the conformal p-values (0: uncalibrated).
  std::uint64_t calibration_samples = 0;
  // The model version whose evaluation supplied the calibration (equals
  // model_version when calibrated).
  std::uint32_t calibration_version = 0;
  std::string
      method;  // e.g. "Mondrian inductive conformal prediction on the sites' validation folds"
};

// One task's call on one structure.
struct TaskPrediction {
  std::string task;
  double probability = 0;  // the model's output
  // Mondrian (class-conditional) inductive conformal p-values of the labels
  // 0 and 1 against the sites' aggregated calibration histograms.
  double p_negative = 0;
  double p_positive = 0;
  // Labels whose p-value exceeds 1 - confidence: "negative", "positive",
  // "both" (uncertain) or "empty" (unlike anything calibrated).
  std::string prediction_set;
  double credibility = 0;   // the larger p-value
  double confidence = 0;    // 1 - the smaller p-value
  bool calibrated = false;  // false: no calibration for this task; p-values 0, set "both"
};

// Applicability domain of one structure: how far its trunk embedding lies
// from the sites' aggregated embedding statistics.
struct DomainAssessment {
  double score = 0;         // ml::DomainScore, in [0, 1)
  double p_value = 1;       // share of calibration rows at least as far
  bool in_domain = true;    // p_value >= threshold
  double threshold = 0;     // the p-value below which a structure is out of domain
  bool calibrated = false;  // false: no domain statistics; in_domain true, p_value 1
};

// One structure of a request.
struct StructurePrediction {
  std::string input;             // as given
  std::string canonical_smiles;  // after the sites' standardisation
  // Empty when predicted; else why this structure was refused (the others
  // are still answered): code name, message and where ("smiles[3]").
  std::string error_code;
  std::string error;
  std::string error_where;
  std::vector<TaskPrediction> tasks;
  DomainAssessment domain;
};

// tox: the toxicity panel of each structure.
struct PredictToxicity {
  std::vector<std::string> smiles;
  // "tox21" (default when empty) or "toxcast": which served study answers.
  std::string panel;
  // Subset of the panel's tasks, in the order wanted; empty: all of them.
  std::vector<std::string> tasks;
  // Confidence level of the prediction sets, in (0, 1).
  double confidence = 0.9;
};

struct ToxicityPanel {
  std::string panel;
  ModelProvenance model;
  double confidence = 0;
  std::vector<std::string> tasks;            // the answered tasks, in order
  std::vector<StructurePrediction> results;  // one per input, same order
  Working working;                           // how the p-values and the domain flag are computed
};

// clinical: clinical-toxicity risk, approval likelihood, side-effect
// profile and phase-transition success of each structure.
struct AssessClinical {
  std::vector<std::string> smiles;
  // Therapeutic area of the intended indication (clinical::KnownAreas());
  // empty: all indications.
  std::string therapeutic_area;
  double confidence = 0.9;
};

// One phase transition's probability of success.
struct PhaseTransition {
  std::string transition;  // "phase1_to_phase2", ..., "filing_to_approval"
  double base_rate = 0;    // the published figure for the area
  double adjusted = 0;     // adjusted by the candidate's predicted risk
  double weight = 0;       // share of the risk's evidence applied here
};

struct ClinicalSuccess {
  std::string therapeutic_area;  // canonical
  double risk = 0;               // the CT_TOX probability used
  double log_likelihood_ratio = 0;
  std::vector<PhaseTransition> transitions;
  double base_likelihood_of_approval = 0;      // from Phase I
  double adjusted_likelihood_of_approval = 0;  // from Phase I
  std::string source;                          // the base rates' citation
};

struct ClinicalAssessment {
  ModelProvenance model;  // the ClinTox study
  double confidence = 0;
  // ClinTox tasks (CT_TOX, FDA_APPROVED) per structure, with uncertainty and
  // domain, one per input in order.
  std::vector<StructurePrediction> clinical;
  // Phase-transition success per structure, same order; empty entries for
  // refused structures.
  std::vector<ClinicalSuccess> success;
  // The 27 organ-class side-effect profile per structure (SIDER tasks), when
  // the platform serves a study trained on them; else empty and
  // side_effects_unavailable says why.
  ModelProvenance side_effect_model;
  std::vector<StructurePrediction> side_effects;
  std::string side_effects_unavailable;
  Working working;  // likelihood ratio and adjustment
};

// reverse: from a clinical safety signal back to preclinical studies.
struct ReverseTranslate {
  std::vector<std::string> organ_classes;   // SIDER organ-class names
  std::vector<std::string> adverse_events;  // MedDRA terms mapped to classes
  // Clinical labels of the federation's counts (e.g. "CT_TOX") to look up
  // associations for, besides the organ classes.
  std::vector<std::string> clinical_labels;
  double fdr = 0.05;  // Benjamini-Hochberg level, (0, 1]
};

struct AssayAssociation {
  std::string clinical_label;
  std::string assay;
  // The 2x2 table summed across sites: a both positive, b clinical only,
  // c assay only, d both negative.
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  bool sufficient_evidence = false;
  double odds_ratio = 0, ci_low = 0, ci_high = 0;
  double p_value = 1, q_value = 1;
  bool significant = false;
  bool in_table_family = false;  // the organ-class table lists the assay's family
  std::string evidence;          // one checkable line
};

struct SendEndpointRecommendation {
  std::string domain;  // SEND domain, e.g. "LB"
  std::string code;    // test code or specimen, e.g. "ALT", "LIVER"
  std::string note;
};

struct OrganClassRecommendation {
  std::string organ_class;
  std::vector<std::string> matched_terms;
  std::vector<AssayAssociation> assays;  // ranked
  std::vector<SendEndpointRecommendation> endpoints;
  std::string none_reason;
  std::string rationale;
  std::string reference;
};

struct ReverseTranslation {
  std::vector<OrganClassRecommendation> organ_classes;
  // Associations of the requested clinical labels (not organ classes), ranked.
  std::vector<AssayAssociation> label_associations;
  // Where the counts come from: the statistics study, its version, the sites
  // and compounds summed (0 sites: no counts yet; the table alone answers).
  std::string counts_study;
  std::uint32_t counts_version = 0;
  std::uint32_t counts_sites = 0;
  std::uint64_t counts_compounds = 0;
  bool counts_secure = false;  // summed by secure aggregation
  Working working;
};

// --- orchestrator: workflows over the domain services --------------------------
// (orchestration.fbs documents each field.) Inputs, step outputs and verdicts
// are JSON documents: a workflow maps fields between services whose answers
// differ in shape, and the run record in Redis keeps them as JSON.

// Start a run of a named workflow; answered by WorkflowRun at once (state
// "running"), then followed with GetWorkflowRun.
struct RunWorkflow {
  std::string workflow;    // e.g. "first-in-human"
  std::string input_json;  // the candidate: an object matching the workflow's inputs
  // Optional caller-chosen run id ([A-Za-z0-9._-], 1..64): a RunWorkflow with
  // an id that already exists answers that run instead of starting another.
  std::string run_id;
};

struct GetWorkflowRun {
  std::string run_id;
  bool include_outputs = false;  // step outputs and the run's output as JSON
};

struct StepState {
  std::string step;     // the step's id in the workflow
  std::string service;  // "tox", "clinical", ..., or "local"
  std::string call;     // body type ("PredictToxicity") or local function name
  // "pending", "running", "succeeded", "failed", "skipped"
  std::string state;
  std::uint32_t attempts = 0;
  std::int64_t started_ms = 0;   // unix ms; 0: not started
  std::int64_t finished_ms = 0;  // unix ms; 0: not finished
  std::string error_code;        // failed: core code name ("unavailable"), skipped: ""
  std::string error;             // failed: the reason; skipped: why skipped
  std::string error_where;
  std::string output_json;  // only with include_outputs and when succeeded
};

struct WorkflowRun {
  std::string run_id;
  std::string workflow;
  std::string workflow_version;
  // "running", "succeeded" (every step succeeded or was skipped by its
  // condition), "partial" (some step failed or was skipped because of a
  // failure; the others' results stand), "failed" (nothing usable).
  std::string state;
  std::int64_t created_ms = 0;
  std::int64_t finished_ms = 0;
  std::vector<StepState> steps;  // in the workflow's declared order
  std::string summary;           // one line: the verdict, or why there is none
  std::string output_json;       // only with include_outputs: the workflow's output
  std::string report_id;         // the report written for this run ("" until written)
  std::string report_error;      // why no report was written, if so
};

struct ListWorkflows {};

struct WorkflowInfo {
  std::string name;
  std::string version;
  std::string description;
  std::vector<std::string> steps;   // step ids in declared order
  std::vector<std::string> inputs;  // input names; required ones first
};

struct WorkflowList {
  std::vector<WorkflowInfo> workflows;
};

struct ListWorkflowRuns {
  std::string workflow;  // "" for all
  std::uint32_t limit = 20;
};

struct WorkflowRunList {
  std::vector<WorkflowRun> runs;  // newest first, without outputs
};

// --- report: candidate and study reports ---------------------------------------
// (report.fbs documents each field.)

// Write a report: kind "candidate" (subject = a run id) or "study"
// (subject = a study id). Answered by ReportInfo.
struct CreateReport {
  std::string kind;
  std::string subject;
};

struct ReportInfo {
  std::string report_id;
  std::string kind;
  std::string subject;
  std::string title;
  std::int64_t created_ms = 0;
  std::uint64_t html_bytes = 0;
  std::uint64_t json_bytes = 0;
  std::string summary;  // one line (the verdict for a candidate)
};

struct GetReport {
  std::string report_id;
  std::string format = "html";  // "html" or "json"
};

struct ReportDocument {
  ReportInfo info;
  std::string format;
  std::string content;  // the whole HTML page or JSON document
};

struct ListReports {
  std::string kind;  // "" for all
  std::uint32_t limit = 50;
};

struct ReportList {
  std::vector<ReportInfo> reports;  // newest first
};

// The union of bodies, in wire::Body order (append only).
using Body = std::variant<
    Error, Ack, HealthCheck, HealthStatus, RegisterSite, SiteRegistered, ListSites, SiteList,
    CreateStudy, StudyCreated, RoundStatus, TrainTask, ModelUpdate, ModelVersion, Heartbeat,
    UpdateReady, UploadGrant, EvaluateTask, EvaluationResult, GetStudy, StudyInfo, GetModel,
    EnrolInstitution, InstitutionEnrolled, ListInstitutions, InstitutionList, SetInstitutionStatus,
    VerifyAudit, AuditReport, SecAggStart, SecAggRoster, SecAggBundle, SecAggUnmaskRequest,
    SecAggKeys, SecAggShares, SecAggMaskedInput, SecAggUnmaskResponse, TranslateDose,
    DoseTranslation, SimulatePk, PkProfile, FitPk, PkFit, ComputeSampleSize, SampleSizeResult,
    SimulateEscalation, OperatingCharacteristics, RunVirtualTrial, VirtualTrialResult,
    PredictToxicity, ToxicityPanel, AssessClinical, ClinicalAssessment, ReverseTranslate,
    ReverseTranslation, RunWorkflow, GetWorkflowRun, WorkflowRun, ListWorkflows, WorkflowList,
    ListWorkflowRuns, WorkflowRunList, CreateReport, ReportInfo, GetReport, ReportDocument,
    ListReports, ReportList>;

// A bounded, stable name for a body type (metric labels, logs), e.g. "RegisterSite".
const char* BodyName(const Body& body);
// Name of the body type at variant index `index`, or "unknown".
const char* BodyNameAt(std::size_t index);
inline constexpr std::size_t kBodyCount = std::variant_size_v<Body>;

enum class DType : std::uint8_t {
  kFloat32 = 0,
  kFloat64 = 1,
  kInt32 = 2,
  kInt64 = 3,
  kUInt32 = 4,
  kUInt64 = 5,
  kUInt8 = 6,
};
std::size_t DTypeSize(DType dtype);

// One tensor that travels as its own frame beside the envelope.
struct Tensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> shape;
  Blob data;
};

struct Header {
  std::uint16_t schema_version = kSchemaVersion;
  std::string message_id;
  std::string correlation_id;
  std::string sender;
  std::int64_t sent_at_ms = 0;
  // The site the gateway vouches the message comes from (empty otherwise).
  std::string origin;
  // The site a platform message is for; the gateway delivers it there.
  std::string route_to;
};

// A whole message: header, body and the tensors beside it. Move-only.
struct Message {
  Header header;
  Body body;
  std::vector<Tensor> tensors;
};

}  // namespace fedrx::codec
