// A site's NOAEL proposal as JSON, the domain answers' JSON (from
// services/domain/domain_json.h) for files a scientist keeps, and an answer's
// working as readable text. Pure functions.
#pragma once

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>

#include "messages/codec/message.h"
#include "services/domain/domain_json.h"
#include "services/ingest/noael.h"

namespace fedrx::cli {

// The answers' JSON is services/domain/domain_json.h's, shared with the
// orchestrator and the reports.
using domain::ToJson;
nlohmann::json ToJson(const ingest::cdm::NoaelProposal& p);

// Every step: label, formula, inputs, result, reference; then the notes.
void PrintWorking(const codec::Working& w, std::ostream& out);

}  // namespace fedrx::cli
