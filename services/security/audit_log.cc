#include "services/security/audit_log.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

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
// Present (value kHmac) on entries whose hash is keyed.
constexpr std::string_view kMac = "mac";
constexpr std::string_view kHmac = "hmac-sha256";
// Bumped if the encoding ever changes, so old and new hashes never collide.
constexpr std::string_view kDomain = "fedrx-audit-v1";
constexpr std::string_view kKeyedDomain = "fedrx-audit-v1-hmac";

// SHA-256, or HMAC-SHA-256 under a key, over length-prefixed pieces.
class Digest {
 public:
  explicit Digest(const std::string* key) : keyed_(key != nullptr) {
    if (keyed_) {
      crypto_auth_hmacsha256_init(&hmac_, reinterpret_cast<const unsigned char*>(key->data()),
                                  key->size());
    } else {
      crypto_hash_sha256_init(&sha_);
    }
  }
  void Absorb(std::string_view bytes) {
    // Big-endian u64 length first: the boundary between fields is unambiguous.
    unsigned char length[8];
    std::uint64_t n = bytes.size();
    for (int i = 7; i >= 0; --i) {
      length[i] = static_cast<unsigned char>(n & 0xff);
      n >>= 8;
    }
    Update(length, sizeof length);
    Update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  }
  std::string Hex() {
    unsigned char digest[crypto_hash_sha256_BYTES];
    static_assert(crypto_auth_hmacsha256_BYTES == crypto_hash_sha256_BYTES);
    if (keyed_) {
      crypto_auth_hmacsha256_final(&hmac_, digest);
    } else {
      crypto_hash_sha256_final(&sha_, digest);
    }
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    return std::string(hex, 2 * crypto_hash_sha256_BYTES);
  }

 private:
  void Update(const unsigned char* p, std::size_t n) {
    if (keyed_) {
      crypto_auth_hmacsha256_update(&hmac_, p, n);
    } else {
      crypto_hash_sha256_update(&sha_, p, n);
    }
  }
  bool keyed_;
  crypto_hash_sha256_state sha_;
  crypto_auth_hmacsha256_state hmac_;
};

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
  return HashOf(fields, nullptr);
}

core::Result<std::string> AuditLog::HashOf(const core::FieldMap& fields, const std::string* key) {
  Digest digest(key);
  digest.Absorb(key == nullptr ? kDomain : kKeyedDomain);
  for (std::string_view name : kChained) {
    auto it = fields.find(std::string(name));
    if (it == fields.end()) {
      return core::InvalidArgument("field '" + std::string(name) + "' is missing",
                                   std::string(name));
    }
    digest.Absorb(it->second);
  }
  auto study = fields.find(std::string(kStudy));
  digest.Absorb(study == fields.end() ? "0" : "1");
  if (study != fields.end()) digest.Absorb(study->second);
  return digest.Hex();
}

core::Status AuditLog::SetKey(std::string key) {
  if (key.size() < kMinKeyBytes) {
    return core::InvalidArgument("an audit key must be at least " + std::to_string(kMinKeyBytes) +
                                     " bytes, not " + std::to_string(key.size()),
                                 "audit key");
  }
  key_ = std::move(key);
  return core::Status::Ok();
}

core::Result<std::string> AuditLog::Append(const AuditRecord& record) {
  FEDRX_RETURN_IF_ERROR(Enqueue(record));
  FEDRX_RETURN_IF_ERROR(Flush());
  return head_id_;
}

core::Status AuditLog::LoadHead() {
  if (head_loaded_) return core::Status::Ok();
  core::Result<std::optional<core::StreamEntry>> last = store_.StreamLast(stream_);
  if (!last.ok()) {
    metrics_.CountError("audit", "store");
    return last.status();
  }
  head_keyed_ = false;
  if (!last->has_value()) {
    head_hash_ = std::string(kGenesis);
    head_id_.clear();
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
    head_keyed_ = entry.fields.count(std::string(kMac)) != 0;
  }
  pending_head_ = head_hash_;
  head_loaded_ = true;
  return core::Status::Ok();
}

