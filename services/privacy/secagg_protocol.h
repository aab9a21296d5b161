// The secure-aggregation round as plain C++ messages, transport-agnostic:
// the round parameters both sides agree on, the messages of the four stages
// and the neighbour graph (complete for Bonawitz et al. CCS 2017, or the
// sparse SecAgg+ graph of Bell et al., "Secure Single-Server Aggregation with
// (Poly)Logarithmic Overhead", CCS 2020). Value types; thread-compatible.
//
// The round (server S, sites u; U1 ⊇ U2 ⊇ U3 are the sites still present
// after each stage; N(u) is u's neighbour set, everyone else for Bonawitz):
//   0 AdvertiseKeys  u -> S  KeyAdvertisement: two fresh X25519 public keys,
//                            c_pk (share encryption) and s_pk (pairwise masks)
//                    S -> u  KeyRoster: every advertisement received (U1)
//   1 ShareKeys      u -> S  ShareKeysMessage: t-of-|N(u)+1| Shamir shares of
//                            s_sk_u and of a fresh self-mask seed b_u, sealed
//                            for each neighbour v with KA(c_sk_u, c_pk_v); a
//                            commitment to b_u
//                    S -> v  ShareBundle: the sealed shares addressed to v
//                            from the sites that sent ShareKeys (U2)
//   2 MaskedInput    u -> S  MaskedInputMessage: y_u = x_u + PRG(b_u)
//                            + Σ_{v ∈ U2∩N(u)} ±PRG(s_uv)  (mod 2^32), with
//                            + for u < v and - for u > v, so pairs cancel
//                    S -> u  UnmaskRequest: the sites whose y arrived (U3)
//   3 Unmasking      u -> S  UnmaskResponse: for each neighbour v (and u
//                            itself) its share of b_v if v ∈ U3, of s_sk_v if
//                            v ∈ U2 \ U3 — never both for one v
//                    S       reconstructs, removes the masks from the running
//                            sum, dequantises.
// Threat model: honest-but-curious server and sites (Bonawitz's semi-honest
// setting, without the signatures and consistency round of the active
// variant); site identities are authenticated by the transport (CurveZMQ).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/privacy/secagg_primitives.h"

namespace fedrx::privacy {

// What the coordinator fixes for a round and every site receives with the
// round's invitation.
struct SecAggParams {
  // Binds every derived key, commitment and sealed share to this round.
  std::uint64_t round = 0;
  // Floats per update (the model's parameter count). The masked vector has
  // one more coordinate: the site's weight.
  std::size_t dimension = 0;
  // t: the Shamir threshold and the minimum number of sites that must remain
  // at every stage. Privacy holds against any t-1 colluding sites (with the
  // server) and the sum survives up to (sites - t) dropouts. Choose
  // t > sites / 2: Bonawitz et al. need a majority against a server that
  // deviates (tells different sites different survivor sets to obtain both
  // the b and the s_sk of one site); this honest-but-curious variant does not
  // defend against that server, but a majority keeps the margin.
  std::size_t threshold = 0;
  // n: the sites invited. Bounds the encoding (no wrap-around) and U1.
  std::size_t max_sites = 0;
  FixedPointEncoding encoding;
  // 0: complete graph (Bonawitz). k > 0 (even): SecAgg+ — each site masks
  // with and shares to only its k ring neighbours in a random Harary graph
  // H(k, |U1|), so a site's cost grows with k instead of n. Then `threshold`
  // applies to each neighbourhood (k + 1 holders including the site), and
  // must be <= k + 1; Bell et al. choose k = O(log n). k >= |U1| - 1 means the
  // complete graph.
  std::size_t neighbours = 0;

  // kInvalidArgument naming the field that is wrong.
  core::Status Validate() const;
  // Length of a masked vector: dimension + 1 (the weight).
  std::size_t masked_length() const { return dimension + 1; }
};

// ---- stage 0: AdvertiseKeys -------------------------------------------------------------

struct KeyAdvertisement {
  ParticipantId id = 0;
  Key32 encryption_key{};  // c_pk
  Key32 mask_key{};        // s_pk
};

struct KeyRoster {
  // U1, sorted by id.
  std::vector<KeyAdvertisement> sites;
  // Public randomness for the SecAgg+ graph, drawn by the server after the
  // keys are in (unused for the complete graph).
  Key32 graph_seed{};
};

// ---- stage 1: ShareKeys -----------------------------------------------------------------

struct EncryptedShare {
  ParticipantId from = 0;
  ParticipantId to = 0;
  std::vector<std::uint8_t> ciphertext;  // kSealedShareBytes, see SealShare
};

struct ShareKeysMessage {
  ParticipantId id = 0;
  // CommitSeed(b_u): lets the server check the b_u it reconstructs.
  Key32 self_seed_commitment{};
  // One per neighbour in U1 (not to itself: it keeps its own share).
  std::vector<EncryptedShare> shares;
};

// What the server relays to one site of U2: the shares addressed to it from
// the other members of U2. Its senders are the site's view of U2 ∩ N(to).
struct ShareBundle {
  ParticipantId to = 0;
  std::vector<EncryptedShare> shares;
};

// ---- stage 2: MaskedInput ---------------------------------------------------------------

struct MaskedInputMessage {
  ParticipantId id = 0;
  // masked_length() words: y_u, fixed-point, modulo 2^32.
  std::vector<std::uint32_t> masked;
};

// U3, sorted: the sites whose masked input the server summed.
struct UnmaskRequest {
  std::vector<ParticipantId> survivors;
};

// ---- stage 3: Unmasking -----------------------------------------------------------------

struct RevealedShare {
  ParticipantId owner = 0;  // whose secret this is a share of
  Share share;              // share.x is the holder
};

struct UnmaskResponse {
  ParticipantId id = 0;
  // Shares of b_v for v ∈ U3 (including the responder's own).
  std::vector<RevealedShare> self_seed_shares;
  // Shares of s_sk_v for v ∈ U2 \ U3.
  std::vector<RevealedShare> mask_key_shares;
  // Neighbours whose sealed share to this site failed authentication or was
  // malformed: evidence against them (or against whoever relayed it).
  std::vector<ParticipantId> failed_shares;
};

// ---- the neighbour graph ----------------------------------------------------------------

// N(u) over U1, the same on every site and on the server: the complete graph,
// or for SecAgg+ the Harary graph H(k, n) on a ring whose order is a
// ChaCha20-driven Fisher-Yates permutation of U1 keyed by the roster's
// graph_seed, each site joined to the k/2 next on each side.
class NeighbourGraph {
 public:
  // `u1` sorted and distinct.
  NeighbourGraph(std::vector<ParticipantId> u1, std::size_t k, const Key32& graph_seed);
  bool complete() const { return complete_; }
  // Sorted; excludes u. Empty for an id not in U1.
  std::vector<ParticipantId> Of(ParticipantId u) const;
  bool Adjacent(ParticipantId a, ParticipantId b) const;

 private:
  std::vector<ParticipantId> u1_;
  bool complete_ = true;
  std::size_t half_ = 0;
  std::vector<std::size_t> ring_pos_;  // by index in u1_
  std::vector<std::size_t> at_pos_;    // index in u1_ by ring position
};

// The pairwise-mask sign of u's mask with v: +1 for u < v, -1 for u > v.
inline bool PairwiseMaskSubtracts(ParticipantId u, ParticipantId v) { return u > v; }

}  // namespace fedrx::privacy
