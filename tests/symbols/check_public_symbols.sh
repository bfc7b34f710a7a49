#!/usr/bin/env bash
# libfmrecon.so exports exactly its public API: every defined dynamic symbol has the fmr_ prefix
# and is declared in a public header (include/fmrecon/*.h), and every public header wraps its
# declarations in FMR_API_BEGIN/FMR_API_END (fmrecon/visibility.h). Names every offender.
set -euo pipefail
lib=$1 inc=$2
fail=0
# ld itself defines these section-boundary markers in every shared object with a .bss; they are
# not fmrecon code (a version script could hide them, but the API is marked in the headers).
linker='^(__bss_start|_edata|_end)$'
mapfile -t syms < <(nm -D --defined-only "$lib" | awk '{print $3}' | grep -Ev "$linker" | sort -u)
[ ${#syms[@]} -gt 0 ] || { echo "symbols: $lib exports nothing"; exit 1; }
decls=$(cat "$inc"/*.h)
for s in "${syms[@]}"; do
    if [[ $s != fmr_* ]]; then
        echo "symbols: $lib exports '$s', which is not fmr_ API"; fail=1
    elif ! grep -qw -- "$s" <<<"$decls"; then
        echo "symbols: $lib exports '$s', which no header in $inc declares"; fail=1
    fi
done
for h in "$inc"/*.h; do
    case $(basename "$h") in fmrecon.h | visibility.h) continue ;; esac
    grep -q '^FMR_API_BEGIN$' "$h" && grep -q '^FMR_API_END$' "$h" ||
        { echo "symbols: $h lacks FMR_API_BEGIN/FMR_API_END (its functions would not be exported)"; fail=1; }
done
# The checks above would also pass with visibility off if every fmr_ function were public: show
# that library-internal fmr_ functions exist and stay inside (needs the unstripped symbol table).
mapfile -t all < <(nm --defined-only "$lib" 2>/dev/null | awk '$2 ~ /^[tT]$/ && $3 ~ /^fmr_/ {print $3}' | sort -u)
if [ ${#all[@]} -eq 0 ]; then
    echo "symbols: $lib has no symbol table (stripped); the hidden count is SKIPPED"
else
    internal=$(comm -23 <(printf '%s\n' "${all[@]}") <(printf '%s\n' "${syms[@]}") | wc -l)
    [ "$internal" -gt 0 ] || { echo "symbols: every fmr_ function is exported: is -fvisibility=hidden in effect?"; fail=1; }
    echo "symbols: ${#syms[@]} exported (all fmr_, all declared in $inc); $internal internal fmr_ functions hidden"
fi
[ $fail -eq 0 ] || echo "symbols: FAILED (see the lines above)"
exit $fail
