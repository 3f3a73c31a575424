// Random numbers that are the same on every platform and standard library:
// std::mt19937_64's output is fixed by the standard, but std::shuffle and the
// std::*_distribution classes are implementation-defined, so lire draws with
// these instead (data order, response subsets, bootstrap resamples, sampling).
#pragma once

#include <cstdint>
#include <random>

namespace lire {

// splitmix64's finaliser: a bijective mix of 64 bits (for deriving seeds).
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform in [0, bound), bound > 0, by rejection (no modulo bias).
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

// Uniform double in [0, 1) from the top 53 bits.
inline double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace lire
