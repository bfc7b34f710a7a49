#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build a consumer with find_package(fmrecon) and
# another with pkg-config, and run both against the installed library.
set -euo pipefail
build=$1 src=$2 version=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in bin/fmrecon include/fmrecon/fmrecon.h lib/cmake/fmrecon/fmreconConfig.cmake lib/pkgconfig/fmrecon.pc; do
    [ -e "$tmp/prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
libdir=$(dirname "$(find "$tmp/prefix" -name 'libfmrecon.so' | head -n1)")
cmake -S "$src/consumer" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cbuild" >/dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/cbuild/consumer" "$version"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$libdir/pkgconfig"
mpicc $(pkg-config --cflags fmrecon) "$src/consumer/main.c" -o "$tmp/pc_consumer" $(pkg-config --libs fmrecon) -lm
LD_LIBRARY_PATH="$libdir" "$tmp/pc_consumer" "$version"
LD_LIBRARY_PATH="$libdir" "$tmp/prefix/bin/fmrecon" --version | grep -qx "fmrecon $version"
echo "install test: ok"
