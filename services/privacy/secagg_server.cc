#include "services/privacy/secagg_server.h"

#include <sodium.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>

namespace fedrx::privacy {
namespace {

std::string Site(ParticipantId id) { return "site " + std::to_string(id); }

const char* KindName(SecAggDetection::Kind kind) {
  switch (kind) {
    case SecAggDetection::Kind::kShareFailedAuthentication:
      return "share failed authentication";
    case SecAggDetection::Kind::kInconsistentShares:
      return "inconsistent shares";
    case SecAggDetection::Kind::kWrongReconstruction:
      return "reconstruction does not match commitment";
  }
  return "unknown";
}

bool ValidShare(const Share& s) {
  return std::all_of(s.y.begin(), s.y.end(), [](std::uint64_t y) { return y < kShamirPrime; });
}

}  // namespace

std::string SecAggDetection::ToString() const {
  std::string out = std::string(KindName(kind)) + ": " + Site(site);
  if (reporter != 0) out += " (reported by " + Site(reporter) + ")";
  if (holder != 0) out += " (share held by " + Site(holder) + ")";
  return out;
}

std::vector<float> SecAggResult::Mean() const {
  if (!(total_weight > 0)) return {};
  std::vector<float> mean(weighted_sum.size());
  for (std::size_t i = 0; i < mean.size(); ++i) {
    mean[i] = static_cast<float>(weighted_sum[i] / total_weight);
  }
  return mean;
}

core::Result<SecAggServer> SecAggServer::Create(const SecAggParams& params, unsigned threads) {
  FEDRX_RETURN_IF_ERROR(InitSecAggCrypto());
  FEDRX_RETURN_IF_ERROR(params.Validate());
  return SecAggServer(params, std::max(threads, 1u));
}

core::Status SecAggServer::ExpectStage(Stage stage, const char* name) const {
  if (stage_ == stage) return core::Status::Ok();
  return core::FailedPrecondition(std::string(name) + " is not open in this stage of the round",
                                  "secagg round " + std::to_string(params_.round));
}

core::Status SecAggServer::Fail(core::Status status) {
  stage_ = Stage::kFailed;
  sum_.clear();
  sum_.shrink_to_fit();
  shares_to_.clear();
  return status;
}

void SecAggServer::Observe(std::span<const std::uint32_t> v) const {
  if (observer_) observer_(v);
}

bool SecAggServer::InU3(ParticipantId id) const { return survivors_.contains(id); }

// ---- stage 0 ----------------------------------------------------------------------------

core::Status SecAggServer::AcceptKeys(const KeyAdvertisement& message) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kAdvertiseKeys, "AdvertiseKeys"));
  const std::string where = Site(message.id) + " AdvertiseKeys";
  if (message.id == 0 || message.id > (ParticipantId{1} << 31) - 1) {
    return core::InvalidArgument("participant id must be in [1, 2^31)", where);
  }
  if (keys_.contains(message.id)) return core::InvalidArgument("site already advertised", where);
  if (keys_.size() >= params_.max_sites) {
    return core::InvalidArgument(
        "more sites than the " + std::to_string(params_.max_sites) + " invited", where);
  }
  if (message.encryption_key == message.mask_key) {
    return core::InvalidArgument("encryption and mask keys are equal", where);
  }
  for (const auto& [id, k] : keys_) {
    // Distinct keys (Bonawitz et al. Fig. 4): a repeated key would make two
    // sites' pairwise masks and share keys coincide.
    if (k.encryption_key == message.encryption_key || k.mask_key == message.mask_key ||
        k.encryption_key == message.mask_key || k.mask_key == message.encryption_key) {
      return core::InvalidArgument("public key already used by " + Site(id), where);
    }
  }
  keys_.emplace(message.id, message);
  return core::Status::Ok();
}

