// Uses vqlib through its package: version, deterministic parallel loop, seeded RNG.
#include <vqlib/core.hpp>

#include <cstdio>
#include <vector>

int main() {
    std::printf("vqlib %s\n", VQLIB_VERSION_STRING);

    constexpr long chunks = 8;
    std::vector<long> squares(chunks, -1);
    vqlib::parallel_for(chunks, [&](vqlib::Index c) { squares[c] = c * c; });
    for (long c = 0; c < chunks; ++c) {
        if (squares[c] != c * c) {
            std::fprintf(stderr, "parallel_for: chunk %ld gave %ld, expected %ld\n", c,
                         squares[c], c * c);
            return 1;
        }
    }

    vqlib::Rng rng(42);
    const double u = rng.uniform();
    if (!(u >= 0.0 && u < 1.0)) {
        std::fprintf(stderr, "Rng::uniform gave %g, expected a value in [0, 1)\n", u);
        return 1;
    }
    std::printf("parallel_for over %ld chunks on %d threads; uniform() = %.6f\n", chunks,
                vqlib::num_threads(), u);
    return 0;
}
