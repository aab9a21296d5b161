// Molecule preparation: SMILES (or an MDL molfile block) in, standardised
// canonical SMILES, Bemis-Murcko scaffold, Morgan (ECFP-like) bit fingerprint
// and optionally the standard InChIKey out. The only fedrx file that touches
// RDKit (and the InChI library). All functions are thread-safe and never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ml {

// Longest SMILES PrepareMolecule accepts; longer input is rejected, not parsed.
inline constexpr std::size_t kMaxSmilesLength = 8192;
// Bounds on FingerprintOptions, checked by PrepareMolecule.
inline constexpr int kMaxFingerprintRadius = 8;
inline constexpr std::uint32_t kMaxFingerprintBits = 1u << 24;

struct FingerprintOptions {
  int radius = 2;             // Morgan radius: 2 is ECFP4-like. In [0, kMaxFingerprintRadius].
  std::uint32_t bits = 2048;  // Folded length. In [1, kMaxFingerprintBits].
  bool chirality = false;     // Include chirality in the atom invariants.
};

struct PreparedMolecule {
  // Canonical isomeric SMILES of the standardised molecule (largest fragment,
  // neutralised).
  std::string canonical_smiles;
  // Bemis-Murcko scaffold of the standardised molecule as canonical SMILES
  // without stereochemistry (the DeepChem/MoleculeNet convention); empty for
  // acyclic molecules.
  std::string scaffold;
  // Set bits of the folded Morgan fingerprint: ascending, unique, each < bits.
  std::vector<std::uint32_t> bits;
  // Standard InChIKey (InChI 1.03, 27 characters) of the standardised
  // molecule; empty unless asked for (PrepareStructure with_inchikey).
  std::string inchikey;
};
// Debian's librdkit-dev is built without InChI support, so InChIKeys come from
// libinchi directly: the RDKit molecule is handed to GetStdINCHI atom by atom
// with 0D stereo parities taken from RDKit's chiral tags and double-bond stereo.

// Parses `smiles`, sanitises it, keeps the largest fragment (by atom count,
// RDKit MolStandardize::LargestFragmentChooser), neutralises it
// (MolStandardize::Uncharger), canonicalises it and computes the scaffold and
// the fingerprint. Leading and trailing ASCII whitespace is ignored.
// Errors: kInvalidArgument for empty or over-long input, input with a space,
// control or non-ASCII byte inside it, unparseable or unsanitisable input (the
// message carries what RDKit said), and out-of-range options.
// RDKit's own error/warning logs are captured and never reach stderr (they
// would print structures). Blocks for the computation only.
core::Result<PreparedMolecule> PrepareMolecule(std::string_view smiles,
                                               const FingerprintOptions& options);

// Longest molfile block PrepareStructure accepts.
inline constexpr std::size_t kMaxMolBlockLength = 1 << 20;

enum class StructureFormat { kSmiles, kMolBlock };

// PrepareMolecule for SMILES or an MDL molfile block (V2000/V3000, up to and
// including "M  END"; stereo from its coordinates and wedges), and with
// `with_inchikey` also the standard InChIKey of the standardised molecule.
// Errors as PrepareMolecule (a molfile may hold line breaks); kInvalidArgument
// when InChI refuses the molecule (the message carries InChI's).
core::Result<PreparedMolecule> PrepareStructure(std::string_view text, StructureFormat format,
                                                const FingerprintOptions& options,
                                                bool with_inchikey);

// The standard InChIKey of `smiles` as written (parsed and sanitised, not
// standardised: a salt keeps its counter-ion). Errors as PrepareMolecule.
core::Result<std::string> InChIKeyOfSmiles(std::string_view smiles);

// The InChI library's version, e.g. "inchi1.03"; part of an ingest's
// preparation hash.
std::string InChIVersion();

// MELLODDY-style keyed scrambling of fingerprint positions, so the platform
// cannot map a weight back to a substructure. Sites that share the key prepare
// identically. The permutation of [0, dim) is defined exactly (reproducible in
// any language):
//   state = key; next() is SplitMix64: state += 0x9E3779B97F4A7C15;
//     z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//     z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31).
//   perm = [0, 1, ..., dim-1]
//   for i = dim-1 down to 1:              // Fisher-Yates
//     n = i + 1; draw x = next() until x >= (2^64 mod n); j = x mod n
//     swap(perm[i], perm[j])
//   bit b maps to perm[b].
// Immutable after construction; thread-safe.
class BitScrambler {
 public:
  BitScrambler(std::uint64_t key, std::uint32_t dim);

  std::uint32_t dim() const { return static_cast<std::uint32_t>(perm_.size()); }
  // Where bit `b` (< dim) goes.
  std::uint32_t Map(std::uint32_t b) const { return perm_[b]; }
  // The scrambled set: each bit mapped, then sorted ascending. Bits >= dim
  // are dropped (PrepareMolecule never produces them when bits == dim).
  std::vector<std::uint32_t> Apply(std::span<const std::uint32_t> bits) const;

 private:
  std::vector<std::uint32_t> perm_;
};

// One-shot form of BitScrambler(key, dim).Apply(bits); build a BitScrambler
// once when scrambling many rows.
std::vector<std::uint32_t> ScrambleBits(std::span<const std::uint32_t> bits, std::uint64_t key,
                                        std::uint32_t dim);

// A short printable string (< 100 bytes, fits RegisterSite.schema_hash) that
// names everything that changes the features a site computes: this
// preparation's version, the RDKit version, the standardisation steps, the
// fingerprint options and the scrambling key. Sites whose strings differ have
// incompatible features. `key_fingerprint` must be a one-way digest of the
// scrambling key (never the key itself, and not the key through an invertible
// mixer such as SplitMix64), or empty when bits are not scrambled; it is folded
// to 16 hex digits here.
// Example: "fedrx-prep1;rdkit2022.09.3;lf+unc;ecfp-r2-b2048-c0;key-none".
std::string PreparationHash(const FingerprintOptions& options, std::string_view key_fingerprint);

}  // namespace fedrx::ml
