#include "services/privacy/secagg_wire.h"

#include <algorithm>
#include <string>

namespace fedrx::privacy {
namespace {

std::vector<std::uint8_t> Bytes(const Key32& key) { return {key.begin(), key.end()}; }

core::Result<Key32> Key(const std::vector<std::uint8_t>& bytes, const char* where) {
  if (bytes.size() != Key32{}.size()) {
    return core::InvalidArgument("a key is 32 bytes, this one " + std::to_string(bytes.size()),
                                 where);
  }
  Key32 out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

std::vector<codec::SecAggEncryptedShare> SealedToWire(const std::vector<EncryptedShare>& v) {
  std::vector<codec::SecAggEncryptedShare> out;
  out.reserve(v.size());
  for (const auto& s : v) out.push_back({s.from, s.to, s.ciphertext});
  return out;
}

core::Result<std::vector<EncryptedShare>> SealedFromWire(
    const std::vector<codec::SecAggEncryptedShare>& v, const char* where) {
  std::vector<EncryptedShare> out;
  out.reserve(v.size());
  for (const auto& s : v) {
    if (s.ciphertext.size() != kSealedShareBytes) {
      return core::InvalidArgument("a sealed share is " + std::to_string(kSealedShareBytes) +
                                       " bytes, this one " + std::to_string(s.ciphertext.size()),
                                   where);
    }
    out.push_back({s.from, s.to, s.ciphertext});
  }
  return out;
}

std::vector<codec::SecAggRevealedShare> RevealedToWire(const std::vector<RevealedShare>& v) {
  std::vector<codec::SecAggRevealedShare> out;
  out.reserve(v.size());
  for (const auto& s : v) {
    out.push_back({s.owner, s.share.x, {s.share.y.begin(), s.share.y.end()}});
  }
  return out;
}

core::Result<std::vector<RevealedShare>> RevealedFromWire(
    const std::vector<codec::SecAggRevealedShare>& v, const char* where) {
  std::vector<RevealedShare> out;
  out.reserve(v.size());
  for (const auto& s : v) {
    if (s.y.size() != kShareElements) {
      return core::InvalidArgument("a share has " + std::to_string(kShareElements) +
                                       " elements, this one " + std::to_string(s.y.size()),
                                   where);
    }
    RevealedShare r;
    r.owner = s.owner;
    r.share.x = s.holder;
    std::copy(s.y.begin(), s.y.end(), r.share.y.begin());
    out.push_back(r);
  }
  return out;
}

}  // namespace

codec::SecAggParams ParamsToWire(const SecAggParams& p) {
  return codec::SecAggParams{p.round,
                             p.dimension,
                             static_cast<std::uint32_t>(p.threshold),
                             static_cast<std::uint32_t>(p.max_sites),
                             p.encoding.clip,
                             p.encoding.scale_bits,
                             static_cast<std::uint32_t>(p.neighbours)};
}

core::Result<SecAggParams> ParamsFromWire(const codec::SecAggParams& w) {
  SecAggParams p;
  p.round = w.round_tag;
  p.dimension = w.dimension;
  p.threshold = w.threshold;
  p.max_sites = w.max_sites;
  p.encoding.clip = w.clip;
  p.encoding.scale_bits = w.scale_bits;
  p.neighbours = w.neighbours;
  FEDRX_RETURN_IF_ERROR(p.Validate());
  return p;
}

codec::SecAggKeyAdvertisement ToWire(const KeyAdvertisement& k) {
  return {k.id, Bytes(k.encryption_key), Bytes(k.mask_key)};
}

core::Result<KeyAdvertisement> FromWire(const codec::SecAggKeyAdvertisement& k) {
  KeyAdvertisement out;
  out.id = k.id;
  FEDRX_ASSIGN_OR_RETURN(out.encryption_key,
                         Key(k.encryption_key, "SecAggKeyAdvertisement.encryption_key"));
  FEDRX_ASSIGN_OR_RETURN(out.mask_key, Key(k.mask_key, "SecAggKeyAdvertisement.mask_key"));
  return out;
}

codec::SecAggRoster ToWire(const KeyRoster& r) {
  codec::SecAggRoster out;
  out.sites.reserve(r.sites.size());
  for (const auto& k : r.sites) out.sites.push_back(ToWire(k));
  out.graph_seed = Bytes(r.graph_seed);
  return out;
}

core::Result<KeyRoster> FromWire(const codec::SecAggRoster& r) {
  KeyRoster out;
  out.sites.reserve(r.sites.size());
  for (const auto& k : r.sites) {
    FEDRX_ASSIGN_OR_RETURN(KeyAdvertisement ad, FromWire(k));
    out.sites.push_back(ad);
  }
  FEDRX_ASSIGN_OR_RETURN(out.graph_seed, Key(r.graph_seed, "SecAggRoster.graph_seed"));
  return out;
}

codec::SecAggBundle ToWire(const ShareBundle& b) {
  codec::SecAggBundle out;
  out.to = b.to;
  out.shares = SealedToWire(b.shares);
  return out;
}

core::Result<ShareBundle> FromWire(const codec::SecAggBundle& b) {
  ShareBundle out;
  out.to = b.to;
  FEDRX_ASSIGN_OR_RETURN(out.shares, SealedFromWire(b.shares, "SecAggBundle.shares"));
  return out;
}

codec::SecAggUnmaskRequest ToWire(const UnmaskRequest& r) {
  codec::SecAggUnmaskRequest out;
  out.survivors = r.survivors;
  return out;
}

UnmaskRequest FromWire(const codec::SecAggUnmaskRequest& r) { return UnmaskRequest{r.survivors}; }

codec::SecAggShares ToWire(const ShareKeysMessage& m) {
  codec::SecAggShares out;
  out.id = m.id;
  out.self_seed_commitment = Bytes(m.self_seed_commitment);
  out.shares = SealedToWire(m.shares);
  return out;
}

core::Result<ShareKeysMessage> FromWire(const codec::SecAggShares& m) {
  ShareKeysMessage out;
  out.id = m.id;
  FEDRX_ASSIGN_OR_RETURN(out.self_seed_commitment,
                         Key(m.self_seed_commitment, "SecAggShares.self_seed_commitment"));
  FEDRX_ASSIGN_OR_RETURN(out.shares, SealedFromWire(m.shares, "SecAggShares.shares"));
  return out;
}

codec::SecAggUnmaskResponse ToWire(const UnmaskResponse& r) {
  codec::SecAggUnmaskResponse out;
  out.id = r.id;
  out.self_seed_shares = RevealedToWire(r.self_seed_shares);
  out.mask_key_shares = RevealedToWire(r.mask_key_shares);
  out.failed_shares = r.failed_shares;
  return out;
}

core::Result<UnmaskResponse> FromWire(const codec::SecAggUnmaskResponse& r) {
  UnmaskResponse out;
  out.id = r.id;
  FEDRX_ASSIGN_OR_RETURN(
      out.self_seed_shares,
      RevealedFromWire(r.self_seed_shares, "SecAggUnmaskResponse.self_seed_shares"));
  FEDRX_ASSIGN_OR_RETURN(
      out.mask_key_shares,
      RevealedFromWire(r.mask_key_shares, "SecAggUnmaskResponse.mask_key_shares"));
  out.failed_shares = r.failed_shares;
  return out;
}

}  // namespace fedrx::privacy
