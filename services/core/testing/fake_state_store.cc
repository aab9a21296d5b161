#include "services/core/testing/fake_state_store.h"

#include <cassert>
#include <charconv>
#include <chrono>
#include <utility>

namespace fedrx::core::testing {
namespace {

// Redis's texts, so that tests read the same errors from the fake and Redis.
constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";

Status WrongType(const Key& key) { return FailedPrecondition(std::string(kWrongType), key.str()); }

// INCRBY's rule: only the canonical decimal form of an int64 is an integer.
std::optional<std::int64_t> ParseInteger(const std::string& s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || std::to_string(v) != s) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

void FakeStateStore::FailNext(int n, Status status) {
  assert(!status.ok() && "FailNext needs an error status");
  std::lock_guard<std::mutex> lock(mu_);
  fail_count_ = n;
  fail_status_ = std::move(status);
}

void FakeStateStore::SetDown(bool down) {
  std::lock_guard<std::mutex> lock(mu_);
  down_ = down;
}

std::size_t FakeStateStore::KeyCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_.size();
}

std::int64_t FakeStateStore::CallCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::vector<std::string> FakeStateStore::AllStrings() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, value] : data_) {
    out.push_back(key);
    if (const auto* str = std::get_if<std::string>(&value)) {
      out.push_back(*str);
    } else if (const auto* hash = std::get_if<FieldMap>(&value)) {
      for (const auto& [field, v] : *hash) {
        out.push_back(field);
        out.push_back(v);
      }
    } else if (const auto* members = std::get_if<Members>(&value)) {
      out.insert(out.end(), members->begin(), members->end());
    } else if (const auto* stream = std::get_if<Stream>(&value)) {
      for (const auto& [id, fields] : stream->entries) {
        out.push_back(std::to_string(id.first) + "-" + std::to_string(id.second));
        for (const auto& [field, v] : fields) {
          out.push_back(field);
          out.push_back(v);
        }
      }
    }
  }
  return out;
}

bool FakeStateStore::StreamDelete(const Key& stream, std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<StreamId> parsed = ParseStreamId(id);
  auto it = data_.find(stream.str());
  if (!parsed || it == data_.end()) return false;
  auto* s = std::get_if<Stream>(&it->second);
  return s != nullptr && s->entries.erase(*parsed) > 0;
}

Status FakeStateStore::Enter() {
  ++calls_;
  if (down_) return Unavailable("fake state store is down", "fake");
  if (fail_count_ > 0) {
    --fail_count_;
    return fail_status_;
  }
  Expire();
  return Status::Ok();
}

std::chrono::steady_clock::time_point FakeStateStore::Now() const {
  return clock_ != nullptr ? clock_->Now() : system_clock_.Now();
}

