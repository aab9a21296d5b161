#include "services/cli/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "services/cli/assess_command.h"
#include "services/cli/cli_common.h"
#include "services/cli/clinical_command.h"
#include "services/cli/design_command.h"
#include "services/cli/ingest_command.h"
#include "services/cli/reverse_command.h"
#include "services/cli/tox_command.h"
#include "services/cli/workflow_command.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/curve_keys.h"
#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/zmq_bus.h"
#include "services/ml/study_spec.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::cli {
namespace {

constexpr char kUsage[] =
    "usage: fedrx [--coordinator ENDPOINT | --gateway ENDPOINT --key-file FILE\n"
    "              --server-key-file FILE] [--timeout MS] COMMAND\n"
    "commands:\n"
    "  health                          health and readiness of the coordinator (or gateway)\n"
    "  sites list                      every registered site\n"
    "  sites register --site ID --institution NAME [--samples N] [--tasks A,B,...]\n"
    "                 [--schema-hash H]\n"
    "  study create FILE               create a study from a `key = value` file\n"
    "  study show ID                   a study's state and its rounds\n"
    "  study watch ID [--interval MS]  follow a study's rounds until it ends\n"
    "  study model ID [--version N] --out FILE   fetch a model version (raw float32;\n"
    "                                  the latest without --version, 0 is the initial model)\n"
    "  keys generate --out FILE        a service's own CURVE key pair (0600); prints the\n"
    "                                  public key its clients need\n"
    "  keys audit --out FILE           a new audit-trail HMAC key (0600) for the gateway's\n"
    "                                  gateway.audit_key_file\n"
    "  keys public KEYFILE [--out FILE]  the public key of a key file: printed, or written\n"
    "                                  to FILE as `public = <key>` (0644) for clients\n"
    "  institutions enrol --id ID --name NAME --role site|scientist|admin --key-out FILE\n"
    "                                  enrol an institution; its CURVE key pair is written\n"
    "                                  to FILE (created 0600, never printed, not kept)\n"
    "  institutions list               every enrolled institution and its status\n"
    "  institutions suspend|reactivate|revoke ID   change a status (revoked is final)\n"
    "  audit verify                    check the audit trail's hash chain\n"
    "  ingest compounds --in FILE --store DIR ...   site-side: standardise and store a\n"
    "                                  compound table (`fedrx ingest` for its options)\n"
    "  ingest study --in DIR --store DIR ...   site-side: check a SEND/SDTM study folder,\n"
    "                                  map it to the common data model and store it\n"
    "  dose translate [--noael SPECIES=MG_PER_KG[@BODY_WEIGHT_KG],...] [--from-study STORE\n"
    "                 [--noael-group SETCD] [--bw-drop PCT] [--alt-fold X]] [--species S]\n"
    "                 [--species-reason TEXT] [--safety-factor F] [--safety-factor-reason TEXT]\n"
    "                 [--method bsa|weight_exponent] [--exponent B] [--human-weight KG]\n"
    "                                  HED and MRSD (FDA 2005) with the working; --from-study\n"
    "                                  proposes the NOAEL of an ingested SEND study here first\n"
    "  dose pk --model iv_bolus_1cmt|oral_1cmt|iv_bolus_2cmt --cl L_PER_H --v L [--ka /H]\n"
    "          [--f F] [--q L_PER_H] [--v2 L] --dose MG [--tau H --doses N] [--times H,...]\n"
    "          [--noael-auc MG_H_PER_L] [--noael-cmax MG_PER_L]   a profile, exposure, margins\n"
    "  dose fit --data CSV --dose MG   one-compartment oral fit (CSV: time_h,conc_mg_per_l)\n"
    "  trial sample-size --test t_two_sample|two_proportions|log_rank|simon_two_stage\n"
    "          [--solve n|power] [--sides 1|2] [--alpha A] [--power P] [--n N] [--delta D]\n"
    "          [--sd S] [--p0 P] [--p1 P] [--p2 P] [--hr HR] [--allocation A] [--accrual T]\n"
    "          [--follow-up T] [--median-control T] [--simon-design optimal|minimax]\n"
    "  trial escalate --design 3+3|boin|crm --tox P1,P2,... [--target T] [--cohort N]\n"
    "          [--max-patients N] [--start D] [--skeleton P1,...] [--prior-sd S]\n"
    "          [--overdose P] [--elimination P] [--extra-safe yes|no] [--phi1 P] [--phi2 P]\n"
    "          [--stop-at N] [--trials N] [--seed S]   operating characteristics\n"
    "  trial virtual (pk flags as dose pk) --bsv-cv CV (--start-dose MG | --start-from FILE)\n"
    "          [--doses-mg D1,...] --tox-auc50 X [--tox-hill H] [--response-auc50 X]\n"
    "          [--response-hill H] [--response-emax E] (design flags as escalate)\n"
    "          [--population N]   a simulated first-in-human trial from the MRSD\n"
    "  reverse translate [--organ-class NAME[;NAME...]] [--adverse-event TERM[;TERM...]]\n"
    "          [--label CT_TOX,...] [--fdr Q]   preclinical assays and SEND endpoints for a\n"
    "                                  clinical safety signal, from the federation's counts\n"
    "  tox predict --smiles S[,S...] | --in FILE.smi [--panel tox21] [--tasks T1,...]\n"
    "          [--confidence 0.9]   toxicity panel: probability, conformal prediction set\n"
    "                                  and applicability-domain flag per structure and task\n"
    "  clinical assess --smiles S[,S...] | --in FILE.smi [--area oncology] [--confidence 0.9]\n"
    "                                  clinical-toxicity risk and approval with prediction sets\n"
    "                                  and domain flag, phase-transition success base ->\n"
    "                                  adjusted by the risk, likelihood of approval\n"
    "  assess CANDIDATE.yaml|json [--workflow first-in-human] [--out DIR] [--run-id ID]\n"
    "          [--poll-ms 200] [--timeout-s 600]   runs a workflow for a candidate (structure,\n"
    "                                  noaels, therapeutic_area, ...; noael_from_study: STORE\n"
    "                                  proposes the NOAEL here), shows the steps, prints the\n"
    "                                  verdict and writes the report to DIR/RUN.html and .json\n"
    "  workflow list | show RUN_ID [--json FILE] | runs [--workflow W]   workflows and runs\n"
    "  report list [--kind K] | get ID [--format html|json] --out FILE\n"
    "         | create --kind study|candidate --subject ID   stored reports\n"
    "  (dose, trial, reverse, tox and clinical: through --gateway; --json FILE writes the\n"
    "  answer as JSON)\n"
    "ENDPOINT defaults to $FEDRX_COORDINATOR or tcp://127.0.0.1:5570 (plaintext).\n"
    "--gateway: every command goes through the gateway over CurveZMQ as the enrolled\n"
    "institution whose key pair is --key-file (an admin for `institutions`, `audit` and\n"
    "`study create`; a scientist may show, watch and fetch studies); --server-key-file\n"
    "holds the gateway's public key (`public = <key>` or its key-pair file).\n"
    "Without --gateway, `institutions` and `audit` talk to Redis directly: [--redis\n"
    "HOST:PORT], default $FEDRX_REDIS_HOST:$FEDRX_REDIS_PORT or 127.0.0.1:6379, and\n"
    "[--audit-key-file FILE] when the audit trail is keyed. That is how the very first\n"
    "admin is enrolled (bootstrap); enrol everyone else through the gateway.";

std::string Timestamp(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

core::Status Health(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::HealthCheck{}));
  FEDRX_ASSIGN_OR_RETURN(codec::HealthStatus h, Expect<codec::HealthStatus>(std::move(m)));
  out << h.service << " " << h.version << ": " << (h.ready ? "ready" : "NOT READY")
      << (h.detail.empty() ? "" : " (" + h.detail + ")") << ", up " << std::fixed
      << std::setprecision(1) << h.uptime_s << " s\n";
  return h.ready ? core::Status::Ok() : core::Unavailable(h.service + " is not ready", o.endpoint);
}

