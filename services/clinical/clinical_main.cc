// fedrx-clinical: the clinical service behind the gateway. Answers
// AssessClinical with the federated ClinTox model (read from the registry in
// Redis, switched to each new version the coordinator publishes): per
// structure the CT_TOX / FDA_APPROVED calls with conformal p-values and the
// applicability-domain flag, and each clinical phase transition's
// probability of success, published base rates adjusted by the predicted
// clinical-toxicity risk; the side-effect profile when a study for it is
// configured.
#include <memory>
#include <string>

#include "services/clinical/clinical_service.h"
#include "services/core/process.h"
#include "services/domain/request_service.h"
#include "services/serving/serving_process.h"

namespace fedrx::clinical {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-clinical [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  clinical.endpoint           where the gateway connects (tcp://127.0.0.1:5583)\n"
    "  clinical.redis              the registry's Redis, host:port (127.0.0.1:6379);\n"
    "                              redis.password, redis.db, redis.*_timeout,\n"
    "                              redis.startup_wait (30s) also apply\n"
    "  clinical.study              the ClinTox study served (clintox-demo); needs the tasks\n"
    "                              CT_TOX and FDA_APPROVED\n"
    "  clinical.side_effect_study  a study of side-effect (organ-class) tasks to serve too\n"
    "                              (none: answers say why no profile is given)\n"
    "  clinical.key_file           the consortium key file the sites prepared with (none)\n"
    "  clinical.folds              fold count of the sites' ingest, for the preparation hash (5)\n"
    "  clinical.refresh_interval   how often the registry is checked for new versions (2s)\n"
    "  clinical.lr_bins            score groups of the CT_TOX likelihood ratio (5)\n"
    "  clinical.max_structures     structures per request (1000, at most 4096)\n"
    "  clinical.max_heavy_atoms    larger structures are refused before parsing (200)\n"
    "  clinical.threads            threads of one request's featurisation and forward pass (1)\n"
    "  clinical.workers            requests answered at once (1)\n"
    "  clinical.max_queued         requests waiting beyond this are refused (64)\n"
    "  clinical.curve_key_file     CURVE: the service's key pair file (0600); with it\n"
    "  clinical.clients_file       CURVE: authorised clients (the gateway), one a line\n"
    "  http.listen                 /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

core::Status Setup(domain::RequestService& service, core::ProcessParts& p) {
  FEDRX_ASSIGN_OR_RETURN(ClinicalOptions clinical, ClinicalOptionsFrom(p.config));
  serving::ServingOptions serving;
  serving.studies.push_back(clinical.study);
  if (!clinical.side_effect_study.empty() && clinical.side_effect_study != clinical.study) {
    serving.studies.push_back(clinical.side_effect_study);
  }
  serving.max_batch = clinical.max_structures;
  FEDRX_ASSIGN_OR_RETURN(serving::ModelServer * server,
                         serving::ServeModels("clinical", std::move(serving), service, p));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<ClinicalHandler> handler,
                         ClinicalHandler::Create(clinical, *server, p.metrics));
  const ClinicalHandler* h = handler.get();
  service.Handle<codec::AssessClinical>(
      [h](const codec::AssessClinical& r) { return domain::AsBody(h->Assess(r)); });

  p.keep_alive.push_back(std::shared_ptr<ClinicalHandler>(std::move(handler)));
  return core::Status::Ok();
}

}  // namespace
}  // namespace fedrx::clinical

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "clinical";
  options.endpoint = "tcp://127.0.0.1:5583";
  return fedrx::domain::RunRequestServiceMainWith(argc, argv, options, fedrx::clinical::kUsage,
                                                  fedrx::clinical::Setup);
}
