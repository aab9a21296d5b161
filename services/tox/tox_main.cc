// fedrx-tox: the toxicity-panel service behind the gateway. Answers
// PredictToxicity with the federated models of the configured panels'
// studies, read from the registry (Redis) and switched to each new version
// the coordinator publishes; every prediction carries conformal p-values, a
// prediction set and an applicability-domain flag.
#include <algorithm>
#include <memory>
#include <string>

#include "services/domain/request_service.h"
#include "services/serving/serving_process.h"
#include "services/tox/tox_service.h"

namespace fedrx::tox {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-tox [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  tox.endpoint          where the gateway connects (tcp://127.0.0.1:5582)\n"
    "  tox.redis             the registry's Redis, host:port (127.0.0.1:6379); redis.password,\n"
    "                        redis.db, redis.*_timeout, redis.startup_wait (30s) also apply\n"
    "  tox.panels            panel=study list (tox21=tox21-demo), e.g.\n"
    "                        tox21=tox21-demo,toxcast=toxcast-demo\n"
    "  tox.default_panel     panel of a request naming none (tox21, else the first)\n"
    "  tox.key_file          the consortium key file the sites prepared with (none)\n"
    "  tox.folds             fold count of the sites' ingest, for the preparation hash (5)\n"
    "  tox.refresh_interval  how often the registry is checked for new versions (2s)\n"
    "  tox.max_structures    structures per request (1000, at most 4096)\n"
    "  tox.max_heavy_atoms   larger structures are refused before parsing (200)\n"
    "  tox.threads           threads of one request's featurisation and forward pass (1)\n"
    "  tox.workers           requests answered at once (1)\n"
    "  tox.max_queued        requests waiting beyond this are refused (64)\n"
    "  tox.curve_key_file    CURVE: the service's key pair file (0600); with it\n"
    "  tox.clients_file      CURVE: authorised clients (the gateway), one a line\n"
    "  http.listen           /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

core::Status Setup(domain::RequestService& service, core::ProcessParts& p) {
  FEDRX_ASSIGN_OR_RETURN(ToxOptions tox, ToxOptionsFrom(p.config));
  serving::ServingOptions serving;
  for (const auto& [panel, study] : tox.panels) {
    if (std::find(serving.studies.begin(), serving.studies.end(), study) == serving.studies.end()) {
      serving.studies.push_back(study);
    }
  }
  serving.max_batch = tox.max_structures;
  FEDRX_ASSIGN_OR_RETURN(serving::ModelServer * server,
                         serving::ServeModels("tox", std::move(serving), service, p));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<ToxHandler> handler,
                         ToxHandler::Create(tox, *server, p.metrics));
  const ToxHandler* h = handler.get();
  service.Handle<codec::PredictToxicity>(
      [h](const codec::PredictToxicity& r) { return domain::AsBody(h->Predict(r)); });

  p.keep_alive.push_back(std::shared_ptr<ToxHandler>(std::move(handler)));
  return core::Status::Ok();
}

}  // namespace
}  // namespace fedrx::tox

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "tox";
  options.endpoint = "tcp://127.0.0.1:5582";
  return fedrx::domain::RunRequestServiceMainWith(argc, argv, options, fedrx::tox::kUsage,
                                                  fedrx::tox::Setup);
}
