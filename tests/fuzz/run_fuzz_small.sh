#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time from seeds made of real samples, then prints how many
# inputs it executed. usage: run_fuzz_small.sh FUZZER SECONDS maskfile|manifest SHARED_DATA
# A crash or a failed check leaves its input as crash-*/oom-*/timeout-* in the working folder
# (the ctest build folder) and fails the test; such an input becomes a regression seed below.
set -euo pipefail
fuzzer=$1 seconds=$2 kind=$3 shared=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d -p "$([ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/run"
/usr/bin/python3 "$here/make_seeds.py" "$kind" "$shared" "$here/../.." "$work/corpus"
# the regression inputs of earlier findings run first, every time
if [ -d "$here/regressions/$kind" ]; then cp "$here/regressions/$kind"/* "$work/corpus/"; fi
log=$work/log
rc=0
FMR_FUZZ_DIR="$work/run" "$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 "$work/corpus" >"$log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
if [ $rc -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz $kind: FAILED after ${execs:-?} executions (exit $rc); the input is in $(pwd)"
    exit 1
fi

echo "fuzz $kind: ${execs:-?} executions in ${seconds} s, $(ls "$work/corpus" | wc -l) corpus inputs, no crash"
[ -n "$execs" ] && [ "$execs" -gt 0 ]