core::Status ListSites(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::ListSites{}));
  FEDRX_ASSIGN_OR_RETURN(codec::SiteList list, Expect<codec::SiteList>(std::move(m)));
  out << std::left << std::setw(20) << "SITE" << std::setw(28) << "INSTITUTION" << std::right
      << std::setw(10) << "SAMPLES" << std::setw(7) << "TASKS"
      << "  " << std::left << std::setw(22) << "REGISTERED"
      << "LAST SEEN\n";
  for (const auto& s : list.sites) {
    out << std::left << std::setw(20) << s.site_id << std::setw(28) << s.institution << std::right
        << std::setw(10) << s.num_samples << std::setw(7) << s.tasks.size() << "  " << std::left
        << std::setw(22) << Timestamp(s.registered_at_ms) << Timestamp(s.last_seen_ms) << "\n";
  }
  out << list.sites.size() << " site(s)\n";
  return core::Status::Ok();
}

core::Status RegisterSite(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::RegisterSite r;
  FEDRX_ASSIGN_OR_RETURN(r.site_id, Required(o, "site"));
  FEDRX_ASSIGN_OR_RETURN(r.institution, Required(o, "institution"));
  if (auto it = o.flags.find("samples"); it != o.flags.end()) {
    const auto& v = it->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r.num_samples);
    if (ec != std::errc() || p != v.data() + v.size()) {
      return core::InvalidArgument("'" + v + "' is not a whole number", "--samples");
    }
  }
  if (auto it = o.flags.find("tasks"); it != o.flags.end()) r.tasks = SplitComma(it->second);
  if (auto it = o.flags.find("schema-hash"); it != o.flags.end()) r.schema_hash = it->second;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::SiteRegistered done, Expect<codec::SiteRegistered>(std::move(m)));
  out << "site " << done.site_id << (done.first_registration ? " registered" : " refreshed")
      << " (first registered " << Timestamp(done.registered_at_ms) << ")\n";
  return core::Status::Ok();
}

