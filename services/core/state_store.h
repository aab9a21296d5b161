// StateStore: the platform's durable state (Redis in production, an in-memory
// fake in unit tests). Values are binary-safe strings. Every call blocks until
// the store answers or its timeout passes; a lost connection yields
// kUnavailable and the next call reconnects. Not thread-safe: one per thread.
#pragma once

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

// Writes applied all or nothing by StateStore::Apply.
class WriteBatch {
 public:
  enum class Op { kSet, kDelete, kHashSet, kSetAdd, kSetRemove, kIncrement };
  struct Entry {
    Op op;
    Key key;
    std::string value;  // kSet: the value; kSetAdd/kSetRemove: the member
    FieldMap fields;    // kHashSet
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
};

}  // namespace fedrx::core
