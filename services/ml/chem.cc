#include "services/ml/chem.h"

#include <DataStructs/ExplicitBitVect.h>
#include <GraphMol/ChemTransforms/ChemTransforms.h>
#include <GraphMol/Fingerprints/MorganFingerprints.h>
#include <GraphMol/GraphMol.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/MolStandardize/Charge.h>
#include <GraphMol/MolStandardize/Fragment.h>
#include <GraphMol/SanitException.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <RDGeneral/RDLog.h>
#include <RDGeneral/versions.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <numeric>
#include <ostream>
#include <streambuf>
#include <utility>

namespace fedrx::ml {
namespace {

// RDKit reports SMILES syntax errors only through its process-wide error log,
// which (once initialised) prints to stderr, structure included. We point the
// error and warning loggers at a stream whose buffer appends to a per-thread
// string: PrepareMolecule can then quote RDKit in its Status, concurrent
// preparations do not mix their messages, and nothing reaches stderr. (The
// std::ostream object itself is shared, as std::cerr is in stock RDKit: two
// threads failing at once both reset its field width to 0, a benign race.)
constexpr std::size_t kMaxCapturedBytes = 2048;

std::string& CapturedLog() {
  thread_local std::string captured;
  return captured;
}

class ThreadLocalCaptureBuf : public std::streambuf {
 protected:
  // No put area, so every character arrives here or in xsputn.
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      const char c = traits_type::to_char_type(ch);
      Append(&c, 1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    Append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  static void Append(const char* s, std::size_t n) {
    std::string& out = CapturedLog();
    const std::size_t room = kMaxCapturedBytes - std::min(out.size(), kMaxCapturedBytes);
    out.append(s, std::min(n, room));
  }
};

void RouteRdkitLogs() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Deliberately leaked: RDKit's global loggers flush their stream when they
    // are destroyed at exit, which may be after our statics are gone.
    auto* stream = new std::ostream(new ThreadLocalCaptureBuf);
    rdErrorLog = std::make_shared<boost::logging::rdLogger>(stream);
    rdWarningLog = std::make_shared<boost::logging::rdLogger>(stream);
    // MolStandardize narrates every step ("Running Uncharger") on the info
    // log; none of these carries anything a caller needs.
    for (RDLogger* quiet : {&rdInfoLog, &rdDebugLog, &rdAppLog, &rdStatusLog}) {
      *quiet = std::make_shared<boost::logging::rdLogger>(stream);
      (*quiet)->df_enabled = false;
    }
  });
}

