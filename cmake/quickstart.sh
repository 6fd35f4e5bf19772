#!/usr/bin/env bash
# Installs what vqlib needs to build (Debian/Ubuntu) and runs one CMake workflow preset:
#   cmake/quickstart.sh demo   configure + build (Release), then run examples/demo.cpp
#   cmake/quickstart.sh test   configure + build (Release), then run the tests
#   cmake/quickstart.sh asan   the same with AddressSanitizer + UBSan
#   cmake/quickstart.sh fuzz   build the libFuzzer targets with Clang and run each briefly
#   cmake/quickstart.sh python build the Python module vqlib (pybind11), run its tests and example
# The package list is cmake/debian-packages.txt (OpenMP comes with g++ as libgomp), plus
# cmake/debian-packages-fuzz.txt for the fuzz preset and cmake/debian-packages-python.txt for the
# python preset.
set -euo pipefail

usage() {
    echo "usage: $0 demo|test|asan|fuzz|python" >&2
    exit 2
}
[[ $# -eq 1 ]] || usage
case "$1" in
    demo | test | asan | fuzz | python) preset="$1" ;;
    *) usage ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

package_lists=(cmake/debian-packages.txt)
[[ "$preset" == fuzz ]] && package_lists+=(cmake/debian-packages-fuzz.txt)
[[ "$preset" == python ]] && package_lists+=(cmake/debian-packages-python.txt)

if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    while read -r package; do
        status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$package")
    done < <(cat "${package_lists[@]}")
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "quickstart: installing missing packages: ${missing[*]}"
        sudo=""
        [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
        $sudo apt-get update
        $sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}"
    fi
else
    echo "quickstart: no dpkg-query; install ${package_lists[*]} or equivalents yourself" >&2
fi

# Use every core unless the caller chose otherwise.
jobs="$(nproc 2>/dev/null || echo 2)"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$jobs}"
export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-$jobs}"

exec cmake --workflow --preset "$preset"