const char* StateName(codec::StudyState s) {
  switch (s) {
    case codec::StudyState::kCreated:
      return "created";
    case codec::StudyState::kRunning:
      return "running";
    case codec::StudyState::kCompleted:
      return "completed";
    case codec::StudyState::kFailed:
      return "failed";
  }
  return "?";
}

const char* RoundStateName(codec::RoundState s) {
  switch (s) {
    case codec::RoundState::kPending:
      return "pending";
    case codec::RoundState::kTraining:
      return "training";
    case codec::RoundState::kAggregating:
      return "aggregating";
    case codec::RoundState::kEvaluating:
      return "evaluating";
    case codec::RoundState::kClosed:
      return "closed";
    case codec::RoundState::kFailed:
      return "failed";
  }
  return "?";
}

double MetricOr(const std::vector<codec::Metric>& metrics, const std::string& name,
                double fallback) {
  for (const auto& m : metrics) {
    if (m.name == name) return m.value;
  }
  return fallback;
}

void PrintRound(const codec::RoundSummary& r, std::uint32_t total, std::ostream& out) {
  out << "round " << std::right << std::setw(3) << r.round << "/" << std::left << std::setw(4)
      << total << std::setw(11) << RoundStateName(r.state) << std::right << std::setw(2)
      << r.updates_received << "/" << std::left << std::setw(3) << r.sites_selected << "sites "
      << std::right << std::setw(7) << r.samples << " samples";
  const double auc = MetricOr(r.metrics, "valid_mean_roc_auc", -1);
  if (auc >= 0) {
    out << "   valid ROC-AUC " << std::fixed << std::setprecision(4) << auc << "  PR-AUC "
        << MetricOr(r.metrics, "valid_mean_pr_auc", 0);
  }
  if (r.closed_at_ms > r.started_at_ms) {
    out << "   " << std::fixed << std::setprecision(1)
        << static_cast<double>(r.closed_at_ms - r.started_at_ms) / 1000.0 << " s";
  }
  out << "\n";
}

core::Result<codec::StudyInfo> FetchStudy(core::Bus& bus, const Options& o, const std::string& id) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::GetStudy{id}));
  return Expect<codec::StudyInfo>(std::move(m));
}

core::Result<std::string> Argument(const Options& o, std::size_t index, const char* what) {
  if (o.command.size() <= index)
    return core::InvalidArgument(std::string(what) + " is missing", what);
  return o.command[index];
}

core::Status CreateStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Argument(o, 2, "FILE"));
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, ml::StudySpecFromConfig(config));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::CreateStudy{spec}));
  FEDRX_ASSIGN_OR_RETURN(codec::StudyCreated done, Expect<codec::StudyCreated>(std::move(m)));
  out << "study " << done.study_id << " created: ";
  if (spec.private_heads && spec.tasks.empty()) {
    out << "each site's own tasks (private heads), ";
  } else {
    out << spec.tasks.size() << " tasks, ";
  }
  out << spec.rounds << " rounds, at least " << spec.min_sites << " site(s) per round\n";
  return core::Status::Ok();
}

