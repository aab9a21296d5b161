// `fedrx tox predict`: asks the tox service, through the gateway, for the
// toxicity panel of structures (SMILES on the command line or a .smi file)
// and prints per structure and task the probability, the conformal
// prediction set and the applicability-domain flag, with the model version
// (--json FILE writes the whole answer). Single-threaded.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/cli/cli_common.h"
#include "services/core/bus.h"
#include "services/core/status.h"
#include "services/domain/domain_json.h"

namespace fedrx::cli {

// True for `tox ...`.
bool IsToxCommand(const Options& o);

// `tox predict --smiles S[,S...] | --in FILE.smi [--panel tox21] [--tasks T1,T2]
// [--confidence 0.9] [--json FILE]`. Errors: no or both structure sources, an
// unreadable file (naming it and the line), the service's (bad input names the
// field), an unknown subcommand.
core::Status RunToxCommand(core::Bus& bus, const Options& o, std::ostream& out);

// The structures of a .smi file: the first whitespace-separated field of each
// line; blank lines and lines starting with '#' skipped. kNotFound when the
// file cannot be read, kInvalidArgument when it holds no structure.
core::Result<std::vector<std::string>> ReadSmiles(const std::string& path);

// The structures after --smiles S[,S...] or in the .smi file after --in
// (ReadSmiles). InvalidArgument naming --smiles when neither or both are
// given, or the list holds none.
core::Result<std::vector<std::string>> StructuresFrom(const Options& o);

// `v` with `digits` decimals.
std::string FixedText(double v, int digits);

// Prints structure `i`'s line before its task rows: "[i] INPUT -> CANONICAL"
// and its applicability domain (p-value, and the score when `with_score`),
// or "[i] INPUT  REFUSED: why (code)". False when it was refused: no task
// rows follow.
bool PrintStructureLine(std::size_t i, const codec::StructurePrediction& s, bool with_score,
                        std::ostream& out);

// The answer as JSON (every field): domain::ToJson(const codec::ToxicityPanel&).
using domain::ToJson;

}  // namespace fedrx::cli
