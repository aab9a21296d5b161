#include "services/ml/chem.h"

#include <DataStructs/ExplicitBitVect.h>
#include <GraphMol/ChemTransforms/ChemTransforms.h>
#include <GraphMol/FileParsers/FileParsers.h>
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
#include <inchi_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <ostream>
#include <streambuf>
#include <utility>

#include "services/core/random.h"

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

// The standard InChIKey of `mol` through libinchi 1.03's structure API (the
// molfile-text API arrived only in 1.05). Stereo goes in as 0D parities from
// RDKit's perception, so no coordinates are needed.
core::Result<std::string> InChIKeyOf(const RDKit::ROMol& input) {
  RDKit::RWMol mol(input);
  // Kekulé bonds (InChI discourages its "alternating" type) and legacy stereo
  // perception on a copy: cleaning stereo here must not change the SMILES.
  RDKit::MolOps::Kekulize(mol, /*markAtomsBonds=*/true);
  RDKit::MolOps::assignStereochemistry(mol, /*cleanIt=*/true, /*force=*/true);
  const unsigned int n = mol.getNumAtoms();
  if (n == 0 || n >= 1024) {
    return core::InvalidArgument("InChI takes 1..1023 atoms, the molecule has " +
                                 std::to_string(n));
  }
  std::vector<inchi_Atom> atoms(n);
  std::vector<inchi_Stereo0D> stereo;
  for (const RDKit::Atom* atom : mol.atoms()) {
    inchi_Atom& a = atoms[atom->getIdx()];
    std::memset(&a, 0, sizeof a);
    const std::string& symbol = atom->getSymbol();
    if (symbol.size() >= ATOM_EL_LEN || atom->getAtomicNum() == 0) {
      return core::InvalidArgument("atom " + std::to_string(atom->getIdx() + 1) + " ('" + symbol +
                                   "') is a dummy or query atom, which has no InChI");
    }
    std::memcpy(a.elname, symbol.c_str(), symbol.size() + 1);
    a.num_iso_H[0] = static_cast<S_CHAR>(atom->getTotalNumHs(/*includeNeighbors=*/false));
    a.isotopic_mass = static_cast<AT_NUM>(atom->getIsotope());
    a.charge = static_cast<S_CHAR>(atom->getFormalCharge());
    const unsigned int radicals = atom->getNumRadicalElectrons();
    a.radical = radicals == 0   ? INCHI_RADICAL_NONE
                : radicals == 1 ? INCHI_RADICAL_DOUBLET
                                : INCHI_RADICAL_TRIPLET;
    // Each bond listed once, on its lower-numbered atom.
    for (const RDKit::Bond* bond : mol.atomBonds(atom)) {
      const unsigned int other = bond->getOtherAtomIdx(atom->getIdx());
      if (other < atom->getIdx()) continue;
      if (a.num_bonds >= MAXVAL)
        return core::InvalidArgument("an atom has too many bonds for InChI");
      S_CHAR type;
      switch (bond->getBondType()) {
        case RDKit::Bond::SINGLE:
          type = INCHI_BOND_TYPE_SINGLE;
          break;
        case RDKit::Bond::DOUBLE:
          type = INCHI_BOND_TYPE_DOUBLE;
          break;
        case RDKit::Bond::TRIPLE:
          type = INCHI_BOND_TYPE_TRIPLE;
          break;
        case RDKit::Bond::AROMATIC:
          type = INCHI_BOND_TYPE_ALTERN;
          break;
        default:
          return core::InvalidArgument("InChI cannot take a bond of this type");
      }
      a.neighbor[a.num_bonds] = static_cast<AT_NUM>(other);
      a.bond_type[a.num_bonds] = type;
      a.bond_stereo[a.num_bonds] = INCHI_BOND_STEREO_NONE;
      ++a.num_bonds;
    }
    // Tetrahedral centres: RDKit's tag orders the neighbours as the atom's
    // bonds are listed; CW means that seen from the first, the others turn
    // clockwise, which is InChI's 'e'. With three neighbours (an implicit H
    // or a lone pair) InChI puts the centre first.
    const auto tag = atom->getChiralTag();
    if (tag == RDKit::Atom::CHI_TETRAHEDRAL_CW || tag == RDKit::Atom::CHI_TETRAHEDRAL_CCW) {
      std::vector<AT_NUM> around;
      for (const RDKit::Bond* bond : mol.atomBonds(atom)) {
        around.push_back(static_cast<AT_NUM>(bond->getOtherAtomIdx(atom->getIdx())));
      }
      if (around.size() == 3 || around.size() == 4) {
        inchi_Stereo0D st;
        std::memset(&st, 0, sizeof st);
        st.central_atom = static_cast<AT_NUM>(atom->getIdx());
        st.type = INCHI_StereoType_Tetrahedral;
        bool cw = tag == RDKit::Atom::CHI_TETRAHEDRAL_CW;
        if (around.size() == 3) {
          // RDKit counts the implicit H as the first neighbour, InChI looks
          // from the centre, which is on the other side of the other three.
          st.neighbor[0] = st.central_atom;
          for (int k = 0; k < 3; ++k) st.neighbor[k + 1] = around[k];
          cw = !cw;
        } else {
          for (int k = 0; k < 4; ++k) st.neighbor[k] = around[k];
        }
        st.parity = cw ? INCHI_PARITY_EVEN : INCHI_PARITY_ODD;
        stereo.push_back(st);
      }
    }
  }
  for (const RDKit::Bond* bond : mol.bonds()) {
    if (bond->getBondType() != RDKit::Bond::DOUBLE) continue;
    const auto st = bond->getStereo();
    const bool cis = st == RDKit::Bond::STEREOZ || st == RDKit::Bond::STEREOCIS;
    const bool trans = st == RDKit::Bond::STEREOE || st == RDKit::Bond::STEREOTRANS;
    if ((!cis && !trans) || bond->getStereoAtoms().size() != 2) continue;
    inchi_Stereo0D s0;
    std::memset(&s0, 0, sizeof s0);
    s0.neighbor[0] = static_cast<AT_NUM>(bond->getStereoAtoms()[0]);
    s0.neighbor[1] = static_cast<AT_NUM>(bond->getBeginAtomIdx());
    s0.neighbor[2] = static_cast<AT_NUM>(bond->getEndAtomIdx());
    s0.neighbor[3] = static_cast<AT_NUM>(bond->getStereoAtoms()[1]);
    s0.central_atom = NO_ATOM;
    s0.type = INCHI_StereoType_DoubleBond;
    s0.parity = cis ? INCHI_PARITY_ODD : INCHI_PARITY_EVEN;
    stereo.push_back(s0);
  }

  inchi_Input in;
  std::memset(&in, 0, sizeof in);
  in.atom = atoms.data();
  in.num_atoms = static_cast<AT_NUM>(n);
  in.stereo0D = stereo.empty() ? nullptr : stereo.data();
  in.num_stereo0D = static_cast<AT_NUM>(stereo.size());
  char no_options[] = "";
  in.szOptions = no_options;
  inchi_Output out;
  std::memset(&out, 0, sizeof out);
  // libinchi 1.03 keeps global state while it runs: one call at a time.
  static std::mutex inchi_mutex;
  std::lock_guard<std::mutex> lock(inchi_mutex);
  const int ret = GetStdINCHI(&in, &out);
  std::string inchi = out.szInChI ? out.szInChI : "";
  std::string message = out.szMessage ? out.szMessage : "";
  FreeStdINCHI(&out);
  if ((ret != inchi_Ret_OKAY && ret != inchi_Ret_WARNING) || inchi.empty()) {
    return core::InvalidArgument("InChI refused the molecule (code " + std::to_string(ret) + ")" +
                                 (message.empty() ? std::string() : ": " + message));
  }
  char key[32] = {0};
  char xtra1[72] = {0};
  char xtra2[72] = {0};
  const int kret = GetINCHIKeyFromINCHI(inchi.c_str(), 0, 0, key, xtra1, xtra2);
  if (kret != 0) {
    return core::InvalidArgument("InChIKey computation failed (code " + std::to_string(kret) + ")");
  }
  return std::string(key);
}

