// Deterministic pseudo-random numbers (the ML core, trial simulations): splitmix64 and
// xoshiro256** with conversions defined here, so a seed gives the same stream
// on every platform and standard library (std:: distributions do not).
// Value types; not thread-safe (use one generator per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace fedrx::core {

// One step of splitmix64 on `state`; also a good 64-bit mixing function.
inline std::uint64_t SplitMix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A stateless hash of (a, b): different keys give independent-looking values.
inline std::uint64_t MixKeys(std::uint64_t a, std::uint64_t b) {
  std::uint64_t s = a ^ (b * 0xd1b54a32d192ed03ULL);
  SplitMix64(s);
  return SplitMix64(s);
}

// xoshiro256** by Blackman and Vigna, seeded through splitmix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(std::uint64_t seed) {
    for (std::uint64_t& w : s_) w = SplitMix64(seed);
  }

  std::uint64_t Next() {
    const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Uniform in [0, n) for n > 0 (Lemire's multiply-shift, bias < 2^-32 for n < 2^32).
  std::uint64_t Below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Fisher-Yates shuffle of [first, first + n).
  template <typename T>
  void Shuffle(T* first, std::size_t n) {
    for (std::size_t i = n; i > 1; --i) std::swap(first[i - 1], first[Below(i)]);
  }

 private:
  static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace fedrx::core
