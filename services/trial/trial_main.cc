// fedrx-trial: the clinical-trial design service behind the gateway. Answers
// ComputeSampleSize (t, proportions, log-rank, Simon two-stage),
// SimulateEscalation (3+3, BOIN, CRM operating characteristics) and
// RunVirtualTrial (a simulated first-in-human trial from the MRSD), each with
// its working. Simulations run on worker threads.
#include "services/domain/request_service.h"
#include "services/trial/escalation.h"
#include "services/trial/sample_size.h"
#include "services/trial/virtual_trial.h"

namespace fedrx::trial {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-trial [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  trial.endpoint        where the gateway connects (tcp://127.0.0.1:5581)\n"
    "  trial.workers         threads running simulations (1)\n"
    "  trial.max_queued      requests waiting beyond this are refused (64)\n"
    "  trial.curve_key_file  CURVE: the service's key pair file (0600); with it\n"
    "  trial.clients_file    CURVE: authorised clients (the gateway), one a line\n"
    "  http.listen           /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

void Install(domain::RequestService& service) {
  service.Handle<codec::ComputeSampleSize>(
      [](const codec::ComputeSampleSize& r) { return domain::AsBody(ComputeSampleSize(r)); });
  service.Handle<codec::SimulateEscalation>(
      [](const codec::SimulateEscalation& r) { return domain::AsBody(SimulateEscalation(r)); });
  service.Handle<codec::RunVirtualTrial>(
      [](const codec::RunVirtualTrial& r) { return domain::AsBody(RunVirtualTrial(r)); });
}

}  // namespace
}  // namespace fedrx::trial

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "trial";
  options.endpoint = "tcp://127.0.0.1:5581";
  return fedrx::domain::RunRequestServiceMain(argc, argv, options, fedrx::trial::kUsage,
                                              fedrx::trial::Install);
}