core::Status AuditLog::Enqueue(const AuditRecord& record) {
  FEDRX_RETURN_IF_ERROR(CheckField(record.actor, "actor", kMaxFieldBytes, true));
  FEDRX_RETURN_IF_ERROR(CheckField(record.role, "role", kMaxFieldBytes, false));
  FEDRX_RETURN_IF_ERROR(CheckField(record.action, "action", kMaxFieldBytes, true));
  FEDRX_RETURN_IF_ERROR(CheckField(record.reason, "reason", kMaxReasonBytes, false));
  FEDRX_RETURN_IF_ERROR(CheckField(record.message_id, "message_id", kMaxFieldBytes, false));
  if (record.study) FEDRX_RETURN_IF_ERROR(CheckField(*record.study, "study", kMaxFieldBytes, true));
  if (pending_.empty()) FEDRX_RETURN_IF_ERROR(LoadHead());
  if (head_keyed_ && !key_) {
    // An unkeyed record would read as a forgery in a keyed trail.
    return core::Status(core::StatusCode::kFailedPrecondition,
                        "the audit trail is keyed (HMAC-SHA-256): appending to it needs the "
                        "audit key",
                        head_id_);
  }

  core::FieldMap fields = {
      {"prev", pending_head_},
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
  FEDRX_ASSIGN_OR_RETURN(std::string hash, HashOf(fields, key_ ? &*key_ : nullptr));
  fields.emplace(kHash, hash);
  if (key_) fields.emplace(kMac, kHmac);
  pending_head_ = std::move(hash);
  pending_.push_back(std::move(fields));
  pending_decisions_.push_back(record.decision);
  return core::Status::Ok();
}

core::Status AuditLog::Flush() {
  if (pending_.empty()) return core::Status::Ok();
  std::vector<core::FieldMap> entries = std::move(pending_);
  std::vector<Decision> decisions = std::move(pending_decisions_);
  pending_.clear();
  pending_decisions_.clear();
  core::Result<std::vector<std::string>> ids = store_.StreamAppendMany(stream_, entries);
  if (!ids.ok()) {
    // Some leading entries may be stored: re-read the head next time so the
    // chain continues from what is really there, never forks.
    head_loaded_ = false;
    metrics_.CountError("audit", "store");
    metrics_
        .Counter("audit_records_lost_total", "Audit records that could not be stored")
        .Inc(static_cast<double>(entries.size()));
    return ids.status();
  }
  head_hash_ = entries.back().at(std::string(kHash));
  head_id_ = ids->back();
  pending_head_ = head_hash_;
  appended_ = true;
  for (Decision d : decisions) {
    metrics_
        .Counter("audit_records_total", "Audit records appended, by decision.",
                 {{"decision", DecisionName(d)}})
        .Inc();
  }
  return core::Status::Ok();
}

core::Result<VerifyReport> AuditLog::Verify() {
  FEDRX_RETURN_IF_ERROR(Flush());
  static const std::set<std::string, std::less<>> kKnown = [] {
    std::set<std::string, std::less<>> known;
    for (std::string_view name : kChained) known.emplace(name);
    known.emplace(kStudy);
    known.emplace(kHash);
    known.emplace(kMac);
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
      auto mac = chained.find(std::string(kMac));
      const bool keyed = mac != chained.end();
      if (keyed && mac->second != kHmac) {
        return DataLoss("malformed audit entry: unknown mac '" + mac->second + "'", entry.id);
      }
      if (keyed && !key_) {
        return core::Status(core::StatusCode::kFailedPrecondition,
                            "the audit trail is keyed (HMAC-SHA-256): verifying it needs the "
                            "audit key",
                            entry.id);
      }
      if (!keyed && key_) {
        return DataLoss(
            "unkeyed entry in a keyed audit trail: written without the audit key (forged, or "
            "from before the key was set)",
            entry.id);
      }
      if (keyed) chained.erase(mac);
      core::Result<std::string> computed = HashOf(chained, key_ ? &*key_ : nullptr);
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

core::Result<std::string> LoadAuditKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return core::NotFound("audit key file '" + path + "' does not exist", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return core::InvalidArgument("audit key file '" + path + "' is not a regular file", path);
  }
  if ((st.st_mode & 077) != 0) {
    return core::Status(core::StatusCode::kPermissionDenied,
                        "audit key file '" + path +
                            "' may be read by group or others (chmod 600 it)",
                        path);
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string hex;
  for (char c : text.str()) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    hex.push_back(c);
  }
  if (hex.size() < 2 * AuditLog::kMinKeyBytes || hex.size() % 2 != 0) {
    return core::InvalidArgument("audit key file '" + path + "' must hold at least " +
                                     std::to_string(2 * AuditLog::kMinKeyBytes) +
                                     " hex digits (an even number), found " +
                                     std::to_string(hex.size()) + " characters",
                                 path);
  }
  std::string key(hex.size() / 2, '\0');
  std::size_t written = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(key.data()), key.size(), hex.data(),
                     hex.size(), nullptr, &written, nullptr) != 0 ||
      written != key.size()) {
    return core::InvalidArgument("audit key file '" + path + "' holds characters that are not hex",
                                 path);
  }
  return key;
}

core::Status WriteNewAuditKey(const std::string& path) {
  if (sodium_init() < 0) return core::Internal("libsodium failed to initialise", "audit key");
  unsigned char key[AuditLog::kMinKeyBytes];
  randombytes_buf(key, sizeof key);
  char hex[2 * sizeof key + 1];
  sodium_bin2hex(hex, sizeof hex, key, sizeof key);
  sodium_memzero(key, sizeof key);
  const std::string tmp = path + ".tmp";
  const mode_t old = ::umask(077);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << hex << "\n";
    out.close();
    if (!out) {
      ::umask(old);
      std::remove(tmp.c_str());
      return core::Unavailable("cannot write audit key file '" + tmp + "'", path);
    }
  }
  ::umask(old);
  sodium_memzero(hex, sizeof hex);
  if (::chmod(tmp.c_str(), 0600) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return core::Unavailable("cannot move the audit key into '" + path + "'", path);
  }
  return core::Status::Ok();
}

}  // namespace fedrx::security
