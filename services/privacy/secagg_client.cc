#include "services/privacy/secagg_client.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>

namespace fedrx::privacy {
namespace {

std::string Site(ParticipantId id) { return "site " + std::to_string(id); }

}  // namespace

core::Result<SecAggClient> SecAggClient::Create(const SecAggParams& params, ParticipantId id,
                                                unsigned threads) {
  FEDRX_RETURN_IF_ERROR(InitSecAggCrypto());
  FEDRX_RETURN_IF_ERROR(params.Validate());
  if (id == 0 || id > (ParticipantId{1} << 31) - 1) {
    return core::InvalidArgument("participant id must be in [1, 2^31)", "SecAggClient.id");
  }
  return SecAggClient(params, id, std::max(threads, 1u));
}

SecAggClient::~SecAggClient() { Wipe(); }

void SecAggClient::Wipe() {
  sodium_memzero(encryption_.secret_key.data(), encryption_.secret_key.size());
  sodium_memzero(mask_.secret_key.data(), mask_.secret_key.size());
  sodium_memzero(self_seed_.data(), self_seed_.size());
  sodium_memzero(own_mask_key_share_.y.data(), sizeof own_mask_key_share_.y);
  sodium_memzero(own_self_seed_share_.y.data(), sizeof own_self_seed_share_.y);
}

core::Status SecAggClient::Fail(core::Status status) {
  stage_ = Stage::kFailed;
  Wipe();
  return status;
}

core::Status SecAggClient::ExpectStage(Stage stage, const char* name) const {
  if (stage_ == stage) return core::Status::Ok();
  return core::FailedPrecondition(std::string(name) + " called out of order or after a failure",
                                  Site(id_));
}

core::Result<KeyAdvertisement> SecAggClient::AdvertiseKeys() {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kAdvertise, "AdvertiseKeys"));
  encryption_ = GenerateKeyPair();
  mask_ = GenerateKeyPair();
  stage_ = Stage::kShareKeys;
  return KeyAdvertisement{id_, encryption_.public_key, mask_.public_key};
}

