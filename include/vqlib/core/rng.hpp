#pragma once
// A seeded, portable random number generator (xoshiro256** seeded through splitmix64). Unlike
// std::normal_distribution, every draw here is specified, so the same seed gives the same numbers
// on every platform and standard library.
#include <cmath>
#include <cstdint>
#include <numbers>

namespace vqlib {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) {
        std::uint64_t x = seed;
        for (auto& s : state_) s = splitmix64(x);
    }

    /// 64 uniformly random bits.
    std::uint64_t next() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    /// Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// Uniform integer in [0, n) (n > 0), without modulo bias.
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t limit = -n % n;  // 2^64 mod n
        for (;;) {
            const std::uint64_t r = next();
            if (r >= limit) return r % n;
        }
    }

    /// Standard normal (Box-Muller; one draw per call, the second value is discarded so the
    /// sequence does not depend on call history).
    double normal() {
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }

    /// Student-t with `dof` degrees of freedom (integer dof: normal / sqrt(chi2 / dof)).
    double student_t(int dof) {
        double chi2 = 0.0;
        for (int k = 0; k < dof; ++k) {
            const double z = normal();
            chi2 += z * z;
        }
        return normal() / std::sqrt(chi2 / dof);
    }

    /// A random sign, +1 or -1.
    int sign() { return (next() >> 63) ? -1 : 1; }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t state_[4];
};

}  // namespace vqlib
