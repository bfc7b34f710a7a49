#!/usr/bin/env bash
# Stops the daemons tests/slurm/start.sh DIR started (listed in DIR/started), in reverse order:
# SIGTERM, up to 10 s to exit, then SIGKILL. Never touches a daemon it did not start (a munged
# that was already running stays). slurmd goes before slurmctld, then munged if it was ours.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
D=$1
[ -f "$D/started" ] || exit 0
rc=0
for f in $(tac "$D/started"); do
    [ -s "$f" ] || continue
    p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p"
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            echo "slurm-stop: pid $p ($f) ignored SIGTERM; SIGKILL" >&2
            kill -KILL "$p"; rc=1
        fi
    fi
    rm -f "$f"
done
: > "$D/started"
exit $rc