core::Result<ShareKeysMessage> SecAggClient::ShareKeys(const KeyRoster& roster) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kShareKeys, "ShareKeys"));
  const std::string where = Site(id_) + " ShareKeys";
  const auto& sites = roster.sites;
  if (sites.size() > params_.max_sites) {
    return Fail(core::InvalidArgument("roster has " + std::to_string(sites.size()) +
                                          " sites, more than the " +
                                          std::to_string(params_.max_sites) + " invited",
                                      where));
  }
  std::set<Key32> keys;
  bool found_self = false;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const auto& s = sites[i];
    if (s.id == 0 || (i > 0 && sites[i - 1].id >= s.id)) {
      return Fail(core::InvalidArgument("roster ids not sorted, distinct and nonzero", where));
    }
    // Bonawitz et al. (Fig. 4, round 1): all public keys distinct, so no two
    // sites share pairwise keys and nobody is handed back its own key.
    if (!keys.insert(s.encryption_key).second || !keys.insert(s.mask_key).second) {
      return Fail(core::InvalidArgument("roster repeats a public key", where));
    }
    if (s.id == id_) {
      if (s.encryption_key != encryption_.public_key || s.mask_key != mask_.public_key) {
        return Fail(core::InvalidArgument("roster holds other keys for this site", where));
      }
      found_self = true;
    }
  }
  if (!found_self) return Fail(core::InvalidArgument("roster does not include this site", where));
  if (sites.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("AdvertiseKeys: " + std::to_string(sites.size()) +
                                             " sites, threshold " +
                                             std::to_string(params_.threshold),
                                         where));
  }
  std::vector<ParticipantId> u1;
  for (const auto& s : sites) {
    u1.push_back(s.id);
    roster_.emplace(s.id, s);
  }
  neighbours_ = NeighbourGraph(std::move(u1), params_.neighbours, roster.graph_seed).Of(id_);
  std::vector<ParticipantId> holders = neighbours_;
  holders.push_back(id_);
  if (holders.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("neighbourhood of " + std::to_string(holders.size()) +
                                             " below threshold " +
                                             std::to_string(params_.threshold),
                                         where));
  }

  self_seed_ = RandomSeed();
  auto seed_shares = ShamirSplit(self_seed_, holders, params_.threshold);
  auto key_shares = ShamirSplit(mask_.secret_key, holders, params_.threshold);
  if (!seed_shares.ok()) return Fail(seed_shares.status());
  if (!key_shares.ok()) return Fail(key_shares.status());

  ShareKeysMessage out;
  out.id = id_;
  out.self_seed_commitment = CommitSeed(self_seed_, params_.round, id_);
  for (std::size_t i = 0; i < holders.size(); ++i) {
    const ParticipantId v = holders[i];
    if (v == id_) {
      own_mask_key_share_ = (*key_shares)[i];
      own_self_seed_share_ = (*seed_shares)[i];
      continue;
    }
    auto key = AgreeKey(encryption_.secret_key, encryption_.public_key,
                        roster_.at(v).encryption_key, KeyPurpose::kShareEncryption, params_.round);
    if (!key.ok()) return Fail(key.status().WithContext(Site(v) + "'s encryption key"));
    SharePlaintext plain{id_, v, (*key_shares)[i], (*seed_shares)[i]};
    out.shares.push_back({id_, v, SealShare(*key, params_.round, plain)});
    sodium_memzero(key->data(), key->size());
    sodium_memzero(plain.mask_key_share.y.data(), sizeof plain.mask_key_share.y);
    sodium_memzero(plain.self_seed_share.y.data(), sizeof plain.self_seed_share.y);
  }
  for (auto& s : *seed_shares) sodium_memzero(s.y.data(), sizeof s.y);
  for (auto& s : *key_shares) sodium_memzero(s.y.data(), sizeof s.y);
  stage_ = Stage::kMaskInput;
  return out;
}

core::Result<MaskedInputMessage> SecAggClient::MaskInput(const ShareBundle& bundle,
                                                         std::span<const float> update,
                                                         double weight) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kMaskInput, "MaskInput"));
  const std::string where = Site(id_) + " MaskInput";
  // The caller's own mistakes leave the stage open for a corrected call.
  if (update.size() != params_.dimension) {
    return core::InvalidArgument("update has " + std::to_string(update.size()) +
                                     " parameters, round expects " +
                                     std::to_string(params_.dimension),
                                 where);
  }
  if (!(weight >= 0.0 && weight <= 1.0)) {
    return core::InvalidArgument("weight must be in [0, 1]", where);
  }
  if (bundle.to != id_)
    return Fail(core::InvalidArgument("bundle addressed to another site", where));
  std::map<ParticipantId, std::vector<std::uint8_t>> received;
  for (const auto& share : bundle.shares) {
    if (share.to != id_ ||
        !std::binary_search(neighbours_.begin(), neighbours_.end(), share.from)) {
      return Fail(core::InvalidArgument(
          "bundle holds a share from " + Site(share.from) + " that is not a neighbour", where));
    }
    if (!received.emplace(share.from, share.ciphertext).second) {
      return Fail(core::InvalidArgument("bundle repeats " + Site(share.from), where));
    }
  }
  if (received.size() + 1 < params_.threshold) {
    return Fail(core::FailedPrecondition("ShareKeys: " + std::to_string(received.size() + 1) +
                                             " sites remain, threshold " +
                                             std::to_string(params_.threshold),
                                         where));
  }
  received_ = std::move(received);

  MaskedInputMessage out;
  out.id = id_;
  out.masked.resize(params_.masked_length());
  const FixedPointEncoding& enc = params_.encoding;
  clipped_ = 0;
  for (std::size_t i = 0; i < params_.dimension; ++i) {
    const double v = weight * static_cast<double>(update[i]);
    clipped_ += !(std::abs(v) <= enc.clip);
    out.masked[i] = enc.Encode(v);
  }
  out.masked[params_.dimension] = enc.EncodeWeight(weight);
  std::vector<MaskTerm> terms;
  terms.reserve(received_.size() + 1);
  terms.push_back({self_seed_, false});
  for (const auto& [v, unused] : received_) {
    auto s_uv = AgreeKey(mask_.secret_key, mask_.public_key, roster_.at(v).mask_key,
                         KeyPurpose::kPairwiseMask, params_.round);
    if (!s_uv.ok()) {
      sodium_memzero(terms.data(), terms.size() * sizeof(MaskTerm));
      return Fail(s_uv.status().WithContext(Site(v) + "'s mask key"));
    }
    terms.push_back({*s_uv, PairwiseMaskSubtracts(id_, v)});
    sodium_memzero(s_uv->data(), s_uv->size());
  }
  AccumulateMasks(terms, out.masked, threads_);
  sodium_memzero(terms.data(), terms.size() * sizeof(MaskTerm));
  stage_ = Stage::kUnmask;
  return out;
}