core::Result<KeyRoster> SecAggServer::CloseKeys() {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kAdvertiseKeys, "CloseKeys"));
  if (keys_.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("AdvertiseKeys: " + std::to_string(keys_.size()) + " of " +
                                             std::to_string(params_.max_sites) +
                                             " sites advertised keys, threshold " +
                                             std::to_string(params_.threshold),
                                         "secagg round " + std::to_string(params_.round)));
  }
  KeyRoster roster;
  roster.graph_seed = RandomSeed();
  std::vector<ParticipantId> u1;
  for (const auto& [id, k] : keys_) {
    roster.sites.push_back(k);
    u1.push_back(id);
  }
  graph_.emplace(std::move(u1), params_.neighbours, roster.graph_seed);
  stage_ = Stage::kShareKeys;
  return roster;
}

// ---- stage 1 ----------------------------------------------------------------------------

core::Status SecAggServer::AcceptShares(const ShareKeysMessage& message) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kShareKeys, "ShareKeys"));
  const std::string where = Site(message.id) + " ShareKeys";
  if (!keys_.contains(message.id)) return core::InvalidArgument("site not in U1", where);
  if (commitments_.contains(message.id)) return core::InvalidArgument("site already shared", where);
  const std::vector<ParticipantId> neighbours = graph_->Of(message.id);
  if (message.shares.size() != neighbours.size()) {
    return core::InvalidArgument(std::to_string(message.shares.size()) + " shares for " +
                                     std::to_string(neighbours.size()) + " neighbours",
                                 where);
  }
  std::set<ParticipantId> seen;
  for (const auto& share : message.shares) {
    if (share.from != message.id) return core::InvalidArgument("share from another site", where);
    if (!std::binary_search(neighbours.begin(), neighbours.end(), share.to) ||
        !seen.insert(share.to).second) {
      return core::InvalidArgument("share to " + Site(share.to) + " not a neighbour or repeated",
                                   where);
    }
    if (share.ciphertext.size() != kSealedShareBytes) {
      return core::InvalidArgument("sealed share to " + Site(share.to) + " has " +
                                       std::to_string(share.ciphertext.size()) + " bytes",
                                   where);
    }
  }
  for (const auto& share : message.shares) shares_to_[share.to].push_back(share);
  commitments_.emplace(message.id, message.self_seed_commitment);
  return core::Status::Ok();
}

core::Result<std::vector<ShareBundle>> SecAggServer::CloseShares() {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kShareKeys, "CloseShares"));
  if (commitments_.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("ShareKeys: " + std::to_string(commitments_.size()) +
                                             " of " + std::to_string(keys_.size()) +
                                             " sites sent shares, threshold " +
                                             std::to_string(params_.threshold),
                                         "secagg round " + std::to_string(params_.round)));
  }
  std::vector<ShareBundle> bundles;
  for (const auto& [to, unused] : commitments_) {
    ShareBundle bundle;
    bundle.to = to;
    // Only shares from U2: a site that dropped before sharing completely is
    // out of the round, and nobody masks with it.
    auto it = shares_to_.find(to);
    if (it != shares_to_.end()) {
      for (auto& share : it->second) {
        if (commitments_.contains(share.from)) bundle.shares.push_back(std::move(share));
      }
    }
    bundles.push_back(std::move(bundle));
  }
  shares_to_.clear();
  sum_.assign(params_.masked_length(), 0);
  stage_ = Stage::kMaskedInput;
  return bundles;
}

// ---- stage 2 ----------------------------------------------------------------------------

core::Status SecAggServer::AcceptMaskedInput(const MaskedInputMessage& message) {
  const std::string where = Site(message.id) + " MaskedInput";
  if (stage_ == Stage::kUnmasking && commitments_.contains(message.id) && !InU3(message.id)) {
    return core::FailedPrecondition(
        "masked input arrived after the stage closed; the site "
        "counts as dropped",
        where);
  }
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kMaskedInput, "MaskedInput"));
  if (!commitments_.contains(message.id)) return core::InvalidArgument("site not in U2", where);
  if (InU3(message.id)) return core::InvalidArgument("site already sent its input", where);
  if (message.masked.size() != params_.masked_length()) {
    return core::InvalidArgument("masked input has " + std::to_string(message.masked.size()) +
                                     " words, round expects " +
                                     std::to_string(params_.masked_length()),
                                 where);
  }
  Observe(message.masked);
  for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] += message.masked[i];  // mod 2^32
  survivors_.insert(message.id);
  Observe(sum_);
  return core::Status::Ok();
}

