#include "services/security/audit_log.h"

#include <sodium.h>

#include <array>
#include <set>
#include <utility>
#include <vector>

namespace fedrx::security {
namespace {

// Bounds on what one record may carry; a record is metadata, never a payload.
constexpr std::size_t kMaxFieldBytes = 256;
constexpr std::size_t kMaxReasonBytes = 1024;
// Entries read per round trip while verifying.
constexpr std::size_t kVerifyPage = 1000;
// Names every hash covers, in the canonical order. `study` is optional and
// follows them, flagged present or absent.
constexpr std::array<std::string_view, 9> kChained = {
    "prev", "at", "actor", "role", "action", "decision", "reason", "message_id", "bytes"};
constexpr std::string_view kStudy = "study";
constexpr std::string_view kHash = "hash";
// Bumped if the encoding ever changes, so old and new hashes never collide.
constexpr std::string_view kDomain = "fedrx-audit-v1";

void Absorb(crypto_hash_sha256_state& state, std::string_view bytes) {
  // Big-endian u64 length first: the boundary between fields is unambiguous.
  unsigned char length[8];
  std::uint64_t n = bytes.size();
  for (int i = 7; i >= 0; --i) {
    length[i] = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  crypto_hash_sha256_update(&state, length, sizeof length);
  crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
}

bool IsHexDigest(std::string_view s) {
  if (s.size() != 2 * crypto_hash_sha256_BYTES) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

core::Status CheckField(std::string_view value, std::string_view name, std::size_t max,
                        bool required) {
  if (required && value.empty()) {
    return core::InvalidArgument(std::string(name) + " is empty", std::string(name));
  }
  if (value.size() > max) {
    return core::InvalidArgument(std::string(name) + " is " + std::to_string(value.size()) +
                                     " bytes, at most " + std::to_string(max) + " allowed",
                                 std::string(name));
  }
  return core::Status::Ok();
}

core::Status DataLoss(std::string message, std::string where) {
  return core::Status(core::StatusCode::kDataLoss, std::move(message), std::move(where));
}

}  // namespace

const char* DecisionName(Decision decision) {
  return decision == Decision::kAdmitted ? "admitted" : "denied";
}

AuditLog::AuditLog(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
                   core::Key stream)
    : store_(store), clock_(clock), metrics_(metrics), stream_(std::move(stream)) {
  // Safe to call more than once; SHA-256 needs no state from it, but keep
  // libsodium's contract.
  if (sodium_init() < 0) metrics_.CountError("audit", "sodium_init");
}

core::Result<std::string> AuditLog::HashOf(const core::FieldMap& fields) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  Absorb(state, kDomain);
  for (std::string_view name : kChained) {
    auto it = fields.find(std::string(name));
    if (it == fields.end()) {
      return core::InvalidArgument("field '" + std::string(name) + "' is missing",
                                   std::string(name));
    }
    Absorb(state, it->second);
  }
  auto study = fields.find(std::string(kStudy));
  Absorb(state, study == fields.end() ? "0" : "1");
  if (study != fields.end()) Absorb(state, study->second);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, 2 * crypto_hash_sha256_BYTES);
}

core::Result<std::string> AuditLog::Append(const AuditRecord& record) {
  FEDRX_RETURN_IF_ERROR(CheckField(record.actor, "actor", kMaxFieldBytes, true));
  FEDRX_RETURN_IF_ERROR(CheckField(record.role, "role", kMaxFieldBytes, false));
  FEDRX_RETURN_IF_ERROR(CheckField(record.action, "action", kMaxFieldBytes, true));
  FEDRX_RETURN_IF_ERROR(CheckField(record.reason, "reason", kMaxReasonBytes, false));
  FEDRX_RETURN_IF_ERROR(CheckField(record.message_id, "message_id", kMaxFieldBytes, false));
  if (record.study) FEDRX_RETURN_IF_ERROR(CheckField(*record.study, "study", kMaxFieldBytes, true));

  if (!head_loaded_) {
    core::Result<std::optional<core::StreamEntry>> last = store_.StreamLast(stream_);
    if (!last.ok()) {
      metrics_.CountError("audit", "store");
      return last.status();
    }
    if (!last->has_value()) {
      head_hash_ = std::string(kGenesis);
    } else {
      const core::StreamEntry& entry = **last;
      auto hash = entry.fields.find(std::string(kHash));
      if (hash == entry.fields.end() || !IsHexDigest(hash->second)) {
        metrics_.CountError("audit", "broken_chain");
        return DataLoss(
            "the newest audit entry has no valid hash to chain on; run "
            "`fedrx audit verify`",
            entry.id);
      }
      head_hash_ = hash->second;
      head_id_ = entry.id;
    }
    head_loaded_ = true;
  }

  core::FieldMap fields = {
      {"prev", head_hash_},
      {"at", std::to_string(clock_.WallMillis())},
      {"actor", record.actor},
      {"role", record.role},
      {"action", record.action},
      {"decision", DecisionName(record.decision)},
      {"reason", record.reason},
      {"message_id", record.message_id},
      {"bytes", std::to_string(record.bytes)},
  };
  if (record.study) fields.emplace(kStudy, *record.study);
  FEDRX_ASSIGN_OR_RETURN(std::string hash, HashOf(fields));
  fields.emplace(kHash, hash);
  core::Result<std::string> id = store_.StreamAppend(stream_, fields);
  if (!id.ok()) {
    // The head is unchanged: the next Append chains on the same predecessor.
    // An append whose outcome is unknown (connection lost mid-call) would
    // fork the chain, so re-read the head next time.
    head_loaded_ = false;
    metrics_.CountError("audit", "store");
    return id.status();
  }
  head_hash_ = std::move(hash);
  head_id_ = *id;
  appended_ = true;
  metrics_
      .Counter("audit_records_total", "Audit records appended, by decision.",
               {{"decision", DecisionName(record.decision)}})
      .Inc();
  return id;
}

core::Result<VerifyReport> AuditLog::Verify() {
  static const std::set<std::string, std::less<>> kKnown = [] {
    std::set<std::string, std::less<>> known;
    for (std::string_view name : kChained) known.emplace(name);
    known.emplace(kStudy);
    known.emplace(kHash);
    return known;
  }();
  VerifyReport report;
  std::string expected_prev(kGenesis);
  std::string from = "-";
  bool saw_head = false;
  while (true) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<core::StreamEntry> page,
                           store_.StreamRange(stream_, from, kVerifyPage));
    std::size_t fresh = 0;
    for (const core::StreamEntry& entry : page) {
      // Pages start at the previous page's last id, inclusive.
      if (entry.id == report.last_id) continue;
      ++fresh;
      for (const auto& [name, value] : entry.fields) {
        if (!kKnown.contains(name)) {
          return DataLoss("malformed audit entry: unexpected field '" + name + "'", entry.id);
        }
      }
      auto stored = entry.fields.find(std::string(kHash));
      if (stored == entry.fields.end() || !IsHexDigest(stored->second)) {
        return DataLoss("malformed audit entry: no valid 'hash' field", entry.id);
      }
      core::FieldMap chained = entry.fields;
      chained.erase(std::string(kHash));
      core::Result<std::string> computed = HashOf(chained);
      if (!computed.ok()) {
        return DataLoss("malformed audit entry: " + computed.status().message(), entry.id);
      }
      if (*computed != stored->second) {
        return DataLoss(
            "hash mismatch: the entry's fields do not match its hash (edited or forged)", entry.id);
      }
      if (chained.at("prev") != expected_prev) {
        return DataLoss(report.records == 0
                            ? "missing predecessor: the first entry does not start the chain "
                              "(entries before it were deleted)"
                            : "missing predecessor: prev does not match the hash of entry " +
                                  report.last_id +
                                  " (an entry between them was deleted, or this "
                                  "one was inserted)",
                        entry.id);
      }
      expected_prev = stored->second;
      report.last_id = entry.id;
      report.last_hash = stored->second;
      ++report.records;
      if (appended_ && entry.id == head_id_) saw_head = stored->second == head_hash_;
    }
    if (fresh == 0 || page.size() < kVerifyPage) break;
    from = report.last_id;
  }
  if (appended_ && !saw_head) {
    return DataLoss("missing entry: the newest entry this log appended is gone (truncated)",
                    head_id_);
  }
  return report;
}

}  // namespace fedrx::security
