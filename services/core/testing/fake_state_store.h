// FakeStateStore: an in-memory StateStore with Redis's semantics (see
// redis_state_store.h) and a fault injector for unit tests. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "services/core/clock.h"
#include "services/core/state_store.h"
#include "services/core/status.h"

namespace fedrx::core::testing {

class FakeStateStore final : public StateStore {
 public:
  // Expiry (leases) follows `clock` when given (a FakeClock in unit tests),
  // else the system's monotonic clock. `clock` must outlive the store.
  explicit FakeStateStore(const Clock* clock = nullptr) : clock_(clock) {}
  FakeStateStore(const FakeStateStore&) = delete;
  FakeStateStore& operator=(const FakeStateStore&) = delete;

  // The next `n` calls (any method) fail with `status` and change nothing.
  // `status` must not be OK.
  void FailNext(int n, Status status);
  // While down, every call fails with kUnavailable and changes nothing; what
  // was stored before is kept and readable again once up.
  void SetDown(bool down);
  // Number of keys held, and calls made (failed ones included).
  std::size_t KeyCount() const;
  std::int64_t CallCount() const;
  // Every key, string value, hash field and value, set member, stream entry
  // id, field and value held: for tests asserting something is stored nowhere.
  std::vector<std::string> AllStrings() const;
  // XDEL: removes one stream entry, true when it existed. Not part of
  // StateStore (the platform never deletes from a stream); lets tests tamper.
  bool StreamDelete(const Key& stream, std::string_view id);

  Status Ping() override;
  Result<std::optional<std::string>> Get(const Key& key) override;
  Status Set(const Key& key, std::string_view value) override;
  Result<bool> SetIfAbsent(const Key& key, std::string_view value) override;
  Result<bool> SetIfAbsentWithExpiry(const Key& key, std::string_view value,
                                     std::chrono::milliseconds ttl) override;
  Result<bool> RenewIfEqual(const Key& key, std::string_view expected,
                            std::chrono::milliseconds ttl) override;
  Result<bool> DeleteIfEqual(const Key& key, std::string_view expected) override;
  Result<bool> Delete(const Key& key) override;
  Result<std::int64_t> Increment(const Key& key, std::int64_t by) override;
  Status HashSet(const Key& key, const FieldMap& fields) override;
  Result<std::optional<std::string>> HashGet(const Key& key, std::string_view field) override;
  Result<FieldMap> HashGetAll(const Key& key) override;
  Result<bool> SetAdd(const Key& key, std::string_view member) override;
  Result<bool> SetRemove(const Key& key, std::string_view member) override;
  Result<std::vector<std::string>> SetMembers(const Key& key) override;
  Result<std::vector<std::optional<std::string>>> GetMany(const std::vector<Key>& keys) override;
  Result<std::vector<FieldMap>> HashGetAllMany(const std::vector<Key>& keys) override;
  Status Apply(const WriteBatch& batch) override;
  Result<std::string> StreamAppend(const Key& stream, const FieldMap& fields) override;
  Result<std::vector<std::string>> StreamAppendMany(const Key& stream,
                                                    const std::vector<FieldMap>& entries) override;
  Result<std::vector<StreamEntry>> StreamRange(const Key& stream, std::string_view from_id = "-",
                                               std::size_t count = 0) override;
  Result<std::optional<StreamEntry>> StreamLast(const Key& stream) override;

 private:
  using Members = std::set<std::string>;
  using StreamId = std::pair<std::uint64_t, std::uint64_t>;
  struct Stream {
    std::map<StreamId, FieldMap> entries;
    // As Redis, the highest id ever given, kept when entries are deleted.
    StreamId last_id{0, 0};
  };
  using Value = std::variant<std::string, FieldMap, Members, Stream>;
  // A key's value, or nullopt when absent.
  using Slot = std::optional<Value>;

  // Counts the call and returns the injected failure, if any. Caller holds mu_.
  Status Enter();
  // Runs one write on `slot` as Redis would, or returns Redis's error and
  // leaves `slot` as it was. The value is Delete: 1 if the key existed;
  // SetAdd/SetRemove: 1 if the set changed; Increment: the new value; else 0.
  static Result<std::int64_t> Write(const WriteBatch::Entry& entry, Slot& slot);
  // Runs one single-key write on the stored data.
  Result<std::int64_t> WriteOne(const WriteBatch::Entry& entry);

  // Drops keys whose expiry has passed. Caller holds mu_.
  void Expire();
  std::chrono::steady_clock::time_point Now() const;

  const Clock* clock_ = nullptr;
  SystemClock system_clock_;
  // Keys with an expiry (set by SetIfAbsentWithExpiry / RenewIfEqual); any
  // other write of the key clears it, as SET and DEL do in Redis.
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> expiry_;
  mutable std::mutex mu_;
  std::map<std::string, Value, std::less<>> data_;
  bool down_ = false;
  int fail_count_ = 0;
  Status fail_status_;
  std::int64_t calls_ = 0;
};

}  // namespace fedrx::core::testing
