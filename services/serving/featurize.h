// Featurisation of request structures exactly as the sites prepared their
// training data: ml::PrepareMolecule's standardisation and Morgan
// fingerprint, then the consortium key's bit scrambling (ingest's
// ConsortiumKey), plus a cheap size bound checked before any parsing.
// Featurizer is immutable after construction; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"
#include "services/ingest/compounds.h"
#include "services/ml/chem.h"

namespace fedrx::serving {

// Heavy (non-hydrogen) atoms written in `smiles`, counted from its text
// before any parsing so that an absurd molecule costs a scan, not a parse:
// every bracket atom except hydrogen ([H], [2H], [H+], ...), every organic
// subset atom (B C N O P S F Cl Br I, aromatic b c n o p s) and the wildcard
// '*'. Every fragment counts. Stops counting past `limit` and returns
// limit + 1. An unterminated bracket counts as one atom (the parser refuses
// it later).
std::size_t CountHeavyAtoms(std::string_view smiles, std::size_t limit);

// A structure ready for the network.
struct Features {
  std::string canonical_smiles;
  std::vector<std::uint32_t> bits;  // scrambled when there is a key; ascending, < dim
};

class Featurizer {
 public:
  // `fingerprint` as the study's sites used it; `key` the consortium's key
  // (empty: the sites did not scramble). max_heavy_atoms >= 1.
  Featurizer(ml::FingerprintOptions fingerprint, const ingest::ConsortiumKey& key,
             std::size_t max_heavy_atoms);

  const ml::FingerprintOptions& fingerprint() const { return fingerprint_; }

  // kInvalidArgument (where = `where`) for an empty structure, one with more
  // than max_heavy_atoms heavy atoms (refused before parsing), and anything
  // ml::PrepareMolecule refuses (unparseable, over-long, bad characters).
  core::Result<Features> Featurize(std::string_view smiles, const std::string& where) const;

 private:
  ml::FingerprintOptions fingerprint_;
  std::shared_ptr<const ml::BitScrambler> scrambler_;  // null: no key
  std::size_t max_heavy_atoms_;
};

}  // namespace fedrx::serving