void FakeStateStore::Expire() {
  const auto now = Now();
  for (auto it = expiry_.begin(); it != expiry_.end();) {
    if (it->second <= now) {
      data_.erase(it->first);
      it = expiry_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<bool> FakeStateStore::SetIfAbsentWithExpiry(const Key& key, std::string_view value,
                                                   std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return InvalidArgument("a lease needs a positive ttl", key.str());
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  if (!data_.try_emplace(key.str(), Value(std::string(value))).second) return false;
  expiry_.insert_or_assign(key.str(), Now() + ttl);
  return true;
}

Result<bool> FakeStateStore::RenewIfEqual(const Key& key, std::string_view expected,
                                          std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) return InvalidArgument("a lease needs a positive ttl", key.str());
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return false;
  const auto* str = std::get_if<std::string>(&it->second);
  if (str == nullptr || *str != expected) return false;
  expiry_.insert_or_assign(key.str(), Now() + ttl);
  return true;
}

Result<bool> FakeStateStore::DeleteIfEqual(const Key& key, std::string_view expected) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return false;
  const auto* str = std::get_if<std::string>(&it->second);
  if (str == nullptr || *str != expected) return false;
  data_.erase(it);
  expiry_.erase(key.str());
  return true;
}

Result<std::int64_t> FakeStateStore::Write(const WriteBatch::Entry& entry, Slot& slot) {
  switch (entry.op) {
    case WriteBatch::Op::kSet:
      slot = Value(std::string(entry.bytes()));
      return 0;
    case WriteBatch::Op::kDelete: {
      const bool existed = slot.has_value();
      slot.reset();
      return existed ? 1 : 0;
    }
    case WriteBatch::Op::kHashSet: {
      if (entry.fields.empty()) {
        return InvalidArgument("HashSet needs at least one field", entry.key.str());
      }
      if (slot && !std::holds_alternative<FieldMap>(*slot)) return WrongType(entry.key);
      if (!slot) slot = Value(FieldMap{});
      FieldMap& hash = std::get<FieldMap>(*slot);
      for (const auto& [field, value] : entry.fields) hash.insert_or_assign(field, value);
      return 0;
    }
    case WriteBatch::Op::kSetAdd: {
      if (slot && !std::holds_alternative<Members>(*slot)) return WrongType(entry.key);
      if (!slot) slot = Value(Members{});
      return std::get<Members>(*slot).insert(entry.value).second ? 1 : 0;
    }
    case WriteBatch::Op::kSetRemove: {
      if (!slot) return 0;
      if (!std::holds_alternative<Members>(*slot)) return WrongType(entry.key);
      Members& members = std::get<Members>(*slot);
      const std::size_t erased = members.erase(entry.value);
      if (members.empty()) slot.reset();  // Redis has no empty sets
      return erased > 0 ? 1 : 0;
    }
    case WriteBatch::Op::kIncrement: {
      std::int64_t current = 0;
      if (slot) {
        if (!std::holds_alternative<std::string>(*slot)) return WrongType(entry.key);
        std::optional<std::int64_t> parsed = ParseInteger(std::get<std::string>(*slot));
        if (!parsed) return FailedPrecondition(std::string(kNotInteger), entry.key.str());
        current = *parsed;
      }
      std::int64_t next = 0;
      if (__builtin_add_overflow(current, entry.by, &next)) {
        return FailedPrecondition(std::string(kOverflow), entry.key.str());
      }
      slot = Value(std::to_string(next));
      return next;
    }
  }
  return Internal("unknown write op", entry.key.str());
}

Result<std::int64_t> FakeStateStore::WriteOne(const WriteBatch::Entry& entry) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  // Move the value out and back rather than copy it: Write leaves it intact on error.
  Slot slot;
  auto it = data_.find(entry.key.str());
  if (it != data_.end()) {
    slot = std::move(it->second);
    data_.erase(it);
  }
  Result<std::int64_t> result = Write(entry, slot);
  if (slot) data_.insert_or_assign(entry.key.str(), std::move(*slot));
  // As in Redis, SET and DEL clear a key's expiry.
  if (result.ok() && (entry.op == WriteBatch::Op::kSet || entry.op == WriteBatch::Op::kDelete)) {
    expiry_.erase(entry.key.str());
  }
  return result;
}

Status FakeStateStore::Ping() {
  std::lock_guard<std::mutex> lock(mu_);
  return Enter();
}

Result<std::optional<std::string>> FakeStateStore::Get(const Key& key) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return std::optional<std::string>();
  if (!std::holds_alternative<std::string>(it->second)) return WrongType(key);
  return std::optional<std::string>(std::get<std::string>(it->second));
}

Status FakeStateStore::Set(const Key& key, std::string_view value) {
  return WriteOne({WriteBatch::Op::kSet, key, std::string(value), {}, 0}).status();
}

Result<bool> FakeStateStore::SetIfAbsent(const Key& key, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  return data_.try_emplace(key.str(), Value(std::string(value))).second;
}