// RDKit prefixes each log line with "[hh:mm:ss] "; keep the words only.
std::string TakeCapturedLog() {
  std::string raw;
  std::swap(raw, CapturedLog());
  std::string out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t end = raw.find('\n', pos);
    if (end == std::string::npos) end = raw.size();
    std::string_view line(raw.data() + pos, end - pos);
    pos = end + 1;
    if (line.size() >= 11 && line[0] == '[' && line[9] == ']') line.remove_prefix(11);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

std::string_view TrimAscii(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

core::Status CheckOptions(const FingerprintOptions& o) {
  if (o.radius < 0 || o.radius > kMaxFingerprintRadius) {
    return core::InvalidArgument("fingerprint radius " + std::to_string(o.radius) +
                                     " is outside [0, " + std::to_string(kMaxFingerprintRadius) +
                                     "]",
                                 "FingerprintOptions.radius");
  }
  if (o.bits == 0 || o.bits > kMaxFingerprintBits) {
    return core::InvalidArgument("fingerprint length " + std::to_string(o.bits) +
                                     " is outside [1, " + std::to_string(kMaxFingerprintBits) + "]",
                                 "FingerprintOptions.bits");
  }
  return core::Status::Ok();
}

core::Result<PreparedMolecule> PrepareWithRdkit(const std::string& smiles,
                                                const FingerprintOptions& options) {
  RDKit::SmilesParserParams params;
  // Sanitise separately so its exception (which names the offending atom) is ours.
  params.sanitize = false;
  params.removeHs = false;
  // A name or CXSMILES extension after a space is not part of the structure
  // here: reject such input instead of silently dropping text.
  params.parseName = false;
  params.allowCXSMILES = false;
  std::unique_ptr<RDKit::RWMol> mol(RDKit::SmilesToMol(smiles, params));
  if (!mol) {
    std::string said = TakeCapturedLog();
    return core::InvalidArgument("unparseable SMILES" +
                                 (said.empty() ? std::string() : ": " + said));
  }
  if (mol->getNumAtoms() == 0) return core::InvalidArgument("SMILES has no atoms");
  RDKit::MolOps::sanitizeMol(*mol);
  RDKit::MolOps::removeHs(*mol);

  // Most molecules are one neutral fragment, for which both standardisation
  // steps return an unchanged copy; skipping them saves ~30% on Tox21.
  std::unique_ptr<RDKit::ROMol> neutral(std::move(mol));
  std::vector<int> fragment_of_atom;
  if (RDKit::MolOps::getMolFrags(*neutral, fragment_of_atom) > 1) {
    RDKit::MolStandardize::LargestFragmentChooser chooser;
    neutral.reset(chooser.choose(*neutral));
  }
  bool charged = false;
  for (const RDKit::Atom* atom : neutral->atoms())
    charged = charged || atom->getFormalCharge() != 0;
  if (charged) {
    // The Uncharger compiles its SMARTS patterns on construction; one per thread.
    thread_local RDKit::MolStandardize::Uncharger uncharger;
    std::unique_ptr<RDKit::ROMol> uncharged(uncharger.uncharge(*neutral));
    // Neutralising some ions (cyclopentadienide, hypervalent metal hydrides)
    // yields a structure RDKit itself cannot read back; such a molecule keeps
    // its charges, so what a site writes and re-reads stays the same molecule.
    std::unique_ptr<RDKit::RWMol> reread;
    try {
      reread.reset(RDKit::SmilesToMol(RDKit::MolToSmiles(*uncharged)));
    } catch (const std::exception&) {
      reread.reset();
    }
    TakeCapturedLog();
    if (reread) neutral = std::move(uncharged);
  }

  PreparedMolecule out;
  out.canonical_smiles = RDKit::MolToSmiles(*neutral);

  std::unique_ptr<ExplicitBitVect> fp(RDKit::MorganFingerprints::getFingerprintAsBitVect(
      *neutral, static_cast<unsigned int>(options.radius), options.bits,
      /*invariants=*/nullptr, /*fromAtoms=*/nullptr, options.chirality));
  IntVect on;
  fp->getOnBits(on);
  out.bits.reserve(on.size());
  for (int b : on) out.bits.push_back(static_cast<std::uint32_t>(b));
  std::sort(out.bits.begin(), out.bits.end());  // getOnBits is ascending; make it a contract.

  std::unique_ptr<RDKit::ROMol> scaffold(RDKit::MurckoDecompose(*neutral));
  if (scaffold && scaffold->getNumAtoms() > 0) {
    scaffold->updatePropertyCache(/*strict=*/false);
    out.scaffold = RDKit::MolToSmiles(*scaffold, /*doIsomericSmiles=*/false);
  }
  return out;
}

std::uint64_t SplitMix64(std::uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t Fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

core::Result<PreparedMolecule> PrepareMolecule(std::string_view smiles,
                                               const FingerprintOptions& options) {
  FEDRX_RETURN_IF_ERROR(CheckOptions(options));
  smiles = TrimAscii(smiles);
  if (smiles.empty()) return core::InvalidArgument("empty SMILES");
  if (smiles.size() > kMaxSmilesLength) {
    return core::InvalidArgument("SMILES of " + std::to_string(smiles.size()) +
                                 " characters is longer than the limit of " +
                                 std::to_string(kMaxSmilesLength));
  }
  // RDKit's lexer silently stops at a NUL or line break ("C\nC" parses as
  // "C"); SMILES is printable ASCII without spaces, so refuse anything else.
  for (std::size_t i = 0; i < smiles.size(); ++i) {
    const auto c = static_cast<unsigned char>(smiles[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return core::InvalidArgument("SMILES has a space, control or non-ASCII byte at position " +
                                   std::to_string(i + 1));
    }
  }
  RouteRdkitLogs();
  CapturedLog().clear();
  // RDKit throws; nothing may cross this boundary.
  try {
    return PrepareWithRdkit(std::string(smiles), options);
  } catch (const RDKit::MolSanitizeException& e) {
    TakeCapturedLog();
    return core::InvalidArgument(std::string("RDKit could not sanitise the molecule: ") + e.what());
  } catch (const std::exception& e) {
    std::string said = TakeCapturedLog();
    return core::InvalidArgument(std::string("RDKit rejected the molecule: ") + e.what() +
                                 (said.empty() ? std::string() : "; " + said));
  } catch (...) {
    // Not swallowed: turned into an error the caller sees.
    TakeCapturedLog();
    return core::Internal("RDKit threw an exception of unknown type");
  }
}

BitScrambler::BitScrambler(std::uint64_t key, std::uint32_t dim) : perm_(dim) {
  std::iota(perm_.begin(), perm_.end(), 0u);
  std::uint64_t state = key;
  for (std::uint32_t i = dim == 0 ? 0 : dim - 1; i >= 1; --i) {
    const std::uint64_t n = std::uint64_t{i} + 1;
    // Reject the lowest 2^64 mod n values so every j is equally likely.
    const std::uint64_t reject_below = (0 - n) % n;
    std::uint64_t x;
    do {
      x = SplitMix64(state);
    } while (x < reject_below);
    std::swap(perm_[i], perm_[static_cast<std::size_t>(x % n)]);
  }
}

std::vector<std::uint32_t> BitScrambler::Apply(std::span<const std::uint32_t> bits) const {
  std::vector<std::uint32_t> out;
  out.reserve(bits.size());
  for (std::uint32_t b : bits) {
    if (b < perm_.size()) out.push_back(perm_[b]);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::uint32_t> ScrambleBits(std::span<const std::uint32_t> bits, std::uint64_t key,
                                        std::uint32_t dim) {
  return BitScrambler(key, dim).Apply(bits);
}

std::string PreparationHash(const FingerprintOptions& options, std::string_view key_fingerprint) {
  std::string rdkit;
  for (const char* p = RDKit::rdkitVersion; p && *p && rdkit.size() < 16; ++p) {
    const char c = *p;
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '.' || c == '-';
    rdkit += ok ? c : '_';
  }
  char key[24] = "none";
  if (!key_fingerprint.empty()) {
    std::snprintf(key, sizeof key, "%016llx",
                  static_cast<unsigned long long>(Fnv1a64(key_fingerprint)));
  }
  std::string out = "fedrx-prep1;rdkit" + rdkit + ";lf+unc;ecfp-r" +
                    std::to_string(options.radius) + "-b" + std::to_string(options.bits) + "-c" +
                    (options.chirality ? "1" : "0") + ";key-" + key;
  return out;
}

}  // namespace fedrx::ml
