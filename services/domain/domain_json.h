// The domain services' requests and answers as JSON: for the files a scientist
// keeps (`fedrx ... --json`), the orchestrator's step requests and outputs and
// the reports. Field names are the message structs' member names. Pure
// functions; safe to call from any thread.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::domain {

// The JSON of a domain request or answer (the overloads below); any other body
// is {"type": "<BodyName>"} only.
nlohmann::json BodyToJson(const codec::Body& body);

// Answers. Every field; a few are written only where they mean something:
// SampleSizeResult's events/event_probability for "log_rank" and its "simon"
// object for "simon_two_stage", OperatingCharacteristics' lambda_e/lambda_d/
// boundaries for "boin", a refused StructurePrediction's "error" instead of its
// calls, ClinicalAssessment's side_effects_unavailable or side effects.
nlohmann::json ToJson(const codec::DoseTranslation& a);
nlohmann::json ToJson(const codec::PkProfile& a);
nlohmann::json ToJson(const codec::PkFit& a);
nlohmann::json ToJson(const codec::SampleSizeResult& a);
nlohmann::json ToJson(const codec::OperatingCharacteristics& a);
nlohmann::json ToJson(const codec::VirtualTrialResult& a);
nlohmann::json ToJson(const codec::ToxicityPanel& a);
nlohmann::json ToJson(const codec::ClinicalAssessment& a);
nlohmann::json ToJson(const codec::ReverseTranslation& a);

// Parts of answers.
nlohmann::json ToJson(const codec::Working& w);
nlohmann::json ToJson(const codec::ModelProvenance& m);
nlohmann::json ToJson(const codec::StructurePrediction& s);

// Requests and their parts: every member, always (RequestFromJson reads them back).
nlohmann::json ToJson(const codec::Quantity& q);
nlohmann::json ToJson(const codec::SpeciesNoael& r);
nlohmann::json ToJson(const codec::PkModel& r);
nlohmann::json ToJson(const codec::EscalationDesign& r);
nlohmann::json ToJson(const codec::TranslateDose& r);
nlohmann::json ToJson(const codec::SimulatePk& r);
nlohmann::json ToJson(const codec::FitPk& r);
nlohmann::json ToJson(const codec::ComputeSampleSize& r);
nlohmann::json ToJson(const codec::SimulateEscalation& r);
nlohmann::json ToJson(const codec::RunVirtualTrial& r);
nlohmann::json ToJson(const codec::PredictToxicity& r);
nlohmann::json ToJson(const codec::AssessClinical& r);
nlohmann::json ToJson(const codec::ReverseTranslate& r);

// The request `body_type` (e.g. "TranslateDose") read from `j`, an object
// whose members are the struct's; absent members keep the struct's defaults.
// InvalidArgument, with `where` extended by the member path (e.g.
// "<where>.noaels[1].noael_mg_per_kg") and a message saying what was expected,
// when: `j` or a nested struct is not an object, a member is unknown, has the
// wrong JSON type (null included), is a non-finite number, or is an integer
// that is fractional or out of the member's range. InvalidArgument naming
// `body_type` (at `where`) when it is not one of the nine domain requests.
core::Result<codec::Body> RequestFromJson(std::string_view body_type, const nlohmann::json& j,
                                          std::string_view where);

// True for the nine request body types the domain services serve.
bool IsDomainRequest(std::string_view body_type);

// The service that serves `body_type`: "translational" (TranslateDose,
// SimulatePk, FitPk), "trial" (ComputeSampleSize, SimulateEscalation,
// RunVirtualTrial), "tox" (PredictToxicity), "clinical" (AssessClinical),
// "reverse" (ReverseTranslate); "" when it is not a domain request.
std::string_view ServiceOfRequest(std::string_view body_type);

}  // namespace fedrx::domain
