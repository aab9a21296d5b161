// AuditLog: the tamper-evident audit trail of admission decisions and admin
// actions, a hash chain over an append-only stream (keys::AuditStream()).
// Not thread-safe (it uses one StateStore, which is not): one writer per stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/clock.h"
#include "services/core/keys.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::security {

enum class Decision { kAdmitted, kDenied };
// "admitted" / "denied".
const char* DecisionName(Decision decision);

// One audited event. Ids, sizes and codes only: never a payload.
struct AuditRecord {
  std::string actor;   // identity id, or "unauthenticated"
  std::string role;    // the actor's role; empty when unauthenticated
  std::string action;  // message type or admin action, e.g. "institutions.enrol"
  Decision decision = Decision::kDenied;
  std::string reason;      // why, in words; may be empty
  std::string message_id;  // may be empty
  std::uint64_t bytes = 0;
  std::optional<std::string> study;
};

// What a successful Verify walked.
struct VerifyReport {
  std::uint64_t records = 0;
  std::string last_id;    // empty for an empty trail
  std::string last_hash;  // hex
};

// Each entry holds the record's fields, `at` (wall ms), `prev` (the previous
// entry's hash; 64 '0's for the first) and `hash`: hex SHA-256 over a
// canonical, length-prefixed encoding of prev and every field in a fixed
// order, so no field's bytes can be moved into another.
//
// With an audit key (SetKey), `hash` is HMAC-SHA-256 under the key instead,
// and each entry carries `mac` = "hmac-sha256".
//
// What the chain detects: an entry deleted (XDEL) or inserted (its successor's
// prev no longer matches), an entry rewritten in a copied stream (its hash no
// longer matches), a forged entry (its prev or hash does not match). Unkeyed,
// it cannot stop someone with write access to Redis recomputing the whole
// chain from the forgery onwards; keyed, only a holder of the key can (keep
// the key with the gateway, not in Redis). Neither detects the newest entries
// being trimmed, unless this instance appended them (Verify then checks they
// are still there); anchoring the last hash elsewhere would close that.
class AuditLog {
 public:
  // The chain start, and the length of a hash in hex.
  static constexpr std::string_view kGenesis =
      "0000000000000000000000000000000000000000000000000000000000000000";

  // All must outlive the log. `metrics` counts
  // fedrx_<svc>_audit_records_total{decision} and, on failures,
  // fedrx_<svc>_errors_total{component="audit",reason}.
  AuditLog(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
           core::Key stream = core::keys::AuditStream());

  // Appends `record` to the chain and returns its entry id. The first call
  // reads the stream's last entry (one extra round trip) so a restarted
  // process continues the chain. kInvalidArgument for an oversized or empty
  // required field (where = the field); kDataLoss when the stream's last entry
  // has no valid hash to chain on (nothing is appended); store errors as is.
  // Blocks for one round trip (two the first time).
  core::Result<std::string> Append(const AuditRecord& record);

  // Batched appends for a busy writer: Enqueue chains `record` on the last
  // queued one (validating it as Append does; reads the head first when
  // nothing is queued), and Flush writes everything queued in one pipelined
  // round trip. Until Flush the records exist only in this process. A failed
  // Flush drops what was queued (counted in
  // fedrx_<svc>_audit_records_lost_total) and re-reads the head next time.
  core::Status Enqueue(const AuditRecord& record);
  core::Status Flush();
  std::size_t queued() const { return pending_.size(); }

  // Walks the whole stream, oldest first, in pages. OK with the count of
  // records checked; otherwise kDataLoss with `where` = the id of the first
  // bad entry and a message that says what is wrong: "malformed", "hash
  // mismatch" (edited or forged), or "missing predecessor" (an entry before
  // it was deleted, or it was inserted). Store errors as is.
  core::Result<VerifyReport> Verify();

  // Hex SHA-256 of an entry's canonical encoding; `fields` are the stored
  // fields without `hash`. kInvalidArgument if a required field is missing.
  static core::Result<std::string> HashOf(const core::FieldMap& fields);
  // The same, HMAC-SHA-256 under `key` when it is not null.
  static core::Result<std::string> HashOf(const core::FieldMap& fields, const std::string* key);

  // Keys the chain: later appends are HMACs under `key` (raw bytes, at least
  // kMinKeyBytes), and Verify checks every entry with it, refusing unkeyed
  // entries. Without a key, Verify refuses a keyed trail and Append refuses
  // to extend one, both with kFailedPrecondition. kInvalidArgument for a
  // short key.
  static constexpr std::size_t kMinKeyBytes = 32;
  core::Status SetKey(std::string key);

 private:
  core::StateStore& store_;
  const core::Clock& clock_;
  core::Metrics& metrics_;
  core::Key stream_;
  std::optional<std::string> key_;  // a secret: never log it
  // The chain head once known: the hash and id of the newest entry.
  bool head_loaded_ = false;
  std::string head_hash_;
  std::string head_id_;
  // Whether head_id_ was appended (so must still exist) by this instance.
  bool appended_ = false;
  // Queued by Enqueue, not yet flushed; pending_head_ is the newest queued hash.
  std::vector<core::FieldMap> pending_;
  std::vector<Decision> pending_decisions_;
  std::string pending_head_;
  // Whether the stored head entry is keyed: then appending needs the key.
  bool head_keyed_ = false;
  core::Status LoadHead();
};

// The audit key file: one line of hex (at least 64 digits, i.e. 32 bytes),
// mode 0600. Load refuses, naming the file: a missing file (kNotFound), one
// group or others may access (kPermissionDenied; chmod 600), or content that
// is not such hex (kInvalidArgument). Returns the raw key bytes.
core::Result<std::string> LoadAuditKey(const std::string& path);
// Writes a fresh random 32-byte key to `path` (0600, replacing it whole).
core::Status WriteNewAuditKey(const std::string& path);

}  // namespace fedrx::security