core::Status ShowStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, FetchStudy(bus, o, id));
  out << "study " << id << ": " << StateName(info.state) << ", round " << info.current_round << "/"
      << info.study.rounds << ", model version " << info.model_version << "\n";
  for (const auto& r : info.rounds) PrintRound(r, info.study.rounds, out);
  // The study's privacy report: the epsilon its accountant charged up to the
  // last round that closed (failed rounds were charged too).
  const codec::StudySpec& spec = info.study;
  if (spec.dp_clip_norm > 0 && spec.dp_noise_multiplier > 0) {
    double epsilon = 0;
    std::uint32_t charged = 0;
    for (const auto& r : info.rounds) {
      const double e = MetricOr(r.metrics, "privacy_epsilon", -1);
      if (e >= 0 && r.round >= charged) {
        epsilon = e;
        charged = r.round;
      }
    }
    out << "privacy: epsilon " << std::defaultfloat << std::setprecision(6) << epsilon
        << " spent at delta " << spec.dp_delta << " up to round " << charged;
    if (spec.dp_epsilon_budget > 0) out << ", budget " << spec.dp_epsilon_budget;
    out << " (clip norm " << spec.dp_clip_norm << ", noise multiplier " << spec.dp_noise_multiplier
        << ")\n";
  }
  return core::Status::Ok();
}

core::Status WatchStudy(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  int interval_ms = 1000;
  if (auto it = o.flags.find("interval"); it != o.flags.end())
    interval_ms = std::atoi(it->second.c_str());
  if (interval_ms <= 0) return core::InvalidArgument("interval must be positive", "--interval");
  std::uint32_t printed = 0;
  while (true) {
    FEDRX_ASSIGN_OR_RETURN(codec::StudyInfo info, FetchStudy(bus, o, id));
    for (const auto& r : info.rounds) {
      const bool over =
          r.state == codec::RoundState::kClosed || r.state == codec::RoundState::kFailed;
      if (over && r.round > printed) {
        PrintRound(r, info.study.rounds, out);
        out.flush();
        printed = r.round;
      }
    }
    if (info.state == codec::StudyState::kCompleted || info.state == codec::StudyState::kFailed) {
      out << "study " << id << " " << StateName(info.state) << " at model version "
          << info.model_version << (info.detail.empty() ? "" : ": " + info.detail) << "\n";
      return info.state == codec::StudyState::kCompleted
                 ? core::Status::Ok()
                 : core::FailedPrecondition("study failed: " + info.detail, id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
}

// A service's own CURVE key pair (the gateway's, say): written 0600, never
// over an existing file; only the public key is printed, for its clients.
core::Status GenerateKeys(const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Required(o, "out"));
  if (std::ifstream(path).good()) {
    return core::Status(core::StatusCode::kAlreadyExists, "refusing to overwrite a key file", path);
  }
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::GenerateCurveKeyPair());
  FEDRX_RETURN_IF_ERROR(core::WriteCurveKeyPair(path, pair));
  out << "key pair written to " << path << "; public key: " << pair.public_key << "\n";
  return core::Status::Ok();
}

// The public half of a key file, for a service's clients: printed alone (for
// scripts), or written as a public-key file.
core::Status PublicKey(const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Argument(o, 2, "KEYFILE"));
  FEDRX_ASSIGN_OR_RETURN(std::string key, core::LoadCurvePublicKey(path));
  auto it = o.flags.find("out");
  if (it == o.flags.end()) {
    out << key << "\n";
    return core::Status::Ok();
  }
  FEDRX_RETURN_IF_ERROR(core::WriteCurvePublicKey(it->second, key));
  out << "public key " << key << " written to " << it->second << "\n";
  return core::Status::Ok();
}

core::Status FetchModel(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Argument(o, 2, "ID"));
  FEDRX_ASSIGN_OR_RETURN(std::string path, Required(o, "out"));
  codec::GetModel request{id, 0, /*latest=*/true};
  if (auto it = o.flags.find("version"); it != o.flags.end()) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || v > 0xffffffffUL) {
      return core::InvalidArgument("'" + it->second + "' is not a model version", "--version");
    }
    request.version = static_cast<std::uint32_t>(v);
    request.latest = false;
  }
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(request)));
  if (m.tensors.size() != 1) return core::Internal("model reply without weights", "tensors");
  const codec::Blob& w = m.tensors[0].data;
  FEDRX_ASSIGN_OR_RETURN(codec::ModelVersion mv, Expect<codec::ModelVersion>(std::move(m)));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size()));
  if (!file) return core::Unavailable("cannot write the model", path);
  out << "study " << id << " model version " << mv.version << " (round " << mv.round
      << "): " << w.size() / sizeof(float) << " float32 parameters written to " << path << "\n";
  return core::Status::Ok();
}

