#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   bash scripts/bootstrap.sh demo   install what is missing, build, run the end-to-end demo
#   bash scripts/bootstrap.sh test   install what is missing, build (release + ASan/UBSan, and -O3
#                                    GCC and clang Release trees, all with -Werror), run every test
# Idempotent: packages already present are not reinstalled, build trees are reused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
what=${1:-demo}
jobs=${FMR_BUILD_JOBS:-$(nproc)}

bash scripts/install-deps.sh

werror=()
[ "$what" = test ] && werror=(-DFMR_WERROR=ON) # warnings are errors in CI, not for users
configure_build() { # dir, extra cmake args... (a later -DCMAKE_BUILD_TYPE wins)
    local dir=$1; shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${werror[@]}" "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; echo "bootstrap: cmake configure of $dir failed" >&2; exit 1; }
    cmake --build "$dir" -j "$jobs"
}

mkdir -p build
configure_build build
case "$what" in
demo)
    ./build/fmrecon demo -o demo-out
    ;;
test)
    mkdir -p build-asan build-release build-clang
    configure_build build-asan -DFMR_SANITIZE=ON
    # The builds users and clusters make: GCC -O3 (its warnings differ from -O2's) and clang
    # (the base of Intel icx and Cray CC). Only the unit tests run on the clang tree.
    configure_build build-release -DCMAKE_BUILD_TYPE=Release
    configure_build build-clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang
    export OMP_NUM_THREADS=1
    rc=0
    echo "== unit tests: clang Release build"
    (cd build-clang && ctest --output-on-failure -j "$jobs" -L unit) || rc=1
    echo "== demo (release build)"
    ./build/fmrecon demo -o build/demo-out --quiet || rc=1
    echo "== tests: ASan+UBSan build"
    (cd build-asan && ctest --output-on-failure -j "$jobs" -LE no-sanitizer) || rc=1
    echo "== tests: release build"
    (cd build && ctest --output-on-failure -j "$jobs") || rc=1
    exit $rc
    ;;
*)
    echo "usage: bash scripts/bootstrap.sh demo|test" >&2
    exit 2
    ;;
esac
