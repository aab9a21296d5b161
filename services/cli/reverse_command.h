// `fedrx reverse translate`: asks the reverse-translation service, through
// the gateway, which preclinical assays and in-vivo (SEND) endpoints bear on
// a clinical safety signal, and prints the answer with its evidence and
// working (--json FILE writes it as JSON). Single-threaded.
#pragma once

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "messages/codec/message.h"
#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"
#include "services/domain/domain_json.h"

namespace fedrx::cli {

// True for `reverse ...`.
bool IsReverseCommand(const Options& o);

// `reverse translate [--organ-class NAME[;NAME...]] [--adverse-event TERM[;TERM...]]
// [--label L1,L2] [--fdr Q] [--json FILE]` (organ-class names may hold commas,
// so those lists are ';'-separated). Errors: the service's (bad input names
// the entry), an unknown subcommand.
core::Status RunReverseCommand(core::Bus& bus, const Options& o, std::ostream& out);

// The answer as JSON (every field, for files and the demo):
// domain::ToJson(const codec::ReverseTranslation&).
using domain::ToJson;

}  // namespace fedrx::cli