// ---- Commands on Redis: institutions and the audit trail. ----

// Who the audit trail names for changes made with this tool.
constexpr char kCliActor[] = "fedrx-cli";

core::Result<core::RedisOptions> RedisFrom(const Options& o) {
  core::RedisOptions options;
  std::string host = "127.0.0.1";
  std::string port = "6379";
  if (const char* env = std::getenv("FEDRX_REDIS_HOST"); env != nullptr && *env != '\0') host = env;
  if (const char* env = std::getenv("FEDRX_REDIS_PORT"); env != nullptr && *env != '\0') port = env;
  std::string where = "FEDRX_REDIS_PORT";
  if (auto it = o.flags.find("redis"); it != o.flags.end()) {
    const std::size_t colon = it->second.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return core::InvalidArgument("'" + it->second + "' is not HOST:PORT", "--redis");
    }
    host = it->second.substr(0, colon);
    port = it->second.substr(colon + 1);
    where = "--redis";
  }
  int number = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || p != port.data() + port.size() || number < 1 || number > 65535) {
    return core::InvalidArgument("'" + port + "' is not a port in 1..65535", where);
  }
  options.host = host;
  options.port = number;
  return options;
}

codec::InstitutionInfo InfoOf(const security::Institution& i) {
  return codec::InstitutionInfo{i.id,
                                i.name,
                                security::RoleName(i.role),
                                security::InstitutionStatusName(i.status),
                                i.public_key,
                                i.enrolled_at_ms,
                                i.updated_at_ms};
}

void PrintInstitutions(const std::vector<codec::InstitutionInfo>& all, std::ostream& out) {
  out << std::left << std::setw(20) << "INSTITUTION" << std::setw(28) << "NAME" << std::setw(11)
      << "ROLE" << std::setw(11) << "STATUS" << std::setw(22) << "ENROLLED"
      << "PUBLIC KEY\n";
  for (const auto& i : all) {
    out << std::left << std::setw(20) << i.id << std::setw(28) << i.name << std::setw(11) << i.role
        << std::setw(11) << i.status << std::setw(22) << Timestamp(i.enrolled_at_ms) << i.public_key
        << "\n";
  }
  out << all.size() << " institution(s)\n";
}

void PrintEnrolled(const std::string& id, const std::string& role, const std::string& public_key,
                   const std::string& key_out, std::ostream& out) {
  out << "institution " << id << " enrolled as " << role << "; public key " << public_key << "\n"
      << "key pair written to " << key_out << " (mode 0600): hand it to the institution "
      << "over a secure channel; it is not kept anywhere else\n";
}

// What `institutions enrol` needs before anything is enrolled.
struct EnrolRequest {
  std::string id;
  std::string name;
  std::string role;
  std::string key_out;
};

core::Result<EnrolRequest> ParseEnrol(const Options& o) {
  EnrolRequest r;
  FEDRX_ASSIGN_OR_RETURN(r.id, Required(o, "id"));
  FEDRX_RETURN_IF_ERROR(core::ValidateId(r.id, "--id"));
  FEDRX_ASSIGN_OR_RETURN(r.name, Required(o, "name"));
  FEDRX_ASSIGN_OR_RETURN(r.role, Required(o, "role"));
  FEDRX_ASSIGN_OR_RETURN(r.key_out, Required(o, "key-out"));
  FEDRX_ASSIGN_OR_RETURN(security::Role role, security::ParseRole(r.role, "--role"));
  r.role = security::RoleName(role);
  // Refuse before enrolling: the secret exists only until it is written, and
  // an institution's existing key file must not be replaced by accident.
  struct stat st {};
  if (::stat(r.key_out.c_str(), &st) == 0) {
    return core::Status(core::StatusCode::kAlreadyExists,
                        "key file exists; refusing to overwrite it", r.key_out);
  }
  return r;
}

core::Status WriteEnrolledKeys(const EnrolRequest& r, const core::CurveKeyPair& pair) {
  if (core::Status written = core::WriteCurveKeyPair(r.key_out, pair); !written.ok()) {
    return written.WithContext("institution " + r.id +
                               " is enrolled but its key pair could not be written and is lost; "
                               "revoke it (`fedrx institutions revoke " +
                               r.id + "`) and enrol under a new id");
  }
  return core::Status::Ok();
}

