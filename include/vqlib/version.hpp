#pragma once
// vqlib version; CMake parses these three lines (keep the format).
#define VQLIB_VERSION_MAJOR 0
#define VQLIB_VERSION_MINOR 1
#define VQLIB_VERSION_PATCH 0

#define VQLIB_VERSION_STRING_DETAIL(a, b, c) #a "." #b "." #c
#define VQLIB_VERSION_STRING_EXPAND(a, b, c) VQLIB_VERSION_STRING_DETAIL(a, b, c)
#define VQLIB_VERSION_STRING \
    VQLIB_VERSION_STRING_EXPAND(VQLIB_VERSION_MAJOR, VQLIB_VERSION_MINOR, VQLIB_VERSION_PATCH)
