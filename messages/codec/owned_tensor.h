// A tensor that owns its values, for the small tensors services build
// themselves (calibration statistics, evaluation counts, masked inputs).
// Header-only; a function, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "messages/codec/message.h"

namespace fedrx::codec {

// A Tensor of `dtype` and `shape` whose frame is `values`, moved in without a
// copy of the elements. T is the element type `dtype` names (kFloat64:
// double, kUInt64: std::uint64_t, ...).
template <typename T>
Tensor OwnedTensor(std::string name, DType dtype, std::vector<std::int64_t> shape,
                   std::vector<T> values) {
  static_assert(std::is_trivially_copyable_v<T>);
  auto* owner = new std::vector<T>(std::move(values));
  return Tensor{
      std::move(name), dtype, std::move(shape),
      Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), owner->size() * sizeof(T),
           [](void* p) { delete static_cast<std::vector<T>*>(p); })};
}

}  // namespace fedrx::codec
