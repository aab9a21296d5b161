// Blob: a move-only owner of one contiguous byte range, used for tensor frames
// and encoded envelopes so that large data moves between the codec and the
// transport without a copy. Not thread-safe; a Blob may be moved across threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace fedrx::codec {

class Blob {
 public:
  // Frees `owner`; called exactly once when the last holder lets go.
  using ReleaseFn = void (*)(void* owner);

  Blob() = default;
  // Adopts `owner`, whose bytes are [data, data + size). `release(owner)` runs
  // when the Blob (or whoever it was released to) is done.
  Blob(void* owner, const std::byte* data, std::size_t size, ReleaseFn release);
  ~Blob();
  Blob(Blob&& other) noexcept;
  Blob& operator=(Blob&& other) noexcept;
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;

  // Takes the vector without copying its elements.
  static Blob FromFloats(std::vector<float>&& values);
  static Blob FromBytes(std::vector<std::byte>&& bytes);
  // Shares `values` with every other Blob made from it (one model sent to many
  // sites without a copy each); the vector is freed with the last holder.
  static Blob FromShared(std::shared_ptr<const std::vector<float>> values);
  // Copies; for small data only.
  static Blob CopyOf(std::span<const std::byte> bytes);

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }

  // Views the bytes as T. Empty when the size is not a multiple of sizeof(T)
  // or the data is not aligned for T.
  template <typename T>
  std::span<const T> As() const {
    if (size_ % sizeof(T) != 0 || reinterpret_cast<std::uintptr_t>(data_) % alignof(T) != 0) {
      return {};
    }
    return {reinterpret_cast<const T*>(data_), size_ / sizeof(T)};
  }

  // Hands ownership to the caller (e.g. a transport that frees the bytes
  // later); the Blob is empty afterwards. The caller must call
  // `release(owner)` once, or never if owner is null.
  struct Released {
    void* owner = nullptr;
    const std::byte* data = nullptr;
    std::size_t size = 0;
    ReleaseFn release = nullptr;
  };
  Released Release() &&;

 private:
  void Reset();

  void* owner_ = nullptr;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  ReleaseFn release_ = nullptr;
};

}  // namespace fedrx::codec