core::Result<UnmaskRequest> SecAggServer::CloseMaskedInput() {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kMaskedInput, "CloseMaskedInput"));
  if (survivors_.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("MaskedInput: " + std::to_string(survivors_.size()) +
                                             " of " + std::to_string(commitments_.size()) +
                                             " sites sent masked inputs, threshold " +
                                             std::to_string(params_.threshold),
                                         "secagg round " + std::to_string(params_.round)));
  }
  stage_ = Stage::kUnmasking;
  return UnmaskRequest{std::vector<ParticipantId>(survivors_.begin(), survivors_.end())};
}

// ---- stage 3 ----------------------------------------------------------------------------

core::Status SecAggServer::AcceptUnmask(const UnmaskResponse& message) {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kUnmasking, "Unmasking"));
  const ParticipantId u = message.id;
  const std::string where = Site(u) + " Unmasking";
  if (!InU3(u)) return core::InvalidArgument("site not among the survivors", where);
  if (responders_.contains(u)) return core::InvalidArgument("site already answered", where);
  // Validate everything before storing anything.
  std::set<ParticipantId> seed_owners, key_owners, complaints;
  for (const auto& r : message.self_seed_shares) {
    if (!InU3(r.owner) || (r.owner != u && !graph_->Adjacent(u, r.owner)) || r.share.x != u ||
        !ValidShare(r.share) || !seed_owners.insert(r.owner).second) {
      return core::InvalidArgument("bad self-mask share of " + Site(r.owner), where);
    }
  }
  for (const auto& r : message.mask_key_shares) {
    // Revealing a survivor's mask key would unmask its input: never accepted.
    if (!commitments_.contains(r.owner) || InU3(r.owner) || !graph_->Adjacent(u, r.owner) ||
        r.share.x != u || !ValidShare(r.share) || !key_owners.insert(r.owner).second) {
      return core::InvalidArgument("bad mask-key share of " + Site(r.owner), where);
    }
  }
  for (ParticipantId v : message.failed_shares) {
    if (!commitments_.contains(v) || !graph_->Adjacent(u, v) || seed_owners.contains(v) ||
        key_owners.contains(v) || !complaints.insert(v).second) {
      return core::InvalidArgument("bad complaint about " + Site(v), where);
    }
  }
  for (const auto& r : message.self_seed_shares) seed_shares_[r.owner].push_back(r.share);
  for (const auto& r : message.mask_key_shares) key_shares_[r.owner].push_back(r.share);
  for (ParticipantId v : complaints) {
    detections_.push_back({SecAggDetection::Kind::kShareFailedAuthentication, v, u, 0});
  }
  responders_.emplace(u, true);
  return core::Status::Ok();
}

core::Result<Key32> SecAggServer::Reconstruct(ParticipantId owner, const char* what,
                                              const std::vector<Share>& shares) {
  if (shares.size() < params_.threshold) {
    return core::FailedPrecondition("Unmasking: " + std::to_string(shares.size()) + " shares of " +
                                        Site(owner) + "'s " + what + ", threshold " +
                                        std::to_string(params_.threshold),
                                    "secagg round " + std::to_string(params_.round));
  }
  ShamirReport report;
  auto secret = ShamirReconstruct(shares, params_.threshold, &report);
  if (!secret.ok()) {
    detections_.push_back({SecAggDetection::Kind::kInconsistentShares, owner, 0, 0});
    return core::Status(core::StatusCode::kDataLoss,
                        Site(owner) + "'s " + what + ": " + secret.status().message(),
                        "secagg round " + std::to_string(params_.round));
  }
  for (ParticipantId h : report.bad_holders) {
    detections_.push_back({SecAggDetection::Kind::kInconsistentShares, owner, 0, h});
  }
  return secret;
}