std::unique_ptr<RDKit::RWMol> ParseSmiles(const std::string& smiles, std::string* error) {
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
    *error = "unparseable SMILES" + (said.empty() ? std::string() : ": " + said);
    return nullptr;
  }
  if (mol->getNumAtoms() == 0) {
    *error = "SMILES has no atoms";
    return nullptr;
  }
  RDKit::MolOps::sanitizeMol(*mol);
  // removeHs sanitises the whole molecule again even when it has no hydrogen
  // atom to remove (its "anything removed" test checks the size of a bitset,
  // not its bits), which costs as much as the sanitisation above; hardly any
  // input SMILES has an explicit [H] atom. Without one, removeHs changes
  // nothing but the repeated sanitisation, which is idempotent.
  bool has_hydrogen_atom = false;
  for (const RDKit::Atom* atom : mol->atoms()) {
    has_hydrogen_atom = has_hydrogen_atom || atom->getAtomicNum() == 1;
  }
  if (has_hydrogen_atom) RDKit::MolOps::removeHs(*mol);
  return mol;
}

std::unique_ptr<RDKit::RWMol> ParseMolBlock(const std::string& block, std::string* error) {
  // Sanitised by the parser, which also perceives stereo from the block's
  // coordinates and wedges.
  std::unique_ptr<RDKit::RWMol> mol(
      RDKit::MolBlockToMol(block, /*sanitize=*/true, /*removeHs=*/true, /*strictParsing=*/true));
  if (!mol) {
    std::string said = TakeCapturedLog();
    *error = "unparseable molfile block" + (said.empty() ? std::string() : ": " + said);
    return nullptr;
  }
  if (mol->getNumAtoms() == 0) {
    *error = "molfile block has no atoms";
    return nullptr;
  }
  return mol;
}

