#!/usr/bin/env bash
# Runs the safetensors fuzzer for a bounded time from a seed corpus of valid and broken files.
set -euo pipefail
fuzzer=$1 seconds=${2:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
/usr/bin/python3 - "$work/corpus" <<'PY'
import json, struct, sys, os
d = sys.argv[1]
def st(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data
good = st({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
           "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
           "c": {"dtype": "BF16", "shape": [1], "data_offsets": [22, 24]}}, bytes(range(24)))
for name, blob in {"good": good, "trunc": good[:30], "overlap": st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))}.items():
    open(os.path.join(d, name), "wb").write(blob)
PY
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 12