core::Result<UnmaskResponse> SecAggClient::Unmask(const UnmaskRequest& request) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kUnmask, "Unmask"));
  const std::string where = Site(id_) + " Unmask";
  const auto& u3 = request.survivors;
  for (std::size_t i = 0; i < u3.size(); ++i) {
    if (i > 0 && u3[i - 1] >= u3[i]) {
      return Fail(core::InvalidArgument("survivors not sorted and distinct", where));
    }
    // A neighbour in U3 must have been in this site's U2 view: otherwise the
    // server claims a survivor whose pairwise mask this site never added.
    const bool neighbour = std::binary_search(neighbours_.begin(), neighbours_.end(), u3[i]);
    if (neighbour && !received_.contains(u3[i])) {
      return Fail(core::InvalidArgument(Site(u3[i]) + " is a survivor but sent no shares", where));
    }
  }
  if (u3.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("MaskedInput: " + std::to_string(u3.size()) +
                                             " survivors, threshold " +
                                             std::to_string(params_.threshold),
                                         where));
  }
  if (!std::binary_search(u3.begin(), u3.end(), id_)) {
    return Fail(core::FailedPrecondition("this site is not among the survivors", where));
  }

  UnmaskResponse out;
  out.id = id_;
  out.self_seed_shares.push_back({id_, own_self_seed_share_});
  for (const auto& [v, ciphertext] : received_) {
    auto key = AgreeKey(encryption_.secret_key, encryption_.public_key,
                        roster_.at(v).encryption_key, KeyPurpose::kShareEncryption, params_.round);
    core::Result<SharePlaintext> plain = key.ok()
                                             ? OpenShare(*key, params_.round, v, id_, ciphertext)
                                             : core::Result<SharePlaintext>(key.status());
    if (key.ok()) sodium_memzero(key->data(), key->size());
    if (!plain.ok()) {
      out.failed_shares.push_back(v);
      continue;
    }
    // The partition U3 / U2 \ U3 guarantees that no site has both its b and
    // its s_sk revealed by this site (Bonawitz et al., Sec. 4).
    if (std::binary_search(u3.begin(), u3.end(), v)) {
      out.self_seed_shares.push_back({v, plain->self_seed_share});
    } else {
      out.mask_key_shares.push_back({v, plain->mask_key_share});
    }
    sodium_memzero(plain->mask_key_share.y.data(), sizeof plain->mask_key_share.y);
    sodium_memzero(plain->self_seed_share.y.data(), sizeof plain->self_seed_share.y);
  }
  stage_ = Stage::kDone;
  Wipe();
  return out;
}

}  // namespace fedrx::privacy
