#!/usr/bin/env bash
# The include rules of docs/architecture.md ("Layers and include rules") that a script can check:
# no '../' include anywhere; public headers include only public headers; programs (the CLI, the
# unit tests, the test tools, the benchmarks) include only public headers (the CLI also its own
# headers in src/cli/, such as cli.h). Names every offending line.
set -euo pipefail
root=$1
cd "$root"
fail=0
report() { echo "includes: $1"; fail=1; }
while IFS= read -r l; do report "$l: includes with '../' (private headers come from the src/ root)"; done < <(
    grep -rnE '^\s*#\s*include\s*"\.\./' src solvers include tests bench 2>/dev/null || true)
while IFS= read -r l; do report "$l: a public header includes a non-public header"; done < <(
    grep -nE '^\s*#\s*include\s*"' include/fmrecon/*.h | grep -vE '#\s*include\s*"fmrecon/[a-z_0-9]+\.h"' || true)
cli_own=$(cd src/cli && ls *.h | sed 's/\./\\./g' | paste -sd'|')
programs=(src/cli/*.c src/cli/*.h tests/unit/*.c tests/tools/*.c)
compgen -G "bench/*.c" >/dev/null && programs+=(bench/*.c)
while IFS= read -r l; do report "$l: a program includes a private header (only fmrecon/*.h, the exported API)"; done < <(
    grep -nE '^\s*#\s*include\s*"' "${programs[@]}" | grep -vE '#\s*include\s*"fmrecon/[a-z_0-9]+\.h"' |
        grep -vE "^src/cli/[^:]+:[0-9]+:\\s*#\\s*include\\s*\"($cli_own)\"" || true)
n=$(grep -rhcE '^\s*#\s*include\s*"' src solvers include tests bench 2>/dev/null | awk '{s+=$1} END {print s}')
[ $fail -eq 0 ] && echo "includes: $n quoted includes checked: none with '../', public headers and programs use only fmrecon/*.h"
exit $fail
