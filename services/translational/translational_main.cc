// fedrx-translational: the dose-translation and pharmacokinetics service
// behind the gateway. Answers TranslateDose (HED and MRSD, FDA 2005),
// SimulatePk (profiles, exposure margins) and FitPk (one-compartment oral fit),
// each with its working.
#include "services/domain/request_service.h"
#include "services/translational/dose.h"
#include "services/translational/pk.h"
#include "services/translational/pk_fit.h"

namespace fedrx::translational {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-translational [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  translational.endpoint        where the gateway connects (tcp://127.0.0.1:5580)\n"
    "  translational.workers         threads answering requests (1)\n"
    "  translational.max_queued      requests waiting beyond this are refused (64)\n"
    "  translational.curve_key_file  CURVE: the service's key pair file (0600); with it\n"
    "  translational.clients_file    CURVE: authorised clients (the gateway), one a line\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

void Install(domain::RequestService& service) {
  service.Handle<codec::TranslateDose>(
      [](const codec::TranslateDose& r) { return domain::AsBody(TranslateDose(r)); });
  service.Handle<codec::SimulatePk>(
      [](const codec::SimulatePk& r) { return domain::AsBody(SimulatePk(r)); });
  service.Handle<codec::FitPk>([](const codec::FitPk& r) { return domain::AsBody(FitPk(r)); });
}

}  // namespace
}  // namespace fedrx::translational

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "translational";
  options.endpoint = "tcp://127.0.0.1:5580";
  return fedrx::domain::RunRequestServiceMain(argc, argv, options, fedrx::translational::kUsage,
                                              fedrx::translational::Install);
}