// Records an admin action and its outcome; a failure to record is reported
// after the action's own outcome (it does not undo the action).
core::Status Audit(security::AuditLog& audit, const std::string& action, const std::string& id,
                   const core::Status& outcome) {
  security::AuditRecord record;
  record.actor = kCliActor;
  record.role = "admin";
  record.action = action;
  record.decision = outcome.ok() ? security::Decision::kAdmitted : security::Decision::kDenied;
  record.reason =
      outcome.ok() ? "institution " + id
                   : "institution " + id + ": " + std::string(core::StatusCodeName(outcome.code()));
  core::Result<std::string> appended = audit.Append(record);
  if (!appended.ok()) {
    return appended.status().WithContext("could not record this in the audit trail");
  }
  return core::Status::Ok();
}

core::Status Enrol(security::InstitutionRegistry& registry, const Options& o, std::ostream& out,
                   std::string* id_out) {
  FEDRX_ASSIGN_OR_RETURN(std::string id, Required(o, "id"));
  FEDRX_RETURN_IF_ERROR(core::ValidateId(id, "--id"));
  *id_out = id;
  FEDRX_ASSIGN_OR_RETURN(EnrolRequest r, ParseEnrol(o));
  FEDRX_ASSIGN_OR_RETURN(security::Role role, security::ParseRole(r.role, "--role"));
  FEDRX_ASSIGN_OR_RETURN(security::Enrolment e, registry.Enrol(r.id, r.name, role));
  FEDRX_RETURN_IF_ERROR(WriteEnrolledKeys(r, e.key_pair));
  PrintEnrolled(r.id, r.role, e.institution.public_key, r.key_out, out);
  return core::Status::Ok();
}

core::Status ListInstitutions(security::InstitutionRegistry& registry, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::vector<security::Institution> all, registry.List());
  std::vector<codec::InstitutionInfo> infos;
  for (const auto& i : all) infos.push_back(InfoOf(i));
  PrintInstitutions(infos, out);
  return core::Status::Ok();
}

core::Status ChangeStatus(security::InstitutionRegistry& registry, const std::string& verb,
                          const std::string& id, std::ostream& out) {
  core::Result<security::Institution> changed = verb == "suspend"      ? registry.Suspend(id)
                                                : verb == "reactivate" ? registry.Reactivate(id)
                                                                       : registry.Revoke(id);
  if (!changed.ok()) return changed.status();
  out << "institution " << id << " is " << security::InstitutionStatusName(changed->status) << "\n";
  return core::Status::Ok();
}

core::Status VerifyAudit(security::AuditLog& audit, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(security::VerifyReport report, audit.Verify());
  out << "audit trail intact: " << report.records << " record(s)";
  if (report.records > 0) out << ", last " << report.last_id << " hash " << report.last_hash;
  out << "\n";
  return core::Status::Ok();
}

// ---- The same administration through the gateway (admin role). ----
// The gateway holds the registry and the audit trail and records every
// action itself; replies are checked like any input from outside.

core::Status EnrolThroughGateway(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(EnrolRequest r, ParseEnrol(o));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m,
                         Ask(bus, o, codec::EnrolInstitution{r.id, r.name, r.role}));
  FEDRX_ASSIGN_OR_RETURN(codec::InstitutionEnrolled e,
                         Expect<codec::InstitutionEnrolled>(std::move(m)));
  if (e.institution.id != r.id) {
    return core::Internal("the gateway enrolled '" + e.institution.id + "', not '" + r.id + "'",
                          "InstitutionEnrolled.institution.id");
  }
  // WriteEnrolledKeys refuses a pair whose halves do not belong together.
  FEDRX_RETURN_IF_ERROR(
      WriteEnrolledKeys(r, core::CurveKeyPair{e.institution.public_key, e.secret_key}));
  PrintEnrolled(r.id, e.institution.role, e.institution.public_key, r.key_out, out);
  return core::Status::Ok();
}

core::Status ListThroughGateway(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::ListInstitutions{}));
  FEDRX_ASSIGN_OR_RETURN(codec::InstitutionList list, Expect<codec::InstitutionList>(std::move(m)));
  PrintInstitutions(list.institutions, out);
  return core::Status::Ok();
}

