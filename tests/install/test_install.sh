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
echo "install test: find_package, pkg-config and the installed fmrecon: ok"

# The Lmod modulefile: module load puts this install's fmrecon first on PATH (and its library on
# LD_LIBRARY_PATH), module unload takes it away again.
modfile="$tmp/prefix/share/modulefiles/fmrecon/$version.lua"
[ -e "$modfile" ] || { echo "missing after install: share/modulefiles/fmrecon/$version.lua"; exit 1; }
lmod_init=/usr/share/lmod/lmod/init/bash
if [ ! -r "$lmod_init" ]; then
    echo "modulefile: SKIPPED (Lmod not installed: no $lmod_init; Debian: apt-get install lmod)"
    exit 77
fi
# a clean shell: no fmrecon on PATH, no LD_LIBRARY_PATH, no modules loaded (the rest, such as
# Open MPI's run-as-root settings in containers, is kept)
env -u LD_LIBRARY_PATH -u MODULEPATH -u LOADEDMODULES -u _LMFILES_ PATH=/usr/bin:/bin bash --norc --noprofile -c '
    set -e
    source "$1"
    module use "$2/share/modulefiles"
    module load fmrecon
    [ "$(command -v fmrecon)" = "$2/bin/fmrecon" ] || { echo "module load: fmrecon on PATH is $(command -v fmrecon)"; exit 1; }
    v=$(fmrecon --version)
    [ "$v" = "fmrecon $3" ] || { echo "module load: fmrecon --version says \"$v\", expected \"fmrecon $3\""; exit 1; }
    [ "$FMRECON_ROOT" = "$2" ] || { echo "module load: FMRECON_ROOT=$FMRECON_ROOT, expected $2"; exit 1; }
    module unload fmrecon
    if command -v fmrecon >/dev/null; then echo "module unload: fmrecon still on PATH"; exit 1; fi
    echo "modulefile: module load fmrecon; fmrecon --version -> $v: ok"
' modtest "$lmod_init" "$tmp/prefix" "$version"
echo "install test: ok"