Result<bool> FakeStateStore::Delete(const Key& key) {
  FEDRX_ASSIGN_OR_RETURN(std::int64_t existed, WriteOne({WriteBatch::Op::kDelete, key, {}, {}, 0}));
  return existed == 1;
}

Result<std::int64_t> FakeStateStore::Increment(const Key& key, std::int64_t by) {
  return WriteOne({WriteBatch::Op::kIncrement, key, {}, {}, by});
}

Status FakeStateStore::HashSet(const Key& key, const FieldMap& fields) {
  return WriteOne({WriteBatch::Op::kHashSet, key, {}, fields, 0}).status();
}

Result<std::optional<std::string>> FakeStateStore::HashGet(const Key& key, std::string_view field) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return std::optional<std::string>();
  if (!std::holds_alternative<FieldMap>(it->second)) return WrongType(key);
  const FieldMap& hash = std::get<FieldMap>(it->second);
  auto field_it = hash.find(std::string(field));
  if (field_it == hash.end()) return std::optional<std::string>();
  return std::optional<std::string>(field_it->second);
}

Result<FieldMap> FakeStateStore::HashGetAll(const Key& key) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return FieldMap{};
  if (!std::holds_alternative<FieldMap>(it->second)) return WrongType(key);
  return std::get<FieldMap>(it->second);
}

Result<bool> FakeStateStore::SetAdd(const Key& key, std::string_view member) {
  FEDRX_ASSIGN_OR_RETURN(std::int64_t added,
                         WriteOne({WriteBatch::Op::kSetAdd, key, std::string(member), {}, 0}));
  return added == 1;
}

Result<bool> FakeStateStore::SetRemove(const Key& key, std::string_view member) {
  FEDRX_ASSIGN_OR_RETURN(std::int64_t removed,
                         WriteOne({WriteBatch::Op::kSetRemove, key, std::string(member), {}, 0}));
  return removed == 1;
}

Result<std::vector<std::string>> FakeStateStore::SetMembers(const Key& key) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(key.str());
  if (it == data_.end()) return std::vector<std::string>();
  if (!std::holds_alternative<Members>(it->second)) return WrongType(key);
  // std::set<std::string> iterates in unsigned byte order, as Redis sorts.
  const Members& members = std::get<Members>(it->second);
  return std::vector<std::string>(members.begin(), members.end());
}

Result<std::vector<std::optional<std::string>>> FakeStateStore::GetMany(
    const std::vector<Key>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (const Key& key : keys) {
    auto it = data_.find(key.str());
    // MGET reads a key of another type as absent.
    if (it == data_.end() || !std::holds_alternative<std::string>(it->second)) {
      values.emplace_back();
    } else {
      values.emplace_back(std::get<std::string>(it->second));
    }
  }
  return values;
}

Result<std::vector<FieldMap>> FakeStateStore::HashGetAllMany(const std::vector<Key>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  std::vector<FieldMap> maps;
  maps.reserve(keys.size());
  for (const Key& key : keys) {
    auto it = data_.find(key.str());
    if (it == data_.end()) {
      maps.emplace_back();
    } else if (!std::holds_alternative<FieldMap>(it->second)) {
      return WrongType(key);
    } else {
      maps.push_back(std::get<FieldMap>(it->second));
    }
  }
  return maps;
}

