#include "services/core/state_store.h"

#include <charconv>

namespace fedrx::core {
namespace {
std::optional<std::uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}
}  // namespace

std::optional<std::pair<std::uint64_t, std::uint64_t>> ParseStreamId(std::string_view id) {
  const std::size_t dash = id.find('-');
  std::optional<std::uint64_t> ms = ParseDecimal(id.substr(0, dash));
  if (!ms) return std::nullopt;
  if (dash == std::string_view::npos) return std::pair<std::uint64_t, std::uint64_t>(*ms, 0);
  std::optional<std::uint64_t> seq = ParseDecimal(id.substr(dash + 1));
  if (!seq) return std::nullopt;
  return std::pair<std::uint64_t, std::uint64_t>(*ms, *seq);
}

WriteBatch& WriteBatch::Set(const Key& key, std::string value) {
  entries_.push_back(Entry{Op::kSet, key, std::move(value), {}, 0});
  return *this;
}

WriteBatch& WriteBatch::SetBorrowed(const Key& key, std::string_view value) {
  entries_.push_back(Entry{Op::kSet, key, {}, {}, 0, value});
  return *this;
}

WriteBatch& WriteBatch::Delete(const Key& key) {
  entries_.push_back(Entry{Op::kDelete, key, {}, {}, 0});
  return *this;
}

WriteBatch& WriteBatch::HashSet(const Key& key, FieldMap fields) {
  entries_.push_back(Entry{Op::kHashSet, key, {}, std::move(fields), 0});
  return *this;
}

WriteBatch& WriteBatch::SetAdd(const Key& key, std::string member) {
  entries_.push_back(Entry{Op::kSetAdd, key, std::move(member), {}, 0});
  return *this;
}

WriteBatch& WriteBatch::SetRemove(const Key& key, std::string member) {
  entries_.push_back(Entry{Op::kSetRemove, key, std::move(member), {}, 0});
  return *this;
}

WriteBatch& WriteBatch::Increment(const Key& key, std::int64_t by) {
  entries_.push_back(Entry{Op::kIncrement, key, {}, {}, by});
  return *this;
}

const char* WriteBatch::OpName(Op op) {
  switch (op) {
    case Op::kSet:
      return "Set";
    case Op::kDelete:
      return "Delete";
    case Op::kHashSet:
      return "HashSet";
    case Op::kSetAdd:
      return "SetAdd";
    case Op::kSetRemove:
      return "SetRemove";
    case Op::kIncrement:
      return "Increment";
  }
  return "?";
}

std::string WriteBatch::EntryName(std::size_t index) const {
  return "batch entry " + std::to_string(index) + " (" + OpName(entries_[index].op) + ")";
}

}  // namespace fedrx::core
