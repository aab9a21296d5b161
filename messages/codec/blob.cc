#include "messages/codec/blob.h"

#include <cstring>
#include <utility>

namespace fedrx::codec {

Blob::Blob(void* owner, const std::byte* data, std::size_t size, ReleaseFn release)
    : owner_(owner), data_(data), size_(size), release_(release) {}

Blob::~Blob() { Reset(); }

Blob::Blob(Blob&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      release_(std::exchange(other.release_, nullptr)) {}

Blob& Blob::operator=(Blob&& other) noexcept {
  if (this != &other) {
    Reset();
    owner_ = std::exchange(other.owner_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    release_ = std::exchange(other.release_, nullptr);
  }
  return *this;
}

void Blob::Reset() {
  if (owner_ != nullptr && release_ != nullptr) release_(owner_);
  owner_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  release_ = nullptr;
}

Blob Blob::FromFloats(std::vector<float>&& values) {
  auto* owner = new std::vector<float>(std::move(values));
  return Blob(owner, reinterpret_cast<const std::byte*>(owner->data()),
              owner->size() * sizeof(float),
              [](void* p) { delete static_cast<std::vector<float>*>(p); });
}

Blob Blob::FromBytes(std::vector<std::byte>&& bytes) {
  auto* owner = new std::vector<std::byte>(std::move(bytes));
  return Blob(owner, owner->data(), owner->size(),
              [](void* p) { delete static_cast<std::vector<std::byte>*>(p); });
}

Blob Blob::FromShared(std::shared_ptr<const std::vector<float>> values) {
  const auto* data = reinterpret_cast<const std::byte*>(values->data());
  const std::size_t size = values->size() * sizeof(float);
  auto* owner = new std::shared_ptr<const std::vector<float>>(std::move(values));
  return Blob(owner, data, size, [](void* p) {
    delete static_cast<std::shared_ptr<const std::vector<float>>*>(p);
  });
}

Blob Blob::CopyOf(std::span<const std::byte> bytes) {
  return FromBytes(std::vector<std::byte>(bytes.begin(), bytes.end()));
}

Blob::Released Blob::Release() && {
  Released r{owner_, data_, size_, release_};
  owner_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  release_ = nullptr;
  return r;
}

}  // namespace fedrx::codec
