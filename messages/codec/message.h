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
};

struct EvaluationResult {
  std::string study_id;
  std::uint32_t round = 0;
  std::uint32_t model_version = 0;
  std::string split;
  std::uint64_t num_samples = 0;
  std::vector<std::string> tasks;
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

// The union of bodies, in wire::Body order (append only).
using Body =
    std::variant<Error, Ack, HealthCheck, HealthStatus, RegisterSite, SiteRegistered, ListSites,
                 SiteList, CreateStudy, StudyCreated, RoundStatus, TrainTask, ModelUpdate,
                 ModelVersion, Heartbeat, UpdateReady, UploadGrant, EvaluateTask, EvaluationResult,
                 GetStudy, StudyInfo, GetModel, EnrolInstitution, InstitutionEnrolled,
                 ListInstitutions, InstitutionList, SetInstitutionStatus, VerifyAudit, AuditReport,
                 SecAggStart, SecAggRoster, SecAggBundle, SecAggUnmaskRequest, SecAggKeys,
                 SecAggShares, SecAggMaskedInput, SecAggUnmaskResponse, TranslateDose,
                 DoseTranslation, SimulatePk, PkProfile, FitPk, PkFit, ComputeSampleSize,
                 SampleSizeResult, SimulateEscalation, OperatingCharacteristics, RunVirtualTrial,
                 VirtualTrialResult>;

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
