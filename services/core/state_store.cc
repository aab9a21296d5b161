#include "services/core/state_store.h"

namespace fedrx::core {

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
