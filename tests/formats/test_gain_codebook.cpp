// Tests of vqlib/formats/gain_codebook.hpp: the nearest stored level.
#include <vqlib/formats/gain_codebook.hpp>

#include <catch2/catch.hpp>

TEST_CASE("formats/gain_codebook: nearest level, ties to the lower one, clamped at both ends") {
    vqlib::GainCodebook cb;
    cb.levels = {0.25f, 0.5f, 1.0f};
    cb.bits = 2;
    CHECK(cb.size() == 3);
    CHECK(cb.nearest(-1.0f) == 0);
    CHECK(cb.nearest(0.0f) == 0);
    CHECK(cb.nearest(0.3f) == 0);
    CHECK(cb.nearest(0.45f) == 1);
    CHECK(cb.nearest(0.75f) == 1);  // a tie (exact in binary): the lower level
    CHECK(cb.nearest(0.8f) == 2);
    CHECK(cb.nearest(9.0f) == 2);
}
