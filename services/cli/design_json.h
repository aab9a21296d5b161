// The translational and trial services' answers as JSON (for files a
// scientist keeps, the demo's comparison and reports) and their working as
// readable text. Pure functions.
#pragma once

#include <iosfwd>

#include <nlohmann/json_fwd.hpp>

#include "messages/codec/message.h"
#include "services/ingest/noael.h"

namespace fedrx::cli {

nlohmann::json ToJson(const codec::Working& w);
nlohmann::json ToJson(const codec::DoseTranslation& a);
nlohmann::json ToJson(const codec::PkProfile& a);
nlohmann::json ToJson(const codec::PkFit& a);
nlohmann::json ToJson(const codec::SampleSizeResult& a);
nlohmann::json ToJson(const codec::OperatingCharacteristics& a);
nlohmann::json ToJson(const codec::VirtualTrialResult& a);
nlohmann::json ToJson(const ingest::cdm::NoaelProposal& p);

// Every step: label, formula, inputs, result, reference; then the notes.
void PrintWorking(const codec::Working& w, std::ostream& out);

}  // namespace fedrx::cli