core::Status ChangeStatusThroughGateway(core::Bus& bus, const Options& o, const std::string& verb,
                                        const std::string& id, std::ostream& out) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(id, "ID"));
  const std::string status = verb == "suspend"      ? "suspended"
                             : verb == "reactivate" ? "active"
                                                    : "revoked";
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::SetInstitutionStatus{id, status}));
  FEDRX_ASSIGN_OR_RETURN(codec::InstitutionList list, Expect<codec::InstitutionList>(std::move(m)));
  if (list.institutions.size() != 1 || list.institutions[0].id != id) {
    return core::Internal("expected the one updated record of institution '" + id + "', got " +
                              std::to_string(list.institutions.size()) + " record(s)",
                          "InstitutionList.institutions");
  }
  out << "institution " << id << " is " << list.institutions[0].status << "\n";
  return core::Status::Ok();
}

core::Status VerifyAuditThroughGateway(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, codec::VerifyAudit{}));
  FEDRX_ASSIGN_OR_RETURN(codec::AuditReport report, Expect<codec::AuditReport>(std::move(m)));
  if (!report.intact) {
    return core::Status(
        core::StatusCode::kDataLoss,
        "the audit trail is broken after " + std::to_string(report.records) +
            " good record(s): " + (report.problem.empty() ? "no detail given" : report.problem),
        "audit trail");
  }
  out << "audit trail intact: " << report.records << " record(s)";
  if (report.records > 0) out << ", last " << report.last_id << " hash " << report.last_hash;
  out << "\n";
  return core::Status::Ok();
}

core::Status GenerateAuditKey(const Options& o, std::ostream& out) {
  auto it = o.flags.find("out");
  if (it == o.flags.end() || it->second.empty()) {
    return core::InvalidArgument("keys audit needs --out FILE", "--out");
  }
  FEDRX_RETURN_IF_ERROR(security::WriteNewAuditKey(it->second));
  out << "audit key written to " << it->second << " (0600); give it to the gateway as "
      << "gateway.audit_key_file and keep it out of Redis\n";
  return core::Status::Ok();
}

}  // namespace

bool IsAdminCommand(const std::vector<std::string>& args) {
  auto parsed = Parse(args);
  if (!parsed.ok() || parsed->command.empty() || parsed->via_gateway) return false;
  return parsed->command[0] == "institutions" || parsed->command[0] == "audit";
}

core::Result<core::BusOptions> CliBusOptions(const std::vector<std::string>& args) {
  FEDRX_ASSIGN_OR_RETURN(Options o, Parse(args));
  core::BusOptions options;
  options.name = "fedrx-cli";
  if (!o.via_gateway) return options;
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair own, core::LoadCurveKeyPair(o.key_file));
  FEDRX_ASSIGN_OR_RETURN(options.curve_server_key, core::LoadCurvePublicKey(o.server_key_file));
  options.curve_public_key = std::move(own.public_key);
  options.curve_secret_key = std::move(own.secret_key);
  return options;
}

int RunAdminCommand(const std::vector<std::string>& args, core::StateStore& store,
                    const core::Clock& clock, core::Metrics& metrics, std::ostream& out,
                    std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    err << "fedrx: " << parsed.status() << "\n" << kUsage << "\n";
    return 2;
  }
  const Options& o = *parsed;
  const auto& c = o.command;
  security::InstitutionRegistry registry(store, clock);
  security::AuditLog audit(store, clock, metrics);
  if (auto key_file = o.flags.find("audit-key-file"); key_file != o.flags.end()) {
    core::Result<std::string> key = security::LoadAuditKey(key_file->second);
    core::Status keyed = key.ok() ? audit.SetKey(std::move(*key)) : key.status();
    if (!keyed.ok()) {
      err << "fedrx: --audit-key-file: " << keyed << "\n";
      return 1;
    }
  }
  core::Status s;
  if (c == std::vector<std::string>{"institutions", "enrol"}) {
    std::string id;
    s = Enrol(registry, o, out, &id);
    // Input refused before anything was tried is not an action to record.
    if (!id.empty() && s.code() != core::StatusCode::kInvalidArgument) {
      if (core::Status a = Audit(audit, "institutions.enrol", id, s); !a.ok() && s.ok()) s = a;
    }
  } else if (c == std::vector<std::string>{"institutions", "list"}) {
    s = ListInstitutions(registry, out);
  } else if (c.size() == 3 && c[0] == "institutions" &&
             (c[1] == "suspend" || c[1] == "reactivate" || c[1] == "revoke")) {
    s = ChangeStatus(registry, c[1], c[2], out);
    if (s.code() != core::StatusCode::kInvalidArgument) {
      if (core::Status a = Audit(audit, "institutions." + c[1], c[2], s); !a.ok() && s.ok()) s = a;
    }
  } else if (c == std::vector<std::string>{"audit", "verify"}) {
    s = VerifyAudit(audit, out);
  } else {
    err << kUsage << "\n";
    return 2;
  }
  if (!s.ok()) {
    err << "fedrx: " << s << "\n";
    return 1;
  }
  return 0;
}

