// StateStore: the platform's durable state (Redis in production, an in-memory
// fake in unit tests). Values are binary-safe strings. Every call blocks until
// the store answers or its timeout passes; a lost connection yields
// kUnavailable and the next call reconnects. Not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/core/keys.h"
#include "services/core/status.h"

namespace fedrx::core {

using FieldMap = std::map<std::string, std::string>;

// One entry of an append-only stream (a Redis stream): its id, assigned by the
// store ("<ms>-<seq>", strictly increasing within a stream), and its fields.
struct StreamEntry {
  std::string id;
  FieldMap fields;

  bool operator==(const StreamEntry&) const = default;
};

// A stream entry id "<ms>-<seq>" as numbers; "<ms>" alone means "<ms>-0"
// (XRANGE's reading of a bound). nullopt when `id` is neither.
std::optional<std::pair<std::uint64_t, std::uint64_t>> ParseStreamId(std::string_view id);

// Writes applied all or nothing by StateStore::Apply.
class WriteBatch {
 public:
  enum class Op { kSet, kDelete, kHashSet, kSetAdd, kSetRemove, kIncrement };
  struct Entry {
    Op op;
    Key key;
    std::string value;    // kSet: the value; kSetAdd/kSetRemove: the member
    FieldMap fields;      // kHashSet
    std::int64_t by = 0;  // kIncrement
    // kSet of a large value the caller keeps alive (see SetBorrowed).
    std::string_view borrowed;

    // The bytes of a kSet, kSetAdd or kSetRemove.
    std::string_view bytes() const { return borrowed.data() != nullptr ? borrowed : value; }
  };

  WriteBatch& Set(const Key& key, std::string value);
  // Like Set, without copying `value`: it must stay valid until Apply returns.
  // For large values (model weights).
  WriteBatch& SetBorrowed(const Key& key, std::string_view value);
  WriteBatch& Delete(const Key& key);
  WriteBatch& HashSet(const Key& key, FieldMap fields);
  WriteBatch& SetAdd(const Key& key, std::string member);
  WriteBatch& SetRemove(const Key& key, std::string member);
  WriteBatch& Increment(const Key& key, std::int64_t by);

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // The op's name as the method that adds it, e.g. "SetAdd".
  static const char* OpName(Op op);
  // How errors name entry `index` (< entries().size()): "batch entry 2 (SetAdd)".
  std::string EntryName(std::size_t index) const;

 private:
  std::vector<Entry> entries_;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Checks the store answers.
  virtual Status Ping() = 0;

  // Absent keys are nullopt, not an error.
  virtual Result<std::optional<std::string>> Get(const Key& key) = 0;
  virtual Status Set(const Key& key, std::string_view value) = 0;
  // Sets only if absent; true when this call set it.
  virtual Result<bool> SetIfAbsent(const Key& key, std::string_view value) = 0;

  // Leases (a string key that expires unless its holder renews it). `ttl`
  // must be positive (kInvalidArgument otherwise); expiry is the store's time.
  // Sets `key` to `value` expiring after `ttl` only if absent (SET NX PX);
  // true when this call set it.
  virtual Result<bool> SetIfAbsentWithExpiry(const Key& key, std::string_view value,
                                             std::chrono::milliseconds ttl) = 0;
  // Compare-and-set renewal: only when `key` holds exactly `expected`, its
  // expiry is reset to `ttl` from now; true when renewed, false when the key
  // is absent or holds anything else (another holder; nothing changes).
  virtual Result<bool> RenewIfEqual(const Key& key, std::string_view expected,
                                    std::chrono::milliseconds ttl) = 0;
  // Deletes `key` only when it holds exactly `expected`; true when deleted.
  virtual Result<bool> DeleteIfEqual(const Key& key, std::string_view expected) = 0;
  // True when the key existed.
  virtual Result<bool> Delete(const Key& key) = 0;
  virtual Result<std::int64_t> Increment(const Key& key, std::int64_t by) = 0;

  virtual Status HashSet(const Key& key, const FieldMap& fields) = 0;
  virtual Result<std::optional<std::string>> HashGet(const Key& key, std::string_view field) = 0;
  // Empty map for an absent key.
  virtual Result<FieldMap> HashGetAll(const Key& key) = 0;

  // True when the member was new.
  virtual Result<bool> SetAdd(const Key& key, std::string_view member) = 0;
  virtual Result<bool> SetRemove(const Key& key, std::string_view member) = 0;
  // Members in ascending byte order.
  virtual Result<std::vector<std::string>> SetMembers(const Key& key) = 0;

  // Many reads in one round trip (pipelined), results in the order of `keys`.
  virtual Result<std::vector<std::optional<std::string>>> GetMany(const std::vector<Key>& keys) = 0;
  virtual Result<std::vector<FieldMap>> HashGetAllMany(const std::vector<Key>& keys) = 0;

  // Applies every write of `batch` atomically (MULTI/EXEC): all or none.
  virtual Status Apply(const WriteBatch& batch) = 0;

  // Append-only streams (XADD/XRANGE/XREVRANGE). Entries are never changed in
  // place; ids increase strictly, so the order of ids is the order of appends.
  // Appends an entry and returns the id the store gave it. An empty `fields`
  // is kInvalidArgument (Redis has no empty entries).
  virtual Result<std::string> StreamAppend(const Key& stream, const FieldMap& fields) = 0;
  // Appends every entry of `entries`, in order, in one round trip
  // (pipelined, not atomic), and returns their ids. An empty entry is
  // kInvalidArgument and nothing is sent. On a store error some leading
  // entries may have been appended: the caller re-reads the stream to know.
  virtual Result<std::vector<std::string>> StreamAppendMany(
      const Key& stream, const std::vector<FieldMap>& entries) = 0;
  // Entries with id >= `from_id` in id order; "-" is the start. At most
  // `count` of them, all when 0. An absent stream has no entries; a malformed
  // `from_id` is kInvalidArgument.
  virtual Result<std::vector<StreamEntry>> StreamRange(const Key& stream,
                                                       std::string_view from_id = "-",
                                                       std::size_t count = 0) = 0;
  // The entry with the highest id, nullopt for an empty or absent stream.
  virtual Result<std::optional<StreamEntry>> StreamLast(const Key& stream) = 0;
};

}  // namespace fedrx::core
