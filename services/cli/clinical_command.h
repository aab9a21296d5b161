// `fedrx clinical assess`: asks the clinical service, through the gateway,
// about candidate structures (SMILES on the command line or a .smi file):
// per structure the clinical-toxicity risk (CT_TOX) and approval call with
// their conformal prediction sets and the applicability-domain flag, and the
// probability of success of each clinical phase transition, published base
// rate -> adjusted by the predicted risk, with the likelihood of approval
// (--json FILE writes the whole answer). Single-threaded.
#pragma once

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "messages/codec/message.h"
#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"
#include "services/domain/domain_json.h"

namespace fedrx::cli {

// True for `clinical ...`.
bool IsClinicalCommand(const Options& o);

// `clinical assess --smiles S[,S...] | --in FILE.smi [--area NAME]
// [--confidence 0.9] [--json FILE]`. Errors: no or both structure sources,
// an unreadable file, the service's (bad input names the field, e.g. an
// unknown area lists the known ones), an unknown subcommand.
core::Status RunClinicalCommand(core::Bus& bus, const Options& o, std::ostream& out);

// The answer as JSON (every field): domain::ToJson(const codec::ClinicalAssessment&).
using domain::ToJson;

}  // namespace fedrx::cli