core::Result<SecAggResult> SecAggServer::Finish() {
  FEDRX_RETURN_IF_ERROR(ExpectStage(Stage::kUnmasking, "Finish"));
  const std::string where = "secagg round " + std::to_string(params_.round);
  if (responders_.size() < params_.threshold) {
    return Fail(core::FailedPrecondition("Unmasking: " + std::to_string(responders_.size()) +
                                             " of " + std::to_string(survivors_.size()) +
                                             " survivors answered, threshold " +
                                             std::to_string(params_.threshold),
                                         where));
  }
  // Reconstruct every secret first: the sum is touched only once all of them
  // are known good.
  std::vector<std::pair<ParticipantId, Key32>> dropped_keys;  // v ∈ U2 \ U3
  std::vector<std::pair<ParticipantId, Key32>> seeds;         // u ∈ U3
  std::vector<std::string> fatal;
  for (const auto& [v, unused] : commitments_) {
    const bool survivor = InU3(v);
    const auto& pool = survivor ? seed_shares_ : key_shares_;
    auto it = pool.find(v);
    static const std::vector<Share> kNone;
    auto secret = Reconstruct(v, survivor ? "self-mask seed" : "mask key",
                              it == pool.end() ? kNone : it->second);
    if (!secret.ok()) {
      if (secret.status().code() == core::StatusCode::kFailedPrecondition) {
        return Fail(secret.status());
      }
      fatal.push_back(secret.status().message());
      continue;
    }
    const bool matches =
        survivor ? CommitSeed(*secret, params_.round, v) == commitments_.at(v)
                 : IsClampedScalar(*secret) && PublicKeyOf(*secret) == keys_.at(v).mask_key;
    if (!matches) {
      detections_.push_back({SecAggDetection::Kind::kWrongReconstruction, v, 0, 0});
      fatal.push_back(Site(v) + "'s " + (survivor ? "self-mask seed" : "mask key") +
                      " does not match its commitment");
      continue;
    }
    (survivor ? seeds : dropped_keys).emplace_back(v, *secret);
  }
  if (!fatal.empty()) {
    std::string message = "cannot unmask:";
    for (const auto& f : fatal) message += " " + f + ";";
    message.pop_back();
    for (auto& [v, k] : seeds) sodium_memzero(k.data(), k.size());
    for (auto& [v, k] : dropped_keys) sodium_memzero(k.data(), k.size());
    return Fail(core::Status(core::StatusCode::kDataLoss, std::move(message), where));
  }

  std::vector<MaskTerm> terms;
  for (auto& [u, b] : seeds) {
    terms.push_back({b, /*subtract=*/true});
    sodium_memzero(b.data(), b.size());
  }
  for (auto& [v, s_sk] : dropped_keys) {
    const Key32& s_pk = keys_.at(v).mask_key;
    for (ParticipantId u : survivors_) {
      if (!graph_->Adjacent(u, v)) continue;
      auto s_uv =
          AgreeKey(s_sk, s_pk, keys_.at(u).mask_key, KeyPurpose::kPairwiseMask, params_.round);
      if (!s_uv.ok()) {
        sodium_memzero(terms.data(), terms.size() * sizeof(MaskTerm));
        return Fail(s_uv.status().WithContext(Site(u) + "'s mask key"));
      }
      // u added PRG(s_uv) with its own sign; take exactly that back out.
      terms.push_back({*s_uv, !PairwiseMaskSubtracts(u, v)});
      sodium_memzero(s_uv->data(), s_uv->size());
    }
    sodium_memzero(s_sk.data(), s_sk.size());
  }
  AccumulateMasks(terms, sum_, threads_);
  sodium_memzero(terms.data(), terms.size() * sizeof(MaskTerm));
  Observe(sum_);

  SecAggResult result;
  result.weighted_sum.resize(params_.dimension);
  for (std::size_t i = 0; i < params_.dimension; ++i) {
    result.weighted_sum[i] = static_cast<float>(params_.encoding.Decode(sum_[i]));
  }
  result.total_weight = params_.encoding.Decode(sum_[params_.dimension]);
  result.survivors.assign(survivors_.begin(), survivors_.end());
  result.detections = detections_;
  sum_.clear();
  sum_.shrink_to_fit();
  seed_shares_.clear();
  key_shares_.clear();
  stage_ = Stage::kDone;
  return result;
}

}  // namespace fedrx::privacy