int RunCommand(const std::vector<std::string>& args, core::Bus& bus, std::ostream& out,
               std::ostream& err) {
  auto parsed = Parse(args);
  if (!parsed.ok()) {
    err << "fedrx: " << parsed.status() << "\n" << kUsage << "\n";
    return 2;
  }
  const Options& o = *parsed;
  const auto& c = o.command;
  core::Status s;
  if (c == std::vector<std::string>{"health"}) {
    s = Health(bus, o, out);
  } else if (c == std::vector<std::string>{"sites", "list"}) {
    s = ListSites(bus, o, out);
  } else if (c == std::vector<std::string>{"sites", "register"}) {
    s = RegisterSite(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "create") {
    s = CreateStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "show") {
    s = ShowStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "watch") {
    s = WatchStudy(bus, o, out);
  } else if (c.size() >= 2 && c[0] == "study" && c[1] == "model") {
    s = FetchModel(bus, o, out);
  } else if (c == std::vector<std::string>{"keys", "generate"}) {
    s = GenerateKeys(o, out);
  } else if (c.size() == 3 && c[0] == "keys" && c[1] == "public") {
    s = PublicKey(o, out);
  } else if (c == std::vector<std::string>{"keys", "audit"}) {
    s = GenerateAuditKey(o, out);
  } else if (c == std::vector<std::string>{"institutions", "enrol"}) {
    s = EnrolThroughGateway(bus, o, out);
  } else if (c == std::vector<std::string>{"institutions", "list"}) {
    s = ListThroughGateway(bus, o, out);
  } else if (c.size() == 3 && c[0] == "institutions" &&
             (c[1] == "suspend" || c[1] == "reactivate" || c[1] == "revoke")) {
    s = ChangeStatusThroughGateway(bus, o, c[1], c[2], out);
  } else if (c == std::vector<std::string>{"audit", "verify"}) {
    s = VerifyAuditThroughGateway(bus, o, out);
  } else if (IsDesignCommand(o)) {
    s = RunDesignCommand(bus, o, out);
  } else if (IsReverseCommand(o)) {
    s = RunReverseCommand(bus, o, out);
  } else if (IsToxCommand(o)) {
    s = RunToxCommand(bus, o, out);
  } else if (IsClinicalCommand(o)) {
    s = RunClinicalCommand(bus, o, out);
  } else if (IsAssessCommand(o)) {
    return RunAssessCommand(bus, o, out, err, IsTerminal(out));
  } else if (IsWorkflowCommand(o)) {
    s = RunWorkflowCommand(bus, o, out);
  } else if (IsReportCommand(o)) {
    s = RunReportCommand(bus, o, out);
  } else {
    err << kUsage << "\n";
    return 2;
  }
  if (!s.ok()) {
    err << "fedrx: " << s << "\n";
    return 1;
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (IsIngestCommand(args)) return RunIngestCommand(args, std::cout, std::cerr, isatty(2) != 0);
  core::SystemClock clock;
  core::Metrics metrics("cli");
  if (IsAdminCommand(args)) {
    auto parsed = Parse(args);
    core::Result<core::RedisOptions> options = RedisFrom(*parsed);
    if (!options.ok()) {
      std::cerr << "fedrx: " << options.status() << "\n";
      return 2;
    }
    auto store = core::RedisStateStore::Connect(*options, &metrics);
    if (!store.ok()) {
      std::cerr << "fedrx: " << store.status() << "\n";
      return 1;
    }
    return RunAdminCommand(args, **store, clock, metrics, std::cout, std::cerr);
  }
  if (auto parsed = Parse(args); !parsed.ok()) {
    std::cerr << "fedrx: " << parsed.status() << "\n" << kUsage << "\n";
    return 2;
  }
  core::Result<core::BusOptions> options = CliBusOptions(args);
  if (!options.ok()) {
    std::cerr << "fedrx: " << options.status() << "\n";
    return 1;
  }
  core::ZmqBus bus(*options, metrics, clock);
  return RunCommand(args, bus, std::cout, std::cerr);
}

}  // namespace fedrx::cli
