#pragma once
// vqlib core: errors, matrix aliases, argument checks, seeded RNG, deterministic threading.
#include <vqlib/core/bits.hpp>
#include <vqlib/core/checks.hpp>
#include <vqlib/core/error.hpp>
#include <vqlib/core/half.hpp>
#include <vqlib/core/rng.hpp>
#include <vqlib/core/scale_storage.hpp>
#include <vqlib/core/simd.hpp>
#include <vqlib/core/threading.hpp>
#include <vqlib/core/timing.hpp>
#include <vqlib/core/types.hpp>
#include <vqlib/version.hpp>