core::Result<PreparedMolecule> PrepareWithRdkit(std::unique_ptr<RDKit::RWMol> mol,
                                                const FingerprintOptions& options,
                                                bool with_inchikey) {
  // Most molecules are one neutral fragment, for which both standardisation
  // steps return an unchanged copy; skipping them saves ~30% on Tox21.
  std::unique_ptr<RDKit::ROMol> neutral(std::move(mol));
  std::vector<int> fragment_of_atom;
  if (RDKit::MolOps::getMolFrags(*neutral, fragment_of_atom) > 1) {
    RDKit::MolStandardize::LargestFragmentChooser chooser;
    neutral.reset(chooser.choose(*neutral));
  }
  std::string canonical_smiles;  // set when the uncharging check already wrote it
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
    std::string uncharged_smiles;
    try {
      uncharged_smiles = RDKit::MolToSmiles(*uncharged);
      reread.reset(RDKit::SmilesToMol(uncharged_smiles));
    } catch (const std::exception&) {
      reread.reset();
    }
    TakeCapturedLog();
    if (reread) {
      neutral = std::move(uncharged);
      canonical_smiles = std::move(uncharged_smiles);  // of `neutral` now: not written twice
    }
  }

  PreparedMolecule out;
  out.canonical_smiles =
      canonical_smiles.empty() ? RDKit::MolToSmiles(*neutral) : std::move(canonical_smiles);

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
  if (with_inchikey) {
    FEDRX_ASSIGN_OR_RETURN(out.inchikey, InChIKeyOf(*neutral));
  }
  return out;
}

// Runs `body` with RDKit's logs captured, turning its exceptions into Status.
template <typename T, typename F>
core::Result<T> GuardRdkit(F&& body) {
  RouteRdkitLogs();
  CapturedLog().clear();
  // RDKit throws; nothing may cross this boundary.
  try {
    return body();
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

// SMILES is printable ASCII without spaces: RDKit's lexer silently stops at a
// NUL or line break ("C\nC" parses as "C"), so anything else is refused.
core::Status CheckSmilesText(std::string_view smiles) {
  if (smiles.empty()) return core::InvalidArgument("empty SMILES");
  if (smiles.size() > kMaxSmilesLength) {
    return core::InvalidArgument("SMILES of " + std::to_string(smiles.size()) +
                                 " characters is longer than the limit of " +
                                 std::to_string(kMaxSmilesLength));
  }
  for (std::size_t i = 0; i < smiles.size(); ++i) {
    const auto c = static_cast<unsigned char>(smiles[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return core::InvalidArgument("SMILES has a space, control or non-ASCII byte at position " +
                                   std::to_string(i + 1));
    }
  }
  return core::Status::Ok();
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
  return PrepareStructure(smiles, StructureFormat::kSmiles, options, /*with_inchikey=*/false);
}

core::Result<PreparedMolecule> PrepareStructure(std::string_view text, StructureFormat format,
                                                const FingerprintOptions& options,
                                                bool with_inchikey) {
  FEDRX_RETURN_IF_ERROR(CheckOptions(options));
  if (format == StructureFormat::kSmiles) {
    text = TrimAscii(text);
    FEDRX_RETURN_IF_ERROR(CheckSmilesText(text));
  } else {
    if (text.size() > kMaxMolBlockLength) {
      return core::InvalidArgument("molfile block of " + std::to_string(text.size()) +
                                   " bytes is longer than the limit of " +
                                   std::to_string(kMaxMolBlockLength));
    }
    if (text.find('\0') != std::string_view::npos) {
      return core::InvalidArgument("molfile block holds a NUL byte");
    }
  }
  return GuardRdkit<PreparedMolecule>([&]() -> core::Result<PreparedMolecule> {
    std::string error;
    std::unique_ptr<RDKit::RWMol> mol = format == StructureFormat::kSmiles
                                            ? ParseSmiles(std::string(text), &error)
                                            : ParseMolBlock(std::string(text), &error);
    if (!mol) return core::InvalidArgument(error);
    return PrepareWithRdkit(std::move(mol), options, with_inchikey);
  });
}

core::Result<std::string> InChIKeyOfSmiles(std::string_view smiles) {
  smiles = TrimAscii(smiles);
  FEDRX_RETURN_IF_ERROR(CheckSmilesText(smiles));
  return GuardRdkit<std::string>([&]() -> core::Result<std::string> {
    std::string error;
    std::unique_ptr<RDKit::RWMol> mol = ParseSmiles(std::string(smiles), &error);
    if (!mol) return core::InvalidArgument(error);
    return InChIKeyOf(*mol);
  });
}

std::string InChIVersion() { return "inchi1.03"; }

BitScrambler::BitScrambler(std::uint64_t key, std::uint32_t dim) : perm_(dim) {
  std::iota(perm_.begin(), perm_.end(), 0u);
  std::uint64_t state = key;
  for (std::uint32_t i = dim == 0 ? 0 : dim - 1; i >= 1; --i) {
    const std::uint64_t n = std::uint64_t{i} + 1;
    // Reject the lowest 2^64 mod n values so every j is equally likely.
    const std::uint64_t reject_below = (0 - n) % n;
    std::uint64_t x;
    do {
      x = core::SplitMix64(state);
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