Status FakeStateStore::Apply(const WriteBatch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  // Run the batch on copies of the keys it touches; commit only if all succeed.
  std::map<std::string, Slot, std::less<>> staged;
  for (std::size_t i = 0; i < batch.entries().size(); ++i) {
    const WriteBatch::Entry& entry = batch.entries()[i];
    auto staged_it = staged.find(entry.key.str());
    if (staged_it == staged.end()) {
      auto it = data_.find(entry.key.str());
      staged_it =
          staged.emplace(entry.key.str(), it == data_.end() ? Slot() : Slot(it->second)).first;
    }
    Result<std::int64_t> result = Write(entry, staged_it->second);
    if (!result.ok()) {
      const Status& status = result.status();
      return Status(
          status.code(),
          batch.EntryName(i) + " would fail: " + status.message() + "; nothing was written",
          status.where());
    }
  }
  for (const WriteBatch::Entry& entry : batch.entries()) {
    if (entry.op == WriteBatch::Op::kSet || entry.op == WriteBatch::Op::kDelete) {
      expiry_.erase(entry.key.str());
    }
  }
  for (auto& [key, slot] : staged) {
    if (slot) {
      data_.insert_or_assign(key, std::move(*slot));
    } else {
      data_.erase(key);
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> FakeStateStore::StreamAppendMany(
    const Key& stream, const std::vector<FieldMap>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].empty()) {
      return InvalidArgument("StreamAppendMany entry " + std::to_string(i) + " has no fields",
                             stream.str());
    }
  }
  std::vector<std::string> ids;
  for (const FieldMap& fields : entries) {
    FEDRX_ASSIGN_OR_RETURN(std::string id, StreamAppend(stream, fields));
    ids.push_back(std::move(id));
  }
  return ids;
}

Result<std::string> FakeStateStore::StreamAppend(const Key& stream, const FieldMap& fields) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  if (fields.empty()) return InvalidArgument("StreamAppend needs at least one field", stream.str());
  auto it = data_.find(stream.str());
  if (it != data_.end() && !std::holds_alternative<Stream>(it->second)) return WrongType(stream);
  if (it == data_.end()) it = data_.emplace(stream.str(), Value(Stream{})).first;
  Stream& s = std::get<Stream>(it->second);
  // Redis's rule for `*`: the wall clock in ms, or the last id's ms with the
  // next sequence number when the clock has not moved past it.
  const auto now_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const StreamId id = now_ms > s.last_id.first ? StreamId{now_ms, 0}
                                               : StreamId{s.last_id.first, s.last_id.second + 1};
  s.last_id = id;
  s.entries.emplace(id, fields);
  return std::to_string(id.first) + "-" + std::to_string(id.second);
}

Result<std::vector<StreamEntry>> FakeStateStore::StreamRange(const Key& stream,
                                                             std::string_view from_id,
                                                             std::size_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  StreamId from{0, 0};
  if (from_id != "-") {
    std::optional<StreamId> parsed = ParseStreamId(from_id);
    if (!parsed) {
      return InvalidArgument("'" + std::string(from_id) + "' is not a stream id (<ms>-<seq>)",
                             stream.str());
    }
    from = *parsed;
  }
  std::vector<StreamEntry> out;
  auto it = data_.find(stream.str());
  if (it == data_.end()) return out;
  if (!std::holds_alternative<Stream>(it->second)) return WrongType(stream);
  const Stream& s = std::get<Stream>(it->second);
  for (auto e = s.entries.lower_bound(from); e != s.entries.end(); ++e) {
    if (count > 0 && out.size() == count) break;
    out.push_back(StreamEntry{
        std::to_string(e->first.first) + "-" + std::to_string(e->first.second), e->second});
  }
  return out;
}

Result<std::optional<StreamEntry>> FakeStateStore::StreamLast(const Key& stream) {
  std::lock_guard<std::mutex> lock(mu_);
  FEDRX_RETURN_IF_ERROR(Enter());
  auto it = data_.find(stream.str());
  if (it == data_.end()) return std::optional<StreamEntry>();
  if (!std::holds_alternative<Stream>(it->second)) return WrongType(stream);
  const Stream& s = std::get<Stream>(it->second);
  if (s.entries.empty()) return std::optional<StreamEntry>();
  const auto& [id, fields] = *s.entries.rbegin();
  return std::optional<StreamEntry>(
      StreamEntry{std::to_string(id.first) + "-" + std::to_string(id.second), fields});
}

}  // namespace fedrx::core::testing
