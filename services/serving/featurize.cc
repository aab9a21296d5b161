#include "services/serving/featurize.h"

#include <cctype>

namespace fedrx::serving {
namespace {

// A bracket atom's element symbol is H (hydrogen or an isotope of it) when,
// after the optional isotope digits, it is 'H' not followed by a lower-case
// letter (Hg, Ho, Hf, He are heavy).
bool IsHydrogenBracket(std::string_view inside) {
  std::size_t i = 0;
  while (i < inside.size() && std::isdigit(static_cast<unsigned char>(inside[i]))) ++i;
  if (i >= inside.size() || inside[i] != 'H') return false;
  return i + 1 >= inside.size() || !std::islower(static_cast<unsigned char>(inside[i + 1]));
}

}  // namespace

std::size_t CountHeavyAtoms(std::string_view s, std::size_t limit) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size() && count <= limit; ++i) {
    const char c = s[i];
    switch (c) {
      case '[': {
        const std::size_t close = s.find(']', i + 1);
        const std::size_t end = close == std::string_view::npos ? s.size() : close;
        if (!IsHydrogenBracket(s.substr(i + 1, end - i - 1))) ++count;
        i = end;
        break;
      }
      case 'C':  // C or Cl
      case 'B':  // B or Br
        ++count;
        if (i + 1 < s.size() && (s[i + 1] == 'l' || s[i + 1] == 'r')) ++i;
        break;
      case 'N': case 'O': case 'P': case 'S': case 'F': case 'I': case '*':
      case 'b': case 'c': case 'n': case 'o': case 'p': case 's':
        ++count;
        break;
      case '%':  // two-digit ring closure
        i += 2;
        break;
      default:
        break;
    }
  }
  return count > limit ? limit + 1 : count;
}

Featurizer::Featurizer(ml::FingerprintOptions fingerprint, const ingest::ConsortiumKey& key,
                       std::size_t max_heavy_atoms)
    : fingerprint_(fingerprint), max_heavy_atoms_(max_heavy_atoms) {
  // As PrepareCompounds: with a key, every bit goes through the key's
  // permutation of the fingerprint's width.
  if (!key.empty()) {
    scrambler_ = std::make_shared<const ml::BitScrambler>(key.ScrambleKey(), fingerprint_.bits);
  }
}

core::Result<Features> Featurizer::Featurize(std::string_view smiles,
                                             const std::string& where) const {
  std::size_t b = 0, e = smiles.size();
  while (b < e && std::isspace(static_cast<unsigned char>(smiles[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(smiles[e - 1]))) --e;
  if (b == e) return core::InvalidArgument("empty structure", where);
  const std::size_t atoms = CountHeavyAtoms(smiles.substr(b, e - b), max_heavy_atoms_);
  if (atoms > max_heavy_atoms_) {
    return core::InvalidArgument("structure has more than " + std::to_string(max_heavy_atoms_) +
                                     " heavy atoms (the served models' limit)",
                                 where);
  }
  core::Result<ml::PreparedMolecule> prepared = ml::PrepareMolecule(smiles, fingerprint_);
  if (!prepared.ok()) {
    return core::InvalidArgument(prepared.status().message(), where);
  }
  Features f;
  f.canonical_smiles = std::move(prepared->canonical_smiles);
  f.bits = scrambler_ ? scrambler_->Apply(prepared->bits) : std::move(prepared->bits);
  return f;
}

}  // namespace fedrx::serving
