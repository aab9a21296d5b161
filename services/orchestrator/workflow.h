// Workflow files (deploy/workflows/*.yaml): loaded, validated into an acyclic step graph, and a
// run's inputs checked against the declared ones. Pure functions over value types; thread-safe.
//
// Every load error is InvalidArgument whose where is "<file>:<line>" (1-based YAML line) and whose
// message says what is wrong: unknown key, missing name/steps/id/service/call, duplicate step id,
// unknown service or call (as the CallCatalog says), reference to an unknown step or undeclared
// input, a step referring to itself, a cycle ("cycle: a -> b -> a", each step needing the next),
// bad timeout (integer with ms/s/m, > 0 and <= 1h), retries outside 0..10, condition syntax errors
// (with the column in the condition), unknown input type, a default of the wrong type or range.
// Malformed YAML is InvalidArgument at the parser's line.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::orchestrator {

struct InputSpec {
  std::string name;
  std::string type;  // "string", "number", "integer", "boolean", "smiles", "array", "object"
  bool required = false;
  std::optional<nlohmann::json> default_value;
  std::optional<double> min, max;  // numbers (and the elements of an array of numbers)
  std::size_t min_items = 0;       // arrays
  std::string description;
  int line = 0;
  // Arrays only: the elements' type ("string", "number", "integer", "boolean", "smiles";
  // "" = any). Each element is checked like an input of that type, where "input.<name>[i]".
  std::string items;
};

struct StepSpec {
  std::string id, service, call;  // service "local" for local functions
  nlohmann::json with = nlohmann::json::object();
  std::chrono::milliseconds timeout{30000};
  int retries = 1;                 // extra attempts after the first
  std::vector<std::string> needs;  // explicit + referenced steps, sorted, unique
  std::string when;                // "" = always
  int line = 0;
};

struct Workflow {
  std::string name, version, description, file /*base name*/, sha256 /*hex of file bytes*/;
  std::vector<InputSpec> inputs;
  std::vector<StepSpec> steps;  // declared order; validated acyclic
  std::string output_call;      // local function computing the run's output ("" = none)
  nlohmann::json output_with = nlohmann::json::object();
  std::string report;  // "" or "candidate"
};

// OK when `service` serves `call` (a domain request body type) or service == "local" and `call` is
// a registered local function; else InvalidArgument saying what is unknown.
using CallCatalog = std::function<core::Status(std::string_view service, std::string_view call)>;

// Parses and validates one workflow; `file_name` (a base name) is used in every error's where and
// kept in Workflow::file; sha256 is computed over `yaml`.
core::Result<Workflow> ParseWorkflow(std::string_view yaml, std::string_view file_name,
                                     const CallCatalog& catalog);
// Reads `file` (NotFound when it cannot be read; InvalidArgument above 1 MiB) and parses it.
core::Result<Workflow> LoadWorkflowFile(const std::filesystem::path& file,
                                        const CallCatalog& catalog);
// Every *.yaml in `dir`, in file name order; names must be unique (error names both files).
// NotFound when `dir` is not a directory.
core::Result<std::vector<Workflow>> LoadWorkflowDir(const std::filesystem::path& dir,
                                                    const CallCatalog& catalog);

// Validates "smiles" inputs (the engine passes an RDKit parse); InvalidArgument at `where`.
using SmilesCheck = std::function<core::Status(std::string_view smiles, std::string_view where)>;

// `given` (a JSON object) with defaults applied and types/ranges checked. Errors: InvalidArgument,
// where "input.<name>" or "input.<name>[i]": an unknown name, a missing required input, a wrong
// type, a number outside min/max, an array shorter than min_items, a SMILES refused by
// `smiles_check` (skipped when empty). A null value counts as absent. An optional input without a
// default that is not given stays absent from the result. An integral number given for an integer
// input (e.g. 3.0) is stored as an integer.
core::Result<nlohmann::json> ResolveInputs(const Workflow& wf, const nlohmann::json& given,
                                           const SmilesCheck& smiles_check);

// A YAML document as JSON (plain scalars by the YAML 1.2 core schema: null, true/false, integers,
// finite floats; quoted scalars are strings). Used for workflow `with` blocks and by callers that
// accept YAML input files (e.g. a candidate). InvalidArgument at "<file_name>:<line>" for
// malformed YAML, duplicate keys, non-finite numbers or non-scalar keys.
core::Result<nlohmann::json> YamlToJson(std::string_view yaml, std::string_view file_name);

}  // namespace fedrx::orchestrator
